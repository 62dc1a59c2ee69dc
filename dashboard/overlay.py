"""Class templates for the spectrum overlay, put on the grid and scaled to the observed flux.

Templates come from ``startrack.simulator.templates.load_templates``: the built-in physical set, or
the real SDSS ``spEigenStar`` file when configured (``STARTRACK_TEMPLATES``). A template is in
arbitrary units and the observed spectrum carries flux calibration and reddening errors, so it
is fitted as ``flux ~ template * (c0 + c1 x + c2 x^2)``: a weighted linear least-squares fit of a
low-order polynomial times the template, using the ivar weights of unmasked pixels.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from startrack import grid

log = logging.getLogger(__name__)

POLY_DEGREE = 2


def warm_up(path: str | None) -> None:
    """Load the templates at start-up: ~0.6 s the first visitor would otherwise wait for."""
    _templates(path)


def template_set(path: str | None):
    """The template set the overlays (and the on-demand template fit) use."""
    return _templates(path)


@lru_cache(maxsize=2)
def _templates(path: str | None):
    from startrack.simulator.templates import load_templates

    try:
        return load_templates(Path(path) if path else None)
    except (OSError, ValueError) as exc:  # a bad configured file: fall back, say why
        log.warning("templates from %s unusable (%s); using the built-in set", path, exc)
        return load_templates(None)


@lru_cache(maxsize=128)
def template_on_grid(label: str, path: str | None = None) -> np.ndarray | None:
    """Template of a normalized label on the common grid (NaN where it has no coverage)."""
    if not label:
        return None
    ts = _templates(path)
    row = ts.index_of(label)
    if row is None:
        return None
    flux = np.asarray(ts.flux[row], dtype=np.float64)
    covered = flux != 0  # the SDSS file zero-pads its ends
    if covered.sum() < 10:
        return None
    lo, hi = np.flatnonzero(covered)[[0, -1]]
    on_grid = np.interp(grid.loglam(), ts.loglam[lo : hi + 1], flux[lo : hi + 1], np.nan, np.nan)
    on_grid.setflags(write=False)
    return on_grid


def scale_template(
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, template: np.ndarray,
    degree: int = POLY_DEGREE,
) -> np.ndarray | None:  # fmt: skip
    """Template times the least-squares polynomial that best matches the observed flux."""
    use = ~mask & (ivar > 0) & np.isfinite(flux) & np.isfinite(template) & (template > 0)
    if use.sum() < 3 * (degree + 1):
        return None
    x = np.linspace(-1.0, 1.0, len(flux))
    basis = np.vstack([template * x**k for k in range(degree + 1)]).T  # (npix, degree+1)
    w = np.sqrt(ivar[use].astype(np.float64))
    coef, *_ = np.linalg.lstsq(basis[use] * w[:, None], flux[use] * w, rcond=None)
    model = basis @ coef
    model[~np.isfinite(template)] = np.nan
    return model
