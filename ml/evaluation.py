"""Evaluation of stored predictions: the ``metrics``, ``class_metrics`` and ``confusion`` rows.

Computed in SQL over the new ``predictions`` of a model version, per branch and evaluation
split (startrack.vocabulary.EVAL_SPLITS), with startrack.ml.metrics.evaluate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from startrack.ml.model import HEADS
from startrack.vocabulary import EVAL_SPLITS


def topk_proba(topk: pd.Series, classes: list[str]) -> np.ndarray:
    """Probability matrix from the stored top-k (exact top-1, remainder spread): for ECE only."""
    index = {c: i for i, c in enumerate(classes)}
    proba = np.zeros((len(topk), len(classes)))
    for r, entries in enumerate(topk):
        probs = [e["prob"] for e in entries]
        proba[r] = max(0.0, 1.0 - float(np.sum(probs))) / max(1, len(classes) - len(probs))
        for e in entries:
            proba[r, index[e["label"]]] = e["prob"]
    return proba


def evaluation_tables(snap_con, version: str, classes: list[str]) -> dict[str, pd.DataFrame]:
    """metrics / class_metrics / confusion rows per branch and split, via ml.metrics.evaluate."""
    from startrack.ml.metrics import evaluate
    from startrack.ml.quality import type_metrics

    frames: dict[str, list[pd.DataFrame]] = {"metrics": [], "class_metrics": [], "confusion": []}
    for split in EVAL_SPLITS:
        where = {
            "test": "p.split = 'test'",
            "test_spectra": "p.split = 'test' AND s.has_spectrum",
            "all": "TRUE",
        }[split]
        for branch in HEADS:
            sub = snap_con.execute(
                f"""SELECT p.actual, p.label, p.spectral_type, s.snr
                           {", p.topk" if split != "all" else ""}
                    FROM predictions p JOIN stars s USING (plate, mjd, fiberid)
                    WHERE p.model_version = $1 AND p.branch = $2 AND p.actual IS NOT NULL
                      AND {where}""",
                [version, branch],
            ).df()
            if sub.empty:
                continue
            ev = evaluate(
                sub["actual"].tolist(),
                sub["label"].tolist(),
                proba=topk_proba(sub["topk"], classes) if "topk" in sub else None,
                classes=classes,
                snr=sub["snr"].to_numpy(np.float64),
            )
            ev.log_loss = None  # not recoverable from the stored top-k
            ev.extra.update(type_metrics(sub["actual"], sub["spectral_type"]))
            for name, frame in ev.to_tables(version, branch, split).items():
                frames[name].append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in frames.items() if v}


def replace_rows(base, name: str, new: pd.DataFrame, version: str, branches) -> pd.DataFrame:
    """Old rows of other model versions / branches kept; this version's branches replaced."""
    if base is None:
        return new
    old = base.table(name).to_pandas()
    if old.empty:
        return new
    drop = (old["model_version"] == version) & old["branch"].isin(list(branches))
    return pd.concat([old[~drop], new], ignore_index=True)
