"""Every kind of bad input the ETL must survive, in one list: the tests and the README use it.

Each :class:`BadInput` writes one bad item next to good ones; ``reason`` is what its reject
must say. ``tests/test_bad_inputs.py`` ingests them all into a real warehouse and checks each
one; it also renders :data:`CASES` as the README's table and fails when the copy there differs.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits
from fits_factory import spec_name, write_spec

GOOD_CSV_ROWS = ["266,51630,1,A0", "266,51630,2,F5", "266,51630,3,K3"]
CSV_HEADER = "plate,mjd,fiberID,subClass"


@dataclass(frozen=True)
class BadInput:
    kind: str  #: what a user would call it (the README's first column)
    input: str  #: "spectra" (a file or folder entry) or "catalog" (a row)
    make: Callable[[Path], Path]  #: writes the bad item under the folder; returns its path
    reason: str  #: the reject reason contains this
    item: str = "file"  #: the reject's item column


# --------------------------------------------------------------------------- FITS helpers


def set_card(data: bytes, hdu: int, key: str, value: str) -> bytes:
    """Rewrite one header card's value in HDU ``hdu`` (0 = primary) of a FITS file's bytes."""
    out = bytearray(data)
    pos, seen = 0, -1
    while pos < len(out):
        card = out[pos : pos + 80]
        if card.startswith(b"SIMPLE  =") or card.startswith(b"XTENSION="):
            seen += 1
        if seen == hdu and card[:8].decode("latin-1").rstrip() == key:
            out[pos : pos + 80] = f"{key:<8}= {value:>20}".ljust(80).encode()
            return bytes(out)
        pos += 80
    raise KeyError(f"no {key} in HDU {hdu}")


def _spec(folder: Path, plate: int = 3000, mjd: int = 53000, fiber: int = 1) -> Path:
    path = folder / spec_name(plate, mjd, fiber)
    return write_spec(path, plate=plate, mjd=mjd, fiber=fiber, seed=fiber)


def _patched(key: str, value: str, hdu: int = 1, fiber: int = 500) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = _spec(folder, fiber=fiber)
        path.write_bytes(set_card(path.read_bytes(), hdu, key, value))
        return path

    return make


def _ids(plate: int, mjd: int) -> Callable[[Path], Path]:
    """The ids in the file name and the primary header (SPECOBJ's 32-bit columns can't hold
    them)."""

    def make(folder: Path) -> Path:
        path = folder / f"spec-{plate}-{mjd}-0007.fits"
        write_spec(path, plate=plate, mjd=mjd, fiber=7, specobj=False)
        with fits.open(path, mode="update") as hdul:
            hdul[0].header.update(PLATEID=plate, MJD=mjd, FIBERID=7)
        return path

    return make


def _flux_column(fmt: str, values) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / spec_name(3000, 53000, 600 + len(fmt))
        n = 3800
        loglam = (3.58 + 1e-4 * np.arange(n)).astype(np.float32)
        coadd = fits.BinTableHDU.from_columns(
            [
                fits.Column("flux", fmt, array=values(n)),
                fits.Column("loglam", "E", array=loglam),
                fits.Column("ivar", "E", array=np.ones(n, np.float32)),
            ],
            name="COADD",
        )
        fits.HDUList([fits.PrimaryHDU(), coadd]).writeto(path)
        return path

    return make


def _dangling(folder: Path) -> Path:
    path = folder / spec_name(3000, 53000, 900)
    path.symlink_to(folder / "gone" / "spec-3000-53000-0900.fits")
    return path


def _loop(folder: Path) -> Path:
    path = folder / spec_name(3000, 53000, 901)
    path.symlink_to(path.name)
    return path


def _directory(folder: Path) -> Path:
    path = folder / spec_name(3000, 53000, 903)
    path.mkdir()
    return path


def _no_end_card(folder: Path) -> Path:
    path = folder / spec_name(3000, 53000, 904)
    card = "COMMENT   an endless header".ljust(80)
    path.write_bytes(("SIMPLE  =                    T".ljust(80) + card * 36 * 101).encode())
    return path


def _gzip_claims_huge(folder: Path) -> Path:
    path = folder / (spec_name(3000, 53000, 905) + ".gz")
    raw = _patched("NAXIS2", "100000000000", fiber=905)(folder)
    path.write_bytes(gzip.compress(raw.read_bytes()))
    raw.unlink()
    return path


def _unreadable_folder(folder: Path) -> Path:
    """A subfolder that cannot be listed (mode 000; as root the test makes listing it fail)."""
    path = folder / "locked"
    path.mkdir()
    _spec(path, fiber=906)
    path.chmod(0)
    return path


# --------------------------------------------------------------------------- catalog helpers


def _csv(row: str | bytes, name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.csv"
        lines = [CSV_HEADER.encode(), *(r.encode() for r in GOOD_CSV_ROWS[:2])]
        lines.append(row if isinstance(row, bytes) else row.encode())
        lines.append(GOOD_CSV_ROWS[2].encode())
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path

    return make


def _parquet(bad: dict, name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        rows = [dict(zip(("plate", "mjd", "fiberID", "subClass"), r.split(","), strict=True))
                for r in GOOD_CSV_ROWS]  # fmt: skip
        good = [{**r, "plate": int(r["plate"]), "mjd": int(r["mjd"]), "fiberID": int(r["fiberID"])}
                for r in rows]  # fmt: skip
        recs = [*good[:2], bad, good[2]]
        sub = pa.array([str(r["subClass"]).encode("latin-1") for r in recs], pa.binary())
        table = pa.table(
            {
                "plate": pa.array([r["plate"] for r in recs], pa.int64()),
                "mjd": pa.array([r["mjd"] for r in recs], pa.int64()),
                "fiberID": pa.array([r["fiberID"] for r in recs], pa.int64()),
                "subClass": sub.view(pa.string()),  # unchecked: Parquet does not validate
            }
        )
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.parquet"
        pq.write_table(table, path)
        return path

    return make


CASES: list[BadInput] = [
    # spectra: identity
    BadInput(
        "spectrum with plate 10^12 (name and header)",
        "spectra",
        _ids(10**12, 53000),
        "plate 1000000000000 is outside 1..99999",
    ),
    BadInput(
        "spectrum with MJD 3*10^9 (name and header)",
        "spectra",
        _ids(3000, 3 * 10**9),
        "mjd 3000000000 is outside 50000..99999",
    ),
    BadInput(
        "spectrum with fiber 1001",
        "spectra",
        lambda d: write_spec(d / spec_name(3000, 53000, 1001), plate=3000, mjd=53000, fiber=1001),
        "fiberid 1001 is outside 1..1000",
    ),
    # spectra: headers that lie about sizes
    BadInput(
        "FITS header with negative NAXIS2",
        "spectra",
        _patched("NAXIS2", "-5", fiber=501),
        "NAXIS2 = -5 is out of range",
    ),
    BadInput(
        "FITS header with negative NAXIS1",
        "spectra",
        _patched("NAXIS1", "-16", fiber=502),
        "NAXIS1 = -16 is out of range",
    ),
    BadInput(
        "FITS header claiming NAXIS2 = 10^11",
        "spectra",
        _patched("NAXIS2", "100000000000", fiber=503),
        "far more than any SDSS spectrum",
    ),
    BadInput(
        "gzipped FITS claiming NAXIS2 = 10^11",
        "spectra",
        _gzip_claims_huge,
        "far more than any SDSS spectrum",
    ),
    BadInput(
        "FITS header NAXIS2 = 1E11 (not an integer)",
        "spectra",
        _patched("NAXIS2", "1E11", fiber=504),
        "NAXIS2 = 100000000000.0 is not an integer",
    ),
    BadInput(
        "FITS header with BITPIX = 7",
        "spectra",
        _patched("BITPIX", "7", fiber=505),
        "BITPIX = 7 is not a FITS type",
    ),
    BadInput(
        "FITS header claiming more data than the file has",
        "spectra",
        _patched("NAXIS2", "99999", fiber=506),
        "truncated file",
    ),
    BadInput("FITS header without an END card", "spectra", _no_end_card, "no END card"),
    BadInput(
        "FITS header with TFIELDS = 10^9",
        "spectra",
        _patched("TFIELDS", "1000000000", fiber=507),
        "TFIELDS = 1,000,000,000 is out of",
    ),
    # spectra: column types
    BadInput(
        "boolean (L) flux column",
        "spectra",
        _flux_column("L", lambda n: np.arange(n) % 2 == 0),
        "flux is logical (L), not num",
    ),
    BadInput(
        "string flux column",
        "spectra",
        _flux_column("8A", lambda n: np.array(["1.5"] * n)),
        "flux is character (A), not",
    ),
    # spectra: what a folder walk finds
    BadInput("dangling symlink named spec-*.fits", "spectra", _dangling, "dangling symlink"),
    BadInput("symlink loop named spec-*.fits", "spectra", _loop, "symlink loop"),
    BadInput(
        "directory named spec-*.fits",
        "spectra",
        _directory,
        "a directory named like a spectrum file",
    ),
    BadInput("unreadable subfolder", "spectra", _unreadable_folder, "cannot list folder", "folder"),
    # catalogs: one bad row among good ones
    BadInput(
        "CSV row with plate 10^12",
        "catalog",
        _csv("1000000000000,51630,9,G2", "plate"),
        "plate 1000000000000 is outside 1..99999",
        "row 3",
    ),
    BadInput(
        "CSV row with MJD 3*10^9",
        "catalog",
        _csv("266,3000000000,9,G2", "mjd"),
        "mjd 3000000000 is outside 50000..99999",
        "row 3",
    ),
    BadInput(
        "CSV row with a 5,000-digit fiber",
        "catalog",
        _csv("266,51630," + "9" * 5000 + ",G2", "digits"),
        "is not an integer",
        "row 3",
    ),
    BadInput(
        "CSV row with a Unicode digit (fiber ²)",
        "catalog",
        _csv("266,51630,²,G2", "unicode"),
        "fiberid '²' is not an integer",
        "row 3",
    ),
    BadInput(
        "CSV row with an extra field",
        "catalog",
        _csv("266,51630,9,G2,oops", "extra"),
        "expected 4 fields, found 5",
        "row 3",
    ),
    BadInput(
        "CSV row with a missing field",
        "catalog",
        _csv("266,51630,9", "missing"),
        "expected 4 fields, found 3",
        "row 3",
    ),
    BadInput(
        "CSV row with an unterminated quote",
        "catalog",
        _csv('266,51630,9,"G2', "quote"),
        "unterminated quote",
        "row 3",
    ),
    BadInput(
        "CSV row with a Latin-1 byte",
        "catalog",
        _csv(b"266,51630,9,G\xe9", "latin1"),
        "not UTF-8 text (byte 0xE9",
        "row 3",
    ),
    BadInput(
        "Parquet row with plate 10^12",
        "catalog",
        _parquet({"plate": 10**12, "mjd": 51630, "fiberID": 9, "subClass": "G2"}, "pplate"),
        "plate 1000000000000 is outside 1..99999",
        "row 3",
    ),
    BadInput(
        "Parquet row with a Latin-1 string",
        "catalog",
        _parquet({"plate": 266, "mjd": 51630, "fiberID": 9, "subClass": "G\xe9"}, "platin"),
        "subClass is not UTF-8 text (byte 0xE9)",
        "row 3",
    ),
]


def readme_table() -> str:
    """The README's table of bad inputs, rendered from CASES."""
    lines = ["| bad input | what it gets (rejects: item — reason) |", "|---|---|"]
    for case in CASES:
        lines.append(f"| {case.kind} | `{case.item}` — “…{case.reason}…” |")
    return "\n".join(lines)


def good_spectra(folder: Path, n: int = 3) -> list[Path]:
    return [_spec(folder, fiber=fiber) for fiber in range(1, n + 1)]
