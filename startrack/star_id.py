"""The SDSS spectrum id, defined once: format, parse, validate, file name.

A star is one fiber on one plate observed on one night: (plate, MJD, fiber). The warehouse's
``star_id`` is ``PPPP-MMMMM-FFFF`` zero padded ('2942-54521-0124'); SDSS names its files
``spec-PPPP-MMMMM-FFFF.fits``. Users paste ids from many places: the catalog
('2942-54521-124'), our form, or a spec-lite file name; :func:`parse_star_id` maps every one of
them to a :class:`StarId`, anything else gets a message saying what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Fibers per plate: 640 on SDSS-I/II plates, 1000 on BOSS/eBOSS plates (the larger bounds).
MAX_FIBER = 1000
#: Bounds of real SDSS identifiers, checked before anything reaches a Parquet writer: plates run
#: 266..~12,500 (SDSS-I..eBOSS) within 5 digits; MJDs start at 50,000 (specObjID packs
#: MJD - 50000; first light was MJD ~50,800) and stay 5-digit; fibers 1..MAX_FIBER.
PLATE_RANGE = (1, 99_999)
MJD_RANGE = (50_000, 99_999)
FIBER_RANGE = (1, MAX_FIBER)
#: The same bounds keyed by ``stars`` column.
ID_RANGES: dict[str, tuple[int, int]] = {
    "plate": PLATE_RANGE,
    "mjd": MJD_RANGE,
    "fiberid": FIBER_RANGE,
}

#: An SDSS spectrum file name: spec-PLATE-MJD-FIBER.fits[.gz].
FILE_NAME = re.compile(r"^spec-(\d+)-(\d+)-(\d+)\.fits(?:\.gz)?$", re.IGNORECASE)
#: The same inside a URL or path (named groups, for Arrow's extract_regex).
FILE_NAME_IN_URL = r"spec-(?P<plate>\d+)-(?P<mjd>\d+)-(?P<fiberid>\d+)\.fits"

_ID = re.compile(
    r"^(?:spec-)?(?P<plate>\d{1,5})[-_ /](?P<mjd>\d{5})[-_ /](?P<fiber>\d{1,4})"
    r"(?:\.fits?(?:\.gz)?)?$",
    re.IGNORECASE,
)
EXAMPLE = "2942-54521-0124"


def format_star_id(plate: int, mjd: int, fiber: int) -> str:
    """The warehouse's readable id: '2942-54521-0124'."""
    return f"{int(plate):04d}-{int(mjd):05d}-{int(fiber):04d}"


def spec_file_name(plate: int, mjd: int, fiber: int) -> str:
    """The SDSS file name, e.g. spec-2942-54521-0124.fits."""
    return f"spec-{format_star_id(plate, mjd, fiber)}.fits"


def ids_from_file_name(name: str) -> tuple[int, int, int] | None:
    """(plate, mjd, fiber) from 'spec-PLATE-MJD-FIBER.fits[.gz]', None if it does not match."""
    m = FILE_NAME.match(name)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def star_id_from_file_name(name: str) -> str | None:
    """The star_id a spectrum file name claims, None when it is not an SDSS name."""
    ids = ids_from_file_name(name)
    return format_star_id(*ids) if ids else None


def star_key(star_id: str) -> list[int]:
    """'2942-54521-0124' -> [2942, 54521, 124] (a canonical id, as the warehouse stores it)."""
    plate, mjd, fiber = (int(p) for p in star_id.split("-"))
    return [plate, mjd, fiber]


def invalid_id_reason(plate: Any, mjd: Any, fiberid: Any) -> str | None:
    """Why an id triple read from a file is not a real SDSS fiber (None when it is fine)."""
    for name, value in (("plate", plate), ("mjd", mjd), ("fiberid", fiberid)):
        if value is None or not isinstance(value, int) or isinstance(value, bool):
            return f"{name} is missing or not an integer ({value!r})"
        if value <= 0:
            return f"{name} must be positive (got {value})"
        lo, hi = ID_RANGES[name]
        if not lo <= value <= hi:
            return f"{name} {value} is outside {lo}..{hi}"
    return None


class InvalidStarId(ValueError):
    """The text is not a PLATE-MJD-FIBER spectrum id; the message says what is expected."""


@dataclass(frozen=True, order=True)
class StarId:
    plate: int
    mjd: int
    fiber: int

    @property
    def star_id(self) -> str:
        """The warehouse's canonical form, e.g. '2942-54521-0124'."""
        return format_star_id(self.plate, self.mjd, self.fiber)

    def __str__(self) -> str:
        return self.star_id


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> None:
    lo, hi = bounds
    if not lo <= value <= hi:
        raise InvalidStarId(f"{name} {value} is out of range ({lo}..{hi})")


def from_parts(plate: object, mjd: object, fiber: object) -> StarId:
    """A StarId from three separate fields (strings or numbers)."""
    values = []
    for name, raw in (("plate", plate), ("MJD", mjd), ("fiber", fiber)):
        text = "" if raw is None else str(raw).strip()
        if not text:
            raise InvalidStarId(f"{name} is empty: give plate, MJD and fiber, e.g. {EXAMPLE}")
        if not (text.isascii() and text.isdigit()):  # '²' passes isdigit() but not int()
            shown = text if len(text) <= 20 else text[:17] + "..."
            raise InvalidStarId(f"{name} must be a whole number (digits 0-9), got {shown!r}")
        if len(text) > 9:  # int() refuses > 4300 digits; no SDSS id has more than 5
            raise InvalidStarId(f"{name} has {len(text):,} digits: too long for an SDSS id")
        values.append(int(text))
    sid = StarId(*values)
    _check_range("plate", sid.plate, PLATE_RANGE)
    _check_range("MJD", sid.mjd, MJD_RANGE)
    _check_range("fiber", sid.fiber, FIBER_RANGE)
    return sid


def parse_star_id(text: str | None) -> StarId:
    """Accept '2942-54521-124', '2942-54521-0124', 'spec-2942-54521-0124[.fits]'."""
    raw = "" if text is None else str(text).strip()
    if not raw:
        raise InvalidStarId(f"enter a star id as PLATE-MJD-FIBER, e.g. {EXAMPLE}")
    name = raw.rsplit("/", 1)[-1]  # a pasted path or URL to a spec file
    m = _ID.match(name)
    if not m:
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        raise InvalidStarId(
            f"{shown!r} is not a star id: expected PLATE-MJD-FIBER such as {EXAMPLE}, "
            f"2942-54521-124 or spec-{EXAMPLE}.fits"
        )
    return from_parts(m["plate"], m["mjd"], m["fiber"])
