"""Evaluation of stored predictions: the ``metrics``, ``class_metrics`` and ``confusion`` rows.

Computed in SQL over the new ``predictions`` of a model version, per branch and evaluation
split (startrack.vocabulary.EVAL_SPLITS), with startrack.ml.metrics.evaluate. The continuous
type is scored twice: against the type of the SDSS label (``type_*``) and against each star's
own MK type where the warehouse has one (``own_type_*``: ELODIE_SPTYPE, or a library's MK
type written there) -- the measure a set of real stars typed by hand is judged by. Each of
those rows counts only the stars it is computed on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from startrack.ml.metrics import METRICS_COLUMNS
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

    frames: dict[str, list[pd.DataFrame]] = {"metrics": [], "class_metrics": [], "confusion": []}
    for split in EVAL_SPLITS:
        where = {
            "test": "p.split = 'test'",
            "test_spectra": "p.split = 'test' AND s.has_spectrum",
            "all": "TRUE",
        }[split]
        for branch in HEADS:
            # labelled or not: a star's own MK type scores the continuous type without a label
            sub = snap_con.execute(
                f"""SELECT p.actual, p.label, p.spectral_type, s.snr, s.elodie_sptype
                           {", p.topk" if split != "all" else ""}
                    FROM predictions p JOIN stars s USING (plate, mjd, fiberid)
                    WHERE p.model_version = $1 AND p.branch = $2 AND {where}""",
                [version, branch],
            ).df()
            typed = type_rows(sub, version, branch, split)
            if not typed.empty:
                frames["metrics"].append(typed)
            sub = sub[sub["actual"].notna()]
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
            for name, frame in ev.to_tables(version, branch, split).items():
                frames[name].append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in frames.items() if v}


def type_rows(sub: pd.DataFrame, version: str, branch: str, split: str) -> pd.DataFrame:
    """``type_*`` (against the SDSS label's type) and ``own_type_*`` (against the star's own
    MK type, labelled or not) metric rows of one branch and split, each with its own n.

    ``sub``: the branch's predictions (actual, spectral_type) with the stars' elodie_sptype."""
    from startrack.labels import spectral_types
    from startrack.ml.quality import type_scores

    predicted = sub["spectral_type"].to_numpy(np.float64)
    rows = []
    for prefix, truth in (
        ("type", spectral_types(sub["actual"])),
        ("own_type", spectral_types(sub["elodie_sptype"])),
    ):
        scores, n = type_scores(truth, predicted, prefix)
        rows += [{"metric": k, "snr_bin": None, "value": v, "n": n} for k, v in scores.items()]
    out = pd.DataFrame(rows, columns=["metric", "snr_bin", "value", "n"])
    out = out.assign(model_version=version, branch=branch, split=split)[METRICS_COLUMNS]
    return out.astype({"value": "float64", "n": "int64"})


def replace_rows(base, name: str, new: pd.DataFrame, version: str, branches) -> pd.DataFrame:
    """Old rows of other model versions / branches kept; this version's branches replaced."""
    if base is None:
        return new
    old = base.table(name).to_pandas()
    if old.empty:
        return new
    drop = (old["model_version"] == version) & old["branch"].isin(list(branches))
    return pd.concat([old[~drop], new], ignore_index=True)
