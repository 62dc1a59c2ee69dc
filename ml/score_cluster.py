"""Batch scoring on a Dask cluster: workers read spectra, score and write prediction parts.

The coordinator (``ml.score.score_warehouse``, holding the writer lock) plans tasks from the
snapshot's ``spectra_index``: one task per slab of 16 row groups (512 spectra, the batch the
local path scores) of one part file, then chunks of photometry-only stars. A task carries its
stars' catalogue rows (a few kB per spectrum task), never arrays: the worker reads its row
groups from the shared warehouse, runs the same pure ``predict_arrays`` and writes a
predictions part into the writer's staging area; the coordinator only collects the paths and
then merges the parts exactly as the local path does.

The model reaches each worker once: :func:`worker_model` loads the artifact from the shared
warehouse on a worker's first task and keeps it for the worker's life, keyed by artifact path
and content digest, so a retrained model is picked up and an unchanged one never reloaded.
Memory per worker: the model (~10 MB), one slab of 512 spectra (~22 MB as float32 arrays plus
the network's activations, ~0.3 GB at peak) or one photometry chunk.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from startrack.executors import open_executor

SLAB_ROW_GROUPS = 16  #: row groups per spectrum task: 16 x 32 = the local path's 512-row batch
MIN_PHOTOMETRY_CHUNK = 5_000  #: photometry-only stars per task, at least (Dask ~ms per task)

_MODELS: dict[tuple[str, str], tuple] = {}
_LOADS = {"n": 0}  #: artifact loads in this process (a test checks: once per worker)


def artifact_digest(directory: Path) -> str:
    """Content digest of a model artifact (weights + metadata): the worker cache key."""
    from startrack.ml.artifact import META_FILE, WEIGHTS_FILE

    h = hashlib.sha256()
    for name in (WEIGHTS_FILE, META_FILE):
        h.update((directory / name).read_bytes())
    return h.hexdigest()[:16]


def worker_model(directory: str, digest: str) -> tuple:
    """(model, meta), loaded once per process per artifact (path, digest)."""
    key = (directory, digest)
    if key not in _MODELS:
        from startrack.ml.artifact import load_artifact

        found = artifact_digest(Path(directory))
        if found != digest:
            raise RuntimeError(
                f"model artifact {directory} on this worker has digest {found}, the "
                f"coordinator's has {digest}: is the warehouse really shared?"
            )
        _MODELS.clear()  # one model at a time per worker
        _MODELS[key] = load_artifact(directory)
        _LOADS["n"] += 1
    return _MODELS[key]


def model_loads() -> int:
    """How often this process loaded a model artifact (run on workers with client.run)."""
    return _LOADS["n"]


@dataclass(frozen=True)
class ScoreTask:
    artifact: str
    digest: str
    stars: pd.DataFrame  #: SCORE_COLUMNS rows of the stars to score
    part_file: str | None  #: spectrum part to read (None: photometry only)
    row_groups: tuple[int, ...]
    run_id: str
    scored_at: datetime
    out: str  #: predictions part to write (in the writer's staging area)


def score_task(task: ScoreTask) -> tuple[str, int]:
    """On a worker: score one slab or photometry chunk, write its predictions part."""
    from startrack.ml.dataset import SPECTRUM_COLUMNS, _fixed_list
    from startrack.ml.inference import Spectra, predict_arrays
    from startrack.ml.score import _to_rows
    from startrack.warehouse.contract import PREDICTIONS

    model, meta = worker_model(task.artifact, task.digest)
    version = meta["version"]
    if task.part_file is None:
        preds = predict_arrays(model, meta, task.stars, None)
        table = _to_rows(preds, task.stars, version, task.run_id, task.scored_at)
    else:
        batch = pq.ParquetFile(task.part_file).read_row_groups(
            list(task.row_groups), columns=list(SPECTRUM_COLUMNS)
        )
        ids = batch.column("star_id").to_numpy(zero_copy_only=False)
        keep = np.flatnonzero(pd.Index(task.stars["star_id"]).get_indexer(ids) >= 0)
        batch = batch.take(keep)
        stars = task.stars.set_index("star_id", drop=False).loc[ids[keep]]
        spectra = Spectra(
            _fixed_list(batch.column("flux"), np.float32),
            _fixed_list(batch.column("ivar"), np.float32),
            _fixed_list(batch.column("mask"), bool),
            batch.column("norm").to_numpy(zero_copy_only=False),
            np.arange(len(keep)),
        )
        preds = predict_arrays(model, meta, stars, spectra)
        table = _to_rows(preds, stars, version, task.run_id, task.scored_at)
    out = Path(task.out)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table.cast(PREDICTIONS), tmp, compression="zstd", compression_level=1)
    os.replace(tmp, out)  # a retried task overwrites a whole file, never half of one
    return str(out), table.num_rows


def plan_tasks(
    w,
    snap,
    artifact: Path,
    todo: pd.DataFrame,
    run_id: str,
    scored_at: datetime,
    workers: int,
) -> list[ScoreTask]:
    """Spectrum slabs from the snapshot's spectra_index, then photometry-only chunks."""
    from startrack.ml.score import PHOTOMETRY_CHUNK

    digest = artifact_digest(artifact)
    with_spec = todo[todo["has_spectrum"].fillna(False).astype(bool)]
    index = snap.table("spectra_index", ["star_id", "file", "row_group"]).to_pandas()
    located = with_spec.merge(index, on="star_id", how="inner")
    tasks: list[ScoreTask] = []

    def task(stars: pd.DataFrame, part: str | None, groups: tuple[int, ...]) -> ScoreTask:
        out = w.scratch(f"predictions-cluster-{len(tasks):06d}.parquet")
        cols = [c for c in todo.columns]
        return ScoreTask(
            str(artifact), digest, stars[cols].reset_index(drop=True), part, groups, run_id,
            scored_at, str(out),
        )  # fmt: skip

    located["slab"] = located["row_group"] // SLAB_ROW_GROUPS
    for (file, _), group in located.groupby(["file", "slab"], sort=True):
        groups = tuple(sorted(int(g) for g in group["row_group"].unique()))
        tasks.append(task(group, str(w.root / file), groups))
    rest = todo[~todo["star_id"].isin(set(located["star_id"]))]
    chunk = min(PHOTOMETRY_CHUNK, max(MIN_PHOTOMETRY_CHUNK, math.ceil(len(rest) / (2 * workers))))
    for start in range(0, len(rest), chunk):
        tasks.append(task(rest.iloc[start : start + chunk], None, ()))
    return tasks


def score_on_cluster(
    scheduler: str,
    w,
    snap,
    artifact: Path,
    todo: pd.DataFrame,
    run_id: str,
    scored_at: datetime,
    progress: bool,
) -> list[str]:
    """Score ``todo`` on the cluster; the paths of the prediction parts the workers wrote."""
    from tqdm.auto import tqdm

    with open_executor(scheduler, 1) as runner:
        runner.require_shared(w.scratch("cluster").parent)
        tasks = plan_tasks(w, snap, artifact, todo, run_id, scored_at, runner.workers)
        bar = tqdm(total=len(todo), desc="scoring", disable=not progress, unit="star")
        parts: list[str] = []
        for t, (path, _) in zip(tasks, runner.map(score_task, tasks), strict=True):
            parts.append(path)
            bar.update(len(t.stars))
        bar.close()
    return parts
