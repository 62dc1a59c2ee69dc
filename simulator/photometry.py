"""Synthetic SDSS ugriz AB photometry through the speclite ``sdss2010`` filter curves.

AB maggies are linear in f_lambda, so for spectra on a fixed wavelength grid we integrate with a
precomputed weight matrix W (npix x 5): maggies = flux @ W. The weights are the AB integral
    maggies = int f_lambda R lambda dlambda / int (3631 Jy) c R / lambda dlambda
evaluated with the trapezoid rule on the grid; tests check them against speclite's own
``get_ab_maggies``. This makes 800,000-star catalogs a matrix product, not 4 million calls.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from startrack.vocabulary import BANDS

FILTER_NAMES: tuple[str, ...] = tuple(f"sdss2010-{b}" for b in BANDS)

#: Flux unit of SDSS spectra, erg/s/cm^2/A.
FLUX_UNIT: float = 1e-17
_AB_FNU = 3631e-23  # erg/s/cm^2/Hz
_C_ANGSTROM_S = 2.997_924_58e18

#: 5-sigma-ish depth parameter m0 per band of the error model (SDSS u and z are shallower).
_ERR_M0 = {"u": 20.8, "g": 21.0, "r": 21.0, "i": 20.1, "z": 19.3}
_ERR_FLOOR = 0.015  # calibration floor (mag)
_ERR_SKY = 0.006  # background-limited term coefficient
_ERR_SRC = 0.0082  # faint-end steepening


@lru_cache(maxsize=1)
def sdss_filters():
    """The SDSS 2010 filter curves shipped with speclite (no download)."""
    import speclite.filters

    return speclite.filters.load_filters("sdss2010-*")


def _check_coverage(wavelength: np.ndarray) -> None:
    for response in sdss_filters():
        if wavelength[0] > response.wavelength[0] or wavelength[-1] < response.wavelength[-1]:
            raise ValueError(
                f"spectrum grid {wavelength[0]:.0f}-{wavelength[-1]:.0f} A does not cover filter "
                f"{response.name} ({response.wavelength[0]:.0f}-{response.wavelength[-1]:.0f} A)"
            )


def maggie_weights(wavelength: np.ndarray) -> np.ndarray:
    """W (npix, 5) with maggies = flux @ W for flux in FLUX_UNIT erg/s/cm^2/A on `wavelength`."""
    wave = np.asarray(wavelength, dtype=np.float64)
    _check_coverage(wave)
    dl = np.gradient(wave)  # trapezoid weights on a smooth grid
    dl[0] *= 0.5
    dl[-1] *= 0.5
    weights = np.empty((wave.size, len(BANDS)))
    for j, response in enumerate(sdss_filters()):
        r = np.interp(wave, response.wavelength, response.response, left=0.0, right=0.0)
        norm = np.sum(r / wave * dl) * _AB_FNU * _C_ANGSTROM_S
        weights[:, j] = r * wave * dl * FLUX_UNIT / norm
    return weights


@lru_cache(maxsize=8)
def _cached_weights(start: float, step: float, n: int) -> np.ndarray:
    return maggie_weights(10.0 ** (start + step * np.arange(n)))


def weights_for_loglam(loglam: np.ndarray) -> np.ndarray:
    """Cached :func:`maggie_weights` for a uniform log-lambda grid."""
    step = float(np.round(loglam[1] - loglam[0], 10))
    return _cached_weights(round(float(loglam[0]), 8), step, int(loglam.size))


def ab_maggies(loglam: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """AB maggies (..., 5) of spectra `flux` (..., npix) in FLUX_UNIT on a uniform log grid."""
    return np.asarray(flux, dtype=np.float64) @ weights_for_loglam(loglam)


def ab_magnitudes(loglam: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """AB magnitudes (..., 5); raises if a band has no positive flux."""
    maggies = ab_maggies(loglam, flux)
    if np.any(maggies <= 0):
        raise ValueError("a spectrum has non-positive flux in an SDSS band")
    return -2.5 * np.log10(maggies)


def psf_mag_error(mag: np.ndarray, band: str) -> np.ndarray:
    """SDSS-like PSF magnitude error: 0.02 at r = 17, ~0.12 at 21, ~0.25 at 22."""
    x = 10.0 ** (0.4 * (np.asarray(mag, dtype=np.float64) - _ERR_M0[band]))
    return np.sqrt(_ERR_FLOOR**2 + _ERR_SKY * x + _ERR_SRC * x * x)


#: SDSS asinh softening parameters b (maggies) per band (Lupton, Gunn & Szalay 1999; SDSS DR docs).
ASINH_B = {"u": 1.4e-10, "g": 0.9e-10, "r": 1.2e-10, "i": 1.8e-10, "z": 7.4e-10}
_POGSON = 2.5 / np.log(10.0)


def flux_error(maggies: np.ndarray, band: str) -> np.ndarray:
    """1-sigma PSF flux error (maggies) of the :func:`psf_mag_error` model, finite at zero flux."""
    f = np.clip(np.asarray(maggies, dtype=np.float64), 0.0, None)
    f0 = 10.0 ** (-0.4 * _ERR_M0[band])
    var = (_ERR_FLOOR * f) ** 2 + _ERR_SKY * f * f0 + _ERR_SRC * f0**2
    return np.sqrt(var) / _POGSON


def luptitude(maggies: np.ndarray, band: str) -> np.ndarray:
    """SDSS asinh magnitude: equals the AB magnitude for bright stars, finite at zero flux."""
    b = ASINH_B[band]
    return -_POGSON * (np.arcsinh(np.asarray(maggies) / (2.0 * b)) + np.log(b))


def observe_psf_mags(true_mag: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noisy SDSS-like psfMag (asinh) and psfMagErr (..., 5) from true AB mags (..., 5).

    Noise is drawn in flux (``normals`` are standard normal draws, same shape), so faint stars
    scatter to realistic 24-26 mag values with errors near 1, as in SDSS, not to 50.
    """
    mags = np.empty(np.shape(true_mag))
    errs = np.empty(np.shape(true_mag))
    for j, band in enumerate(BANDS):
        f = 10.0 ** (-0.4 * np.asarray(true_mag)[..., j])
        sigma = flux_error(f, band)
        f_obs = f + sigma * np.asarray(normals)[..., j]
        mags[..., j] = luptitude(f_obs, band)
        errs[..., j] = _POGSON * sigma / np.sqrt(f_obs**2 + 4.0 * ASINH_B[band] ** 2)
    return mags, errs


def nanomaggies(mag: np.ndarray) -> np.ndarray:
    """AB magnitude -> nanomaggies (SDSS flux unit: 22.5 mag = 1 nanomaggy)."""
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - 22.5))
