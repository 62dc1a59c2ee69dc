"""`startrack train` against the warehouse: train on the current snapshot, publish the model.

Saves the artifact under ``<warehouse>/models/<version>/``, appends its ``models`` row (now
the current one) and the baselines' ``metrics``/``class_metrics``/``confusion`` rows, in one
new snapshot.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from startrack.ml.dataset import DEFAULT_MAX_SPECTRA, load_training_data
from startrack.ml.evaluation import replace_rows
from startrack.ml.train import train_model
from startrack.ml.train_config import TrainConfig
from startrack.vocabulary import BASELINES

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def train_and_publish(
    warehouse,
    config: TrainConfig | None = None,
    max_stars: int | None = None,
    max_spectra: int | None = DEFAULT_MAX_SPECTRA,
    progress: bool = True,
    wait: float = 0.0,
    baselines: bool = True,
    templates: Path | None = None,
) -> dict:
    """Train on the current snapshot, save the artifact, publish it as the current model.

    The baselines (HistGradientBoosting on photometry, PCA + logistic regression on spectra,
    the SDSS-style template fit with ``templates`` or the built-in set) are trained on the same
    split and their metrics stored under this model version, side by side with its branches.
    """
    snap = warehouse.require_current()
    data = load_training_data(snap, max_stars=max_stars, max_spectra=max_spectra)
    result = train_model(data, config, progress=progress)
    from startrack.ml.artifact import code_version, new_version, save_artifact

    version = new_version(result.model)
    meta = {**result.meta, "version": version}
    baseline_tables: dict[str, pd.DataFrame] = {}
    if baselines:
        from startrack.ml.baselines import run_baselines
        from startrack.simulator.templates import load_templates

        t0 = time.monotonic()
        baseline_tables = run_baselines(
            data.stars,
            data.spectra() if len(data.flux) else None,
            version,
            seed=meta["hyperparameters"]["seed"],
            templates=load_templates(templates),
            eval_splits=("test",),
        )
        log.info("baselines trained and evaluated in %.1f s", time.monotonic() - t0)
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
        old = w.base.table("models").to_pandas() if w.base else None
        models = pd.DataFrame([row])
        if old is not None and not old.empty:
            old["is_current"] = False
            models = pd.concat([old, models], ignore_index=True)
        w.put_table("models", models)
        for name, frame in baseline_tables.items():
            w.put_table(name, replace_rows(w.base, name, frame, version, BASELINES))
    log.info("published model %s", version)
    return meta
