"""ETL benchmarks (issue: data layer), each against the naive baseline in the same run.

1. Spectrum ingest throughput, end to end (read, validate, grid, write Parquet, publish), vs the
   bare astropy loop that only opens each file and reads COADD + SPECOBJ. Goal >= 250 files/s.
2. Catalog ingest of N rows (default 800,000), vs pandas.read_csv + per-row label parsing +
   to_parquet. Goal <= 5 s.
3. Star lookup by (plate, mjd, fiberid) in that warehouse: p50/p95 over random ids through a
   read-only DuckDB connection, vs DuckDB scanning the Parquet file. Goal p95 <= 5 ms.

Usage: python benchmarks/bench_etl.py [--stars 800000] [--spectra 2000] [--workdir bench-data]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import duckdb
import numpy as np
from machine import describe_machine


def bench_spectra(workdir: Path, n_spectra: int, workers: int) -> dict:
    from astropy.io import fits

    from startrack.etl.ingest import ingest
    from startrack.simulator.simulate import simulate_survey
    from startrack.warehouse.store import Warehouse

    survey = workdir / "spectra-survey"
    if (
        not (survey / "spectra").is_dir()
        or len(list((survey / "spectra").glob("*.fits"))) != n_spectra
    ):
        shutil.rmtree(survey, ignore_errors=True)
        simulate_survey(
            survey,
            n_stars=n_spectra,
            n_spectra=n_spectra,
            seed=7,
            templates=None,
            labels_from=None,
            workers=workers,
        )
    files = sorted((survey / "spectra").glob("*.fits"))
    t = time.perf_counter()
    for f in files:  # the naive baseline: astropy, open and read what the ETL needs
        with fits.open(f) as hdul:
            coadd = hdul["COADD"].data
            _ = (coadd["flux"], coadd["loglam"], coadd["ivar"], coadd["and_mask"])
            _ = hdul["SPECOBJ"].data[0]
    astropy_s = time.perf_counter() - t
    wh = Warehouse(workdir / "wh-spectra")
    shutil.rmtree(wh.root, ignore_errors=True)
    t = time.perf_counter()
    report = ingest(wh, spectra=[survey / "spectra"], workers=workers, progress=False)
    ingest_s = time.perf_counter() - t
    assert report.spectra_added == len(files), report.summary()
    return {
        "files": len(files),
        "astropy_loop_files_per_s": len(files) / astropy_s,
        "ingest_files_per_s": len(files) / ingest_s,
        "ingest_seconds": ingest_s,
        "goal_files_per_s": 250,
    }


def make_catalog(workdir: Path, n: int, workers: int) -> Path:
    from startrack.simulator.simulate import simulate_survey

    survey = workdir / f"catalog-{n}"
    cat = survey / "catalog.csv"
    if not cat.exists():
        simulate_survey(
            survey,
            n_stars=n,
            n_spectra=0,
            seed=11,
            templates=None,
            labels_from=None,
            workers=workers,
        )
    return cat


def bench_catalog(workdir: Path, cat: Path, workers: int) -> tuple[dict, Path]:
    import pandas as pd

    from startrack.etl.ingest import ingest
    from startrack.labels import normalize_subclass
    from startrack.warehouse.store import Warehouse

    t = time.perf_counter()  # naive: pandas, per-row label parsing, Parquet out
    df = pd.read_csv(cat)
    df["label"] = [normalize_subclass(s).label for s in df["subClass"].astype(str)]
    normalize_subclass.cache_clear()
    df.to_parquet(workdir / "naive.parquet")
    naive_s = time.perf_counter() - t
    wh = Warehouse(workdir / "wh-catalog")
    shutil.rmtree(wh.root, ignore_errors=True)
    t = time.perf_counter()
    report = ingest(wh, catalogs=[cat], workers=workers, progress=False)
    ingest_s = time.perf_counter() - t
    t = time.perf_counter()
    again = ingest(wh, catalogs=[cat], workers=workers, progress=False)
    reingest_s = time.perf_counter() - t
    assert again.stars_added == 0 and again.stars_updated == 0, again.summary()
    return {
        "rows": report.stars_total,
        "naive_pandas_seconds": naive_s,
        "ingest_seconds": ingest_s,
        "reingest_seconds": reingest_s,
        "goal_seconds": 5.0,
    }, wh.root


def bench_lookup(wh_root: Path, n: int = 2000) -> dict:
    from startrack.warehouse.store import Warehouse

    snap = Warehouse(wh_root).require_current()
    con = snap.connect()
    ids = con.execute(f"SELECT plate, mjd, fiberid FROM stars USING SAMPLE {n} ROWS").fetchall()
    q = "SELECT * FROM stars WHERE plate = $1 AND mjd = $2 AND fiberid = $3"

    def timed(run) -> np.ndarray:
        out = []
        for key in ids:
            t = time.perf_counter()
            rows = run(key)
            out.append(time.perf_counter() - t)
            assert len(rows) == 1
        return np.array(out) * 1000

    fast = timed(lambda k: con.execute(q, list(k)).fetchall())
    parquet = str(snap.table_path("stars"))
    raw = duckdb.connect()
    q2 = f"SELECT * FROM read_parquet('{parquet}') WHERE plate = $1 AND mjd = $2 AND fiberid = $3"
    naive = timed(lambda k: raw.execute(q2, list(k)).fetchall())
    return {
        "lookups": len(ids),
        "p50_ms": float(np.percentile(fast, 50)),
        "p95_ms": float(np.percentile(fast, 95)),
        "naive_parquet_scan_p95_ms": float(np.percentile(naive, 95)),
        "goal_p95_ms": 5.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stars", type=int, default=800_000, help="catalog rows (800000)")
    ap.add_argument("--spectra", type=int, default=2_000, help="spectrum files (2000)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("bench-data"))
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {"machine": describe_machine()}
    results["spectra"] = bench_spectra(args.workdir, args.spectra, args.workers)
    print(json.dumps(results["spectra"], indent=2), flush=True)
    cat = make_catalog(args.workdir, args.stars, args.workers)
    results["catalog"], wh_root = bench_catalog(args.workdir, cat, args.workers)
    print(json.dumps(results["catalog"], indent=2), flush=True)
    results["lookup"] = bench_lookup(wh_root)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
