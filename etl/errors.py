"""Errors the ETL readers raise internally, each carrying a reason a human can act on.

Readers never let these escape to the ingest driver: the per-file / per-chunk functions turn
them into reject rows ``{"source", "item", "reason"}``. Only a catalog that cannot be read at all
(e.g. no plate/mjd/fiberid columns) raises :class:`CatalogError` out of ``iter_catalog``, which
the driver records as a whole-file reject.
"""

from __future__ import annotations


class EtlError(ValueError):
    """Base class: the message is the reject reason shown to the user."""


class SpecFileError(EtlError):
    """A spectrum file cannot be read (empty, not FITS, truncated, missing HDU or columns)."""


class SpectrumError(EtlError):
    """A spectrum was read but cannot be placed on the common grid (nothing usable)."""


class IdentityError(EtlError):
    """A spectrum's plate/mjd/fiber cannot be determined, or its sources disagree."""


class CatalogError(EtlError):
    """A catalog file cannot be used at all (unreadable, or no id columns)."""


def reject(source: object, item: str, reason: str) -> dict[str, str]:
    """One reject row, in the shape of the warehouse ``rejects`` table (minus run and time)."""
    return {"source": str(source), "item": item, "reason": reason}
