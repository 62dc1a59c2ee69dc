"""Place one spectrum on the common log-wavelength grid (:mod:`startrack.grid`).

SDSS co-adds are sampled on the grid's own lattice (log10 lambda = k * 1e-4), so the usual case
is an integer shift: values are copied, never interpolated, and the original flux is exactly
``flux[pix_start:pix_end]``. Anything else (another sampling, a redshifted or shifted lattice)
is linearly interpolated with inverse variance propagated, so no pixel claims more S/N than
its inputs had.

Masking: a pixel is masked when ivar <= 0, flux or ivar is not finite, an ``and_mask`` bit in
``bad_bits`` is set, or the spectrum does not cover it. The default :data:`BAD_AND_MASK_BITS`
leaves out SDSS's purely informational fiber bits (WHOPPER: "this fiber holds a very bright
source" and the SMEAR* bits): the real spec-2942-54521-0124 file sets WHOPPER on its whole red
half (S/N 94), and masking on it would discard half of every bright star. Pass
``bad_bits=ALL_BITS`` for the strict ``and_mask != 0`` rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from startrack import grid
from startrack.etl.errors import SpectrumError

#: SDSS SPPIXMASK bits (sdss.org DR8+ "bitmask_sppixmask") that are informational only.
INFORMATIONAL_BITS = {"WHOPPER": 9, "SMEARIMAGE": 10, "SMEARHIGHSN": 11, "SMEARMEDSN": 12}
ALL_BITS = 0xFFFFFFFF
BAD_AND_MASK_BITS = ALL_BITS & ~sum(1 << b for b in INFORMATIONAL_BITS.values())

#: An offset within this many pixels of an integer counts as "on the grid lattice".
EXACT_TOLERANCE = 1e-3


@dataclass
class GridSpectrum:
    """One spectrum on the common grid; field names match the ``spectra`` table."""

    flux: np.ndarray  # float32[NPIX], NaN where not covered
    ivar: np.ndarray  # float32[NPIX], 0 where masked
    mask: np.ndarray  # bool[NPIX], True = masked
    norm: float
    norm_method: str
    pix_start: int
    pix_end: int
    exact_shift: bool
    snr_median: float


def place_on_grid(
    loglam: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    and_mask: np.ndarray | None = None,
    bad_bits: int = BAD_AND_MASK_BITS,
) -> GridSpectrum:
    """Resample one spectrum onto the grid; raise :class:`SpectrumError` when nothing is usable."""
    loglam = np.asarray(loglam, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    lengths = {"loglam": loglam.size, "flux": flux.size, "ivar": ivar.size}
    if and_mask is not None:
        and_mask = np.asarray(and_mask)
        lengths["and_mask"] = and_mask.size
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} {v:,}" for k, v in lengths.items())
        raise SpectrumError(f"arrays of mismatched length: {detail}")
    if loglam.size < 2:
        raise SpectrumError(f"spectrum has {loglam.size} pixel(s); at least 2 are needed")
    if not np.all(np.isfinite(loglam)):
        raise SpectrumError("loglam (wavelength) contains NaN or inf values")
    step = np.diff(loglam)
    if not np.all(step > 0):
        row = int(np.argmax(step <= 0)) + 1
        raise SpectrumError(
            f"loglam is not strictly increasing (row {row}: {loglam[row - 1]:.5f} -> "
            f"{loglam[row]:.5f})"
        )

    bad = ~np.isfinite(flux) | ~np.isfinite(ivar) | ~(ivar > 0)
    if and_mask is not None:
        bad |= (and_mask.astype(np.int64) & bad_bits) != 0

    pix = grid.pixel_of(loglam)
    first, last = pix[0], pix[-1]
    if last < -EXACT_TOLERANCE or first > grid.NPIX - 1 + EXACT_TOLERANCE:
        lo, hi = 10 ** loglam[0], 10 ** loglam[-1]
        glo, ghi = grid.wavelength()[[0, -1]]
        raise SpectrumError(
            f"no overlap with the common grid: spectrum covers {lo:.0f}-{hi:.0f} A, "
            f"grid is {glo:.0f}-{ghi:.0f} A"
        )

    index = np.rint(pix)
    off = pix - index
    # The co-add stores loglam as float32: one value is good to ~2.4e-3 pixel, so the offset is
    # judged on the mean (exact to ~1e-5) and each pixel only within its float resolution.
    resolution = float(np.spacing(np.float32(grid.LOGLAM0 + grid.DLOGLAM * grid.NPIX)))
    per_pixel = EXACT_TOLERANCE + resolution / grid.DLOGLAM
    exact = (
        abs(float(off.mean())) <= EXACT_TOLERANCE
        and float(np.abs(off).max()) <= per_pixel
        and bool(np.all(np.diff(index) >= 1))
    )
    if exact:
        out_flux, out_ivar, out_mask, start, end = _shift(index.astype(np.int64), flux, ivar, bad)
    else:
        out_flux, out_ivar, out_mask, start, end = _interpolate(pix, flux, ivar, bad)

    usable = ~out_mask
    if not usable.any():
        raise SpectrumError(_why_nothing_usable(flux, ivar, and_mask, bad_bits, start, end))
    good = out_flux[usable].astype(np.float64)
    norm, method = float(np.median(good)), "median_unmasked"
    if not (np.isfinite(norm) and norm > 0):
        norm = float(np.median(np.abs(good)))
        method = "median_abs_unmasked (median flux <= 0)"
        if not (np.isfinite(norm) and norm > 0):
            raise SpectrumError("no usable flux: every unmasked pixel has flux 0")
    snr = float(np.median(good * np.sqrt(out_ivar[usable].astype(np.float64))))
    return GridSpectrum(
        flux=out_flux,
        ivar=out_ivar,
        mask=out_mask,
        norm=norm,
        norm_method=method,
        pix_start=start,
        pix_end=end,
        exact_shift=exact,
        snr_median=snr,
    )


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.full(grid.NPIX, np.nan, dtype=np.float32),
        np.zeros(grid.NPIX, dtype=np.float32),
        np.ones(grid.NPIX, dtype=bool),
    )


def _shift(
    index: np.ndarray, flux, ivar, bad
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Copy input pixels to their grid pixels (the lattice case: no interpolation)."""
    out_flux, out_ivar, out_mask = _empty()
    keep = (index >= 0) & (index < grid.NPIX)
    idx = index[keep]
    f = flux[keep]
    out_flux[idx] = np.where(np.isfinite(f), f, np.nan)
    out_ivar[idx] = np.where(bad[keep], 0.0, ivar[keep])
    out_mask[idx] = bad[keep]
    return out_flux, out_ivar, out_mask, int(idx[0]), int(idx[-1]) + 1


def _interpolate(pix, flux, ivar, bad) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Linear interpolation; var = sum w^2 / ivar; masked if any input with weight > 0 is bad."""
    out_flux, out_ivar, out_mask = _empty()
    start = max(0, int(np.ceil(pix[0] - 1e-9)))
    end = min(grid.NPIX, int(np.floor(pix[-1] + 1e-9)) + 1)
    if start >= end:
        return out_flux, out_ivar, out_mask, start, start
    target = np.arange(start, end, dtype=np.float64)
    right = np.clip(np.searchsorted(pix, target, side="right"), 1, pix.size - 1)
    left = right - 1
    w = np.clip((target - pix[left]) / (pix[right] - pix[left]), 0.0, 1.0)
    f = np.where(bad, 0.0, flux)
    var = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, ivar))
    wl, wr = 1.0 - w, w
    touched_bad = (bad[left] & (wl > 0)) | (bad[right] & (wr > 0))
    value = wl * f[left] + wr * f[right]
    variance = wl**2 * var[left] + wr**2 * var[right]
    with np.errstate(divide="ignore"):
        inv = np.where(touched_bad | (variance <= 0), 0.0, 1.0 / variance)
    out_flux[start:end] = np.where(touched_bad, np.nan, value)
    out_ivar[start:end] = inv
    out_mask[start:end] = touched_bad | (inv <= 0)
    return out_flux, out_ivar, out_mask, start, end


def _why_nothing_usable(flux, ivar, and_mask, bad_bits, start, end) -> str:
    """Name the cause when every grid pixel ended up masked."""
    n = flux.size
    if start >= end:
        return "no overlap with the common grid: the spectrum falls between grid pixels"
    nonfinite = int((~np.isfinite(flux)).sum())
    if nonfinite == n:
        return f"flux is NaN or inf in all {n:,} pixels"
    if not np.any(ivar > 0):
        return f"all-zero ivar: none of the {n:,} pixels has a positive inverse variance"
    if and_mask is not None and np.all((and_mask.astype(np.int64) & bad_bits) != 0):
        return f"and_mask flags all {n:,} pixels as bad"
    return (
        f"no usable pixel on the grid: every covered pixel has NaN/inf flux ({nonfinite:,}), "
        "ivar <= 0 or a bad and_mask bit"
    )
