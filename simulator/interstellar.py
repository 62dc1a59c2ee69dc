"""The lines the interstellar medium writes into a reddened star's spectrum.

Dust that reddens a star also leaves absorption lines of its gas at the observer's rest frame:
Ca II H and K, Na I D and K I, and the diffuse interstellar bands (DIBs). A real O or B star
seen through E(B-V) = 0.5 carries Na D of ~1.4 A, a Ca II K line of ~0.4 A and the broad
4430 A band. Without them in training, a network has only ever seen Ca II K and Na D as
marks of a cool star, and a reddened hot star's K line reads as an A star's.

Strengths follow published relations, with a star-to-star scatter, since sightlines differ:
    Na I D1+D2: saturating in E(B-V), after Poznanski, Prochaska & Bloom 2012 (MNRAS 426,
        1465), EW(D1+D2) ~ 0.7 A at E(B-V) 0.1, ~1.4 A at 0.5.
    Ca II H and K: after Megier et al. 2005 (A&A 431, 251), K ~ 0.15 A at E(B-V) 0.1, H about
        half of K.
    K I 7665, 7699: after Munari & Zwitter 1997 (A&A 318, 269), ~0.1 A each at E(B-V) 0.5.
    DIBs, linear in E(B-V): 5780, 5797, 6284, 6614 A after Friedman et al. 2011 (ApJ 727, 33);
        the broad 4430 A band after Herbig 1995 (ARA&A 33, 19).
Intrinsic widths of the atomic lines are far below SDSS's resolution (R ~ 2000): each line is a
Gaussian of the instrument's width, the DIBs their own width added in quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from startrack.grid import air_to_vacuum

#: Resolving power the lines are drawn at (SDSS's, ~2000; FWHM = lambda / R).
RESOLVING_POWER: float = 2000.0
#: Star-to-star scatter of every line's strength at a given E(B-V) (dex, lognormal).
SIGHTLINE_SCATTER_DEX: float = 0.2
#: No line takes more than this fraction of the flux at its centre.
MAX_DEPTH: float = 0.95


@dataclass(frozen=True)
class InterstellarLine:
    """One line: EW(E) = saturation * (1 - exp(-E / e_scale)) + per_ebv * E, in A."""

    name: str
    air_angstrom: float
    saturation: float = 0.0
    e_scale: float = 1.0
    per_ebv: float = 0.0
    fwhm_angstrom: float = 0.0  # intrinsic (DIBs); atomic lines are unresolved

    def equivalent_width(self, ebv: np.ndarray) -> np.ndarray:
        e = np.clip(np.asarray(ebv, dtype=np.float64), 0.0, None)
        return self.saturation * -np.expm1(-e / self.e_scale) + self.per_ebv * e


INTERSTELLAR_LINES: tuple[InterstellarLine, ...] = (
    InterstellarLine("Ca II K", 3933.66, saturation=0.5, e_scale=0.3),
    InterstellarLine("Ca II H", 3968.47, saturation=0.27, e_scale=0.3),
    InterstellarLine("Na I D2", 5889.95, saturation=0.88, e_scale=0.2),
    InterstellarLine("Na I D1", 5895.92, saturation=0.72, e_scale=0.2),
    InterstellarLine("K I 7665", 7664.90, saturation=0.15, e_scale=0.4),
    InterstellarLine("K I 7699", 7698.96, saturation=0.13, e_scale=0.4),
    InterstellarLine("DIB 4430", 4428.2, per_ebv=1.5, fwhm_angstrom=18.0),
    InterstellarLine("DIB 5780", 5780.5, per_ebv=0.51, fwhm_angstrom=2.1),
    InterstellarLine("DIB 5797", 5797.1, per_ebv=0.13, fwhm_angstrom=1.0),
    InterstellarLine("DIB 6284", 6283.8, per_ebv=1.0, fwhm_angstrom=4.0),
    InterstellarLine("DIB 6614", 6613.6, per_ebv=0.2, fwhm_angstrom=1.0),
)


def line_centres(lines: tuple[InterstellarLine, ...] = INTERSTELLAR_LINES) -> np.ndarray:
    """Vacuum wavelengths (A) of the lines: SDSS spectra are on a vacuum scale."""
    return np.asarray(air_to_vacuum(np.array([ln.air_angstrom for ln in lines])), dtype=float)


def line_sigmas(lines: tuple[InterstellarLine, ...] = INTERSTELLAR_LINES) -> np.ndarray:
    """Gaussian sigma (A) of each line as the instrument sees it."""
    centres = line_centres(lines)
    fwhm = np.hypot(centres / RESOLVING_POWER, [ln.fwhm_angstrom for ln in lines])
    return fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def equivalent_widths(ebv: float | np.ndarray, strength: float | np.ndarray = 1.0) -> np.ndarray:
    """EW (A) of every line, shape (..., n_lines), for E(B-V) ``ebv`` (negative counts as 0)
    times a sightline's ``strength`` factor (1 = the relations' mean)."""
    e = np.asarray(ebv, dtype=np.float64)[..., None]
    ew = np.stack([ln.equivalent_width(e[..., 0]) for ln in INTERSTELLAR_LINES], axis=-1)
    return ew * np.asarray(strength, dtype=np.float64)[..., None]


def sightline_strength(rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """A sightline's strength factor: lognormal around 1 with SIGHTLINE_SCATTER_DEX."""
    return 10.0 ** rng.normal(0.0, SIGHTLINE_SCATTER_DEX, size)


def transmission(
    wavelength_angstrom: np.ndarray,
    ebv: float | np.ndarray,
    strength: float | np.ndarray = 1.0,
    velocity_kms: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Fraction of a star's flux the interstellar lines let through at each wavelength.

    Scalars give one spectrum's (n_pix,); arrays of n sightlines (E(B-V), strength, velocity
    broadcast together) give (n, n_pix), as a training batch needs. ``velocity_kms`` moves
    the lines (the gas's velocity in the frame of ``wavelength_angstrom``: in a star's rest
    frame, minus the star's radial velocity)."""
    wave = np.asarray(wavelength_angstrom, dtype=np.float64)
    e, st, v = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (ebv, strength, velocity_kms))
    )
    ew = equivalent_widths(e.ravel(), st.ravel())  # (n, lines)
    doppler = 1.0 + v.ravel()[:, None] / 299_792.458
    reach = float(np.abs(v).max(initial=0.0)) / 299_792.458
    absorbed = np.zeros((e.size, wave.size))
    for k, (c, s) in enumerate(zip(line_centres(), line_sigmas(), strict=True)):
        lo, hi = np.searchsorted(wave, [c * (1 - reach) - 6 * s, c * (1 + reach) + 6 * s])
        if hi <= lo or not (ew[:, k] > 0).any():
            continue
        x = (wave[None, lo:hi] - c * doppler) / s
        absorbed[:, lo:hi] += ew[:, k : k + 1] * np.exp(-0.5 * x**2) / (np.sqrt(2 * np.pi) * s)
    out = 1.0 - np.clip(absorbed, 0.0, MAX_DEPTH)
    return out.reshape(*e.shape, wave.size)
