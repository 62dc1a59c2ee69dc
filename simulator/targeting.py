"""Which catalog stars get a spectrum.

A survey drawn at random with SDSS's label mix holds a handful of B2-B7 or G5-G7 spectra next
to thousands of A0 and F5 ones, so the rare types are measured on a handful. ``types``
targeting gives each stretch of the MK sequence the same share of the spectra, as colour-
selected target categories (SEGUE's blue horizontal branch, F turn-off, K giants, ...) spread
them; ``random`` (the default) keeps the label mix, which is SDSS's own: its label tables are
those of its spectra.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from startrack.labels import normalize_subclass

#: Share of a survey's spectra observed from real library stars (``library_stars``), 0-1:
#: models trained without them type real stars far worse. The real stars work beside enough
#: simulated ones, not instead of them: 4,000 simulated and 1,000 real spectra typed MILES
#: 0.65-0.69 within 2.5 subtypes, 3,000 and 1,000 0.59-0.63, 2,000 and 2,000 0.58 (README, Real
#: stars, stops 39-40).
REAL_STARS_SHARE = 0.2
TARGETING = ("types", "random")


def check_targeting(targeting: str) -> str:
    """The targeting mode, or a clear error naming the choices."""
    if targeting not in TARGETING:
        raise ValueError(f"--targeting must be one of {', '.join(TARGETING)}, got {targeting!r}")
    return targeting


def mk_cell_widths(types: np.ndarray) -> np.ndarray:
    """How many MK subtypes each distinct type stands for: half-way to its neighbours.

    The ends mirror their inner half-gap (a lone type stands for one subtype).
    """
    t = np.asarray(types, dtype=float)
    if t.size == 1:
        return np.ones(1)
    gaps = np.diff(t)
    left = np.concatenate([gaps[:1], gaps])
    right = np.concatenate([gaps, gaps[-1:]])
    return (left + right) / 2.0


def spectroscopic_shares(counts: Mapping[str, float], targeting: str = "types") -> dict[str, float]:
    """Each subclass's share of the spectra.

    ``types``: subclasses on the MK sequence share their stars' part of the spectra in
    proportion to the MK stretch their type stands for (subclasses at one type, A0 and A0p,
    split it by their counts), so the spectra are uniform over MK types; subclasses off the
    sequence (white dwarfs, carbon stars, L and T dwarfs) keep their catalog share.
    ``random``: the catalog shares.
    """
    check_targeting(targeting)
    total = float(sum(counts.values()))
    if total <= 0:
        raise ValueError("no label counts to target")
    shares = {name: count / total for name, count in counts.items()}
    if targeting == "random":
        return shares
    types = {name: normalize_subclass(name).spectral_type for name in counts}
    on_mk = {name: t for name, t in types.items() if t is not None and counts[name] > 0}
    if not on_mk:
        return shares
    distinct = np.unique(list(on_mk.values()))
    widths = dict(zip(distinct.tolist(), mk_cell_widths(distinct).tolist(), strict=True))
    at_type: dict[float, float] = {}
    for name, t in on_mk.items():
        at_type[t] = at_type.get(t, 0.0) + counts[name]
    mk_share = sum(shares[name] for name in on_mk)
    span = sum(widths.values())
    for name, t in on_mk.items():
        shares[name] = mk_share * widths[t] / span * counts[name] / at_type[t]
    return shares


def selection_weights(subclasses: np.ndarray, shares: Mapping[str, float]) -> np.ndarray:
    """Per-star weights that draw a pool of labelled stars in the given subclass shares."""
    names, inverse, counts = np.unique(
        np.asarray(subclasses, dtype=str), return_inverse=True, return_counts=True
    )
    per_name = np.array([shares.get(name, 0.0) for name in names]) / counts
    return per_name[inverse]


def weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices drawn with probability proportional to ``weights``, in O(n).

    An exponential race (Efraimidis & Spirakis 2006): each item's key is an exponential draw
    over its weight and the k smallest keys win. NumPy's ``choice(replace=False, p=...)``
    redraws collisions and crawls on an 800,000-row table with skewed weights.
    """
    w = np.asarray(weights, dtype=float)
    if k > np.count_nonzero(w > 0):
        raise ValueError(f"cannot draw {k} stars: only {np.count_nonzero(w > 0)} can be drawn")
    if k == 0:
        return np.array([], dtype=int)
    with np.errstate(divide="ignore"):
        keys = rng.exponential(size=w.size) / w
    return np.sort(np.argpartition(keys, k - 1)[:k])
