"""scikit-learn baselines the fusion model must beat, on the same features and the same split.

- ``baseline_hgb``: HistGradientBoostingClassifier on the fusion model's tabular features
  (z, ugriz, colours, log S/N; missing values stay NaN, which HGB handles natively).
- ``baseline_pca_lr``: randomized PCA + multinomial LogisticRegression on the normalized flux
  (flux / norm, masked pixels -> 0, clipped like the model's input), binned 4x for speed.

Both use balanced class weights (real SDSS label frequencies are very uneven) and cap their
training rows with a stratified subsample so full-scale training stays in minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from startrack.ml import features
from startrack.ml.inference import Spectra
from startrack.ml.metrics import evaluate
from startrack.ml.template_fit import TemplateFitter, TemplateSetLike

log = logging.getLogger(__name__)

#: Training-row caps (stratified subsample above them); full scale has 800k stars.
HGB_MAX_ROWS = 200_000
PCA_LR_MAX_ROWS = 50_000
#: Spectral baseline: average this many grid pixels into one (4671 -> 1168 bins).
DOWNSAMPLE = 4
#: Number of columns of the tabular feature values (flags are not needed: NaN is native).
N_TABULAR_VALUES = features.N_FEATURES // 2
TABULAR_FEATURE_NAMES = list(features.FEATURE_NAMES[:N_TABULAR_VALUES])


def tabular_matrix(stars: pd.DataFrame) -> np.ndarray:
    """(n, 11) float32: the fusion model's tabular feature values with NaN where missing."""
    feats = features.tabular_features(torch.from_numpy(features.raw_matrix(stars))).numpy()
    values, missing = feats[:, :N_TABULAR_VALUES], feats[:, N_TABULAR_VALUES:] > 0.5
    return np.where(missing, np.nan, values).astype(np.float32)


def spectral_matrix(
    flux: np.ndarray,
    ivar: np.ndarray,
    mask: np.ndarray,
    norm: np.ndarray,
    downsample: int = DOWNSAMPLE,
    chunk: int = 2048,
) -> np.ndarray:
    """(n, NPIX // downsample) float32: clipped flux/norm, each bin the mean of its good pixels.

    Uses ``features.normalized_spectra`` so masking and normalization match the fusion model;
    works in chunks so full-scale arrays are not copied whole.
    """
    n, npix = np.shape(flux)
    if np.shape(ivar) != (n, npix) or np.shape(mask) != (n, npix) or np.shape(norm)[0] != n:
        raise ValueError(
            f"flux {np.shape(flux)}, ivar {np.shape(ivar)}, mask {np.shape(mask)} and "
            f"norm {np.shape(norm)} must describe the same n spectra"
        )
    nb = npix // downsample
    out = np.empty((n, nb), dtype=np.float32)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        flux_n, _, bad = features.normalized_spectra(flux[sl], ivar[sl], mask[sl], norm[sl])
        f = flux_n.clamp(*features.FLUX_CLIP).numpy()[:, : nb * downsample]
        good = (~bad).numpy()[:, : nb * downsample]
        f = np.where(good, f, 0.0).reshape(len(f), nb, downsample)
        g = good.reshape(len(f), nb, downsample).sum(axis=2)
        # A bin with no good pixel is 0, like a masked pixel in the model's input.
        out[sl] = f.sum(axis=2) / np.maximum(g, 1)
    return out


MIN_CLASS_ROWS = 5  #: labels with fewer training rows are not learned by the baselines


def stratified_cap(y: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Row indices: all rows when under the cap, else a per-class proportional subsample
    that keeps at least min(count, 20) rows of every class (rare classes must stay learnable)."""
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    rare = counts < MIN_CLASS_ROWS
    if rare.any():  # too few to learn (and to split for early stopping): left out, like the model
        log.info("baseline training leaves out rare labels %s", list(classes[rare]))
    usable = ~rare[inverse]
    n = int(usable.sum())
    if n <= max_rows:
        return np.flatnonzero(usable)
    rng = np.random.default_rng(seed)
    counts = np.where(rare, 0, counts)
    quota = np.maximum(np.floor(counts * max_rows / n), np.minimum(counts, 20)).astype(int)
    keep = [
        rng.choice(np.flatnonzero(inverse == k), size=quota[k], replace=False)
        for k in range(len(classes))
    ]
    idx = np.sort(np.concatenate(keep))
    log.info("training rows capped: %d of %d (stratified)", len(idx), n)
    return idx


def _check_xy(x: np.ndarray, y: Sequence[str], name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(list(y), dtype=object)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(
            f"{name}: X must be (n, d) with one label per row; got {x.shape}, {len(y)}"
        )
    if any(v is None or v != v or v == "" for v in y):  # v != v: NaN
        raise ValueError(f"{name}: y holds missing labels; drop unlabeled rows first")
    if len(set(y)) < 2:
        raise ValueError(f"{name}: need at least 2 classes to train, got {sorted(set(y))}")
    return x, y.astype(str)


def fit_hgb_baseline(
    x: np.ndarray, y: Sequence[str], seed: int = 0, max_rows: int = HGB_MAX_ROWS
) -> HistGradientBoostingClassifier:
    """Gradient-boosted trees on tabular features (NaN allowed); early stopping on 10%."""
    x, y = _check_xy(x, y, "baseline_hgb")
    idx = stratified_cap(y, max_rows, seed)
    model = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.1,
        max_leaf_nodes=31,
        class_weight="balanced",
        early_stopping=len(idx) > 2000,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=seed,
    )
    t0 = time.perf_counter()
    model.fit(x[idx], y[idx])
    log.info(
        "baseline_hgb: %d rows, %d classes, %d iterations in %.1fs",
        len(idx), len(model.classes_), model.n_iter_, time.perf_counter() - t0,
    )  # fmt: skip
    return model


def fit_pca_lr_baseline(
    x: np.ndarray,
    y: Sequence[str],
    seed: int = 0,
    n_components: int = 40,
    max_rows: int = PCA_LR_MAX_ROWS,
) -> Pipeline:
    """Randomized PCA (whitened) + multinomial logistic regression on binned spectra."""
    x, y = _check_xy(x, y, "baseline_pca_lr")
    idx = stratified_cap(y, max_rows, seed)
    n_comp = int(min(n_components, len(idx) - 1, x.shape[1]))
    model = make_pipeline(
        PCA(n_components=n_comp, svd_solver="randomized", whiten=True, random_state=seed),
        StandardScaler(),
        LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000),
    )
    t0 = time.perf_counter()
    model.fit(x[idx], y[idx])
    log.info(
        "baseline_pca_lr: %d rows, %d components, %d classes in %.1fs",
        len(idx), n_comp, len(model.classes_), time.perf_counter() - t0,
    )  # fmt: skip
    return model


def predict(
    model: HistGradientBoostingClassifier | Pipeline, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(labels, proba, classes) of a fitted baseline, ready for ``metrics.evaluate``."""
    proba = model.predict_proba(np.asarray(x))
    classes = [str(c) for c in model.classes_]
    labels = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return labels, proba, classes


def run_baselines(
    stars: pd.DataFrame,
    spectra: Spectra | None,
    model_version: str,
    seed: int = 0,
    templates: TemplateSetLike | None = None,
    eval_splits: Sequence[str] = ("val", "test"),
) -> dict[str, pd.DataFrame]:
    """Fit every baseline on the 'train' split and score it on ``eval_splits``, side by side.

    ``stars`` needs star_id, label and snr plus the photometry columns; ``spectra.row[i]`` is
    the spectrum of ``stars.iloc[i]`` (-1 = none). The split is ``features.split_of`` (the
    fusion model's). HGB is scored on every labelled star, the spectral baselines on those
    with a spectrum (the ``n`` column says how many). ``templates`` None skips the template fit.
    Returns the concatenated ``metrics``, ``class_metrics`` and ``confusion`` rows.
    """
    missing = {"star_id", "label", "snr"} - set(stars.columns)
    if missing:
        raise ValueError(f"stars lacks column(s) {sorted(missing)}")
    stars = stars[stars["label"].notna()].reset_index(drop=True)
    if spectra is not None and len(spectra.row) != len(stars):
        raise ValueError(
            f"spectra.row has {len(spectra.row)} entries, stars has {len(stars)} labelled rows; "
            "drop unlabeled stars from both before calling"
        )
    split = np.array([features.split_of(s) for s in stars["star_id"]], dtype=object)
    y = stars["label"].to_numpy(dtype=object).astype(str)
    snr = pd.to_numeric(stars["snr"], errors="coerce").to_numpy(np.float64)
    tables: list[dict[str, pd.DataFrame]] = []

    def score(branch: str, rows: np.ndarray, pred, proba, classes, suffixes=("",)) -> None:
        """Evaluate on each split; ``_spectra`` names the subset of stars with a spectrum."""
        with_spec = spectra.row[rows] >= 0 if spectra is not None else np.zeros(len(rows), bool)
        for name in eval_splits:
            for suffix in suffixes:
                sel = split[rows] == name
                if suffix == "_spectra":
                    sel &= with_spec
                if sel.any():
                    ev = evaluate(y[rows][sel], pred[sel], proba[sel], classes, snr[rows][sel])
                    tables.append(ev.to_tables(model_version, branch, name + suffix))

    train = split == "train"
    x_tab = tabular_matrix(stars)
    hgb = fit_hgb_baseline(x_tab[train], y[train], seed)
    everyone = np.arange(len(stars))
    score("baseline_hgb", everyone, *predict(hgb, x_tab), suffixes=("", "_spectra"))

    if spectra is not None:
        has = np.flatnonzero(spectra.row >= 0)
        r = spectra.row[has]
        x_spec = spectral_matrix(spectra.flux[r], spectra.ivar[r], spectra.mask[r], spectra.norm[r])
        tr = split[has] == "train"
        if len(set(y[has][tr])) >= 2:
            lr = fit_pca_lr_baseline(x_spec[tr], y[has][tr], seed)
            score("baseline_pca_lr", has, *predict(lr, x_spec), suffixes=("", "_spectra"))
        else:
            log.warning("baseline_pca_lr skipped: fewer than 2 classes among training spectra")
        if templates is not None:
            ev_rows = has[np.isin(split[has], list(eval_splits))]
            re = spectra.row[ev_rows]
            t0 = time.perf_counter()
            fit = TemplateFitter(templates).fit(spectra.flux[re], spectra.ivar[re])
            log.info("baseline_template: %d spectra in %.1fs", len(re), time.perf_counter() - t0)
            fitted = np.array([lab is not None for lab in fit.labels])
            pred = np.where(fitted, fit.labels, "unfit").astype(object)  # no fit = an error
            score("baseline_template", ev_rows, pred, fit.proba(), fit.classes, ("", "_spectra"))

    names = ("metrics", "class_metrics", "confusion")
    return {k: pd.concat([t[k] for t in tables], ignore_index=True) for k in names if tables}
