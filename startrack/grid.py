"""The one common log-wavelength grid every spectrum in the warehouse is stored on.

SDSS and BOSS co-adds are sampled on a shared lattice, log10(lambda/A) = k * 1e-4, so placing
a spectrum on this grid is an exact integer shift (no interpolation, no loss). The grid spans
BOSS coverage (3548-10399 A), a superset of SDSS-I/II (3800-9200 A); pixels a spectrum does
not cover are stored with ivar = 0 (masked).
"""

from __future__ import annotations

import numpy as np

LOGLAM0: float = 3.5500  #: log10(lambda/A) of pixel 0 (3548.1 A)
DLOGLAM: float = 1e-4  #: step in dex, as SDSS co-adds (69 km/s per pixel)
NPIX: int = 4671  #: pixels: up to log10(lambda) = 4.0170 (10399.3 A)

#: Speed of light in km/s, for radial-velocity shifts on the log grid.
C_KMS: float = 299_792.458


def loglam() -> np.ndarray:
    """log10(wavelength / Angstrom) of every grid pixel (float64)."""
    return LOGLAM0 + DLOGLAM * np.arange(NPIX)


def wavelength() -> np.ndarray:
    """Vacuum wavelength in Angstrom of every grid pixel (float64)."""
    return 10.0 ** loglam()


def pixel_of(loglam_value: float | np.ndarray) -> np.ndarray:
    """Fractional grid pixel of a log-wavelength (pixel 0 at LOGLAM0)."""
    return (np.asarray(loglam_value, dtype=np.float64) - LOGLAM0) / DLOGLAM


def values_on_grid(loglam_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A sampled curve (template, model) on the grid: float64 (NPIX,), NaN outside its coverage.

    Values sampled on the 1e-4 dex lattice land by exact integer offset (unchanged); anything
    else is linearly interpolated. Measured spectra, which carry an inverse variance and a
    mask, go through ``startrack.etl.resample.place_on_grid`` instead.
    """
    li = np.asarray(loglam_values, dtype=np.float64)
    vi = np.asarray(values, dtype=np.float64)
    out = np.full(NPIX, np.nan)
    good = np.isfinite(li) & np.isfinite(vi)
    if not good.any():
        return out
    li, vi = li[good], vi[good]
    pix = pixel_of(li)
    offset = np.rint(pix)
    if np.all(np.abs(pix - offset) < 1e-3) and np.all(np.diff(offset) > 0):
        idx = offset.astype(np.int64)
        inside = (idx >= 0) & (idx < NPIX)
        out[idx[inside]] = vi[inside]
    else:
        order = np.argsort(li)
        li, vi = li[order], vi[order]
        target = loglam()
        inside = (target >= li[0]) & (target <= li[-1])
        out[inside] = np.interp(target[inside], li, vi)
    return out


def air_to_vacuum(wave_air: float | np.ndarray) -> np.ndarray:
    """Air to vacuum wavelength (Angstrom): SDSS spectra are in vacuum, line lists often in air.

    Morton (2000) / Piskunov (VALD3) index of refraction, s = 1e4 / lambda_air [1/um]:
    n - 1 = 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s^2)
            + 1.599740894897e-4 / (38.92568793293 - s^2)
    """
    wave = np.asarray(wave_air, dtype=np.float64)
    s2 = (1e4 / wave) ** 2
    n = (
        1.0
        + 8.336624212083e-5
        + 2.408926869968e-2 / (130.1065924522 - s2)
        + 1.599740894897e-4 / (38.92568793293 - s2)
    )
    return wave * n
