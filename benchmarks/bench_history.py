"""Per-star prediction history at full scale: its size, the scoring time it adds, its queries.

Goal (issue 15): keeping every scored model version's answer per star stays cheap for 800,000
stars x N versions — a few MB per version, a few seconds added to `startrack score`, and the
accuracy page's changed-stars query and the star page's lookup within the dashboard's
latency goals (callbacks <= 200 ms, lookups <= 20 ms).

Each round trains a real model (`startrack train`, short time budget, in a subprocess),
scores every star (`startrack score --full`, timed, in a subprocess), then times the history
step alone on the same inputs scoring gave it, against the naive baseline in the same run
(pandas: read the old history, pivot the new predictions, concatenate, sort, write). Sizes are
compared with the naive way to keep history: every version's whole ``predictions`` table.

Build the warehouse first (photometry-only survey at full catalog size):
    startrack simulate --out bench-data/hist --stars 800000 --spectra 300
    startrack --warehouse bench-data/wh-hist ingest bench-data/hist/catalog.csv \
        bench-data/hist/spectra
Then: python benchmarks/bench_history.py --warehouse bench-data/wh-hist --versions 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe_machine


def _cli(warehouse: Path, *args: str) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "startrack.cli", "--warehouse", str(warehouse), "-q", *args]
    subprocess.run([*cmd, "--no-progress"], check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def _naive_history(out: Path, predictions: Path, old_history: Path, version: str) -> None:
    """The same table with pandas: every row through Python objects, one pivot per run."""
    import pandas as pd

    new = pd.read_parquet(predictions, columns=["star_id", "plate", "mjd", "fiberid",
                          "model_version", "split", "branch", "label", "prob", "spectral_type",
                          "run_id"])  # fmt: skip
    wide = new.pivot_table(index=["star_id", "plate", "mjd", "fiberid", "model_version", "split",
                                  "run_id"], columns="branch", values=["label", "prob"],
                           aggfunc="first")  # fmt: skip
    wide.columns = [f"{b}_{what}" for what, b in wide.columns]
    wide = wide.reset_index().rename(columns={"run_id": "scoring_run"})
    fusion = new[new["branch"] == "fusion"].set_index("star_id")["spectral_type"]
    wide["spectral_type"] = wide["star_id"].map(fusion)
    old = pd.read_parquet(old_history)
    both = pd.concat([old[old["model_version"] != version], wide], ignore_index=True)
    both.sort_values(["plate", "mjd", "fiberid", "model_version"]).to_parquet(
        out, compression="zstd", index=False
    )


def _timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def one_round(warehouse: Path, budget: float, seed: int) -> dict:
    from startrack.ml.prediction_history import TABLE, build_history
    from startrack.warehouse.store import Warehouse

    train_s = _cli(warehouse, "train", "--time-budget", str(budget), "--no-baselines",
                   "--min-epochs", "1", "--max-stars", "100000", "--seed", str(seed))  # fmt: skip
    score_s = _cli(warehouse, "score", "--full")
    snap = Warehouse(warehouse).require_current()
    hist, preds = snap.table_path(TABLE), snap.table_path("predictions")
    import pyarrow.parquet as pq

    meta = pq.read_metadata(hist)
    version = pq.read_table(preds, columns=["model_version"]).column(0)[0].as_py()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "h.parquet"
        ours = _timed(lambda: build_history(out, preds, version, hist, preds, Path(tmp)))
        naive = _timed(lambda: _naive_history(out, preds, hist, version), repeat=1)
    return {
        "version": version,
        "train_seconds": round(train_s, 1),
        "score_full_seconds": round(score_s, 1),
        "history_step_seconds": round(ours, 2),
        "history_step_share_of_scoring": round(ours / score_s, 3),
        "naive_pandas_history_seconds": round(naive, 2),
        "history_rows": meta.num_rows,
        "history_parquet_mb": round(hist.stat().st_size / 1e6, 2),
        "predictions_parquet_mb": round(preds.stat().st_size / 1e6, 2),
        "duckdb_file_mb": round(snap.db_path.stat().st_size / 1e6, 1),
    }


def dashboard_queries(warehouse: Path, lookups: int = 200) -> dict:
    import random

    from startrack.dashboard import data, version_changes

    data.configure(warehouse)
    snap = data.current_snapshot()
    versions = version_changes.history_versions(snap)
    old, new = version_changes.chronological(snap, versions[-2], versions[-1])

    def changed(split: str, outcome: str = "all"):
        version_changes.changed_stars.cache_clear()
        return version_changes.changed_stars(snap, old, new, "fusion", split, outcome)

    ch = changed("all")
    ids = snap.table("stars", columns=["star_id"]).column(0).to_pylist()
    picks = random.Random(1).sample(ids, lookups)
    times = []
    for star_id in picks:
        version_changes.star_history.cache_clear()
        t0 = time.perf_counter()
        version_changes.star_history(snap, star_id)
        times.append(time.perf_counter() - t0)
    times.sort()
    from startrack.dashboard.version_changes_view import changes_view

    def page_callback():
        version_changes.changed_stars.cache_clear()
        return changes_view(new, old, "test", "fusion", "all")

    return {
        "accuracy_page_changes_callback_ms": round(1e3 * _timed(page_callback, 5), 1),
        "compared_stars": ch.compared,
        "changed_stars": ch.changed,
        "counts": ch.counts,
        "changed_stars_query_ms_all": round(1e3 * _timed(lambda: changed("all"), 5), 1),
        "changed_stars_query_ms_test": round(1e3 * _timed(lambda: changed("test"), 5), 1),
        "changed_stars_query_ms_fixed_only": round(
            1e3 * _timed(lambda: changed("all", "fixed"), 5), 1
        ),
        "star_history_lookup_ms_p50": round(1e3 * times[len(times) // 2], 2),
        "star_history_lookup_ms_p95": round(1e3 * times[int(len(times) * 0.95)], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--warehouse", type=Path, required=True, help="an ingested warehouse")
    ap.add_argument("--versions", type=int, default=3, help="model versions to train and score")
    ap.add_argument("--time-budget", type=float, default=30, help="training seconds per version")
    ap.add_argument("--queries-only", action="store_true", help="only time the dashboard queries")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    results: dict = {"machine": describe_machine(), "load_before": os.getloadavg()[0]}
    if not args.queries_only:
        results["rounds"] = []
        for seed in range(1, args.versions + 1):  # each round printed as it ends
            results["rounds"].append(one_round(args.warehouse, args.time_budget, seed))
            print(json.dumps(results["rounds"][-1]), file=sys.stderr, flush=True)
        results["naive_keep_every_predictions_table_mb"] = round(
            sum(r["predictions_parquet_mb"] for r in results["rounds"]), 2
        )
    results["dashboard"] = dashboard_queries(args.warehouse)
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
