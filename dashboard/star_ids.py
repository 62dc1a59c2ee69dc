"""Parse the ways people write an SDSS spectrum id into one canonical (plate, mjd, fiber).

Users paste ids from many places: the catalog ('2942-54521-124'), our own zero-padded form
('2942-54521-0124'), or a spec-lite file name ('spec-2942-54521-0124.fits'). Every one of them
maps to the warehouse's ``star_id`` ('%04d-%05d-%04d'); anything else gets a message saying
what was expected, never a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Ranges SDSS and BOSS identifiers fall in (plates 266..~12500, MJD 51578.., fibers 1..1000).
PLATE_RANGE = (1, 99_999)
MJD_RANGE = (40_000, 99_999)
FIBER_RANGE = (1, 9_999)

_ID = re.compile(
    r"^(?:spec-)?(?P<plate>\d{1,5})[-_ /](?P<mjd>\d{5})[-_ /](?P<fiber>\d{1,4})"
    r"(?:\.fits?(?:\.gz)?)?$",
    re.IGNORECASE,
)
EXAMPLE = "2942-54521-0124"


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
        return f"{self.plate:04d}-{self.mjd:05d}-{self.fiber:04d}"

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
