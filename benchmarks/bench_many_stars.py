"""Benchmark many-star lookups: one DuckDB join vs a per-id lookup loop, same ids, same run.

    python benchmarks/bench_many_stars.py --warehouse DIR [--ids 10000] [--repeats 3]

Goal (issue 15): 10,000 ids in a few seconds. Measured three ways: ``lookup_many`` (the
join), ``POST /api/stars`` end to end through Flask (parse the body, join, JSON / CSV out),
and the naive baseline — the star page's own per-star functions (``star_record`` +
``star_predictions``) called once per id. 10 % of the ids are unknown to the warehouse,
as in a real pasted list. Caches are cleared before each timed run. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path


def _clear_caches() -> None:
    from startrack.dashboard import data

    for obj in vars(data).values():
        if hasattr(obj, "cache_clear"):
            obj.cache_clear()


def _ids(snap, n: int, seed: int) -> list[str]:
    con = snap.connect()
    try:
        known = [
            r[0]
            for r in con.execute(
                f"SELECT star_id FROM stars USING SAMPLE reservoir({int(n * 0.9)} ROWS) "
                f"REPEATABLE ({seed})"
            ).fetchall()
        ]
    finally:
        con.close()
    rng = random.Random(seed)
    unknown = [f"{rng.randint(1, 250):04d}-{rng.randint(40000, 49999)}-{rng.randint(1, 999):04d}"
               for _ in range(n - len(known))]  # fmt: skip
    ids = known + unknown
    rng.shuffle(ids)
    return ids


def _time(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        _clear_caches()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def _stat(times: list[float]) -> dict:
    return {"best": round(min(times), 3), "median": round(statistics.median(times), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True, type=Path)
    parser.add_argument("--ids", type=int, default=10_000, help="ids per request (10000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]

    from startrack.dashboard import data, id_lists, many_stars
    from startrack.dashboard.serve import create_app

    app = create_app(args.warehouse)
    snap = data.current_snapshot()
    ids = _ids(snap, args.ids, args.seed)
    client = app.server.test_client()
    many_stars.lookup_many(snap, id_lists.from_values(ids[:10]))  # warm the connection

    join_s, df = _time(
        lambda: many_stars.lookup_many(snap, id_lists.from_values(ids)), args.repeats
    )
    body = "\n".join(ids)
    api_json_s, resp = _time(lambda: client.post("/api/stars", json=ids), args.repeats)
    assert resp.status_code == 200, resp.data[:200]
    api_csv_s, resp_csv = _time(
        lambda: client.post("/api/stars?format=csv", data=body, content_type="text/plain"),
        args.repeats,
    )

    def loop() -> int:
        found = 0
        for sid in ids:
            rec = data.star_record(snap, sid)
            if rec is not None:
                data.star_predictions(snap, sid)
                found += 1
        return found

    loop_s, loop_found = _time(loop, 1)
    assert loop_found == int(df["found"].sum()), (loop_found, int(df["found"].sum()))
    con = snap.connect()
    n_stars = con.execute("SELECT count(*) FROM stars").fetchone()[0]
    n_preds = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    con.close()
    best = min(join_s)
    report = {
        "warehouse": str(args.warehouse.resolve()),
        "stars": int(n_stars),
        "prediction_rows": int(n_preds),
        "ids": len(ids),
        "found": int(df["found"].sum()),
        "load_at_start": round(load, 2),
        "lookup_many_join_s": _stat(join_s),
        "api_json_s": {**_stat(api_json_s), "response_bytes": len(resp.data)},
        "api_csv_s": {**_stat(api_csv_s), "response_bytes": len(resp_csv.data)},
        "per_id_loop_s": round(loop_s[0], 3),
        "speedup_join_vs_loop": round(loop_s[0] / best, 1),
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
