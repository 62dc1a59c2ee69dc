"""Ingest and scoring: the local process pool vs a Dask LocalCluster of 1 and 2 workers.

All in one run, on the same simulated survey:

1. ingest (files/s): ``startrack ingest`` with the process pool (2 workers, the default path)
   and through ``local:1`` / ``local:2`` (the cluster is started before the clock runs; its
   start-up is reported on its own);
2. scoring (spectra/s): ``startrack score --full`` in-process (the default path) and on the
   two clusters, each twice: cold (each worker loads the model on its first task) and warm;
3. Dask's overhead per task: no-op tasks through the Client (throughput and one-at-a-time
   round trip) next to the same through a ProcessPoolExecutor;
4. what moves: pickled bytes per task and per result through the coordinator, bytes read and
   written on the shared filesystem per spectrum, and each worker's peak RSS.

The per-worker rates (``local:1``) are the inputs of the README's cluster plan.

Usage: python benchmarks/bench_dask.py [--spectra 2000] [--stars 20000] [--workdir bench-data/dask]
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from machine import describe_machine


def _noop(x: int) -> int:
    return x


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: its own, not inherited like ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_cluster(n: int):
    from distributed import Client, LocalCluster

    from startrack.executors import WORKER_MEMORY

    t = time.perf_counter()
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           scheduler_port=0, dashboard_address=":0", memory_limit=WORKER_MEMORY,
                           silence_logs=logging.ERROR)  # fmt: skip
    client = Client(cluster)
    # what every worker imports on its first task anyway (torch included), so start-up is
    # reported once here rather than smeared over the first tasks
    client.run(lambda: __import__("startrack.etl.ingest_cluster"))
    client.run(lambda: __import__("startrack.ml.inference"))
    return cluster, client, time.perf_counter() - t


def task_overhead(client, n: int = 2000) -> dict:
    t = time.perf_counter()
    client.gather(client.map(_noop, range(n), pure=False))
    dask_tp = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for i in range(100):
        client.submit(_noop, i, pure=False).result()
    dask_rt = (time.perf_counter() - t) / 100
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_noop, range(10)))
        t = time.perf_counter()
        list(pool.map(_noop, range(n)))
        pool_tp = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for i in range(100):
            pool.submit(_noop, i).result()
        pool_rt = (time.perf_counter() - t) / 100
    return {
        "dask_ms_per_task_throughput": round(dask_tp * 1e3, 3),
        "dask_ms_per_task_round_trip": round(dask_rt * 1e3, 2),
        "pool_ms_per_task_throughput": round(pool_tp * 1e3, 3),
        "pool_ms_per_task_round_trip": round(pool_rt * 1e3, 2),
    }


def bytes_moved(wh, files: list[Path]) -> dict:
    """Pickled task/result sizes of one ingest batch and one scoring slab, FS bytes per spectrum."""
    from startrack.etl.ingest_cluster import ingest_batch

    snap = wh.current()
    batch = files[:256]
    tmp = wh.root / "spectra" / "bench-bytes.parquet"
    task = (str(wh.root), "bench", str(tmp), [(str(p), str(p.resolve())) for p in batch])
    result = ingest_batch(task)
    part_bytes = tmp.stat().st_size
    tmp.unlink()
    read_bytes = sum(p.stat().st_size for p in batch)
    parts = snap.spectra_files
    n_spec = snap.table("spectra_index", ["star_id"]).num_rows
    return {
        "ingest_task_bytes_per_file": round(len(pickle.dumps(task)) / len(batch)),
        "ingest_result_bytes_per_file": round(len(pickle.dumps(result)) / len(batch)),
        "fits_bytes_read_per_file": round(read_bytes / len(batch)),
        "part_bytes_written_per_spectrum": round(part_bytes / len(batch)),
        "warehouse_part_bytes_per_spectrum": round(sum(p.stat().st_size for p in parts) / n_spec),
    }


def score_task_bytes(wh) -> dict:
    from startrack.ml.registry import current_model_row
    from startrack.ml.score import SCORE_COLUMNS
    from startrack.ml.score_cluster import plan_tasks

    snap = wh.current()
    con = snap.connect()
    cols = ", ".join(c for c in SCORE_COLUMNS)
    todo = con.execute(f"SELECT {cols} FROM stars").df()
    con.close()

    class _W:  # plan_tasks only asks for scratch paths and the root
        root = wh.root

        @staticmethod
        def scratch(name: str) -> Path:
            return wh.root / ".bench" / name

    artifact = wh.root / current_model_row(snap)["path"]
    tasks = plan_tasks(_W, snap, artifact, todo, "bench", None, 2)
    spec = [t for t in tasks if t.part_file]
    phot = [t for t in tasks if not t.part_file]
    out = {"score_tasks": len(tasks)}
    if spec:
        n = sum(len(t.stars) for t in spec)
        out["score_task_bytes_per_spectrum"] = round(sum(len(pickle.dumps(t)) for t in spec) / n)
    if phot:
        n = sum(len(t.stars) for t in phot)
        out["score_task_bytes_per_photometry_star"] = round(
            sum(len(pickle.dumps(t)) for t in phot) / n
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spectra", type=int, default=2000)
    ap.add_argument("--stars", type=int, default=20000)
    ap.add_argument("--workdir", type=Path, default=Path("bench-data/dask"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)

    from startrack.etl.ingest import find_spectrum_files, ingest
    from startrack.ml.publish import train_and_publish
    from startrack.ml.score import score_warehouse
    from startrack.ml.score_cluster import model_loads
    from startrack.ml.train_config import TrainConfig
    from startrack.simulator.simulate import simulate_survey
    from startrack.warehouse.store import Warehouse

    print(describe_machine(), flush=True)
    survey = args.workdir / "survey"
    if not (survey / "catalog.csv").exists():
        simulate_survey(survey, args.stars, args.spectra, seed=11, templates=None,
                        labels_from=None, workers=2)  # fmt: skip
    catalog, spectra_dir = survey / "catalog.csv", survey / "spectra"
    files = find_spectrum_files([spectra_dir])
    results: dict = {"spectra": len(files), "stars": args.stars}

    def run_ingest(name: str, **kw) -> Warehouse:
        wh = Warehouse(args.workdir / f"wh-{name}")
        shutil.rmtree(wh.root, ignore_errors=True)
        t = time.perf_counter()
        rep = ingest(wh, [catalog], [spectra_dir], progress=False, **kw)
        s = time.perf_counter() - t
        assert rep.spectra_added == len(files), rep.summary()
        results[f"ingest_{name}_s"] = round(s, 2)
        results[f"ingest_{name}_files_per_s"] = round(len(files) / s, 1)
        print(name, "ingest", round(s, 2), "s", flush=True)
        return wh

    base = run_ingest("pool2", workers=2)
    t = time.perf_counter()
    train_and_publish(base, TrainConfig(epochs=1, min_class_count=5, seed=0), progress=False,
                      baselines=False)  # fmt: skip
    results["train_s"] = round(time.perf_counter() - t, 1)
    n_spec = len(files)

    def run_score(name: str, wh: Warehouse, **kw) -> None:
        for attempt in ("cold", "warm"):
            t = time.perf_counter()
            run = score_warehouse(wh, full=True, progress=False, **kw)
            s = time.perf_counter() - t
            assert run["spectra_scored"] == n_spec
            results[f"score_{name}_{attempt}_s"] = round(s, 2)
            results[f"score_{name}_{attempt}_spectra_per_s"] = round(n_spec / s, 1)
            print(name, "score", attempt, round(s, 2), "s", flush=True)

    run_score("inprocess", base)
    for n in (1, 2):
        cluster, client, startup = make_cluster(n)
        try:
            results[f"cluster_local{n}_startup_s"] = round(startup, 2)
            address = cluster.scheduler_address
            wh = run_ingest(f"local{n}", scheduler=address)
            shutil.rmtree(wh.root / "models", ignore_errors=True)
            shutil.copytree(base.root / "models", wh.root / "models")
            with wh.writer("bench: model") as w:  # the same model, registered here too
                w.put_table("models", base.current().table("models"))
            run_score(f"local{n}", wh, scheduler=address)
            results[f"local{n}_model_loads_per_worker"] = sorted(client.run(model_loads).values())
            results[f"local{n}_worker_peak_rss_mb"] = sorted(
                round(v) for v in client.run(_peak_rss_mb).values()
            )
            if n == 2:
                results.update(task_overhead(client))
        finally:
            client.close()
            cluster.close()
    results.update(bytes_moved(base, files))
    results.update(score_task_bytes(base))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
