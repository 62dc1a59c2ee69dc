"""The SDSS pipeline's own classifier as a baseline: best chi-square against stellar templates.

For every template t and radial-velocity shift s (whole pixels on the log grid, so the shift
is exact: 1 pixel = 69 km/s) the observed spectrum f (inverse variance w) is fitted by
``T_s(lambda) * P(lambda)`` with P a low-order Legendre polynomial, by weighted linear least
squares; the prediction is the template (mapped to its normalized label) of lowest chi-square.

Speed comes from one observation: with the polynomial basis fixed, the normal equations
``A = X^T W X`` and ``b = X^T W f`` (X = T_s * P_k) are *linear in w and w*f*. So for every
(template, shift) we precompute the columns ``T_s^2 P_k P_l`` and ``T_s P_k`` once, and one
matrix product ``[w | w*f] @ columns`` yields A and b for a whole batch of spectra; the
4x4 solves are batched too. chi2 = sum(w f^2) - b . a at the optimum.

All (template, shift) pairs are fitted over the same pixels (those every shifted template
covers), so chi-squares are comparable and the reduced chi-square ranks exactly as chi2.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.polynomial import legendre

from startrack import grid
from startrack.labels import normalize_subclass, sort_key

log = logging.getLogger(__name__)

#: Best two labels whose reduced chi-squares differ by less than this fraction: ambiguous.
AMBIGUOUS_RCHI2 = 0.01
#: Pixel shift in km/s on the common grid (ln(10) * c * DLOGLAM).
KMS_PER_PIXEL: float = float(np.log(10.0) * grid.C_KMS * grid.DLOGLAM)


class TemplateSetLike(Protocol):
    """What a template set must offer (startrack.simulator.templates.TemplateSet does)."""

    names: list[str]  # raw SDSS names, e.g. 'K3', 'M2V', 'Carbon_lines'
    loglam: np.ndarray  # (npix,) shared or (n_templates, npix): log10(lambda / A)
    flux: np.ndarray  # (n_templates, npix), arbitrary units


@dataclass(frozen=True)
class TemplateFitResult:
    """Per spectrum: the winning template, its label, shift and chi-squares."""

    labels: np.ndarray  # (n,) object: normalized label of the best template (None if unfit)
    template_names: np.ndarray  # (n,) object: raw name of the best template
    velocity_kms: np.ndarray  # (n,) best shift in km/s (positive = redshift)
    rchi2: np.ndarray  # (n,) best reduced chi-square (NaN when too few good pixels)
    label_rchi2: np.ndarray  # (n, n_labels) best reduced chi-square per label in ``classes``
    classes: list[str]  # distinct template labels, MK sequence order
    dof: np.ndarray  # (n,) degrees of freedom of the fit

    @property
    def runner_up(self) -> tuple[np.ndarray, np.ndarray]:
        """(label, reduced chi-square) of the second-best label per spectrum."""
        order = np.argsort(np.nan_to_num(self.label_rchi2, nan=np.inf), axis=1)
        second = order[:, 1] if self.label_rchi2.shape[1] > 1 else order[:, 0]
        rchi2 = np.take_along_axis(self.label_rchi2, second[:, None], axis=1)[:, 0]
        return np.asarray(self.classes, dtype=object)[second], rchi2

    @property
    def ambiguous(self) -> np.ndarray:
        """The SDSS pipeline's warning: the best two labels' reduced chi-squares are within
        1 % of each other (its SMALL_DELTA_CHI2 idea), so the fit cannot tell them apart."""
        _, second = self.runner_up
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.rchi2) & (second - self.rchi2 <= AMBIGUOUS_RCHI2 * self.rchi2)

    def proba(self, temperature: float = 1.0) -> np.ndarray:
        """Relative likelihood exp(-dchi2 / 2T) per label, normalized; an honest-but-sharp
        stand-in for probabilities (chi2 differences of high-S/N spectra are large)."""
        chi2 = self.label_rchi2 * self.dof[:, None]
        d = chi2 - np.nanmin(chi2, axis=1, keepdims=True)
        p = np.exp(-0.5 * np.nan_to_num(d, nan=np.inf) / temperature)
        s = p.sum(axis=1, keepdims=True)
        uniform = np.full_like(p, 1.0 / p.shape[1])
        return np.where(s > 0, p / np.where(s > 0, s, 1.0), uniform)


class TemplateFitter:
    """Templates placed on the common grid with the per-shift design columns precomputed."""

    def __init__(
        self,
        templates: TemplateSetLike,
        max_velocity_kms: float = 300.0,
        poly_degree: int = 3,
        min_good_pixels: int = 100,
    ) -> None:
        names = [str(n).strip() for n in templates.names]
        flux = np.asarray(templates.flux, dtype=np.float64)
        if flux.ndim != 2 or flux.shape[0] != len(names) or len(names) == 0:
            raise ValueError(
                f"template flux must be (n_templates={len(names)}, npix), got {flux.shape}"
            )
        label_of = [normalize_subclass(n).label for n in names]
        keep = [i for i, lab in enumerate(label_of) if lab is not None]
        if len(keep) < len(names):
            log.warning(
                "dropping templates without a label: %s", set(names) - {names[i] for i in keep}
            )
        self.names = np.asarray([names[i] for i in keep], dtype=object)
        self.template_labels = np.asarray([label_of[i] for i in keep], dtype=object)
        self.classes = sorted(set(self.template_labels), key=sort_key)
        self.poly_degree = poly_degree
        self.min_good_pixels = min_good_pixels

        on_grid = _templates_on_grid(np.asarray(templates.loglam, dtype=np.float64), flux)[keep]
        smax = int(np.floor(max_velocity_kms / KMS_PER_PIXEL + 1e-9))
        self.shifts = np.arange(-smax, smax + 1)

        # Pixels where every template is defined under every shift: one fit region for all.
        defined = np.all(np.isfinite(on_grid), axis=0)
        common = defined.copy()
        for s in self.shifts:
            common &= _shift(defined, s, fill=False)
        if common.sum() < min_good_pixels:
            raise ValueError(
                f"templates share only {int(common.sum())} grid pixels over shifts "
                f"{self.shifts.min()}..{self.shifts.max()}; need {min_good_pixels}"
            )
        lo, hi = np.flatnonzero(common)[[0, -1]]
        self.pix = slice(int(lo), int(hi) + 1)
        self._common = common[self.pix]  # gaps inside (template NaNs) get zero weight
        npix = hi + 1 - lo

        x = np.linspace(-1.0, 1.0, npix)
        basis = legendre.legvander(x, poly_degree)  # (npix, K)
        k = poly_degree + 1
        iu, ju = np.triu_indices(k)
        self._iu, self._ju, self._k = iu, ju, k
        # For each (template, shift): columns T^2 P_i P_j (upper triangle) then T P_i.
        cols = []
        for t in on_grid:
            for s in self.shifts:
                ts = _shift(np.nan_to_num(t, nan=0.0), s, fill=0.0)[self.pix]
                cols.append(
                    np.concatenate(
                        [(ts**2)[:, None] * basis[:, iu] * basis[:, ju], ts[:, None] * basis],
                        axis=1,
                    )
                )
        # (npix, n_pairs * ncol): one matrix product scores every pair.
        self._ncol = len(iu) + k
        self._cols = np.concatenate(cols, axis=1)
        self._n_pairs = len(on_grid) * len(self.shifts)
        log.info(
            "template fitter: %d templates x %d shifts over grid pixels %d..%d",
            len(on_grid),
            len(self.shifts),
            lo,
            hi,
        )

    def fit(self, flux: np.ndarray, ivar: np.ndarray, batch_size: int = 256) -> TemplateFitResult:
        """Fit spectra on the common grid: flux (n, NPIX) NaN where absent, ivar 0 = masked."""
        flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
        ivar = np.atleast_2d(np.asarray(ivar, dtype=np.float64))
        if flux.shape != ivar.shape or flux.shape[1] != grid.NPIX:
            raise ValueError(
                f"flux and ivar must both be (n, {grid.NPIX}) on the common grid, "
                f"got {flux.shape} and {ivar.shape}"
            )
        n = len(flux)
        n_t, n_s = len(self.names), len(self.shifts)
        chi2 = np.empty((n, n_t, n_s))
        ngood = np.empty(n, dtype=np.int64)
        for start in range(0, n, batch_size):
            sl = slice(start, min(n, start + batch_size))
            chi2[sl], ngood[sl] = self._chi2_batch(flux[sl, self.pix], ivar[sl, self.pix])

        dof = (ngood - self._k).astype(np.float64)
        chi2 = np.nan_to_num(chi2, nan=np.inf)  # a failed solve can never win
        ok = (ngood >= self.min_good_pixels) & np.isfinite(chi2).any(axis=(1, 2))
        flat = chi2.reshape(n, -1)
        best = flat.argmin(axis=1)
        bt, bs = np.divmod(best, n_s)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_template = np.where(ok[:, None], chi2.min(axis=2) / dof[:, None], np.nan)
            rchi2 = np.where(ok, flat[np.arange(n), best] / dof, np.nan)
        label_rchi2 = np.stack(
            [per_template[:, self.template_labels == lab].min(axis=1) for lab in self.classes],
            axis=1,
        )
        labels = np.where(ok, self.template_labels[bt], None)
        names = np.where(ok, self.names[bt], None)
        return TemplateFitResult(
            labels=labels.astype(object),
            template_names=names.astype(object),
            velocity_kms=np.where(ok, self.shifts[bs] * KMS_PER_PIXEL, np.nan),
            rchi2=rchi2,
            label_rchi2=label_rchi2,
            classes=list(self.classes),
            dof=dof,
        )

    def _chi2_batch(self, f: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bad = ~np.isfinite(f) | ~np.isfinite(w) | (w <= 0) | ~self._common
        w = np.where(bad, 0.0, w)
        f = np.where(bad, 0.0, f)
        # Scale each spectrum to unit median |flux|: chi2 is invariant, conditioning improves.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-masked rows
            scale = np.nanmedian(np.where(bad, np.nan, np.abs(f)), axis=1)
        scale[~(scale > 0)] = 1.0
        f = f / scale[:, None]
        w = w * scale[:, None] ** 2
        nb, k, ncol = len(f), self._k, self._ncol
        nt = len(self._iu)
        sums = np.concatenate([w, w * f], axis=0) @ self._cols  # (2nb, pairs*ncol)
        sums = sums.reshape(2, nb, self._n_pairs, ncol)
        a = np.empty((nb, self._n_pairs, k, k))
        a[..., self._iu, self._ju] = sums[0, :, :, :nt]
        a[..., self._ju, self._iu] = sums[0, :, :, :nt]
        b = sums[1, :, :, nt:]
        # Tiny ridge keeps templates that are ~0 over the good pixels solvable (they lose).
        tr = np.trace(a, axis1=-2, axis2=-1)[..., None, None]
        a = a + (1e-10 * tr + 1e-300) * np.eye(k)
        coef = np.linalg.solve(a, b[..., None])[..., 0]
        f2 = np.einsum("np,np->n", w, f * f)
        chi2 = f2[:, None] - np.einsum("npk,npk->np", b, coef)
        chi2 = np.maximum(chi2, 0.0)
        return chi2.reshape(nb, len(self.names), len(self.shifts)), (~bad).sum(axis=1)


def _shift(values: np.ndarray, s: int, fill: float | bool) -> np.ndarray:
    """values moved by s pixels to the red (s > 0) or blue, exposing ``fill``."""
    out = np.full_like(values, fill)
    if s > 0:
        out[s:] = values[:-s]
    elif s < 0:
        out[:s] = values[-s:]
    else:
        out[:] = values
    return out


def _templates_on_grid(loglam: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """(n_templates, NPIX) on the common grid, NaN outside each template's coverage."""
    n_t = flux.shape[0]
    lam = np.broadcast_to(loglam, flux.shape) if loglam.ndim == 1 else loglam
    if lam.shape != flux.shape:
        raise ValueError(f"template loglam shape {loglam.shape} does not match flux {flux.shape}")
    rows = [grid.values_on_grid(lam[i], flux[i]) for i in range(n_t)]
    return np.stack(rows) if rows else np.full((0, grid.NPIX), np.nan)


def fit_templates(
    templates: TemplateSetLike,
    flux: np.ndarray,
    ivar: np.ndarray,
    max_velocity_kms: float = 300.0,
    poly_degree: int = 3,
) -> TemplateFitResult:
    """One-call convenience: build a :class:`TemplateFitter` and fit ``flux``/``ivar``."""
    return TemplateFitter(templates, max_velocity_kms, poly_degree).fit(flux, ivar)
