"""Turn what people paste or upload — a list of ids, a CSV — into canonical star ids.

Astronomers arrive with ids from CasJobs exports (plate, mjd, fiberID columns), from file
listings (spec-2942-54521-0124.fits) or typed by hand. Every accepted form becomes the
warehouse's ``star_id``; each entry that cannot be read is kept with the reason, never
dropped silently. Problems with the request as a whole (no id column, too many ids, not
text) raise :class:`BadIdList` with a one-line message.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from startrack.star_id import InvalidStarId, from_parts, parse_star_id

MAX_IDS = 100_000  #: one request; more is a 413, not a slow server
PLATE_NAMES = ("plate",)
MJD_NAMES = ("mjd",)
FIBER_NAMES = ("fiberid", "fiber", "fiber_id")
ID_NAMES = (
    "star_id", "starid", "id", "spec_id", "specid", "specname", "spec", "spectrum",
    "file", "filename", "name", "url",
)  # fmt: skip
_SPLIT = re.compile(r"[,;\t\r\n]+")


class BadIdList(ValueError):
    """The request as a whole cannot be read as a list of star ids."""


@dataclass
class IdList:
    """Canonical ids in input order (duplicates removed), with what could not be read."""

    ids: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  #: the text each id came from
    invalid: list[tuple[str, str]] = field(default_factory=list)  #: (input, reason)
    duplicates: int = 0

    def add(self, raw: str, parse) -> None:
        """Parse one entry with ``parse()``; keep it, count it as a duplicate, or list it."""
        if len(self.ids) + len(self.invalid) >= MAX_IDS:
            raise BadIdList(f"too many ids: at most {MAX_IDS:,} per request")
        try:
            star_id = parse()
        except InvalidStarId as exc:
            self.invalid.append((raw, str(exc)))
            return
        if star_id in self._seen:
            self.duplicates += 1
            return
        self._seen.add(star_id)
        self.ids.append(star_id)
        self.inputs.append(raw)

    def __post_init__(self) -> None:
        self._seen: set[str] = set(self.ids)


def _one(text: str):
    return lambda: parse_star_id(text).star_id


def _not_an_id() -> str:
    raise InvalidStarId("expected an id string, [plate, mjd, fiber] or {plate, mjd, fiberid}")


def from_values(values: Iterable[object]) -> IdList:
    """A JSON list: id strings, [plate, mjd, fiber] triples or {plate, mjd, fiberid} objects."""
    out = IdList()
    for value in values:
        if isinstance(value, str):
            out.add(value, _one(value))
        elif isinstance(value, dict):
            low = {str(k).lower(): v for k, v in value.items()}
            fiber = next((low[k] for k in FIBER_NAMES if k in low), None)
            raw = f"{low.get('plate')}-{low.get('mjd')}-{fiber}"
            out.add(
                raw, lambda lo=low, f=fiber: from_parts(lo.get("plate"), lo.get("mjd"), f).star_id
            )
        elif isinstance(value, (list, tuple)) and len(value) == 3:
            raw = "-".join(str(v) for v in value)
            out.add(raw, lambda v=value: from_parts(*v).star_id)
        else:
            out.add(str(value)[:60], _not_an_id)
    return out


def _is_header(cells: list[str]) -> bool:
    names = {c.strip().lower() for c in cells}
    return bool(names & {*PLATE_NAMES, *MJD_NAMES, *FIBER_NAMES, *ID_NAMES})


def from_text(text: str) -> IdList:
    """Pasted text: ids separated by newlines, commas, semicolons or tabs; or a whole CSV."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines and _is_header(next(csv.reader([lines[0]]))):
        return from_csv(text.encode())
    out = IdList()
    for token in _SPLIT.split(text):
        token = token.strip()
        if not token or token.startswith("#"):
            continue
        words = token.split()
        if len(words) > 1 and not _looks_like_spaced_id(words):
            for word in words:
                out.add(word, _one(word))
        else:
            out.add(token, _one(token))
    return out


def _looks_like_spaced_id(words: list[str]) -> bool:
    """'2942 54521 124' is one id written with spaces; '2942-54521-124 2942-54521-125' is two."""
    return len(words) == 3 and all(w.isdigit() for w in words)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadIdList("the upload is not UTF-8 text: send a CSV file") from None


def from_csv(raw: bytes) -> IdList:
    """A CSV: plate, mjd and fiberid columns (any case, CasJobs names), or one id column.

    A file without a header is read when its first cell is an id. SkyServer's ``#Table1``
    first line is skipped.
    """
    text = _decode(raw)
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if rows and rows[0] and rows[0][0].strip().startswith("#"):
        rows = rows[1:]
    if not rows:
        raise BadIdList("the CSV is empty: give a star_id column or plate, mjd, fiberid columns")
    header = [c.strip().lower() for c in rows[0]]

    def col(names: tuple[str, ...]) -> int | None:
        return next((header.index(n) for n in names if n in header), None)

    plate, mjd, fiber = col(PLATE_NAMES), col(MJD_NAMES), col(FIBER_NAMES)
    out = IdList()
    if plate is not None and mjd is not None and fiber is not None:
        for n, row in enumerate(rows[1:], start=2):
            cells = [row[i].strip() if i < len(row) else "" for i in (plate, mjd, fiber)]
            out.add(f"row {n}: {'-'.join(cells)}", lambda c=cells: from_parts(*c).star_id)
        return out
    if plate is not None or mjd is not None or fiber is not None:
        raise BadIdList("the CSV has only some of the plate, mjd, fiberid columns: give all three")
    idcol = col(ID_NAMES)
    body = rows[1:]
    if idcol is None:
        try:
            parse_star_id(rows[0][0])
        except InvalidStarId:
            raise BadIdList(
                f"no id column in the CSV (header {', '.join(rows[0][:6])!s}): name one "
                f"star_id, or give plate, mjd, fiberid columns"
            ) from None
        idcol, body = 0, rows  # no header: the first column holds the ids
    for row in body:
        cell = row[idcol].strip() if idcol < len(row) else ""
        out.add(cell, _one(cell))
    return out
