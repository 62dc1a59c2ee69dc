"""Partitioning at scale: snapshot build and star lookup at 1M+ stars and 200k+ spectra.

The point is the scale, not the realism: the ``stars`` table is synthetic and each spectrum
is a cheap constant array (it compresses to almost nothing), written straight into part files
in the warehouse's format. What is measured is what grows with the number of stars, spectra
and *part files*:

1. publishing a snapshot over the parts (the DuckDB build: native tables + the ``spectra``
   view over every part), once when the parts are added and once for a writer that only
   changes a small table (what every score run pays);
2. a star lookup as the dashboard does it (``stars`` row + ``spectra_index`` + one row-group
   read), p50/p95 over random stars with a spectrum;
3. ``count(*)`` over the ``spectra`` view (``startrack status``).

Run with two part sizes: 1,024 spectra per part (what ingest writes) and 64 (a cluster ingest
of many small batches), so any cost that is quadratic in the number of parts shows.

Usage: python benchmarks/bench_scale.py [--stars 1000000] [--spectra 200000]
       [--part-rows 1024 64] [--workdir bench-data/scale]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from machine import describe_machine

from startrack.grid import NPIX
from startrack.warehouse.contract import SPECTRA, SPECTRA_INDEX, STARS
from startrack.warehouse.read import read_spectrum, read_star
from startrack.warehouse.store import Warehouse

ROW_GROUP = 32


def star_ids(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plates of 1,000 fibers, one MJD per plate: sorted, unique ids."""
    i = np.arange(n)
    plate = 266 + i // 1000
    return plate.astype(np.int32), (51000 + plate).astype(np.int32), (1 + i % 1000).astype(np.int32)


def stars_table(n: int, n_spectra: int) -> pa.Table:
    plate, mjd, fiber = star_ids(n)
    sid = np.char.add(
        np.char.add(np.char.zfill(plate.astype(str), 4), "-"),
        np.char.add(np.char.add(np.char.zfill(mjd.astype(str), 5), "-"),
                    np.char.zfill(fiber.astype(str), 4)),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    cols = {name: pa.nulls(n, STARS.field(name).type) for name in STARS.names}
    cols.update(
        plate=pa.array(plate),
        mjd=pa.array(mjd),
        fiberid=pa.array(fiber),
        star_id=pa.array(sid),
        ra=pa.array(rng.uniform(0, 360, n)),
        dec=pa.array(rng.uniform(-10, 70, n)),
        label=pa.array(rng.choice(["A0", "F5", "G2", "K3", "M2"], n)),
        has_spectrum=pa.array(np.arange(n) % (n // n_spectra) == 0),
        ingest_run=pa.array(np.full(n, "bench")),
    )
    return pa.table(cols, schema=STARS)


def spectrum_part(stars: pa.Table, run: str) -> pa.Table:
    n = stars.num_rows
    flat = np.ones(n * NPIX, dtype=np.float32)
    cols = {name: pa.nulls(n, SPECTRA.field(name).type) for name in SPECTRA.names}
    cols.update(
        plate=stars["plate"],
        mjd=stars["mjd"],
        fiberid=stars["fiberid"],
        star_id=stars["star_id"],
        flux=pa.FixedSizeListArray.from_arrays(pa.array(flat), NPIX),
        ivar=pa.FixedSizeListArray.from_arrays(pa.array(flat), NPIX),
        mask=pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * NPIX, bool)), NPIX),
        norm=pa.array(np.ones(n, np.float32)),
        pix_start=pa.array(np.zeros(n, np.int32)),
        pix_end=pa.array(np.full(n, NPIX, np.int32)),
        ingest_run=pa.array(np.full(n, run)),
    )
    return pa.table(cols, schema=SPECTRA)


def build(root: Path, n_stars: int, n_spectra: int, part_rows: int) -> dict:
    shutil.rmtree(root, ignore_errors=True)
    wh = Warehouse(root)
    stars = stars_table(n_stars, n_spectra)
    spec_stars = stars.filter(stars["has_spectrum"])
    t_parts = time.perf_counter()
    index = []
    publish_s = {}
    with wh.writer(command="bench: parts") as w:
        for n, start in enumerate(range(0, spec_stars.num_rows, part_rows)):
            chunk = spec_stars.slice(start, part_rows)
            path = w.new_spectra_part(n)
            pq.write_table(spectrum_part(chunk, w.id), path, compression="zstd",
                           compression_level=1, row_group_size=ROW_GROUP)  # fmt: skip
            w.add_spectra_part(path)
            rows = np.arange(chunk.num_rows, dtype=np.int32)
            rel = path.relative_to(root).as_posix()
            index.append(pa.table({
                "plate": chunk["plate"], "mjd": chunk["mjd"], "fiberid": chunk["fiberid"],
                "star_id": chunk["star_id"], "file": pa.array([rel] * chunk.num_rows),
                "row_group": pa.array(rows // ROW_GROUP), "row": pa.array(rows % ROW_GROUP),
            }, schema=SPECTRA_INDEX))  # fmt: skip
        parts_s = time.perf_counter() - t_parts
        w.put_table("stars", stars)
        w.put_table("spectra_index", pa.concat_tables(index))
        t = time.perf_counter()  # leaving the block publishes (and collects garbage)
    publish_s["first"] = time.perf_counter() - t
    with wh.writer(command="bench: small table") as w:  # every later writer's cost
        w.put_table("scoring_runs", pa.table({"run_id": ["bench"]}))
        t = time.perf_counter()
    publish_s["next"] = time.perf_counter() - t
    snap = wh.current()
    n_parts = len(snap.manifest["spectra_files"])
    con = snap.connect()
    try:
        with_spec = spec_stars["star_id"].to_pylist()
        rng = random.Random(1)
        times = []
        for sid in rng.sample(with_spec, 300):
            t = time.perf_counter()
            star = read_star(con, sid)
            spec = read_spectrum(snap, con, sid)
            times.append(time.perf_counter() - t)
            assert star is not None and spec is not None and spec.flux[0] == 1.0
        t = time.perf_counter()
        count = con.execute("SELECT count(*) FROM spectra").fetchone()[0]
        count_s = time.perf_counter() - t
    finally:
        con.close()
    assert count == spec_stars.num_rows
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    ms = np.array(times[20:]) * 1000  # the first reads warm the caches
    return {
        "stars": n_stars,
        "spectra": spec_stars.num_rows,
        "part_rows": part_rows,
        "part_files": n_parts,
        "write_parts_s": round(parts_s, 1),
        "publish_with_new_parts_s": round(publish_s["first"], 2),
        "publish_next_writer_s": round(publish_s["next"], 2),
        "lookup_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "lookup_p95_ms": round(float(np.percentile(ms, 95)), 2),
        "count_spectra_view_s": round(count_s, 2),
        "warehouse_mb": round(size / 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stars", type=int, default=1_000_000)
    ap.add_argument("--spectra", type=int, default=200_000)
    ap.add_argument("--part-rows", type=int, nargs="+", default=[1024, 64])
    ap.add_argument("--workdir", type=Path, default=Path("bench-data/scale"))
    ap.add_argument("--keep", action="store_true", help="keep the warehouses")
    args = ap.parse_args()
    print(describe_machine())
    for rows in args.part_rows:
        root = args.workdir / f"wh-{rows}"
        print(json.dumps(build(root, args.stars, args.spectra, rows)), flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
