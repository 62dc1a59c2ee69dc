"""`startrack score` against the warehouse: score stars with the current model, publish.

Writes ``predictions``, this version's ``metrics``/``class_metrics``/``confusion`` rows
(startrack.ml.evaluation) and a ``scoring_runs`` row, in one new snapshot; the columns are
declared in startrack.warehouse.contract. The current model comes from startrack.ml.registry.

Incremental scoring re-scores only stars that are new or whose ingest_run changed since the
current model scored them; --full (or a new model) re-scores everything.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from startrack.errors import NotReady
from startrack.labels import within_one_array
from startrack.ml.dataset import _fixed_list, iter_spectra
from startrack.ml.evaluation import evaluation_tables, replace_rows
from startrack.ml.features import split_of
from startrack.ml.inference import Spectra, predict_arrays
from startrack.ml.model import HEADS
from startrack.ml.prediction_history import record_history
from startrack.ml.registry import current_model_row
from startrack.warehouse.contract import PREDICTIONS

log = logging.getLogger(__name__)

PHOTOMETRY_CHUNK = 100_000
SCORE_COLUMNS = (
    "plate",
    "mjd",
    "fiberid",
    "star_id",
    "label",
    "z",
    "snr",
    "mag_u",
    "mag_g",
    "mag_r",
    "mag_i",
    "mag_z",
    "has_spectrum",
    "ingest_run",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _to_rows(
    preds: dict, stars: pd.DataFrame, version: str, run_id: str, scored_at: datetime
) -> pa.Table:
    """Long-format prediction rows (star x branch) as Arrow, vectorized: no per-row Python."""
    actual = stars["label"].to_numpy(dtype=object) if "label" in stars else None
    split = np.array([split_of(s) for s in stars["star_id"]], dtype=object)
    ingest = stars["ingest_run"].to_numpy(dtype=object) if "ingest_run" in stars else None
    tables = []
    for branch, p in preds.items():
        rows = np.flatnonzero(p.answered)
        if not len(rows):
            continue
        n, k = len(rows), p.topk_labels.shape[1]
        label = p.label[rows]
        truth = actual[rows] if actual is not None else np.full(n, None, dtype=object)
        known = pd.notna(truth)
        topk = pa.ListArray.from_arrays(
            pa.array(np.arange(0, (n + 1) * k, k), pa.int32()),
            pa.StructArray.from_arrays(
                [
                    pa.array(p.topk_labels[rows].ravel(), pa.string()),
                    pa.array(p.topk_probs[rows].ravel().astype(np.float64), pa.float64()),
                ],
                names=["label", "prob"],
            ),
        )
        tables.append(
            pa.table(
                {
                    "plate": pa.array(stars["plate"].to_numpy()[rows], pa.int32()),
                    "mjd": pa.array(stars["mjd"].to_numpy()[rows], pa.int32()),
                    "fiberid": pa.array(stars["fiberid"].to_numpy()[rows], pa.int32()),
                    "star_id": pa.array(stars["star_id"].to_numpy()[rows], pa.string()),
                    "model_version": pa.array(np.full(n, version, dtype=object), pa.string()),
                    "branch": pa.array(np.full(n, branch, dtype=object), pa.string()),
                    "label": pa.array(label, pa.string()),
                    "prob": pa.array(p.prob[rows], pa.float64()),
                    "topk": topk,
                    "spectral_type": pa.array(
                        p.spectral_type[rows], pa.float64(), from_pandas=True
                    ),
                    "spectral_type_err": pa.array(
                        p.spectral_type_err[rows], pa.float64(), from_pandas=True
                    ),
                    "flags": pa.array([p.flags[i] for i in rows], pa.list_(pa.string())),
                    "actual": pa.array(truth, pa.string()),
                    "correct": pa.array(np.where(known, label == truth, None), pa.bool_()),
                    "within_one": pa.array(
                        np.where(known, within_one_array(truth, label), None), pa.bool_()
                    ),
                    "split": pa.array(split[rows], pa.string()),
                    "ingest_run": pa.array(
                        ingest[rows] if ingest is not None else np.full(n, None), pa.string()
                    ),
                    "run_id": pa.array(np.full(n, run_id, dtype=object), pa.string()),
                    "scored_at": pa.array(np.full(n, scored_at), pa.timestamp("us", tz="UTC")),
                }
            )
        )
    return pa.concat_tables(tables)


def _write_part(w, table: pa.Table, n: int) -> str:
    path = w.scratch(f"predictions-{n:05d}.parquet")
    pq.write_table(table, path, compression="zstd", compression_level=1)
    return str(path)


def _score_stream(snap, model, meta, todo: pd.DataFrame, run_id: str, progress: bool):
    """Yield prediction tables: spectrum stars streamed from part files, then the rest.

    Each batch is scored by the pure function ``predict_arrays``; only one batch of spectra is
    in memory at a time, whatever the warehouse size.
    """
    from tqdm.auto import tqdm

    version = meta["version"]
    scored_at = _now()
    with_spec = todo[todo["has_spectrum"].fillna(False).astype(bool)].set_index(
        "star_id", drop=False
    )
    done: set[str] = set()
    bar = tqdm(total=len(todo), desc="scoring", disable=not progress, unit="star")
    for ids, batch in iter_spectra(snap.spectra_files, set(with_spec.index)):
        stars = with_spec.loc[ids]
        spectra = Spectra(
            _fixed_list(batch.column("flux"), np.float32),
            _fixed_list(batch.column("ivar"), np.float32),
            _fixed_list(batch.column("mask"), bool),
            batch.column("norm").to_numpy(zero_copy_only=False),
            np.arange(len(ids)),
        )
        done.update(ids)
        bar.update(len(ids))
        preds = predict_arrays(model, meta, stars, spectra)
        yield _to_rows(preds, stars, version, run_id, scored_at)
    rest = todo[~todo["star_id"].isin(done)]
    for start in range(0, len(rest), PHOTOMETRY_CHUNK):
        stars = rest.iloc[start : start + PHOTOMETRY_CHUNK]
        bar.update(len(stars))
        yield _to_rows(predict_arrays(model, meta, stars, None), stars, version, run_id, scored_at)
    bar.close()


def score_warehouse(
    warehouse,
    full: bool = False,
    progress: bool = True,
    wait: float = 0.0,
    scheduler: str | None = None,
) -> dict:
    """Score stars with the current model; publish predictions, metrics and the run.

    Holds the writer lock from start to end: one scoring run at a time, and the predictions it
    publishes always belong to the snapshot it read. ``scheduler``: a Dask cluster scores the
    batches (startrack.executors, ml/score_cluster.py); None scores in this process.
    """
    import duckdb

    from startrack.ml.artifact import load_artifact

    started = _now()
    t0 = time.monotonic()
    with warehouse.writer(command="score" + (" --full" if full else ""), wait=wait) as w:
        snap = w.base
        if snap is None:
            warehouse.require_current()  # raises the "warehouse is empty" advice
        mrow = current_model_row(snap)
        if mrow is None:
            raise NotReady("no trained model in the warehouse: run `startrack train` first")
        model, meta = load_artifact(warehouse.root / mrow["path"])
        version = meta["version"]
        run_id = f"score-{started.strftime('%Y%m%dT%H%M%S')}-{version[-8:]}"
        con = snap.connect()
        try:
            have = {r[0] for r in con.execute("DESCRIBE stars").fetchall()}
            cols = [c for c in SCORE_COLUMNS if c in have]
            stars = con.execute(f"SELECT {', '.join(cols)} FROM stars").df()
        finally:
            con.close()
        old = None if full else snap.table("predictions")
        mode, keep, todo = "full", None, stars
        if not full and old is not None and old.num_rows:
            same_model = pc.equal(old["model_version"], version)
            if pc.any(same_model).as_py():
                mode = "incremental"
                mine = old.filter(same_model)
                done = mine.select(["star_id", "ingest_run"]).to_pandas().drop_duplicates("star_id")
                cur = stars[["star_id", "ingest_run"]].merge(
                    done, on="star_id", how="inner", suffixes=("", "_old")
                )
                fresh = cur.loc[
                    cur["ingest_run"].fillna("") == cur["ingest_run_old"].fillna(""), "star_id"
                ]
                keep = mine.filter(
                    pc.is_in(mine["star_id"], pa.array(fresh.to_numpy(), pa.string()))
                )
                todo = stars[~stars["star_id"].isin(set(fresh))]
        # Each scored batch goes straight to a scratch Parquet part, so memory stays bounded
        # whatever the survey size; DuckDB then sorts the parts out of core into one file.
        parts: list[str] = []
        if keep is not None and keep.num_rows:
            parts.append(_write_part(w, keep.cast(PREDICTIONS), len(parts)))
        if scheduler is None:
            for table in _score_stream(snap, model, meta, todo, run_id, progress):
                parts.append(_write_part(w, table.cast(PREDICTIONS), len(parts)))
        else:  # workers load the model once each and write their own parts
            from startrack.ml.score_cluster import score_on_cluster

            artifact = warehouse.root / mrow["path"]
            parts += score_on_cluster(scheduler, w, snap, artifact, todo, run_id, _now(), progress)
        n_scored = len(todo)
        n_spec = int(todo["has_spectrum"].fillna(False).astype(bool).sum())
        if parts:
            path = w.scratch("predictions.parquet")
            tmp = duckdb.connect(config={"memory_limit": "768MB"})
            tmp.execute(f"SET temp_directory = '{w.scratch('duckdb_tmp')}'")
            listing = ", ".join(f"'{p}'" for p in parts)
            # sorted by id: DuckDB's zone maps then make per-star lookups cheap
            tmp.execute(
                f"COPY (SELECT * FROM read_parquet([{listing}]) "
                f"ORDER BY plate, mjd, fiberid, branch) TO '{path}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            tmp.execute(f"CREATE VIEW predictions AS SELECT * FROM read_parquet('{path}')")
            tmp.execute(
                f"CREATE VIEW stars AS SELECT * FROM read_parquet('{snap.table_path('stars')}')"
            )
            tables = evaluation_tables(tmp, version, meta["labels"])
            tmp.close()
            record_history(w, snap, path, version)  # every version's answers, for comparisons
            w.put_parquet("predictions", path)
            for name, frame in tables.items():
                w.put_table(name, replace_rows(snap, name, frame, version, HEADS))
        seconds = time.monotonic() - t0
        run = {
            "run_id": run_id,
            "model_version": version,
            "snapshot_id": snap.id,
            "mode": mode,
            "full": mode == "full",
            "started_at": started,
            "finished_at": _now(),
            "stars_total": len(stars),
            "stars_scored": n_scored,
            "stars_skipped": len(stars) - n_scored,
            "spectra_scored": n_spec,
            "seconds": round(seconds, 2),
            "stars_per_second": n_scored / seconds if seconds > 0 else None,
            "status": "ok",
        }
        runs = snap.table("scoring_runs").to_pandas()
        runs = (
            pd.DataFrame([run])
            if runs.empty
            else pd.concat([runs, pd.DataFrame([run])], ignore_index=True)
        )
        w.put_table("scoring_runs", runs)
    log.info("scored %d stars (%d with spectra, %s) in %.1fs", n_scored, n_spec, mode, seconds)
    return run
