"""Seeded fuzzing of the readers: malformed FITS headers, truncated and oversized values,
malformed CSV rows. Every item finishes in bounded time; good items are kept; every bad one
is in ``rejects`` with a reason (and the run goes on).

A seeded generator (not random each run): a failure reproduces, and the seed is in the test id.
"""

from __future__ import annotations

import contextlib
import gzip
import time
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import set_card
from fits_factory import spec_name, write_spec

from startrack.etl import csv_rows
from startrack.etl.ingest import ingest
from startrack.etl.spectra import process_spec_file
from startrack.warehouse.store import Warehouse

PER_ITEM_S = 2.0
KEYS = ["NAXIS", "NAXIS1", "NAXIS2", "BITPIX", "PCOUNT", "GCOUNT", "TFIELDS", "TFORM1",
        "TFORM2", "TFORM3", "TTYPE1", "XTENSION", "EXTNAME"]  # fmt: skip
VALUES = ["-1", "0", "1", "-2147483648", "99999999999999999999", "1E11", "'abc'", "T", "",
          "3.5", "'1000000J'", "'-5E'", "'E'", "'COADD'", "'BINTABLE'", "'SPECOBJ'", "-0",
          "'99999999999999999999D'", "'2P'", "'L'"]  # fmt: skip


def _fuzz_fits(rng: np.random.Generator, folder: Path, fiber: int) -> Path:
    """One spectrum file with one to three random corruptions."""
    path = write_spec(folder / spec_name(4000, 55000, fiber), plate=4000, mjd=55000,
                      fiber=fiber, seed=fiber)  # fmt: skip
    raw = path.read_bytes()
    for _ in range(int(rng.integers(1, 4))):
        what = rng.choice(["card", "card", "card", "truncate", "flip", "append"])
        if what == "card":
            hdu, key = int(rng.integers(0, 3)), str(rng.choice(KEYS))
            value = str(rng.choice(VALUES)) if rng.random() < 0.7 else str(rng.integers(-9, 10**12))
            with contextlib.suppress(KeyError):  # a truncation or flip took that card away
                raw = set_card(raw, hdu, key, value)
        elif what == "truncate":
            raw = raw[: int(rng.integers(0, len(raw)))]
        elif what == "flip":
            for pos in rng.integers(0, min(len(raw), 3 * 2880), size=int(rng.integers(1, 20))):
                raw = raw[:pos] + bytes([int(rng.integers(0, 256))]) + raw[pos + 1 :]
        else:
            raw = raw + bytes(int(rng.integers(1, 200_000)))
    if rng.random() < 0.25:
        path.unlink()
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzzed_fits_files(tmp_path, seed) -> None:
    rng = np.random.default_rng(seed)
    folder = tmp_path / "in"
    folder.mkdir()
    good = [write_spec(folder / spec_name(4001, 55000, f), plate=4001, mjd=55000, fiber=f)
            for f in (1, 2, 3)]  # fmt: skip
    fuzzed = [_fuzz_fits(rng, folder, fiber) for fiber in range(10, 70)]
    outcomes = {}
    for path in fuzzed:
        t0 = time.monotonic()
        result = process_spec_file(path)  # never raises
        assert time.monotonic() - t0 < PER_ITEM_S, path
        if result.spectrum is None:
            assert result.rejects and result.rejects[0]["reason"].strip()
            reason = result.rejects[0]["reason"]
            assert "unexpected error" not in reason, (path.name, reason)
        outcomes[str(path)] = result.spectrum is not None
    wh = Warehouse(tmp_path / "wh")
    report = ingest(wh, spectra=[folder], progress=False, workers=1)
    snap = wh.current()
    rejects = {r["source"]: r["reason"] for r in snap.table("rejects").to_pylist()}
    stars = set(snap.table("stars")["star_id"].to_pylist())
    assert {f"4001-55000-{f:04d}" for f in (1, 2, 3)} <= stars  # good items kept
    for path in fuzzed:  # every bad item is in rejects with a reason; the rest were ingested
        if outcomes[str(path)]:
            assert str(path) not in rejects
        else:
            assert rejects.get(str(path)), path
    assert report.spectra_added == len(good) + sum(outcomes.values())


def _fuzz_csv_rows(rng: np.random.Generator, n_good: int) -> tuple[list[bytes], set[str]]:
    """Good rows (unique ids on plate 300) with bad rows of every kind mixed in."""
    rows: list[bytes] = []
    good: set[str] = set()
    bad_kinds = [
        lambda: b"7000,51630,5,A0,extra",
        lambda: b"7000,51630",
        lambda: b'7000,51630,5,"K3',
        lambda: b"7000,51630,5,G\xe9",
        lambda: b"\xff\xfe7000,51630,5,A0",
        lambda: f"{rng.integers(10**10, 10**15)},51630,5,A0".encode(),
        lambda: f"7000,{rng.integers(10**9, 10**12)},5,A0".encode(),
        lambda: b"7000,51630," + b"9" * int(rng.integers(20, 6000)) + b",A0",
        lambda: "7000,51630,²,A0".encode(),
        lambda: b"7000,51630,-5,A0",
        lambda: b"7000,51630,1001,A0",
        lambda: b",,,",
        lambda: b"7000,51630,5.5,A0",
        lambda: b"7000,NaN,5,A0",
        lambda: b'"7000","51630","5"',
        lambda: b"7000,51630,5,A0\x00\x01",
    ]
    for i in range(n_good):
        if rng.random() < 0.08:
            rows.append(bad_kinds[int(rng.integers(0, len(bad_kinds)))]())
        mjd, fiber = 51630 + i // 1000, i % 1000 + 1
        rows.append(f"300,{mjd},{fiber},A0".encode())
        good.add(f"0300-{mjd:05d}-{fiber:04d}")
    return rows, good


@pytest.mark.parametrize("seed", [11, 12])
def test_fuzzed_csv_rows_cost_only_themselves(tmp_path, monkeypatch, seed) -> None:
    monkeypatch.setattr(csv_rows, "BLOCK_BYTES", 4096)  # many blocks: bad rows near borders
    rng = np.random.default_rng(seed)
    rows, good = _fuzz_csv_rows(rng, 3000)
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b"plate,mjd,fiberID,subClass\n" + b"\n".join(rows) + b"\n")
    wh = Warehouse(tmp_path / "wh")
    t0 = time.monotonic()
    report = ingest(wh, catalogs=[path], progress=False)
    assert time.monotonic() - t0 < 60
    stars = set(wh.current().table("stars")["star_id"].to_pylist())
    rejects = wh.current().table("rejects").to_pylist()
    assert good <= stars  # every good row kept
    assert report.catalog_rows + len(rejects) == len(rows)  # every row kept or rejected
    for r in rejects:  # each reject names a bad row, by its real row number, with a reason
        number = int(r["item"].removeprefix("row "))
        assert not rows[number - 1].startswith(b"300,"), (r, rows[number - 1][:80])
        assert r["reason"].strip()
