"""When not to trust a prediction: a continuous spectral type with its spread, and flags.

The continuous type is the posterior mean of the MK number (O0=0 ... M9=69) over the model's
class probabilities, its uncertainty the posterior standard deviation about it: a star the
model splits between K1 and K3 says ~52 +- 1 instead of picking one. It is given only when
most of the probability sits on MK classes (not for a white dwarf or a carbon star). Models
since stop 31 read it at a temperature of its own (fitted on validation stars' own types)
and over the top MK class and its neighbours on the sequence only (``neighbours``): a mean
over every class is pulled toward the middle of the sequence by the small probabilities far
off, and the class temperature, fitted to the labels, is too sharp to say where between two
classes a star sits (an A5 between A0 and F2 read as A2).

Flags (a list per star, empty when nothing is wrong; ``list_contains(flags, 'low_snr')`` in
SQL) say why a prediction may be off, from what the model was given and how it answered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from startrack.labels import spectral_types
from startrack.ml.continuum import smooth_continuum

#: Median S/N per pixel below this: lines are barely above the noise.
LOW_SNR = 5.0
#: Fraction of the covered spectrum that is masked above this.
HEAVY_MASKING = 0.25
#: Dense (photometry) and LSTM (spectrum) types further apart than this, in subtypes.
DISAGREE_SUBTYPES = 5.0
#: Fusion probability of its own answer below this.
LOW_CONFIDENCE = 0.3
#: Share of the probability on MK classes needed to give a continuous type.
MIN_MK_MASS = 0.5

FLAGS = ("low_snr", "heavy_masking", "branches_disagree", "low_confidence", "out_of_distribution")


def continuous_type(
    probs: np.ndarray, types: np.ndarray, neighbours: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the MK number under probs (n, K); NaN where MK mass < MIN_MK_MASS.

    ``neighbours``: the mean over the most probable MK class and this many classes either
    side of it on the MK sequence (None: over every MK class). The std is always the whole
    posterior's spread about the mean, so a star split between far classes says so."""
    mk = np.isfinite(types)
    p = probs[:, mk].astype(np.float64)
    t = types[mk]
    mass = p.sum(axis=1)
    ok = mass >= MIN_MK_MASS
    safe = np.where(ok, mass, 1.0)[:, None]
    if neighbours is None:
        mean = (p * t).sum(axis=1, keepdims=True) / safe
    else:
        rank = np.argsort(np.argsort(t, kind="stable"), kind="stable")  # place on the sequence
        top = rank[p.argmax(axis=1)]
        near = np.abs(rank[None, :] - top[:, None]) <= neighbours
        q = np.where(near, p, 0.0)
        mean = (q * t).sum(axis=1, keepdims=True) / np.maximum(q.sum(axis=1, keepdims=True), 1e-30)
    std = np.sqrt((p * (t - mean) ** 2).sum(axis=1, keepdims=True) / safe)
    return np.where(ok, mean[:, 0], np.nan), np.where(ok, std[:, 0], np.nan)


def masked_fraction(mask: np.ndarray) -> np.ndarray:
    """Masked share of each spectrum between its first and last good pixel (n,)."""
    good = ~mask.astype(bool)
    n = good.shape[1]
    any_good = good.any(axis=1)
    first = np.argmax(good, axis=1)
    last = n - 1 - np.argmax(good[:, ::-1], axis=1)
    span = np.where(any_good, last - first + 1, 1)
    return np.where(any_good, 1.0 - good.sum(axis=1) / span, 1.0)


def quality_flags(
    has_spectrum: np.ndarray,
    snr: np.ndarray,
    masked: np.ndarray,
    dense_type: np.ndarray,
    lstm_type: np.ndarray,
    dense_label: np.ndarray,
    lstm_label: np.ndarray,
    fusion_prob: np.ndarray,
    outlier: np.ndarray | None = None,
) -> list[list[str]]:
    """Per-star flag lists. ``masked`` is NaN for stars without a spectrum; ``outlier`` True
    where the spectrum is unlike every class seen in training (OutlierModel)."""
    with np.errstate(invalid="ignore"):
        low_snr = has_spectrum & ~(snr >= LOW_SNR)
        heavy = has_spectrum & (masked > HEAVY_MASKING)
        far = np.abs(dense_type - lstm_type) > DISAGREE_SUBTYPES
        families = (_no_type(dense_type) != _no_type(lstm_type)) & (dense_label != lstm_label)
        both = pd.notna(dense_label) & pd.notna(lstm_label)  # a branch with no answer can't
        disagree = has_spectrum & both & (far | families)
        unsure = ~(fusion_prob >= LOW_CONFIDENCE)
    odd = np.zeros(len(unsure), bool) if outlier is None else has_spectrum & outlier
    code = np.zeros(len(unsure), dtype=np.int64)
    for bit, on in enumerate((low_snr, heavy, disagree, unsure, odd)):
        code |= on.astype(np.int64) << bit
    # one list per combination of flags, shared by the stars that have it (never mutated):
    # 200,000 photometry-only stars cost a lookup each, not a Python loop over five flags
    lists = [[f for bit, f in enumerate(FLAGS) if c >> bit & 1] for c in range(1 << len(FLAGS))]
    return [lists[c] for c in code.tolist()]


def _no_type(x: np.ndarray) -> np.ndarray:
    return ~np.isfinite(x.astype(np.float64))


def type_metrics(actual_labels, predicted_types) -> dict[str, float]:
    """Continuous-type scores over MK stars: median |error| in subtypes, within 1 / 2.5 / 5.

    A star whose answer has no continuous type counts as a miss. Empty when no MK star."""
    truth = spectral_types(np.asarray(actual_labels, dtype=object))
    return type_scores(truth, predicted_types)[0]


def type_scores(
    truth_types: np.ndarray, predicted_types, prefix: str = "type"
) -> tuple[dict[str, float], int]:
    """``prefix``_median_error / _within_1 / _within_2_5 / _within_5 over the stars with a
    finite true type, and how many they are. A star without a predicted type is a miss."""
    truth = np.asarray(truth_types, dtype=np.float64)
    pred = np.asarray(predicted_types, dtype=np.float64)
    known = np.isfinite(truth)
    if not known.any():
        return {}, 0
    err = np.abs(pred[known] - truth[known])
    err = np.where(np.isfinite(err), err, np.inf)
    return {
        f"{prefix}_median_error": float(np.median(err)),
        f"{prefix}_within_1": float((err <= 1.0).mean()),
        f"{prefix}_within_2_5": float((err <= 2.5).mean()),
        f"{prefix}_within_5": float((err <= 5.0).mean()),
    }, int(known.sum())


# ----------------------------------------------------------------------------- outliers
#: Pixels per bin of the line profile the outlier score compares (8 px = 550 km/s).
PROFILE_BIN = 8
#: Validation quantile of the outlier score above which a spectrum is out of distribution.
OOD_QUANTILE = 0.99


def line_profiles(
    flux_n: torch.Tensor, ivar_n: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(profile, inverse variance) per bin: continuum-normalized flux - 1, binned.

    Continuum-normalized so reddening and calibration tilts do not make a star an outlier;
    only its lines (or their absence) can."""
    keep = (~mask).float()
    cont = smooth_continuum(flux_n, mask.float()).clamp(min=1e-6)
    ratio = (flux_n / cont - 1.0) * keep
    w = ivar_n.clamp(min=0) * cont**2 * keep
    num = F.avg_pool1d((ratio * w).unsqueeze(1), PROFILE_BIN, ceil_mode=True)[:, 0]
    wsum = F.avg_pool1d(w.unsqueeze(1), PROFILE_BIN, ceil_mode=True)[:, 0] * PROFILE_BIN
    profile = torch.where(wsum > 0, num * PROFILE_BIN / wsum.clamp(min=1e-12), 0.0)
    return profile, wsum


@dataclass
class OutlierModel:
    """Per-class mean line profile and spread from the training spectra; a spectrum's score
    is its smallest reduced chi-square against any class (noise + the class's own spread),
    so ~1 for a star like the training stars and large for anything else (a galaxy, a
    quasar, a broken spectrum, a star type the model never saw)."""

    means: np.ndarray  # (K, bins)
    variances: np.ndarray  # (K, bins) spread of training stars around the mean
    threshold: float

    def score(self, profile: torch.Tensor, ivar: torch.Tensor) -> np.ndarray:
        means = torch.as_tensor(self.means, dtype=torch.float32)
        var = torch.as_tensor(self.variances, dtype=torch.float32)
        noise = torch.where(ivar > 0, 1.0 / ivar.clamp(min=1e-12), torch.inf)  # (B, bins)
        used = (ivar > 0).float()
        out = torch.full((profile.shape[0],), float("inf"))
        for k in range(means.shape[0]):  # K small: a loop keeps memory at (B, bins)
            chi = (profile - means[k]) ** 2 / (noise + var[k]) * used
            out = torch.minimum(out, chi.sum(1) / used.sum(1).clamp(min=1))
        return out.numpy().astype(np.float64)

    @classmethod
    def fit(
        cls, profile: torch.Tensor, ivar: torch.Tensor, y: np.ndarray, n_classes: int
    ) -> OutlierModel:
        used = (ivar > 0).float()
        means = np.zeros((n_classes, profile.shape[1]), np.float32)
        variances = np.full_like(means, 1e-2)
        for k in range(n_classes):
            rows = torch.as_tensor(np.flatnonzero(y == k))
            if len(rows) < 2:
                continue
            w, p = used[rows], profile[rows]
            n = w.sum(0).clamp(min=1)
            m = (p * w).sum(0) / n
            v = ((p - m) ** 2 * w).sum(0) / n
            means[k], variances[k] = m.numpy(), np.maximum(v.numpy(), 1e-4)
        return cls(means, variances, float("inf"))

    def to_dict(self) -> dict:
        return {
            "bin": PROFILE_BIN,
            "means": np.round(self.means, 5).tolist(),
            "variances": np.round(self.variances, 6).tolist(),
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, d: dict) -> OutlierModel:
        return cls(
            np.asarray(d["means"], np.float32), np.asarray(d["variances"], np.float32),
            float(d["threshold"]),
        )  # fmt: skip
