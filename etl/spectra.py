"""One spectrum file in, one ``stars`` row + one ``spectra`` row (or reject reasons) out.

:func:`process_spec_file` is pure (no globals, no I/O besides reading its file) and never
raises, so the ingest driver can map it over a process pool; its result pickles cheaply.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from startrack.etl.errors import EtlError, IdentityError, reject
from startrack.etl.resample import GridSpectrum, place_on_grid
from startrack.etl.spec_reader import SpecData, read_spec
from startrack.labels import normalize_subclass
from startrack.star_id import format_star_id, ids_from_file_name, invalid_id_reason
from startrack.vocabulary import BANDS
from startrack.warehouse.contract import STARS

log = logging.getLogger(__name__)

#: ``stars`` columns a reader fills (``ingest_run`` is the driver's).
STAR_KEYS = tuple(n for n in STARS.names if n != "ingest_run")


@dataclass
class SpecResult:
    """What one file gave: both rows, or neither and at least one reject."""

    star: dict[str, Any] | None
    spectrum: dict[str, Any] | None
    rejects: list[dict[str, str]] = field(default_factory=list)


class FileTimeout(EtlError):
    """Reading one file took longer than FILE_TIMEOUT_S (a last line of defence)."""


FILE_TIMEOUT_S = 30.0  #: a spectrum file takes ~3 ms; anything near this is a reader stuck


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise FileTimeout in this thread after ``seconds`` (SIGALRM; main thread only).

    The header checks keep every file bounded already; this stops whatever they miss from
    holding an ingest (and its writer lock) forever. Elsewhere it does nothing. Per file it
    costs two ``setitimer`` calls; the handler is installed for the duration only.
    """
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def on_alarm(_signum, _frame) -> None:
        raise FileTimeout(f"gave up after {seconds:g} s: the file could not be read in time")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def process_spec_file(path: str | Path) -> SpecResult:
    """Read, validate and grid one spectrum file. Never raises: problems become rejects."""
    source = str(path)
    try:
        with time_limit(FILE_TIMEOUT_S):
            data = read_spec(path)
            plate, mjd, fiberid = resolve_identity(Path(path).name, data)
            placed = place_on_grid(data.loglam, data.flux, data.ivar, data.and_mask)
    except EtlError as exc:
        return SpecResult(None, None, [reject(source, "file", str(exc))])
    except Exception as exc:  # a reader bug must cost one file, not the whole ingest
        log.exception("unexpected error reading %s", source)
        reason = f"unexpected error reading spectrum: {type(exc).__name__}: {exc}"
        return SpecResult(None, None, [reject(source, "file", reason)])
    sid = format_star_id(plate, mjd, fiberid)
    ids = {"plate": plate, "mjd": mjd, "fiberid": fiberid, "star_id": sid}
    return SpecResult(
        star=_star_row(ids, data.specobj, placed, source),
        spectrum=_spectrum_row(ids, placed, source),
    )


def resolve_identity(name: str, data: SpecData) -> tuple[int, int, int]:
    """(plate, mjd, fiberid) from SPECOBJ, the primary header and the file name, which must agree.

    SPECOBJ wins; the others are fallbacks and cross-checks. Raises :class:`IdentityError`.
    """
    opinions: list[tuple[str, tuple[int, int, int]]] = []
    so = data.specobj or {}
    if all(isinstance(so.get(k), int) for k in ("PLATE", "MJD", "FIBERID")):
        opinions.append(("SPECOBJ", (so["PLATE"], so["MJD"], so["FIBERID"])))
    pid = data.primary_ids
    if len(pid) == 3:
        opinions.append(("primary header", (pid["plate"], pid["mjd"], pid["fiberid"])))
    from_name = ids_from_file_name(name)
    if from_name is not None:
        opinions.append(("file name", from_name))
    if not opinions:
        raise IdentityError(
            "cannot tell plate/mjd/fiber: no SPECOBJ HDU and the file name does not match "
            "spec-PLATE-MJD-FIBER.fits"
        )
    best_source, best = opinions[0]
    for other_source, other in opinions[1:]:
        if other != best:
            raise IdentityError(
                f"identity mismatch: {best_source} says {format_star_id(*best)} "
                f"but {other_source} says {format_star_id(*other)}"
            )
    why = invalid_id_reason(*best)
    if why:
        raise IdentityError(f"invalid id from {best_source}: {why}")
    return best


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def nanomaggies_to_mag(flux: Any) -> float | None:
    """AB magnitude of a flux in nanomaggies (22.5 - 2.5 log10 f); None when f <= 0 or unknown."""
    f = _float(flux)
    return 22.5 - 2.5 * math.log10(f) if f is not None and f > 0 else None


def _star_row(
    ids: dict[str, Any], so: dict[str, Any] | None, placed: GridSpectrum, source: str
) -> dict[str, Any]:
    star: dict[str, Any] = dict.fromkeys(STAR_KEYS)
    star.update(ids)
    star["has_spectrum"] = True
    star["source"] = source
    star["snr"] = _float(placed.snr_median)
    if so is None:
        return star
    label = normalize_subclass(_text(so.get("SUBCLASS")))
    star.update(
        specobjid=_text(so.get("SPECOBJID")),
        ra=_float(so.get("PLUG_RA")),
        dec=_float(so.get("PLUG_DEC")),
        subclass=_text(so.get("SUBCLASS")),
        label=label.label,
        label_family=label.family,
        spectral_type=label.spectral_type,
        luminosity_class=label.luminosity_class,
        z=_float(so.get("Z")),
        zerr=_float(so.get("Z_ERR")),
        elodie_sptype=_text(so.get("ELODIE_SPTYPE")),
    )
    star["class"] = _text(so.get("CLASS"))
    if _float(so.get("SN_MEDIAN_ALL")) is not None:
        star["snr"] = _float(so.get("SN_MEDIAN_ALL"))
    fluxes = so.get("SPECTROFLUX")
    if fluxes is not None and len(fluxes) == len(BANDS):
        for band, f in zip(BANDS, fluxes, strict=True):
            star[f"mag_{band}"] = nanomaggies_to_mag(f)
    return star


def _spectrum_row(ids: dict[str, Any], placed: GridSpectrum, source: str) -> dict[str, Any]:
    return {
        **ids,
        "flux": placed.flux,
        "ivar": placed.ivar,
        "mask": placed.mask,
        "norm": placed.norm,
        "norm_method": placed.norm_method,
        "pix_start": placed.pix_start,
        "pix_end": placed.pix_end,
        "exact_shift": placed.exact_shift,
        "snr_median": placed.snr_median,
        "source": source,
    }
