"""`startrack train` / `startrack score` against the warehouse: publish a model, score all stars.

Tables this module writes (one new snapshot per command):

``models`` (one row per trained model; exactly one has is_current):
    version VARCHAR, created_at TIMESTAMP(UTC), path VARCHAR (relative to the warehouse,
    'models/<version>'), data_snapshot VARCHAR, labels VARCHAR (JSON list), n_classes INT,
    n_train INT, n_train_spectra INT, n_val INT, val_fusion_accuracy DOUBLE,
    val_dense_accuracy DOUBLE, val_lstm_accuracy DOUBLE, best_epoch INT, epochs_run INT,
    train_seconds DOUBLE, hyperparameters VARCHAR (JSON), temperatures VARCHAR (JSON),
    code_version VARCHAR, is_current BOOLEAN.
``predictions`` (one row per star, for the current model):
    plate INT, mjd INT, fiberid INT, star_id VARCHAR, model_version VARCHAR, split VARCHAR
    ('train'|'val'|'test'), has_spectrum BOOLEAN, label VARCHAR (the catalogue's, may be NULL),
    {fusion,dense,lstm}_label VARCHAR, {fusion,dense,lstm}_prob DOUBLE (calibrated),
    {fusion,dense,lstm}_topk_labels LIST<VARCHAR>[3], {..}_topk_probs LIST<FLOAT>[3] (best
    first); lstm_* NULL without a spectrum; ingest_run VARCHAR (of the star row scored),
    scoring_run VARCHAR.
``metrics`` / ``class_metrics`` / ``confusion``: columns of startrack.ml.metrics
    (METRICS_COLUMNS, CLASS_METRICS_COLUMNS, CONFUSION_COLUMNS); branch in dense|lstm|fusion,
    split 'test' (all labelled test stars; a rare label the model cannot output counts as
    wrong) or 'test_spectra' (test stars with a spectrum: the three branches on equal footing).
    No log_loss: only the top-3 probabilities are stored.
``scoring_runs``: run_id VARCHAR, model_version VARCHAR, snapshot_id VARCHAR (scored data),
    mode VARCHAR ('incremental'|'full'), started_at, finished_at TIMESTAMP(UTC),
    stars_total BIGINT, stars_scored BIGINT, spectra_scored BIGINT, seconds DOUBLE,
    stars_per_second DOUBLE, status VARCHAR.

Incremental scoring re-scores only stars that are new or whose ingest_run changed since the
current model scored them; --full (or a new model) re-scores everything.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from startrack.ml.dataset import DEFAULT_MAX_SPECTRA, _fixed_list, iter_spectra, load_training_data
from startrack.ml.features import split_of
from startrack.ml.inference import Predictor, Spectra, predict_arrays
from startrack.ml.model import HEADS
from startrack.ml.train import TrainConfig, train_model

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


def current_model_row(snapshot) -> dict | None:
    if snapshot is None:
        return None
    models = snapshot.table("models").to_pandas() if "models" in snapshot.tables else None
    if models is None or models.empty:
        return None
    cur = models[models["is_current"]]
    row = (cur if not cur.empty else models.sort_values("created_at")).iloc[-1]
    return row.to_dict()


def current_model_dir(warehouse) -> Path | None:
    """Directory of the current model artifact of a Warehouse, or None."""
    row = current_model_row(warehouse.current())
    return warehouse.root / row["path"] if row else None


def warehouse_predictor(warehouse, check_every_s: float = 2.0) -> Predictor:
    """A Predictor that follows the warehouse's current model (reloads when it changes)."""
    return Predictor(lambda: current_model_dir(warehouse), check_every_s=check_every_s)


def train_and_publish(
    warehouse,
    config: TrainConfig | None = None,
    max_stars: int | None = None,
    max_spectra: int | None = DEFAULT_MAX_SPECTRA,
    progress: bool = True,
    wait: float = 0.0,
) -> dict:
    """Train on the current snapshot, save the artifact, publish it as the current model."""
    snap = warehouse.require_current()
    data = load_training_data(snap, max_stars=max_stars, max_spectra=max_spectra)
    result = train_model(data, config, progress=progress)
    from startrack.ml.artifact import code_version, new_version, save_artifact

    version = new_version(result.model)
    meta = {**result.meta, "version": version}
    with warehouse.writer(command="train", wait=wait) as w:
        save_artifact(w.model_dir(version), result.model, meta)
        val = meta["metrics"].get("validation", {})
        row = {
            "version": version,
            "created_at": _now(),
            "path": f"models/{version}",
            "data_snapshot": snap.id,
            "labels": json.dumps(meta["labels"]),
            "n_classes": len(meta["labels"]),
            "n_train": meta["training"]["n_train"],
            "n_train_spectra": meta["training"]["n_train_spectra"],
            "n_val": meta["training"]["n_val"],
            "val_fusion_accuracy": val.get("fusion_accuracy"),
            "val_dense_accuracy": val.get("dense_accuracy"),
            "val_lstm_accuracy": val.get("lstm_accuracy"),
            "best_epoch": meta["metrics"]["best_epoch"],
            "epochs_run": meta["metrics"]["epochs_run"],
            "train_seconds": meta["training"]["seconds"],
            "hyperparameters": json.dumps(meta["hyperparameters"]),
            "temperatures": json.dumps(meta["temperatures"]),
            "code_version": json.dumps(code_version()),
            "is_current": True,
        }
        old = w.base.table("models").to_pandas() if w.base and "models" in w.base.tables else None
        models = pd.DataFrame([row])
        if old is not None and not old.empty:
            old["is_current"] = False
            models = pd.concat([old, models], ignore_index=True)
        w.put_table("models", models)
    log.info("published model %s", version)
    return meta


def _to_rows(preds: dict, stars: pd.DataFrame, version: str, run_id: str) -> pa.Table:
    """Prediction rows as Arrow (top-k as fixed-size list columns: no per-row Python)."""
    n = len(stars)
    labels = stars["label"].to_numpy() if "label" in stars else [None] * n
    cols: dict[str, pa.Array] = {
        "plate": pa.array(stars["plate"].to_numpy(), pa.int32()),
        "mjd": pa.array(stars["mjd"].to_numpy(), pa.int32()),
        "fiberid": pa.array(stars["fiberid"].to_numpy(), pa.int32()),
        "star_id": pa.array(stars["star_id"].to_numpy(), pa.string()),
        "model_version": pa.array([version] * n, pa.string()),
        "split": pa.array([split_of(s) for s in stars["star_id"]], pa.string()),
        "has_spectrum": pa.array(preds["lstm"].answered, pa.bool_()),
        "label": pa.array(labels, pa.string()),
    }
    for h, p in preds.items():
        k = p.topk_labels.shape[1]
        null = pa.array(~p.answered) if h == "lstm" else None
        cols[f"{h}_label"] = pa.array(p.label, pa.string())
        cols[f"{h}_prob"] = pa.array(p.prob, pa.float64(), from_pandas=True)
        cols[f"{h}_topk_labels"] = pa.FixedSizeListArray.from_arrays(
            pa.array(p.topk_labels.ravel(), pa.string()), k, mask=null
        )
        cols[f"{h}_topk_probs"] = pa.FixedSizeListArray.from_arrays(
            pa.array(p.topk_probs.ravel(), pa.float32()), k, mask=null
        )
    ingest = stars["ingest_run"].to_numpy() if "ingest_run" in stars else [None] * n
    cols["ingest_run"] = pa.array(ingest, pa.string())
    cols["scoring_run"] = pa.array([run_id] * n, pa.string())
    return pa.table(cols)


def _score_stream(snap, model, meta, todo: pd.DataFrame, run_id: str, progress: bool):
    """Yield prediction frames: spectrum stars streamed from part files, then the rest."""
    from tqdm.auto import tqdm

    version = meta["version"]
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
        yield _to_rows(predict_arrays(model, meta, stars, spectra), stars, version, run_id)
    rest = todo[~todo["star_id"].isin(done)]
    for start in range(0, len(rest), PHOTOMETRY_CHUNK):
        stars = rest.iloc[start : start + PHOTOMETRY_CHUNK]
        bar.update(len(stars))
        yield _to_rows(predict_arrays(model, meta, stars, None), stars, version, run_id)
    bar.close()


def _topk_proba(labels: pd.Series, probs: pd.Series, classes: list[str]) -> np.ndarray:
    """Probability matrix from stored top-k (exact top-1, remainder spread): for ECE only."""
    index = {c: i for i, c in enumerate(classes)}
    proba = np.zeros((len(labels), len(classes)))
    for r, (labs, ps) in enumerate(zip(labels, probs, strict=True)):
        rest = max(0.0, 1.0 - float(np.sum(ps))) / max(1, len(classes) - len(ps))
        proba[r] = rest
        for lab, p in zip(labs, ps, strict=True):
            proba[r, index[lab]] = p
    return proba


def evaluation_tables(
    pred: pd.DataFrame, version: str, classes: list[str]
) -> dict[str, pd.DataFrame]:
    """metrics / class_metrics / confusion rows for the test split, via startrack.ml.metrics."""
    from startrack.ml.metrics import evaluate

    snr = pred["snr"].to_numpy(np.float64) if "snr" in pred else None
    test = (pred["split"] == "test").to_numpy(bool) & pred["label"].notna().to_numpy(bool)
    has = pred["has_spectrum"].fillna(False).to_numpy(bool)
    frames: dict[str, list[pd.DataFrame]] = {"metrics": [], "class_metrics": [], "confusion": []}
    for split, rows in (("test", test), ("test_spectra", test & has)):
        for h in HEADS:
            sel = rows & pred[f"{h}_label"].notna().to_numpy(bool)
            if h == "lstm" and split == "test":
                continue
            if not sel.any():
                continue
            sub = pred[sel]
            ev = evaluate(
                sub["label"].tolist(),
                sub[f"{h}_label"].tolist(),
                proba=_topk_proba(sub[f"{h}_topk_labels"], sub[f"{h}_topk_probs"], classes),
                classes=classes,
                snr=None if snr is None else snr[sel],
            )
            ev.log_loss = None  # not recoverable from the stored top-k
            for name, frame in ev.to_tables(version, h, split).items():
                frames[name].append(frame)
    return {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in frames.items()}


def score_warehouse(
    warehouse, full: bool = False, progress: bool = True, wait: float = 0.0
) -> dict:
    """Score every star with the current model; publish predictions, metrics and the run."""
    from startrack.ml.artifact import load_artifact

    snap = warehouse.require_current()
    mrow = current_model_row(snap)
    if mrow is None:
        raise LookupError("no trained model in the warehouse: run `startrack train` first")
    model, meta = load_artifact(warehouse.root / mrow["path"])
    version = meta["version"]
    started = _now()
    t0 = time.monotonic()
    run_id = f"score-{started.strftime('%Y%m%dT%H%M%S')}-{version[-8:]}"
    con = snap.connect()
    try:
        have = {r[0] for r in con.execute("DESCRIBE stars").fetchall()}
        cols = [c for c in SCORE_COLUMNS if c in have]
        stars = con.execute(f"SELECT {', '.join(cols)} FROM stars").df()
    finally:
        con.close()
    if "has_spectrum" not in stars:
        stars["has_spectrum"] = False
    old = snap.table("predictions") if "predictions" in snap.tables else None
    mode = "full"
    keep: pa.Table | None = None
    todo = stars
    old_ids = old.select(["star_id", "model_version", "ingest_run"]).to_pandas() if old else None
    if not full and old_ids is not None and (old_ids["model_version"] == version).any():
        mode = "incremental"
        same = old_ids[old_ids["model_version"] == version]
        cur = stars[["star_id", "ingest_run"]] if "ingest_run" in stars else stars[["star_id"]]
        cur = cur.merge(same, on="star_id", how="inner", suffixes=("", "_old"))
        if "ingest_run_old" in cur:
            cur = cur[cur["ingest_run"].fillna("") == cur["ingest_run_old"].fillna("")]
        fresh = set(cur["star_id"])
        ok = (old_ids["model_version"] == version) & old_ids["star_id"].isin(fresh)
        keep = old.filter(pa.array(ok.to_numpy(bool)))
        todo = stars[~stars["star_id"].isin(fresh)]
    new = list(_score_stream(snap, model, meta, todo, run_id, progress))
    scored = pa.concat_tables(new) if new else None
    parts = [t for t in (keep, scored) if t is not None and t.num_rows]
    pred_table = pa.concat_tables(parts) if parts else keep
    n_scored = scored.num_rows if scored is not None else 0
    n_spec = int(np.sum(scored["has_spectrum"].to_numpy())) if n_scored else 0
    seconds = time.monotonic() - t0
    tables: dict[str, pd.DataFrame] = {}
    n_total = pred_table.num_rows if pred_table is not None else 0
    if n_total:
        cols = ["star_id", "split", "has_spectrum", "label"]
        cols += [f"{h}_{c}" for h in HEADS for c in ("label", "topk_labels", "topk_probs")]
        frame = pred_table.select(cols).to_pandas()
        frame = frame[frame["split"] == "test"]
        if "snr" in stars:
            frame = frame.merge(stars[["star_id", "snr"]], on="star_id", how="left")
        if len(frame):
            tables = evaluation_tables(frame, version, meta["labels"])
    run = {
        "run_id": run_id,
        "model_version": version,
        "snapshot_id": snap.id,
        "mode": mode,
        "started_at": started,
        "finished_at": _now(),
        "stars_total": n_total,
        "stars_scored": n_scored,
        "spectra_scored": n_spec,
        "seconds": round(seconds, 2),
        "stars_per_second": n_scored / seconds if seconds > 0 else None,
        "status": "ok",
    }
    with warehouse.writer(command="score", wait=wait) as w:
        if pred_table is not None:
            w.put_table("predictions", pred_table)
        for name, frame in tables.items():
            if not frame.empty:
                w.put_table(name, frame)
        runs = w.base.table("scoring_runs").to_pandas() if "scoring_runs" in w.base.tables else None
        runs = (
            pd.DataFrame([run])
            if runs is None or runs.empty
            else pd.concat([runs, pd.DataFrame([run])], ignore_index=True)
        )
        w.put_table("scoring_runs", runs)
    log.info("scored %d stars (%d with spectra, %s) in %.1fs", n_scored, n_spec, mode, seconds)
    return run
