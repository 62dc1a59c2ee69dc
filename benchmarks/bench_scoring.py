"""Full-scale batch scoring: wall time and peak memory of `startrack score --full`.

Goal (issue: model): a survey of 800,000 stars with 25,000 spectra scored in <= 2 minutes with
peak RSS <= 2 GB on 2 cores. The naive baseline in the same run is on-demand inference star by
star (``ml.on_demand.predict_star``) over a sample, extrapolated to the whole survey.

Build the warehouse first, e.g.:
    startrack simulate --out bench-data/full --stars 800000 --spectra 25000
    startrack --warehouse bench-data/wh-full ingest bench-data/full/catalog.csv \
        bench-data/full/spectra
    startrack --warehouse bench-data/wh-full train --time-budget 840
Then: python benchmarks/bench_scoring.py --warehouse bench-data/wh-full
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from machine import describe_machine


def score_in_subprocess(warehouse: Path) -> dict:
    """Run the real command in a fresh process so its peak RSS is its own."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "startrack.cli", "--warehouse", str(warehouse), "-q", "score",
         "--full", "--no-progress"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "peak_rss_mb": peak_kb / 1024, "output": proc.stdout.strip()}


def naive_per_star(warehouse: Path, n: int = 300) -> dict:
    import duckdb

    from startrack.ml.on_demand import predict_star
    from startrack.warehouse.store import Warehouse

    wh = Warehouse(warehouse)
    con = duckdb.connect(str(wh.require_current().db_path), read_only=True)
    ids = [r[0] for r in con.execute(f"SELECT star_id FROM stars USING SAMPLE {n} ROWS").fetchall()]
    total, spectra = con.execute(
        "SELECT count(*), count(*) FILTER (has_spectrum) FROM stars"
    ).fetchone()
    con.close()
    predict_star(wh, ids[0])  # load the model once
    t0 = time.perf_counter()
    for star_id in ids:
        predict_star(wh, star_id)
    per_star = (time.perf_counter() - t0) / len(ids)
    return {
        "sample": len(ids),
        "ms_per_star": per_star * 1e3,
        "extrapolated_seconds": per_star * total,
        "stars": total,
        "spectra": spectra,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--warehouse", type=Path, required=True, help="a warehouse with a model")
    ap.add_argument("--sample", type=int, default=300, help="stars for the naive baseline")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    results = {"machine": describe_machine(), "load_before": os.getloadavg()[0]}
    results["batch_scoring"] = score_in_subprocess(args.warehouse)
    results["naive_per_star"] = naive_per_star(args.warehouse, args.sample)
    results["goal"] = {"seconds": 120, "peak_rss_mb": 2048}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
