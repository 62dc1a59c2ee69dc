"""Read the parts of an SDSS ``spec-PLATE-MJD-FIBER.fits[.gz]`` file the warehouse needs.

Why two readers: astropy parses every one of SPECOBJ's ~126 columns (about 30 ms a file), which
alone would cap the ingest far below its goal of 250 files/s on 2 cores. :func:`read_spec` walks
the FITS headers itself (80-character cards, stopping once COADD and SPECOBJ are found), then
views only the needed columns of each binary table through a NumPy structured dtype: ~1 ms a
file. :func:`read_spec_astropy` is the reference implementation; the tests check both agree on
a real SDSS file, and :func:`read_spec` hands any table layout it does not handle itself
(scaled columns, variable-length arrays, compressed HDUs) to astropy instead of guessing.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from startrack.etl.errors import SpecFileError

BLOCK = 2880  #: FITS block size in bytes
CARD = 80  #: FITS header card size in bytes

#: COADD columns we read; ``and_mask`` is optional (absent in some reductions).
COADD_REQUIRED = ("flux", "loglam", "ivar")
COADD_OPTIONAL = ("and_mask",)

#: SPECOBJ columns we read when present (any may be missing; identity then falls back).
SPECOBJ_COLUMNS = (
    "PLATE",
    "MJD",
    "FIBERID",
    "CLASS",
    "SUBCLASS",
    "Z",
    "Z_ERR",
    "SN_MEDIAN_ALL",
    "PLUG_RA",
    "PLUG_DEC",
    "SPECOBJID",
    "ELODIE_SPTYPE",
    "SPECTROFLUX",
)

#: Primary-header keys that also identify the fiber (a second opinion on identity).
PRIMARY_ID_KEYS = {"PLATEID": "plate", "MJD": "mjd", "FIBERID": "fiberid"}

# TFORM letter -> (bytes per element, big-endian NumPy code). None: not handled by the fast path.
_TFORM = {
    "L": (1, "i1"),
    "B": (1, "u1"),
    "I": (2, ">i2"),
    "J": (4, ">i4"),
    "K": (8, ">i8"),
    "A": (1, "S"),
    "E": (4, ">f4"),
    "D": (8, ">f8"),
    "C": (8, None),
    "M": (16, None),
    "P": (8, None),
    "Q": (16, None),
    "X": (None, None),
}
_TFORM_RE = re.compile(r"^\s*(\d*)\s*([LXBIJKAEDCMPQ])")
#: Header keys the fast path needs (structure, column layout, identity); others are skipped.
_KEEP_KEYS = {"SIMPLE", "XTENSION", "BITPIX", "PCOUNT", "GCOUNT", "TFIELDS", "EXTNAME"}
_KEEP_KEYS |= set(PRIMARY_ID_KEYS)
_KEEP_PREFIXES = ("NAXIS", "TTYPE", "TFORM", "TSCAL", "TZERO")
_STRING_VALUE = re.compile(r"'((?:[^']|'')*)'")  # FITS strings: '' is an escaped quote
#: Bounds that keep every file's time and memory small whatever its header claims: one HDU of
#: an SDSS spectrum file (lite or full) holds well under 1 MB; no FITS header has > 999 axes
#: or columns.
MAX_HDU_BYTES = 64 << 20
MAX_HEADER_BLOCKS = 100  #: 3,600 header cards; real spec headers have a few hundred
_BITPIX = {8, 16, 32, 64, -32, -64}
#: FITS column types that cannot hold flux, wavelength or inverse variance.
_NOT_NUMERIC = {"L": "logical (L)", "A": "character (A)", "X": "bit (X)"}


@dataclass
class SpecData:
    """The raw content of one spectrum file, before it is placed on the common grid."""

    loglam: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    and_mask: np.ndarray | None
    specobj: dict[str, Any] | None  # upper-case column -> value of SPECOBJ row 0
    primary_ids: dict[str, int] = field(default_factory=dict)  # plate/mjd/fiberid from HDU 0


class _Unsupported(Exception):
    """A valid FITS layout the fast path does not decode; astropy reads it instead."""


# --------------------------------------------------------------------------- file access


def _open(path: Path) -> BinaryIO:
    """Open plain or gzip-compressed files alike (decided by the magic bytes, not the name)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SpecFileError(f"cannot read file: {exc.strerror or exc}") from exc
    if size == 0:
        raise SpecFileError("empty file (0 bytes)")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed there
    except OSError as exc:
        raise SpecFileError(f"cannot read file: {exc.strerror or exc}") from exc
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")
    return fh


def _read_exact(fh: BinaryIO, n: int, what: str) -> bytes:
    """Exactly ``n`` bytes or a SpecFileError; never asks for more than the file can hold."""
    left = _bytes_left(fh)
    if left is not None and n > left:
        raise SpecFileError(f"truncated file: {what} needs {n:,} bytes but only {left:,} remain")
    try:
        data = fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise SpecFileError(f"corrupt or truncated gzip data while reading {what}: {exc}") from exc
    if len(data) < n:
        raise SpecFileError(
            f"truncated file: {what} needs {n:,} bytes but only {len(data):,} remain"
        )
    return data


def _bytes_left(fh: BinaryIO) -> int | None:
    """Bytes after the current position of a plain file (None for gzip: unknown up front)."""
    if isinstance(fh, gzip.GzipFile):
        return None
    try:
        return os.fstat(fh.fileno()).st_size - fh.tell()
    except (OSError, AttributeError, ValueError):
        return None


# --------------------------------------------------------------------------- headers


def _card_value(raw: str) -> Any:
    """Value of a ``KEY = value / comment`` card (string, bool, int or float)."""
    text = raw.strip()
    if text.startswith("'"):
        m = _STRING_VALUE.match(text)
        return m[1].replace("''", "'").rstrip() if m else text.strip("'").rstrip()
    text = text.split("/", 1)[0].strip()
    if text in ("T", "F"):
        return text == "T"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text.replace("D", "E"))
        except ValueError:
            return text


def _read_header(fh: BinaryIO, hdu_no: int) -> dict[str, Any] | None:
    """Parse one header (None at a clean end of file), keeping only the keys we use."""
    header: dict[str, Any] = {}
    first = True
    for _ in range(MAX_HEADER_BLOCKS):
        try:
            block = fh.read(BLOCK)
        except (OSError, EOFError, zlib.error) as exc:
            raise SpecFileError(f"corrupt or truncated gzip data in HDU {hdu_no}: {exc}") from exc
        if first and hdu_no > 0 and len(block) == 0:
            return None
        if len(block) < BLOCK:
            if hdu_no == 0 and first and not block.startswith(b"SIMPLE"):
                raise SpecFileError("not a FITS file: it does not start with 'SIMPLE  ='")
            raise SpecFileError(f"truncated file: header of HDU {hdu_no} ends before its END card")
        text = block.decode("ascii", errors="replace")
        if first and hdu_no == 0 and not text.startswith("SIMPLE  ="):
            raise SpecFileError("not a FITS file: it does not start with 'SIMPLE  ='")
        first = False
        for i in range(0, BLOCK, CARD):
            card = text[i : i + CARD]
            key = card[:8].rstrip()
            if key == "END":
                return header
            if card[8:10] == "= " and (key in _KEEP_KEYS or key.startswith(_KEEP_PREFIXES)):
                header[key] = _card_value(card[10:])
    raise SpecFileError(f"HDU {hdu_no}: no END card in the first {MAX_HEADER_BLOCKS} header blocks")


def _int_key(header: dict[str, Any], key: str, default: int, lo: int, hi: int, where: str) -> int:
    """An integer header value within [lo, hi], or a SpecFileError naming the key."""
    value = header.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecFileError(f"invalid FITS header in {where}: {key} = {value!r} is not an integer")
    if not lo <= value <= hi:
        raise SpecFileError(f"invalid FITS header in {where}: {key} = {value:,} is out of range")
    return value


def _data_size(header: dict[str, Any], where: str = "HDU") -> int:
    """Bytes of data the header announces, checked before anything is read.

    Negative or absurd NAXISn / PCOUNT / GCOUNT / BITPIX values are rejected here: a header
    claiming NAXIS2 = 1e11 must cost one reject, not a 1.6 TB read (or astropy's endless loop
    on negative sizes).
    """
    naxis = _int_key(header, "NAXIS", 0, 0, 999, where)
    bitpix = _int_key(header, "BITPIX", 8, -64, 64, where)
    if bitpix not in _BITPIX:
        raise SpecFileError(f"invalid FITS header in {where}: BITPIX = {bitpix} is not a FITS type")
    if naxis == 0:
        return 0
    dims = [_int_key(header, f"NAXIS{k}", -1, 0, 1 << 62, where) for k in range(1, naxis + 1)]
    pcount = _int_key(header, "PCOUNT", 0, 0, 1 << 62, where)
    gcount = _int_key(header, "GCOUNT", 1, 0, 1 << 62, where)
    size = abs(bitpix) // 8 * gcount * (pcount + math.prod(dims))
    if size > MAX_HDU_BYTES:
        shape = " x ".join(f"{d:,}" for d in dims)
        raise SpecFileError(
            f"{where} claims {size:,} bytes of data (NAXIS {shape}): far more than any SDSS "
            f"spectrum file holds (limit {MAX_HDU_BYTES >> 20} MB)"
        )
    return size


# --------------------------------------------------------------------------- binary tables


def _columns(header: dict[str, Any], extname: str) -> dict[str, tuple[int, str | None, int, str]]:
    """Upper-case column name -> (byte offset, NumPy code or None, repeat, FITS letter)."""
    cols: dict[str, tuple[int, str | None, int, str]] = {}
    offset = 0
    for n in range(1, _int_key(header, "TFIELDS", 0, 0, 999, f"HDU {extname}") + 1):
        form = str(header.get(f"TFORM{n}", ""))
        m = _TFORM_RE.match(form)
        if not m:
            raise SpecFileError(f"HDU {extname}: column {n} has an invalid TFORM {form!r}")
        repeat = int(m[1]) if m[1] else 1
        size, code = _TFORM[m[2]]
        if m[2] == "X":
            size, code, repeat = 1, None, (repeat + 7) // 8
        name = str(header.get(f"TTYPE{n}", f"COL{n}")).strip().upper()
        if f"TSCAL{n}" in header or f"TZERO{n}" in header:
            code = None  # scaled or unsigned columns: let astropy apply the scaling
        cols.setdefault(name, (offset, code, repeat, m[2]))
        offset += size * repeat
    if offset != int(header.get("NAXIS1", -1)):
        raise _Unsupported(f"{extname}: column widths sum to {offset}, NAXIS1 says otherwise")
    return cols


def _table(
    raw: bytes, header: dict[str, Any], cols: dict[str, tuple[int, str | None, int, str]], names
) -> np.ndarray:
    """A structured view of only ``names`` (upper-case, all present in ``cols``)."""
    formats = []
    for name in names:
        _, code, repeat, _letter = cols[name]
        if code is None:
            raise _Unsupported(f"column {name} needs astropy")
        if code == "S":
            formats.append(f"S{repeat}")
        else:
            formats.append(code if repeat == 1 else (code, (repeat,)))
    dtype = np.dtype(
        {
            "names": list(names),
            "formats": formats,
            "offsets": [cols[n][0] for n in names],
            "itemsize": int(header["NAXIS1"]),
        }
    )
    return np.frombuffer(raw, dtype=dtype, count=int(header["NAXIS2"]))


def _scalar(value: Any) -> Any:
    """Plain Python value of one table cell (bytes stripped to str, arrays to native float)."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("ascii", errors="replace").strip()
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, np.ndarray):
        return value.astype(
            np.float64 if value.dtype.kind == "f" else value.dtype.newbyteorder("=")
        )
    if isinstance(value, np.generic):
        return value.item()
    return value


def _coadd_arrays(
    get_column,
    names_upper: set[str],
    nrows: int,
    repeats: dict[str, int],
    letters: dict[str, str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Check COADD's columns and return native-order (loglam, flux, ivar, and_mask)."""
    missing = [c for c in COADD_REQUIRED if c.upper() not in names_upper]
    if missing:
        raise SpecFileError(
            f"COADD HDU lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(sorted(n.lower() for n in names_upper)) or 'none'})"
        )
    wanted = [*COADD_REQUIRED, *(c for c in COADD_OPTIONAL if c.upper() in names_upper)]
    for c in wanted:  # a logical or text column read as numbers would be garbage (flux 84/70)
        kind = _NOT_NUMERIC.get(letters.get(c.upper(), ""))
        if kind:
            raise SpecFileError(f"COADD column {c} is {kind}, not numbers")
    lengths = {c: nrows * repeats.get(c.upper(), 1) for c in wanted}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{c} {n:,}" for c, n in lengths.items())
        raise SpecFileError(f"COADD arrays of mismatched length: {detail} values")
    arrays = {c: np.ravel(get_column(c.upper())) for c in wanted}
    loglam = arrays["loglam"].astype(np.float64)
    flux = arrays["flux"].astype(np.float32)
    ivar = arrays["ivar"].astype(np.float32)
    and_mask = arrays["and_mask"].astype(np.int64) if "and_mask" in arrays else None
    return loglam, flux, ivar, and_mask


def _primary_ids(header: dict[str, Any]) -> dict[str, int]:
    out = {}
    for key, name in PRIMARY_ID_KEYS.items():
        value = header.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
    return out


# --------------------------------------------------------------------------- public readers


def read_spec(path: str | Path) -> SpecData:
    """Read COADD arrays and the SPECOBJ row of one spectrum file, fast.

    Raises :class:`SpecFileError` with a human-readable reason for unusable files.
    """
    path = Path(path)
    try:
        return _read_fast(path)
    except _Unsupported:
        return read_spec_astropy(path)


def _read_fast(path: Path) -> SpecData:
    with _open(path) as fh:
        primary = _read_header(fh, 0)
        if primary is None or primary.get("SIMPLE") is not True:
            raise SpecFileError("not a FITS file: SIMPLE is not T")
        _skip(fh, _data_size(primary, "the primary HDU"), "primary HDU data")
        found: dict[str, tuple[dict[str, Any], bytes]] = {}
        seen: list[str] = ["PRIMARY"]
        hdu_no = 1
        while not {"COADD", "SPECOBJ"} <= found.keys():
            header = _read_header(fh, hdu_no)
            if header is None:
                break
            name = str(header.get("EXTNAME", f"HDU{hdu_no}")).strip().upper()
            seen.append(name)
            size = _data_size(header, f"HDU {hdu_no} ({name})")
            if name in ("COADD", "SPECOBJ") and name not in found:
                if str(header.get("XTENSION", "")).strip() != "BINTABLE":
                    raise SpecFileError(f"HDU {name} is not a binary table")
                if header.get("NAXIS") != 2:
                    raise SpecFileError(f"HDU {name}: a binary table needs NAXIS = 2")
                table_bytes = header["NAXIS1"] * header["NAXIS2"]
                raw = _read_exact(fh, table_bytes, f"HDU {name} data")
                _skip(fh, _padded(size) - table_bytes, f"HDU {name} heap")
                found[name] = (header, raw)
            else:
                _skip(fh, _padded(size), f"HDU {hdu_no} ({name}) data")
            hdu_no += 1
    if "COADD" not in found:
        raise SpecFileError(f"no COADD HDU (file has: {', '.join(seen)})")
    header, raw = found["COADD"]
    cols = _columns(header, "COADD")
    present = {c.upper() for c in (*COADD_REQUIRED, *COADD_OPTIONAL)} & cols.keys()
    table = _table(raw, header, cols, sorted(present)) if present else None
    arrays = _coadd_arrays(
        lambda name: table[name],
        present,
        int(header["NAXIS2"]),
        {n: cols[n][2] for n in present},
        {n: cols[n][3] for n in present},
    )
    specobj = None
    if "SPECOBJ" in found:
        header, raw = found["SPECOBJ"]
        cols = _columns(header, "SPECOBJ")
        names = [c for c in SPECOBJ_COLUMNS if c in cols]
        if names and int(header["NAXIS2"]) > 0:
            row = _table(raw, header, cols, names)[0]
            specobj = {n: _scalar(row[n]) for n in names}
    return SpecData(*arrays, specobj=specobj, primary_ids=_primary_ids(primary))


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK


def _skip(fh: BinaryIO, n: int, what: str) -> None:
    if n <= 0:
        return
    # Reading (not seeking) is what detects truncation in gzip files; 1 MB at a time.
    left = _bytes_left(fh)
    if left is not None:
        if n > left:
            raise SpecFileError(
                f"truncated file: {what} needs {n:,} bytes but only {left:,} remain"
            )
        fh.seek(n, os.SEEK_CUR)
        return
    while n > 0:
        step = min(n, 1 << 20)
        _read_exact(fh, step, what)
        n -= step


def check_structure(path: str | Path) -> None:
    """Walk every HDU header of a file and check its sizes; SpecFileError when one is bad.

    The fast path stops reading once it has COADD and SPECOBJ; before any other library reads
    the whole file, every header must announce sane sizes that the file really holds.
    """
    with _open(Path(path)) as fh:
        primary = _read_header(fh, 0)
        if primary is None or primary.get("SIMPLE") is not True:
            raise SpecFileError("not a FITS file: SIMPLE is not T")
        _skip(fh, _padded(_data_size(primary, "the primary HDU")), "primary HDU data")
        for hdu_no in range(1, 1000):
            header = _read_header(fh, hdu_no)
            if header is None:
                return
            name = str(header.get("EXTNAME", f"HDU{hdu_no}")).strip().upper()
            where = f"HDU {hdu_no} ({name})"
            _skip(fh, _padded(_data_size(header, where)), f"{where} data")
        raise SpecFileError("more than 999 HDUs: not an SDSS spectrum file")


def read_spec_astropy(path: str | Path) -> SpecData:
    """Reference reader using astropy; same output and errors as :func:`read_spec`."""
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyUserWarning

    path = Path(path)
    check_structure(path)  # sizes checked first: astropy loops forever on negative NAXISn
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            with fits.open(path, memmap=False) as hdul:
                names = [h.name.upper() for h in hdul]
                if "COADD" not in names:
                    raise SpecFileError(f"no COADD HDU (file has: {', '.join(names)})")
                coadd = hdul["COADD"].data
                cols = {c.name.upper(): c for c in hdul["COADD"].columns}
                present = {c.upper() for c in (*COADD_REQUIRED, *COADD_OPTIONAL)} & cols.keys()
                repeats = {
                    n: int(np.prod(coadd[cols[n].name].shape[1:], dtype=int)) for n in present
                }
                letters = {}
                for n, c in cols.items():
                    m = _TFORM_RE.match(str(c.format))
                    letters[n] = m[2] if m else ""
                arrays = _coadd_arrays(
                    lambda name: np.asarray(coadd[cols[name].name]),
                    present,
                    len(coadd) if coadd is not None else 0,
                    repeats,
                    letters,
                )
                specobj = None
                if "SPECOBJ" in names and hdul["SPECOBJ"].data is not None:
                    data = hdul["SPECOBJ"].data
                    by_upper = {c.upper(): c for c in data.columns.names}
                    if len(data) > 0:
                        specobj = {
                            n: _scalar(np.asarray(data[by_upper[n]][0]))
                            if np.ndim(data[by_upper[n]][0])
                            else _scalar(data[by_upper[n]][0])
                            for n in SPECOBJ_COLUMNS
                            if n in by_upper
                        }
                primary = dict(hdul[0].header)
    except SpecFileError:
        raise
    except AstropyUserWarning as exc:
        raise SpecFileError(f"truncated or corrupt FITS file: {exc}") from exc
    except Exception as exc:  # astropy's VerifyError, AttributeError ... on a broken header
        raise SpecFileError(f"not a readable FITS file: {type(exc).__name__}: {exc}") from exc
    return SpecData(*arrays, specobj=specobj, primary_ids=_primary_ids(primary))
