"""Cone search: the stars nearest a sky position, with their labels and predictions.

Positions are parsed by astropy.coordinates the way SkyServer users type them: decimal
degrees (``150.1166 2.2058``) or sexagesimal (``10:00:28.0 +02:12:21``, ``10h00m28s``; RA in
hours when written sexagesimally, unless it says ``d``/``°``). The radius takes units
(``30 arcsec``, ``2 arcmin``, ``0.5 deg``, ``2'``, ``30"``); a bare number is arcminutes.
Distances are great-circle (haversine) in one DuckDB query, pre-filtered on a Dec band.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import astropy.units as u
import pandas as pd
from astropy.coordinates import Angle

from startrack.dashboard import data, many_stars
from startrack.dashboard.id_lists import IdList
from startrack.warehouse.store import Snapshot

MAX_RADIUS_DEG = 5.0
DEFAULT_LIMIT = 200
_SEXAGESIMAL = re.compile(r"[:hms]|\d\s+\d")


class BadPosition(ValueError):
    """A position or radius that cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class Cone:
    ra: float  #: degrees
    dec: float  #: degrees
    radius: float  #: degrees

    def describe(self) -> str:
        ra = Angle(self.ra, u.deg).to_string(unit=u.hourangle, sep=":", precision=2, pad=True)
        dec = Angle(self.dec, u.deg).to_string(sep=":", precision=1, alwayssign=True, pad=True)
        radius = _radius_text(self.radius)
        return f"RA {self.ra:.5f}° ({ra}), Dec {self.dec:+.5f}° ({dec}), radius {radius}"


def _radius_text(deg: float) -> str:
    if deg < 1 / 60:
        return f"{deg * 3600:g} arcsec"
    if deg < 1:
        return f"{deg * 60:g} arcmin"
    return f"{deg:g} deg"


def parse_ra(text: str | None) -> float:
    raw = (text or "").strip()
    if not raw:
        raise BadPosition("RA is empty: give degrees (150.1166) or hours (10:00:28.0)")
    unit = u.hourangle if _SEXAGESIMAL.search(raw) and not re.search(r"[d°]", raw) else u.deg
    try:
        value = Angle(raw, unit=unit).to_value(u.deg)
    except (ValueError, u.UnitsError):
        raise BadPosition(f"RA {raw[:40]!r} is not an angle: 150.1166 or 10:00:28.0") from None
    if not 0 <= value <= 360:
        raise BadPosition(f"RA {raw[:40]!r} is outside 0..360 deg (0..24 h)")
    return value % 360.0


def parse_dec(text: str | None) -> float:
    raw = (text or "").strip()
    if not raw:
        raise BadPosition("Dec is empty: give degrees (2.2058) or +02:12:21")
    try:
        value = Angle(raw, unit=u.deg).to_value(u.deg)
    except (ValueError, u.UnitsError):
        raise BadPosition(f"Dec {raw[:40]!r} is not an angle: 2.2058 or +02:12:21") from None
    if not -90 <= value <= 90:
        raise BadPosition(f"Dec {raw[:40]!r} is outside -90..+90 deg")
    return value


def parse_radius(text: str | None) -> float:
    """Degrees from '30 arcsec', '2 arcmin', "2'", '30"', '0.5 deg'; a bare number: arcmin."""
    raw = (text or "").strip()
    if not raw:
        raise BadPosition("radius is empty: e.g. 2 arcmin, 30 arcsec or 0.5 deg")
    cleaned = raw.replace("″", '"').replace("′", "'")
    if cleaned.endswith('"'):
        cleaned = cleaned[:-1] + " arcsec"
    elif cleaned.endswith("'"):
        cleaned = cleaned[:-1] + " arcmin"
    try:
        q = u.Quantity(cleaned)
        if q.unit == u.dimensionless_unscaled:
            q = q.value * u.arcmin
        value = q.to_value(u.deg)
    except (ValueError, TypeError, u.UnitsError):
        raise BadPosition(
            f"radius {raw[:40]!r} is not an angle: e.g. 2 arcmin, 30 arcsec or 0.5 deg"
        ) from None
    if not 0 < value <= MAX_RADIUS_DEG:
        raise BadPosition(f"radius must be above 0 and at most {MAX_RADIUS_DEG:g} deg")
    return value


def parse_cone(ra: str | None, dec: str | None, radius: str | None) -> Cone:
    return Cone(parse_ra(ra), parse_dec(dec), parse_radius(radius))


def cone_search(snap: Snapshot, cone: Cone, limit: int = DEFAULT_LIMIT) -> pd.DataFrame:
    """Stars within the cone, nearest first: distance [arcsec], then the many-stars columns."""
    near = data.query(
        snap,
        "WITH c AS (SELECT star_id, degrees(2 * asin(sqrt("
        "  pow(sin(radians(dec - $dec) / 2), 2)"
        "  + cos(radians(dec)) * cos(radians($dec)) * pow(sin(radians(ra - $ra) / 2), 2)"
        "))) AS dist FROM stars WHERE dec BETWEEN $dec - $r AND $dec + $r) "
        "SELECT star_id, dist * 3600 AS distance_arcsec FROM c WHERE dist <= $r "
        "ORDER BY dist, star_id LIMIT $limit",
        {"ra": cone.ra, "dec": cone.dec, "r": cone.radius, "limit": int(limit)},
    )
    ids = IdList(ids=near["star_id"].tolist(), inputs=near["star_id"].tolist())
    rows = many_stars.lookup_many(snap, ids).drop(columns=["input", "found"])
    rows.insert(1, "distance_arcsec", near["distance_arcsec"].round(2).to_numpy())
    return rows
