"""Training targets: a star's place on the MK sequence, not only its subclass.

Real stars sit between the subclasses. A star whose own type is known (SDSS's ELODIE_SPTYPE:
the MK type of the best-matching ELODIE library star) gets a target split between the two
subclasses around that type, so the posterior mean (``quality.continuous_type``) learns the
type itself: an A5 star labelled A0 says ~25, not 20. The split keeps the label the larger
part (the type is clipped to the interval the label is nearest to), so the class answer is
still the label. Plus a share of the same split for the type blurred by a Gaussian:
neighbouring subtypes are less wrong than distant ones, and the target's mean stays the type
(a Gaussian over the classes themselves pulls it toward wherever classes are dense). Stars
without a type of their own are targeted at their label's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from startrack.labels import spectral_types


def star_types(labels_idx: np.ndarray, own: pd.Series | None, classes: list[str]) -> np.ndarray:
    """Each star's MK type for its target: its own type (e.g. ELODIE's) clipped to the
    interval its label is nearest to; the label's type where it has none; NaN off MK."""
    ct = spectral_types(classes)
    label_t = np.where(labels_idx >= 0, ct[np.clip(labels_idx, 0, None)], np.nan)
    if own is None:
        return label_t
    own_t = spectral_types(own)
    mk = np.sort(ct[np.isfinite(ct)])
    if mk.size < 2:
        return label_t
    mids = (mk[1:] + mk[:-1]) / 2
    lo_edges = np.r_[mk[0] - (mk[1] - mk[0]) / 2, mids]
    hi_edges = np.r_[mids, mk[-1] + (mk[-1] - mk[-2]) / 2]
    pos = np.searchsorted(mk, np.nan_to_num(label_t)).clip(0, mk.size - 1)
    clipped = np.clip(own_t, lo_edges[pos], hi_edges[pos])
    return np.where(np.isfinite(own_t) & np.isfinite(label_t), clipped, label_t)


def star_targets(
    y: torch.Tensor, t: torch.Tensor, types: torch.Tensor, share: float, sigma: float
) -> torch.Tensor:
    """(n, K) targets for class indices ``y`` and MK types ``t`` (NaN: one-hot on y).

    ``types``: (K,) MK number per class, NaN off MK."""
    k = types.numel()
    out = torch.nn.functional.one_hot(y, k).to(torch.float32)
    mk_cols = torch.nonzero(torch.isfinite(types)).flatten()
    on = torch.isfinite(t) & torch.isfinite(types[y])
    if mk_cols.numel() < 2 or not bool(on.any()):
        return out
    s, order = torch.sort(types[mk_cols])
    cols = mk_cols[order]
    tt = t[on].to(s.dtype)
    split = _split(tt, s, cols, k)
    if share > 0 and sigma > 0:  # the split of a type blurred by sigma: keeps the mean
        z = torch.as_tensor(_NODES, dtype=s.dtype)
        blurred = _split((tt[:, None] + sigma * z[None, :]).reshape(-1), s, cols, k)
        w = torch.as_tensor(_WEIGHTS, dtype=torch.float32)[None, :, None]
        gauss = (blurred.reshape(len(tt), len(_NODES), k) * w).sum(1)
        split = (1 - share) * split + share * gauss
    out[on] = split
    return out


#: Quadrature nodes (in sigma) and weights of a Gaussian blur of the type.
_NODES = np.linspace(-2.5, 2.5, 11)
_WEIGHTS = np.exp(-0.5 * _NODES**2) / np.exp(-0.5 * _NODES**2).sum()


def _split(tt: torch.Tensor, s: torch.Tensor, cols: torch.Tensor, k: int) -> torch.Tensor:
    """(m, K): each type split linearly between the two sorted class types ``s`` around it
    (columns ``cols``); beyond the ends, all on the end class."""
    tt = tt.clamp(float(s[0]), float(s[-1]))
    j = torch.searchsorted(s, tt).clamp(1, s.numel() - 1)
    a, b = s[j - 1], s[j]
    wb = ((tt - a) / (b - a).clamp(min=1e-6)).clamp(0, 1).to(torch.float32)
    out = torch.zeros(len(tt), k)
    out.scatter_(1, cols[j - 1][:, None], (1 - wb)[:, None])
    out.scatter_add_(1, cols[j][:, None], wb[:, None])
    return out


def type_targets(classes: list[str], share: float, sigma: float) -> torch.Tensor:
    """(K, K) targets of a star at its class's own type, one row per class."""
    types = torch.as_tensor(spectral_types(classes))
    y = torch.arange(len(classes))
    return star_targets(y, types[y], types, share, sigma)
