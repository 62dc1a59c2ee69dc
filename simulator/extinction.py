"""Interstellar extinction: the O'Donnell (1994) update of Cardelli, Clayton & Mathis (1989).

This is the law Schlegel, Finkbeiner & Davis (1998) used for the SDSS A_lambda / E(B-V)
coefficients, so reddened simulated stars move along the same reddening vector as real ones.

References:
    Cardelli, Clayton & Mathis 1989, ApJ 345, 245 (CCM89), eqs. 2-5 (IR and UV parts).
    O'Donnell 1994, ApJ 422, 158, eq. 2 (optical/NIR polynomial, 1.1 <= x <= 3.3 um^-1).

The astropy-affiliated package ``dust_extinction`` implements this (as ``O94``) and newer laws;
the formula is a handful of polynomials, so we keep it here rather than add a dependency
(tests cross-check published values).
"""

from __future__ import annotations

import numpy as np

R_V_DEFAULT: float = 3.1

# O'Donnell 1994 optical coefficients, lowest order first, in y = x - 1.82.
_O94_A = (1.0, 0.104, -0.609, 0.701, 1.137, -1.718, -0.827, 1.647, -0.505)
_O94_B = (0.0, 1.952, 2.908, -3.989, -7.985, 11.102, 5.491, -10.805, 3.347)


def a_lambda_over_a_v(wavelength_angstrom: np.ndarray, r_v: float = R_V_DEFAULT) -> np.ndarray:
    """A(lambda)/A(V) of the O94/CCM89 law; valid 1250 A - 3.3 um (raises outside)."""
    wave = np.asarray(wavelength_angstrom, dtype=np.float64)
    x = 1.0e4 / wave  # inverse microns
    if np.any((x < 0.3) | (x > 8.0)):
        raise ValueError(
            "O'Donnell/CCM extinction is defined for 1250 A to 33,333 A; "
            f"got {wave.min():.0f}-{wave.max():.0f} A"
        )
    a = np.empty_like(x)
    b = np.empty_like(x)

    ir = x < 1.1
    a[ir] = 0.574 * x[ir] ** 1.61
    b[ir] = -0.527 * x[ir] ** 1.61

    opt = (x >= 1.1) & (x <= 3.3)
    y = x[opt] - 1.82
    a[opt] = np.polynomial.polynomial.polyval(y, _O94_A)
    b[opt] = np.polynomial.polynomial.polyval(y, _O94_B)

    uv = x > 3.3
    xu = x[uv]
    fa = np.where(xu >= 5.9, -0.04473 * (xu - 5.9) ** 2 - 0.009779 * (xu - 5.9) ** 3, 0.0)
    fb = np.where(xu >= 5.9, 0.2130 * (xu - 5.9) ** 2 + 0.1207 * (xu - 5.9) ** 3, 0.0)
    a[uv] = 1.752 - 0.316 * xu - 0.104 / ((xu - 4.67) ** 2 + 0.341) + fa
    b[uv] = -3.090 + 1.825 * xu + 1.206 / ((xu - 4.62) ** 2 + 0.263) + fb
    return a + b / r_v


def extinction_magnitudes(
    wavelength_angstrom: np.ndarray, ebv: float | np.ndarray, r_v: float = R_V_DEFAULT
) -> np.ndarray:
    """A(lambda) in magnitudes for colour excess E(B-V); broadcasts ebv[:, None] x wavelength."""
    curve = a_lambda_over_a_v(wavelength_angstrom, r_v) * r_v
    return np.multiply.outer(np.asarray(ebv, dtype=np.float64), curve)


def redden(
    flux: np.ndarray,
    wavelength_angstrom: np.ndarray,
    ebv: float | np.ndarray,
    r_v: float = R_V_DEFAULT,
) -> np.ndarray:
    """Flux dimmed by dust of colour excess E(B-V) (flux * 10^(-0.4 A_lambda))."""
    return flux * 10.0 ** (-0.4 * extinction_magnitudes(wavelength_angstrom, ebv, r_v))
