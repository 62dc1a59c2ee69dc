"""Scoring with a trained model: batch predictions (pure) and an on-demand single-star Predictor.

``predict_batch`` is a pure function of (model, meta, stars, spectra) so batch scoring can run
it anywhere (a Dask worker later). Probabilities are temperature-calibrated per head.
Stars without a spectrum get dense and fusion answers; their lstm answer is None.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from startrack.errors import NotReady
from startrack.grid import NPIX
from startrack.labels import spectral_types
from startrack.ml.features import (
    Standardizer,
    has_colour,
    normalized_spectra,
    raw_matrix,
    spectrum_channels,
    tabular_features,
    to_rest_frame,
)
from startrack.ml.model import HEADS, StarClassifier
from startrack.ml.quality import (
    OutlierModel,
    continuous_type,
    line_profiles,
    masked_fraction,
    quality_flags,
)

log = logging.getLogger(__name__)

SPECTRUM_BATCH = 256
PHOTOMETRY_BATCH = 16384
TOPK = 5


@dataclass
class Spectra:
    """Spectra for a set of stars: arrays (m, NPIX) + ``row`` (n_stars,) into them, -1 = none."""

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    norm: np.ndarray
    row: np.ndarray

    def __post_init__(self) -> None:
        self.row = np.asarray(self.row, dtype=np.int64)
        m = len(self.norm)
        for name in ("flux", "ivar", "mask"):
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape != (m, NPIX):
                raise ValueError(f"spectra.{name} has shape {arr.shape}, expected ({m}, {NPIX})")
        if len(self.row) and self.row.max() >= m:
            raise ValueError(f"spectra.row points past the {m} spectra given")

    @classmethod
    def single(cls, spectrum: Mapping | None) -> Spectra | None:
        """From one spectrum record (flux, ivar, mask, norm) as the warehouse stores it."""
        if spectrum is None:
            return None
        flux = np.asarray(spectrum["flux"], dtype=np.float32)[None]
        ivar = np.asarray(spectrum["ivar"], dtype=np.float32)[None]
        mask = np.asarray(spectrum["mask"], dtype=bool)[None]
        norm = np.asarray([spectrum.get("norm", np.nan) or np.nan], dtype=np.float32)
        return cls(flux, ivar, mask, norm, np.zeros(1, dtype=np.int64))


def standardizer_of(meta: dict) -> Standardizer:
    return Standardizer.from_dict(meta["features"]["stats"])


@torch.inference_mode()
def batched_logits(
    model: StarClassifier,
    stats: Standardizer,
    raw: np.ndarray,
    spectra: Spectra | None,
    spectrum_batch: int = SPECTRUM_BATCH,
    photometry_batch: int = PHOTOMETRY_BATCH,
    profiles: list | None = None,
) -> dict[str, np.ndarray]:
    """Raw logits per head, (n, K) float32; stars with and without spectra batched apart.

    ``profiles``, when given, collects (star rows, line profile, its inverse variance) of each
    spectrum batch from the same normalized, rest-frame arrays (quality.line_profiles), so the
    outlier score costs no second pass over the spectra."""
    model.eval()
    n = raw.shape[0]
    k = model.cfg.n_classes
    out = {h: np.zeros((n, k), dtype=np.float32) for h in HEADS}
    row = spectra.row if spectra is not None else np.full(n, -1, dtype=np.int64)
    if len(row) != n:
        raise ValueError(f"spectra.row has {len(row)} entries for {n} stars")
    with_spec = np.flatnonzero(row >= 0)
    without = np.flatnonzero(row < 0)
    for start in range(0, len(without), photometry_batch):
        idx = without[start : start + photometry_batch]
        tab = stats.apply(tabular_features(torch.from_numpy(raw[idx])))
        res = model(tab, None, torch.zeros(len(idx), dtype=torch.bool))
        for h in HEADS:
            out[h][idx] = res[h].numpy()
    for start in range(0, len(with_spec), spectrum_batch):
        idx = with_spec[start : start + spectrum_batch]
        r = row[idx]
        tab = stats.apply(tabular_features(torch.from_numpy(raw[idx])))
        fn, iv, m = normalized_spectra(
            spectra.flux[r], spectra.ivar[r], spectra.mask[r], spectra.norm[r]
        )
        if model.cfg.rest_frame:
            fn, iv, m = to_rest_frame(fn, iv, m, raw[idx, 0])
        if profiles is not None:
            profiles.append((idx, *line_profiles(fn, iv, m)))
        res = model(tab, spectrum_channels(fn, iv, m), torch.ones(len(idx), dtype=torch.bool))
        for h in HEADS:
            out[h][idx] = res[h].numpy()
    return out


def spectrum_profiles(
    model: StarClassifier, spectra: Spectra, raw: np.ndarray, idx: np.ndarray, batch: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binned line profiles (quality.line_profiles) of stars ``idx`` as the model sees them:
    normalized and, for a rest-frame model, shifted by the catalog redshift."""
    profiles, ivars = [], []
    for start in range(0, len(idx), batch):
        i = idx[start : start + batch]
        r = spectra.row[i]
        fn, iv, m = normalized_spectra(
            spectra.flux[r], spectra.ivar[r], spectra.mask[r], spectra.norm[r]
        )
        if model.cfg.rest_frame:
            fn, iv, m = to_rest_frame(fn, iv, m, raw[i, 0])
        p, w = line_profiles(fn, iv, m)
        profiles.append(p)
        ivars.append(w)
    if not profiles:
        return torch.zeros(0, 0), torch.zeros(0, 0)
    return torch.cat(profiles), torch.cat(ivars)


def _per_star(temps: dict, head: str, has: np.ndarray) -> np.ndarray:
    """(n, 1) temperature of ``head`` per star: its own for stars with a spectrum if fitted."""
    t = np.full((len(has), 1), float(temps.get(head, 1.0)), dtype=np.float32)
    if f"{head}_spectrum" in temps:
        t[has] = float(temps[f"{head}_spectrum"])
    return t


def calibrated_probs(logits: np.ndarray, temperature: float | np.ndarray) -> np.ndarray:
    """softmax(logits / T); T a scalar or one per row, shape (n, 1)."""
    t = torch.as_tensor(np.asarray(temperature, dtype=np.float32))
    return torch.softmax(torch.from_numpy(logits) / t, dim=1).numpy()


@dataclass
class BranchPrediction:
    """Top-k answer of one head for n stars (arrays; rows without an answer: label None)."""

    label: np.ndarray  # (n,) object
    prob: np.ndarray  # (n,) float64, NaN without an answer
    topk_labels: np.ndarray  # (n, k) object
    topk_probs: np.ndarray  # (n, k) float32
    answered: np.ndarray  # (n,) bool
    spectral_type: np.ndarray | None = None  # (n,) float64 posterior-mean MK number, NaN: none
    spectral_type_err: np.ndarray | None = None  # (n,) float64 posterior std
    flags: list[list[str]] | None = None  # per star (quality.quality_flags), same for all heads


def predict_arrays(
    model: StarClassifier,
    meta: dict,
    stars: pd.DataFrame,
    spectra: Spectra | None = None,
    topk: int = TOPK,
) -> dict[str, BranchPrediction]:
    """Calibrated top-k per head as arrays: the fast path for batch scoring."""
    labels = np.asarray(meta["labels"], dtype=object)
    types = spectral_types(labels)
    temps = meta.get("temperatures", {})
    # models since stop 31 read a spectrum's continuous type at temperatures of its own, near
    # the top class (quality.continuous_type); photometry and older models over every class at
    # the class temperature
    readout = meta.get("type_readout", {})
    type_temps, neighbours = readout.get("temperatures", {}), readout.get("neighbours")
    raw = raw_matrix(stars)
    detector = OutlierModel.from_dict(meta["outliers"]) if "outliers" in meta else None
    profiles: list | None = [] if detector is not None else None
    logits = batched_logits(model, standardizer_of(meta), raw, spectra, profiles=profiles)
    has = (spectra.row >= 0) if spectra is not None else np.zeros(len(stars), dtype=bool)
    # no colour: the photometry says nothing of the type, so dense does not answer (as lstm
    # does not without a spectrum), and neither does the fusion if there is no spectrum either
    colour = has_colour(raw)
    k = min(topk, len(labels))
    out = {}
    for h in HEADS:
        probs = calibrated_probs(logits[h], _per_star(temps, h, has))
        order = np.argsort(-probs, axis=1)[:, :k]
        top_p = np.take_along_axis(probs, order, axis=1).astype(np.float32)
        answered = {"lstm": has, "dense": colour, "fusion": has | colour}[h].copy()
        lab = np.where(answered, labels[order[:, 0]], None)
        prob = np.where(answered, top_p[:, 0].astype(np.float64), np.nan)
        mean, std = continuous_type(probs, types)
        key = h if h == "lstm" else f"{h}_spectrum"
        if key in type_temps and has.any():
            type_probs = calibrated_probs(logits[h][has], np.float32(type_temps[key]))
            mean[has], std[has] = continuous_type(type_probs, types, neighbours)
        mean, std = np.where(answered, mean, np.nan), np.where(answered, std, np.nan)
        out[h] = BranchPrediction(lab, prob, labels[order], top_p, answered, mean, std)
    masked = np.full(len(stars), np.nan)
    outlier = np.zeros(len(stars), dtype=bool)
    if spectra is not None and has.any():
        masked[has] = masked_fraction(spectra.mask[spectra.row[has]])
        for idx, profile, weight in profiles or ():  # none for models trained before it
            outlier[idx] = detector.score(profile, weight) > detector.threshold
    flags = quality_flags(
        has,
        raw[:, 6].astype(np.float64),
        masked,
        out["dense"].spectral_type,
        out["lstm"].spectral_type,
        out["dense"].label,
        out["lstm"].label,
        out["fusion"].prob,
        outlier,
    )
    for p in out.values():
        p.flags = flags
    return out


def predict_batch(
    model: StarClassifier,
    meta: dict,
    stars: pd.DataFrame,
    spectra: Spectra | None = None,
    topk: int = TOPK,
) -> pd.DataFrame:
    """One row per star: ``{head}_label``, ``{head}_prob``, ``{head}_topk`` for every head.

    ``{head}_topk`` is a list of (label, prob) pairs, best first. lstm columns are None/NaN for
    stars without a spectrum. ``star_id`` is carried over when present.
    """
    preds = predict_arrays(model, meta, stars, spectra, topk)
    out = pd.DataFrame(index=stars.index)
    if "star_id" in stars.columns:
        out["star_id"] = stars["star_id"].to_numpy()
    for h, p in preds.items():
        top = [
            list(zip(lab_row, p_row, strict=True)) if ok else None
            for lab_row, p_row, ok in zip(
                p.topk_labels.tolist(), p.topk_probs.round(6).tolist(), p.answered, strict=True
            )
        ]
        out[f"{h}_label"] = p.label
        out[f"{h}_prob"] = p.prob
        out[f"{h}_topk"] = top
        out[f"{h}_spectral_type"] = p.spectral_type
        out[f"{h}_spectral_type_err"] = p.spectral_type_err
    out["flags"] = preds["fusion"].flags
    return out


class Predictor:
    """On-demand scoring: loads the current model once, reloads when it changes.

    ``resolve`` returns the directory of the current model artifact (or None when there is
    none); it is asked at most every ``check_every_s`` seconds.
    """

    def __init__(self, resolve: Callable[[], Path | None], check_every_s: float = 2.0) -> None:
        self._resolve = resolve
        self._check_every = check_every_s
        self._checked_at = -np.inf
        self._dir: Path | None = None
        self._model: StarClassifier | None = None
        self._meta: dict | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_directory(cls, directory: str | Path) -> Predictor:
        path = Path(directory)
        return cls(lambda: path, check_every_s=float("inf"))

    def _refresh(self) -> None:
        from startrack.ml.artifact import load_artifact

        now = time.monotonic()
        if self._model is not None and now - self._checked_at < self._check_every:
            return
        self._checked_at = now
        current = self._resolve()
        if current is None:
            raise NotReady("no trained model: run `startrack train` first")
        current = Path(current)
        if current != self._dir or self._model is None:
            model, meta = load_artifact(current)
            self._model, self._meta, self._dir = model, meta, current
            log.info("loaded model %s", meta.get("version"))

    @property
    def meta(self) -> dict:
        with self._lock:
            self._refresh()
            return self._meta

    def predict_star(self, star: Mapping | pd.Series, spectrum: Mapping | None = None) -> dict:
        """-> {branches: {dense|lstm|fusion: {label, prob, topk} | None}, latency_ms,
        model_version}."""
        t0 = time.perf_counter()
        with self._lock:
            self._refresh()
            model, meta = self._model, self._meta
        row = pd.DataFrame([dict(star)])
        pred = predict_batch(model, meta, row, Spectra.single(spectrum)).iloc[0]
        branches: dict[str, dict | None] = {}
        for h in HEADS:
            if pred[f"{h}_label"] is None:
                branches[h] = None
                continue
            branches[h] = {
                "label": pred[f"{h}_label"],
                "prob": float(pred[f"{h}_prob"]),
                "topk": [(lab, float(p)) for lab, p in pred[f"{h}_topk"]],
                "spectral_type": _finite_or_none(pred[f"{h}_spectral_type"]),
                "spectral_type_err": _finite_or_none(pred[f"{h}_spectral_type_err"]),
            }
        return {
            "branches": branches,
            "flags": list(pred["flags"]),
            "latency_ms": (time.perf_counter() - t0) * 1e3,
            "model_version": meta.get("version"),
        }


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None
