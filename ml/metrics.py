"""Evaluation of any stellar-subclass classifier, shaped for the warehouse tables.

Every branch (the fusion model, its dense/LSTM heads, the scikit-learn baselines, the SDSS
template fit) is scored by this one function so the dashboard can put them side by side.
Scores come from ``sklearn.metrics``; only the pieces sklearn lacks (within-one-subtype,
multiclass expected calibration error, S/N binning) are computed here.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from startrack.labels import (
    WITHIN_ONE_SUBTYPES,
    sort_key,
    spectral_types,
)
from startrack.warehouse import contract

log = logging.getLogger(__name__)

#: Default S/N bin edges: [0,5), [5,10), [10,20), [20,40), [40,inf).
DEFAULT_SNR_BINS: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 40.0, math.inf)
#: Equal-width confidence bins for the expected calibration error.
ECE_BINS = 15

#: Columns of the warehouse tables these rows go to (declared in startrack.warehouse.contract).
METRICS_COLUMNS = contract.schema("metrics").names
CLASS_METRICS_COLUMNS = contract.schema("class_metrics").names
CONFUSION_COLUMNS = contract.schema("confusion").names


@dataclass
class Evaluation:
    """All scores of one branch on one split; ``to_tables`` turns them into warehouse rows."""

    n: int
    accuracy: float
    macro_f1: float
    within_one: float
    labels: list[str]  # order of the confusion matrix (MK sequence first, see sort_key)
    per_class: pd.DataFrame  # label, precision, recall, f1, support
    confusion: np.ndarray  # [actual, predicted] counts over ``labels``
    by_snr: pd.DataFrame  # snr_bin, n, accuracy, within_one
    ece: float | None = None
    log_loss: float | None = None
    reliability: pd.DataFrame | None = None  # bin_lo, bin_hi, n, confidence, accuracy
    extra: dict[str, float] = field(default_factory=dict)

    def to_tables(self, model_version: str, branch: str, split: str) -> dict[str, pd.DataFrame]:
        """Rows for the warehouse tables ``metrics``, ``class_metrics`` and ``confusion``."""
        key = {"model_version": model_version, "branch": branch, "split": split}
        rows: list[dict] = [
            {"metric": "accuracy", "snr_bin": None, "value": self.accuracy, "n": self.n},
            {"metric": "macro_f1", "snr_bin": None, "value": self.macro_f1, "n": self.n},
            {"metric": "within_one", "snr_bin": None, "value": self.within_one, "n": self.n},
        ]
        if self.ece is not None:
            rows.append({"metric": "ece", "snr_bin": None, "value": self.ece, "n": self.n})
        if self.log_loss is not None:
            rows.append(
                {"metric": "log_loss", "snr_bin": None, "value": self.log_loss, "n": self.n}
            )
        for name, value in self.extra.items():
            rows.append({"metric": name, "snr_bin": None, "value": float(value), "n": self.n})
        for rec in self.by_snr.itertuples(index=False):
            if rec.n == 0:
                continue  # an empty bin has no score; absence is clearer than a NaN row
            for metric in ("accuracy", "within_one"):
                rows.append(
                    {
                        "metric": metric,
                        "snr_bin": rec.snr_bin,
                        "value": float(getattr(rec, metric)),
                        "n": int(rec.n),
                    }
                )
        metrics = pd.DataFrame(rows).assign(**key)[METRICS_COLUMNS]
        metrics["value"] = metrics["value"].astype("float64")
        metrics["n"] = metrics["n"].astype("int64")

        class_metrics = self.per_class.assign(**key)[CLASS_METRICS_COLUMNS]

        actual, predicted = np.nonzero(self.confusion)
        labels = np.asarray(self.labels, dtype=object)
        confusion = pd.DataFrame(
            {
                **key,
                "actual": labels[actual],
                "predicted": labels[predicted],
                "n": self.confusion[actual, predicted].astype("int64"),
            }
        )[CONFUSION_COLUMNS]
        return {"metrics": metrics, "class_metrics": class_metrics, "confusion": confusion}


def snr_bin_names(edges: Sequence[float]) -> list[str]:
    """'0-5', '5-10', ..., '40+' for the half-open intervals [lo, hi)."""
    names = []
    for lo, hi in itertools.pairwise(edges):
        names.append(f"{_fmt(lo)}+" if math.isinf(hi) else f"{_fmt(lo)}-{_fmt(hi)}")
    return names


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _as_labels(values: Sequence[str], name: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of labels, got shape {arr.shape}")
    bad = [i for i, v in enumerate(arr) if not isinstance(v, str) or not v]
    if bad:
        raise ValueError(
            f"{name} holds {len(bad)} missing/non-string labels (first at index {bad[0]}: "
            f"{arr[bad[0]]!r}); drop unlabeled rows before evaluating"
        )
    return arr


def expected_calibration_error(
    correct: np.ndarray, confidence: np.ndarray, n_bins: int = ECE_BINS
) -> tuple[float, pd.DataFrame]:
    """Top-label ECE over equal-width confidence bins, with the reliability table behind it."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 goes to the first bin.
    idx = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = conf_sum / counts
        acc = acc_sum / counts
    nonempty = counts > 0
    ece = float(np.sum(counts[nonempty] * np.abs(acc[nonempty] - conf[nonempty])) / counts.sum())
    table = pd.DataFrame(
        {
            "bin_lo": edges[:-1],
            "bin_hi": edges[1:],
            "n": counts,
            "confidence": conf,
            "accuracy": acc,
        }
    )
    return ece, table


def evaluate(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    proba: np.ndarray | None = None,
    classes: list[str] | None = None,
    snr: np.ndarray | None = None,
    snr_bins: Sequence[float] = DEFAULT_SNR_BINS,
) -> Evaluation:
    """Score predictions; ``proba[:, j]`` is the probability of ``classes[j]``.

    ``macro_f1`` averages over the classes present in ``y_true`` (a class the test split
    lacks cannot be scored). Calibration uses the top class of ``proba``.
    """
    yt = _as_labels(y_true, "y_true")
    yp = _as_labels(y_pred, "y_pred")
    n = len(yt)
    if n == 0:
        raise ValueError("cannot evaluate an empty prediction set")
    if len(yp) != n:
        raise ValueError(f"y_true has {n} labels but y_pred has {len(yp)}")
    classes = list(classes) if classes is not None else []

    # Encode once: sklearn re-encodes string labels on every call (20 s at 800k rows).
    labels = sorted(set(yt) | set(yp) | set(classes), key=sort_key)
    ct = pd.Categorical(yt, categories=labels).codes.astype(np.int64)
    cp = pd.Categorical(yp, categories=labels).codes.astype(np.int64)
    codes = np.arange(len(labels))
    present = np.unique(ct)
    accuracy = float(accuracy_score(ct, cp))
    macro_f1 = float(f1_score(ct, cp, labels=present, average="macro", zero_division=0))
    types = spectral_types(labels)
    with np.errstate(invalid="ignore"):
        close = (ct == cp) | (
            np.abs(types[ct] - types[cp]) <= WITHIN_ONE_SUBTYPES
        )  # NaN (non-MK) is False

    precision, recall, f1, support = precision_recall_fscore_support(
        ct, cp, labels=codes, zero_division=0
    )
    per_class = pd.DataFrame(
        {
            "label": labels,
            "precision": precision.astype(np.float64),
            "recall": recall.astype(np.float64),
            "f1": f1.astype(np.float64),
            "support": support.astype(np.int64),
        }
    )
    cm = confusion_matrix(ct, cp, labels=codes)

    by_snr = _by_snr(ct == cp, close, snr, snr_bins, n)

    ece = ll = reliability = None
    if proba is not None:
        class_codes = pd.Categorical(classes, categories=labels).codes.astype(np.int64)
        ece, ll, reliability = _calibration(ct, proba, class_codes)

    return Evaluation(
        n=n,
        accuracy=accuracy,
        macro_f1=macro_f1,
        within_one=float(close.mean()),
        labels=labels,
        per_class=per_class,
        confusion=cm,
        by_snr=by_snr,
        ece=ece,
        log_loss=ll,
        reliability=reliability,
    )


def _by_snr(
    correct: np.ndarray,
    close: np.ndarray,
    snr: np.ndarray | None,
    edges: Sequence[float],
    n: int,
) -> pd.DataFrame:
    names = snr_bin_names(edges)
    empty = pd.DataFrame(
        {"snr_bin": names, "n": 0, "accuracy": np.nan, "within_one": np.nan}
    ).astype({"n": "int64", "accuracy": "float64", "within_one": "float64"})
    if snr is None:
        return empty
    s = np.asarray(snr, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"snr must have one value per prediction ({n}), got shape {s.shape}")
    if np.any(np.diff(np.asarray(edges, dtype=np.float64)) <= 0):
        raise ValueError(f"snr_bins must be strictly increasing, got {tuple(edges)}")
    # Half-open [lo, hi); S/N that is NaN or outside the edges is left out of every bin.
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), s, side="right") - 1
    valid = np.isfinite(s) & (idx >= 0) & (idx < len(names))
    k = len(names)
    counts = np.bincount(idx[valid], minlength=k)
    acc = np.bincount(idx[valid], weights=correct[valid].astype(float), minlength=k)
    w1 = np.bincount(idx[valid], weights=close[valid].astype(float), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        empty["n"] = counts.astype(np.int64)
        empty["accuracy"] = acc / counts
        empty["within_one"] = w1 / counts
    return empty


def _calibration(
    ct: np.ndarray, proba: np.ndarray, class_codes: np.ndarray
) -> tuple[float, float | None, pd.DataFrame]:
    """ECE, log loss and reliability table; labels arrive as integer codes."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != len(ct):
        raise ValueError(f"proba must be (n_samples={len(ct)}, n_classes), got shape {p.shape}")
    if p.shape[1] != len(class_codes):
        raise ValueError(
            f"proba has {p.shape[1]} columns but {len(class_codes)} classes were given; "
            "pass classes in the column order of proba"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("proba must be finite and non-negative")
    top = p.argmax(axis=1)
    ece, table = expected_calibration_error(class_codes[top] == ct, p[np.arange(len(ct)), top])
    ll = None
    if np.isin(ct, class_codes).all():
        # sklearn's log_loss reads proba columns in ascending label order.
        order = np.argsort(class_codes, kind="stable")
        p_sorted = p[:, order] / p.sum(axis=1, keepdims=True)
        ll = float(log_loss(ct, p_sorted, labels=class_codes[order]))
    else:
        log.warning("log loss skipped: y_true holds labels outside the model's classes")
    return ece, ll, table
