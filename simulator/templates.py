"""Stellar template spectra for the demo survey: built-in physical ones, or the real SDSS file.

Built-in templates (a fresh clone needs nothing else) are a Planck continuum at a Teff per
subclass, times line blanketing, times absorption features whose strengths are smooth functions
of Teff (Balmer lines peaking at A0, Ca II H&K / G band / Mg b / Na D growing to K, TiO / CaH /
CaOH / VO growing through M, K I / Na I / FeH / H2O / CH4 in L and T dwarfs), plus dedicated
recipes for white dwarfs and carbon stars. Because every strength is a smooth function of Teff,
neighbouring subtypes look alike and distant ones do not: a classifier has features to learn.
These are schematic, not model atmospheres.

The real SDSS templates (idlspec2d ``spEigenStar-53724.fits``: one float32 image, row k named
by header ``NAMEk``, log10(lambda) = COEFF0 + COEFF1 * i) load with :func:`load_templates`.

Photometry needs 2900-11200 A (SDSS u and z reach past the 3800-9200 A spectra), so
:func:`extend_for_photometry` puts a template set on the wide lattice :data:`WIDE_LOGLAM`,
continuing each template beyond its covered range with the shape of the built-in template of
the same subclass (a Planck curve at the subclass Teff when there is none), scaled to the
median flux of the outermost 30 covered pixels. Built-in templates are computed
on the wide lattice directly and need no tail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits

from startrack.grid import DLOGLAM
from startrack.labels import normalize_subclass
from startrack.lines import BALMER

log = logging.getLogger(__name__)

#: Wide log-lambda lattice (1e-4 dex, integer multiples like SDSS co-adds): 2884-11220 A,
#: enough for the SDSS u (from 2939 A) and z (to 11141 A) filter curves.
WIDE_INDEX_START: int = 34_600
WIDE_INDEX_END: int = 40_500  # inclusive
WIDE_LOGLAM: np.ndarray = np.arange(WIDE_INDEX_START, WIDE_INDEX_END + 1) * DLOGLAM

#: Effective temperature (K) per subclass: sets the built-in continuum and the Planck tails.
SUBCLASS_TEFF: dict[str, float] = {
    "O": 38_000, "OB": 26_000, "B6": 14_000, "B9": 10_700, "A0": 9_600, "A0p": 9_300,
    "F2": 7_000, "F5": 6_550, "F9": 6_100, "G0": 5_950, "G2": 5_780, "G5": 5_600,
    "K1": 5_100, "K3": 4_750, "K5": 4_400, "K7": 4_050,
    "M0": 3_850, "M0V": 3_800, "M1": 3_680, "M2": 3_560, "M2V": 3_520, "M3": 3_420,
    "M4": 3_250, "M5": 3_080, "M6": 2_900, "M7": 2_720, "M8": 2_580, "M9": 2_430,
    "L0": 2_300, "L1": 2_200, "L2": 2_100, "L3": 2_000, "L4": 1_900, "L5": 1_800,
    "L5.5": 1_750, "L6": 1_700, "L7": 1_600, "L8": 1_500, "L9": 1_400, "T2": 1_250,
    "WD": 16_000, "WDmagnetic": 12_000, "CarbonWD": 9_000,
    "Carbon": 3_100, "Carbon_lines": 3_600,
}  # fmt: skip

#: Planck temperature of the built-in continuum. Real optical continua are not blackbodies at
#: Teff (Paschen continuum of A stars is bluer, H- opacity shapes the Sun's), so the continuum
#: temperature was calibrated once (bisection) so each built-in template's g-r matches the SDSS
#: stellar locus (Covey et al. 2007; the Sun g-r = 0.44); line strengths still follow Teff.
#: F-K values re-solved with :func:`red_tilt` in place (same g-r, r-i and i-z on the locus);
#: M values fitted with :func:`red_step` to the colours of the SDSS M templates.
COLOR_TEMPERATURE: dict[str, float] = {
    "O": 33_230, "OB": 24_030, "B6": 19_500, "B9": 18_800, "A0": 18_240, "A0p": 17_850,
    "F2": 9_840, "F5": 8_960, "F9": 8_220, "G0": 8_120, "G2": 8_030, "G5": 7_440,
    "K1": 6_510, "K3": 5_480, "K5": 4_710, "K7": 4_050,
    "M0": 3_820, "M0V": 3_760, "M1": 3_600, "M2": 3_560, "M2V": 3_530, "M3": 3_560,
    "M4": 3_560, "M5": 3_380, "M6": 3_380, "M7": 2_770, "M8": 2_670, "M9": 2_600,
    "L0": 2_750, "L1": 2_680, "L2": 2_590, "L3": 2_490, "L4": 2_370, "L5": 2_260,
    "L5.5": 2_200, "L6": 2_150, "L7": 2_040, "L8": 1_950, "L9": 1_880, "T2": 1_810,
    "WD": 44_460, "WDmagnetic": 18_710, "CarbonWD": 8_500,
    "Carbon": 3_740, "Carbon_lines": 4_040,
}  # fmt: skip

#: log g of the built-in templates (main-sequence dwarfs, as most SDSS stars with spectra).
DWARF_LOGG = 4.5

#: Every name the built-in set provides (the union of the SDSS-I/II template and label
#: vocabularies), in MK order.
BUILTIN_NAMES: tuple[str, ...] = tuple(SUBCLASS_TEFF)


@dataclass(frozen=True)
class TemplateSet:
    """Template spectra on one log-lambda grid (flux in arbitrary f_lambda units)."""

    names: tuple[str, ...]
    loglam: np.ndarray  # (npix,) float64, log10(lambda / Angstrom)
    flux: np.ndarray  # (ntemplates, npix) float64

    @property
    def wavelength(self) -> np.ndarray:
        return 10.0**self.loglam

    def index_of(self, subclass: str) -> int | None:
        """Row for a subclass: exact name first, else a template with the same normalized label
        (so 'M0' finds the SDSS file's 'M0V'); None when nothing fits."""
        if subclass in self.names:
            return self.names.index(subclass)
        wanted = normalize_subclass(subclass).label
        for i, name in enumerate(self.names):
            if normalize_subclass(name).label == wanted and not normalize_subclass(name).peculiar:
                return i
        return None


def teff_of(name: str) -> float:
    """Teff for a template name, falling back to its normalized label ('M0V' -> 'M0')."""
    if name in SUBCLASS_TEFF:
        return SUBCLASS_TEFF[name]
    label = normalize_subclass(name).label
    if label in SUBCLASS_TEFF:
        return SUBCLASS_TEFF[label]
    raise KeyError(f"no effective temperature known for template {name!r}")


def planck(wavelength: np.ndarray, teff: float) -> np.ndarray:
    """Planck B_lambda (arbitrary scale), overflow-safe for cool stars in the UV."""
    x = 1.438_776_9e8 / (np.asarray(wavelength, dtype=np.float64) * teff)  # hc/(lambda k T)
    return wavelength**-5.0 / np.expm1(np.minimum(x, 700.0))


# ----------------------------------------------------------------------------- built-in recipe
def _rise(t: float, t0: float, scale: float) -> float:
    """0 for hot stars, 1 for cool ones, a logistic step at t0 (K)."""
    return float(1.0 / (1.0 + np.exp((t - t0) / scale)))


def _bump(t: float, t_peak: float, width_dex: float) -> float:
    """Gaussian in log Teff: features that peak at one spectral type."""
    return float(np.exp(-0.5 * ((np.log10(t) - np.log10(t_peak)) / width_dex) ** 2))


def _hot_tail(bump: float, t: float, power: float) -> float:
    """A feature that peaks at ~9800 K but fades only slowly in hotter stars: the larger of
    its peak ``bump`` and (9800 / t) ** power."""
    return max(bump, (9800.0 / t) ** power) if t > 9800.0 else bump


#: How the Balmer lines' depth and Stark width fade hotter than A0: as (9800 K / Teff) to these
#: powers, so H beta keeps the share of an A0 dwarf's equivalent width that real dwarfs keep
#: (B9 ~0.9, B8 ~0.75, B5 ~0.55, B2 ~0.35, O9 ~0.23, O5 ~0.17; the SDSS O, OB and B6 templates
#: 0.30, 0.32 and 0.65 of their A0's). Until simulator version 10 both fell as a Gaussian in
#: log Teff: built-in O to B5 stars had no hydrogen lines at all, and a model trained on them
#: typed the SDSS O and OB templates' stars, whose Balmer lines are plain, 3-4 subtypes late.
BALMER_HOT_DEPTH = 0.8
BALMER_HOT_WIDTH = 1.6
#: He I (4471, 4026, 4922, 5876, 6678 A; depths): a log-Gaussian in Teff peaking at B2 (4471
#: ~1.3 A) that keeps half of it at O7, where He I 4471 equals He II 4541 (the MK criterion of
#: the O subtypes), and a quarter at O5. The 0.1-dex bump before version 10 left O stars
#: without He I and gave B2 stars twice the real strength.
HE1_T, HE1_W = 20_500.0, 0.15
HE1_LINES = ((4472.7, 0.18), (4027.3, 0.16), (4923.3, 0.10), (5877.3, 0.22), (6680.0, 0.14))
#: He II (4541, 4686, 5411 A; depths): a logistic step in Teff, half-way at O8 on this scale,
#: gone by B1, ~0.9 A at 4541 in the earliest O stars (before version 10: 3 A, three times the
#: real strength).
HE2_T, HE2_S = 29_500.0, 2500.0
HE2_LINES = ((4543.0, 0.12), (4687.0, 0.155), (5413.0, 0.14))


def _line(wave: np.ndarray, center: float, depth: float, sigma: float) -> np.ndarray:
    return depth * np.exp(-0.5 * ((wave - center) / sigma) ** 2)


def _lorentz(wave: np.ndarray, center: float, depth: float, gamma: float) -> np.ndarray:
    return depth / (1.0 + ((wave - center) / gamma) ** 2)


def _band(wave: np.ndarray, head: float, depth: float, scale: float, to_red: bool) -> np.ndarray:
    """Molecular band: sharp head, exponential fade toward red (TiO, CN) or blue (C2 Swan)."""
    d = (wave - head) if to_red else (head - wave)
    out = np.zeros_like(wave)
    inside = d >= 0
    out[inside] = depth * np.exp(-d[inside] / scale)
    return out * (1.0 - np.exp(-np.clip(d, 0, None) / 3.0))  # soften the head over ~3 A


# Vacuum wavelengths (A); the Balmer series is startrack.lines.BALMER.
TIO_HEADS = (4762.0, 4955.0, 5168.0, 5449.0, 5848.0, 6160.0, 6653.0, 7056.0, 7591.0, 8434.0)
SWAN_HEADS = (4738.0, 5166.0, 5637.0, 6193.0)
CN_HEADS = (7876.0, 8059.0, 8293.0, 9148.0)


#: Fe II, Ti II and Si II lines of A-F stars (vacuum A): Fe II 4233, 4584, 4924, 5018, 5169,
#: Ti II 4395, 4444, 4501, 4572, Si II 6347, 6371.
IONIZED_METAL_LINES: tuple[float, ...] = (
    4234.4, 4585.1, 4925.3, 5019.8, 5170.5,  # Fe II
    4396.3, 4445.0, 4502.5, 4573.3,  # Ti II
    6348.9, 6373.2,  # Si II
)  # fmt: skip


#: H alpha in K and M stars: the share of its F-G depth that H alpha keeps where the higher
#: Balmer lines have faded, a logistic step in Teff (HALPHA_KEPT at G, half of it at HALPHA_T).
#: All Balmer lines share their lower level (n = 2), but H alpha's line opacity (f * lambda) is
#: ~7 times H beta's, so as that level empties with falling Teff it is the last to go: inactive
#: K dwarfs show ~1-1.5 A of H alpha absorption and M dwarfs ~0.3 A, where H beta is gone
#: (the SDSS K1, K3, K5 and K7 templates, means of real stars: H alpha 1.7, 1.6, 1.2, 1.0 A,
#: H beta 0.8 to -0.5 A). Until simulator version 13 every Balmer line faded alike, and a
#: built-in K3 dwarf had 0.4 A of H alpha, a K5 0.1 and a K7 none.
HALPHA_KEPT, HALPHA_T, HALPHA_S = 0.8, 4030.0, 370.0


#: The Stark part of a hot dwarf's Balmer line width (Lorentzian half width in A, on top of
#: 4 A, times the Balmer bump that peaks at A0): BALMER_STARK_WIDTH for F stars, and
#: BALMER_STARK_WIDTH_AB for A and B stars (above ~8000 K, A6), with its gravity law (dex per dex
#: of log g). Measured on real stars: H beta of the MILES A0-A3 dwarfs (benchmarks/
#: real_library.py; the stars of even MILES id) is 66 % deep at its centre, 29 % at 10 A, 12 %
#: at 20 A and 4 % at 40 A. Until simulator version 15 the A dwarfs had the F stars' 18 A (55,
#: 40 and 18 % at 10, 20 and 40 A: three times the real equivalent width, and the H8-H delta
#: region 20-50 % darker between its lines than any real A dwarf's), while the F0-F9 dwarfs'
#: wings matched theirs. The giants matched too, so the narrower A-B width comes with a weaker
#: gravity law that keeps the giants' (tests/test_templates.py).
BALMER_STARK_WIDTH = 18.0
BALMER_STARK_WIDTH_AB = 4.0
BALMER_STARK_GRAVITY = 0.10
#: A narrow (Doppler) core of every Balmer line in F-G stars: optical depth and sigma (A). The
#: MILES F0-G4 dwarfs' H beta is 40-52 % deep at its centre (at their 2.5 A resolution) where
#: the wings alone gave 19-32 %; the wings matched. Gone by K0: the K dwarfs' H alpha and H
#: beta already match the MILES ones (tests/test_templates.py).
BALMER_CORE_DEPTH = 0.3
BALMER_CORE_SIGMA = 1.5
#: Depth of the narrow A0 term of the Balmer jump (below). 1.2 until version 15, whose real
#: (narrower) A dwarf wings let more u-band light through between the lines (u-g 0.94); 1.5
#: keeps the A0 dwarf's u-g at 1.04 (tests/test_photometry.py). It acts below ~3700 A: on the
#: u band, not on SDSS spectra.
BALMER_JUMP_A0 = 1.5


def _optical_depth(
    wave: np.ndarray, name: str, t: float, logg: float = DWARF_LOGG, feh: float = 0.0
) -> np.ndarray:
    """Sum of absorption optical depths for one star (smooth in Teff, log g and [Fe/H]).

    At the defaults (a solar-metallicity dwarf) this is the subclass template. Lower gravity
    (giants, supergiants) narrows the pressure-broadened Balmer wings of hot stars, weakens the
    pressure-sensitive Mg b, Na D, Ca I 4227 and CaH of cool ones, and strengthens Sr II 4077 /
    4216, the CN 4216 band and the Ca II triplet, the classical MK luminosity criteria; metal
    lines and blanketing scale with metallicity.
    """
    g = float(np.clip(logg, 0.0, 5.5)) - DWARF_LOGG  # < 0 for giants
    lum = float(np.clip(-g / 3.5, 0.0, 1.3))  # 0 dwarf, ~0.6 giant, ~1 supergiant
    # Line strengths fall ~0.3 dex per dex of [Fe/H] (Lick indices of metal-poor dwarfs:
    # Worthey et al. 1994; strong lines saturate), so a halo G2 keeps ~40 % of its Mg b and G
    # band. At 0.6 dex per dex a [Fe/H] = -1.5 G2 dwarf kept 1/6 of its Mg b and 1/8 of its
    # G band, had no type features left, and the model learned to call such stars F5.
    metal = 10.0 ** (0.3 * float(np.clip(feh, -2.5, 0.6)))
    press = 10.0 ** (0.15 * min(g, 0.5))  # pressure-sensitive lines: weaker in giants
    tau = np.zeros_like(wave)
    # Metal-line blanketing: suppresses the blue/UV of cool stars (why the Sun's g-r is 0.44).
    blanket = (0.55 * _rise(t, 5600, 900) + 0.25 * _rise(t, 7500, 600)) * metal
    tau += blanket * (4000.0 / wave) ** 6
    # The 4000 A break of F-K stars: blueward of 3883 A the CN violet band and a forest of
    # metal lines depress the continuum far more than the smooth blanketing does (narrow D4000
    # ~2 in the SDSS K templates, means of real stars, ~1.4 in F; the smooth law alone gave
    # built-in K dwarfs 1.4-1.7, and a model trained on the SDSS templates took built-in K1
    # stars for F5-G2). Depth and fade fitted to the SDSS F5-K5 templates in 20 A bins over
    # 3810-4000 A (tests/test_templates.py checks the break).
    cn = (0.24 * _rise(t, 7300, 300) + 0.60 * _rise(t, 5500, 200)) * metal
    cn *= 1.0 - _rise(t, 3900, 100)  # TiO takes over in M dwarfs
    # ... ending at ~3740 A: beyond SDSS spectra, and the u-g of real stars (the 1,000 in
    # ../shared) leaves no room for more absorption in the u band.
    tau += _band(wave, 3883.0, cn, 225.0, to_red=False) / (1.0 + np.exp((3740.0 - wave) / 15.0))
    # Balmer lines: strongest at A0, broad (pressure-broadened) in hot dwarfs.
    balmer = 1.1 * _hot_tail(_bump(t, 9800, 0.09), t, BALMER_HOT_DEPTH)
    # ... and the F-G tail of the Balmer lines, gone by mid-K (K5 dwarfs show Hbeta ~0).
    tail = 0.25 * _rise(t, 7000, 900)
    gone = _rise(t, 5200, 250)  # the share of the tail gone: 0 in G, 1 by mid-K
    late_balmer = tail * (1.0 - gone)
    # ... but H alpha keeps part of it to cooler Teff (HALPHA_KEPT)
    late_halpha = tail * (1.0 - gone + gone * HALPHA_KEPT * (1.0 - _rise(t, HALPHA_T, HALPHA_S)))
    # Stark wings: wider at higher gravity (electron density at the line-forming depth), so a
    # blue horizontal-branch A star (log g ~3.2) has narrower wings than an A0 dwarf, by
    # BALMER_STARK_GRAVITY as real A stars show (MILES). Only in hot stars: below ~7000 K the
    # wings come from collisions with neutral hydrogen and hardly depend on gravity (why H
    # alpha and H beta measure the Teff of F-K stars, giants or dwarfs). Applied at every Teff,
    # a G2 giant had a third of a G2 dwarf's H beta, a K dwarf's, and the model could not type
    # G giants by their Balmer lines.
    stark = 1.0 - _rise(t, 7500, 500)
    amplitude = BALMER_STARK_WIDTH_AB + (BALMER_STARK_WIDTH - BALMER_STARK_WIDTH_AB) * _rise(
        t, 8000.0, 300.0
    )
    width = 4.0 + amplitude * _hot_tail(_bump(t, 9800, 0.08), t, BALMER_HOT_WIDTH)
    width *= 10.0 ** (BALMER_STARK_GRAVITY * stark * min(g, 0.5))
    core = BALMER_CORE_DEPTH * _rise(t, 8500.0, 400.0) * (1.0 - _rise(t, 5500.0, 200.0))
    for k, center in enumerate(BALMER):
        late = late_halpha if k == 0 else late_balmer
        tau += _lorentz(wave, center, balmer * (0.9 - 0.06 * k) + late, width)
        tau += _line(wave, center, core, BALMER_CORE_SIGMA)
    # Balmer jump below 3646 A (bound-free), largest for A stars and for low gravity at a
    # given Teff (why BHB stars have a redder u-g than A dwarfs of the same g-r). The narrow
    # A0 term gives an A0 dwarf u-g 1.04 (real SDSS A stars sit at u-g 1.0-1.15, g-r ~ -0.1;
    # without it 0.44, and a model saw the u-g of a B star in every A star).
    jump = 0.9 * _bump(t, 9500, 0.12) + BALMER_JUMP_A0 * _bump(t, 9800, 0.06)
    jump *= 10.0 ** (-0.08 * min(g, 0.0))
    tau += jump / (1.0 + np.exp((wave - 3680.0) / 25.0))
    # Helium: He II in O stars, He I from O to late B (peak at B2).
    he2 = 1.0 - _rise(t, HE2_T, HE2_S)
    for center, depth in HE2_LINES:
        tau += _line(wave, center, depth * he2, 3.0)
    he1 = _bump(t, HE1_T, HE1_W)
    for center, depth in HE1_LINES:
        tau += _line(wave, center, depth * he1, 3.5)
    # Ionized metals of late-B to F stars: Mg II 4481 (the B-A temperature criterion beside He
    # I 4471), Fe II, Ti II and Si II. Lower electron pressure favours the ions, so they are
    # the luminosity criteria of A-F stars: a supergiant's are several times a dwarf's. They
    # are also what tells a narrow-lined A supergiant from an O star, which has He II and no
    # metal lines (without them a model typed built-in A0 supergiants O from the spectrum).
    mg2 = 0.08 * _bump(t, 10_500, 0.16) * metal * (1.0 + 0.8 * lum)
    tau += _line(wave, 4482.4, mg2, 2.0)
    ions = 0.04 * _bump(t, 8500, 0.12) * metal * (1.0 + 2.0 * lum)
    for center in IONIZED_METAL_LINES:
        tau += _line(wave, center, ions, 1.8)
    # Ca II H&K, Ca I 4227, G band, Mg b, Na D, Ca II triplet: grow toward K.
    cahk = (1.6 * _rise(t, 7200, 700) + 0.25 * _rise(t, 10_000, 800)) * metal
    for center in (3934.78, 3969.59):
        tau += _lorentz(wave, center, cahk, 3.0 + 5.0 * _rise(t, 5000, 600))
    ca4227 = 1.2 * _rise(t, 4800, 350) * press**2 + 0.12 * _rise(t, 7500, 600)
    tau += _line(wave, 4227.9, ca4227 * metal, 3.0)
    tau += _line(wave, 4308.0, 0.45 * _bump(t, 5300, 0.11) * metal, 9.0)  # G band: F0 to M0
    mgb_width = 2.0 + 2.0 * _rise(t, 4500, 400) * press**2
    for center in (5168.8, 5174.1, 5185.1):
        tau += _line(wave, center, 0.35 * _rise(t, 5800, 900) * metal * press, mgb_width)
    nad = (0.85 * _rise(t, 5200, 400) + 0.6 * _rise(t, 3500, 300)) * metal * press**2
    for center in (5891.6, 5897.6):
        tau += _line(wave, center, nad, 2.5)
    for center in (8500.4, 8544.4, 8664.5):
        tau += _line(wave, center, 0.6 * _bump(t, 5000, 0.12) * metal * (1 + 0.8 * lum), 3.0)
    tau += _line(wave, 5269.5, 0.5 * _rise(t, 5800, 700) * metal, 3.0)  # Fe I
    tau += _line(wave, 5329.0, 0.5 * _rise(t, 5800, 700) * metal, 3.0)
    # Luminosity criteria of F-K giants and supergiants: Sr II and the CN band at 4216 A.
    for center in (4078.9, 4216.7):
        tau += _line(wave, center, 0.5 * lum * _bump(t, 6000, 0.1) * metal, 1.5)
    tau += _band(wave, 4216.0, 0.35 * lum * _rise(t, 5600, 400) * metal, 60.0, to_red=False)
    # M dwarfs: TiO bands (fade again in L dwarfs as TiO condenses), CaH, CaOH, VO.
    tio = (0.5 * _rise(t, 3900, 200) + 2.5 * _rise(t, 3100, 300)) * (1.0 - _rise(t, 2250, 120))
    for k, head in enumerate(TIO_HEADS):
        tau += _band(wave, head, tio * (0.9 - 0.04 * k), 120.0 + 25.0 * k, to_red=True)
    cah = 0.6 * _rise(t, 3600, 250) * (1.3 if name.endswith("V") else 1.0) * press**4
    tau += _band(wave, 6385.0, cah, 40.0, to_red=True)
    tau += _band(wave, 6830.0, 0.8 * cah, 120.0, to_red=True)
    tau += _line(wave, 5545.0, 0.4 * _rise(t, 3000, 250), 20.0)  # CaOH
    vo = 0.7 * _rise(t, 2800, 150) * (1.0 - _rise(t, 1900, 150))
    for head in (7334.0, 7851.0, 7896.0):
        tau += _band(wave, head, vo, 60.0, to_red=True)
    # Late-M / L / T: K I and Na I resonance lines with huge wings, FeH, CrH, H2O, CH4.
    alk = 3.0 * _rise(t, 2400, 200)
    tau += _lorentz(wave, 7667.0, alk, 15.0 + 120.0 * _rise(t, 1900, 200))
    tau += _lorentz(wave, 7701.1, alk, 15.0 + 120.0 * _rise(t, 1900, 200))
    tau += _lorentz(wave, 5893.0, 2.0 * _rise(t, 2000, 200), 20.0 + 150.0 * _rise(t, 1600, 150))
    for center in (8185.5, 8197.1):
        tau += _line(wave, center, 0.8 * _rise(t, 3300, 300), 3.0)
    tau += _band(wave, 8692.0, 0.8 * _rise(t, 2600, 200), 80.0, to_red=True)  # FeH
    tau += _band(wave, 9896.0, 0.8 * _rise(t, 2600, 200), 100.0, to_red=True)
    tau += _band(wave, 8611.0, 0.5 * _rise(t, 2100, 150), 50.0, to_red=True)  # CrH
    tau += _line(wave, 9300.0, 1.0 * _rise(t, 2500, 250), 250.0)  # H2O
    tau += _line(wave, 8950.0, 1.4 * _rise(t, 1400, 120), 120.0)  # CH4
    tau += _line(wave, 9950.0, 1.2 * _rise(t, 1400, 120), 200.0)
    # Ap star: strong Si II / Sr II / Eu II and the broad 5200 A depression.
    if name == "A0p":
        for center in (4077.7, 4129.2, 4131.9, 4216.7, 4205.0, 5041.0, 5056.0, 6349.0, 6373.0):
            tau += _line(wave, center, 0.5, 2.5)
        tau += _line(wave, 5200.0, 0.12, 120.0)
    return tau


def _white_dwarf(wave: np.ndarray, name: str, t: float) -> np.ndarray:
    tau = np.zeros_like(wave)
    if name == "WD":  # DA: very broad, deep Balmer lines
        for k, center in enumerate(BALMER):
            tau += _lorentz(wave, center, 1.4 - 0.12 * k, 45.0 - 3.0 * k)
    elif name == "WDmagnetic":  # Zeeman triplets, split by ~ lambda^2 B
        for k, center in enumerate(BALMER[:5]):
            split = 90.0 * (center / 6563.0) ** 2
            for offset in (-split, 0.0, split):
                tau += _lorentz(wave, center + offset, 0.45 - 0.05 * k, 18.0)
    else:  # CarbonWD (DQ): broad C2 Swan bands, no hydrogen
        for head in SWAN_HEADS:
            tau += _band(wave, head, 0.9, 110.0, to_red=False)
    tau += 0.4 / (1.0 + np.exp((wave - 3680.0) / 40.0)) * (name == "WD")
    return tau


def _carbon(wave: np.ndarray, name: str, t: float) -> np.ndarray:
    strength = 1.0 if name == "Carbon" else 0.55
    tau = 0.9 * (4000.0 / wave) ** 6  # heavy blue blanketing
    for head in SWAN_HEADS:
        tau += _band(wave, head, 1.3 * strength, 120.0, to_red=False)
    for head in CN_HEADS:
        tau += _band(wave, head, 0.9 * strength, 150.0, to_red=True)
    for center in (5891.6, 5897.6):
        tau += _line(wave, center, 1.0, 3.0)
    tau += _line(wave, 6709.0, 0.4 * strength, 3.0)  # Li I (J-type / lithium-rich)
    return tau


_SPECIAL = frozenset({"WD", "WDmagnetic", "CarbonWD", "Carbon", "Carbon_lines"})


@lru_cache(maxsize=1)
def _colour_temperature_scale() -> tuple[np.ndarray, np.ndarray]:
    """(log Teff, log colour temperature) along the MK + L/T sequence, increasing in Teff."""
    pairs = sorted(
        {(SUBCLASS_TEFF[n], COLOR_TEMPERATURE[n]) for n in BUILTIN_NAMES if n not in _SPECIAL}
    )
    t, c = np.log10(np.array(pairs)).T
    return t, c


#: Wavelength (A) red of which F-K continua are tilted (:func:`red_tilt`).
RED_TILT_PIVOT = 5500.0


def red_tilt(wave: np.ndarray, t: float) -> np.ndarray:
    """Continuum factor (lambda / 5500 A)^beta red of 5500 A for F-K stars, 1 elsewhere.

    A Planck curve hot enough for an F-K star's g-r is too blue beyond it: the built-in F2-G5
    had r-i and i-z ~0.11 below the real SDSS stellar locus at their g-r (the H- opacity
    minimum makes real continua redder), so a model trained on them took real G2 stars for
    K1s, and one trained on real spectra took them for F5s. beta (0.8 for F2-G5, fading
    through K to 0 at K7 and above F0) puts them on the locus of the 1,000 real stars in
    ../shared (tests/test_photometry.py)."""
    beta = 0.8 * (1.0 - _rise(t, 4900.0, 250.0)) * _rise(t, 8200.0, 400.0)
    return (np.maximum(wave, RED_TILT_PIVOT) / RED_TILT_PIVOT) ** beta


def red_step(wave: np.ndarray, t: float) -> np.ndarray:
    """Continuum factor of M dwarfs: a step up of up to e^3 across ~7300 A.

    TiO eats the r band of a real M dwarf while the i and z bands keep windows, so its flux
    climbs steeply from 6000 to 7500 A and then levels off: r-i reaches 1.9 at M5 and 3.1 at
    M8 with g-r still ~1.5. A Planck curve with the TiO bands gave a built-in M5 r-i 0.87.
    The step and the K7-M9 continuum temperatures were fitted (least squares) to the g-r,
    r-i and i-z of the SDSS M1-M8 templates, means of real M dwarfs, K7 held on the real
    locus; the TiO bands themselves were left as they were: refitted to the templates' band
    indices, they typed the SDSS M dwarfs two subtypes early (README, Generalization).
    """
    step = 3.05 * _rise(t, 3030.0, 258.0)
    return np.exp(step / (1.0 + np.exp((7295.0 - wave) / 300.0)))


def colour_temperature(teff: float) -> float:
    """Continuum temperature for any Teff on the sequence (log-log interpolation)."""
    t, c = _colour_temperature_scale()
    return float(10.0 ** np.interp(np.log10(teff), t, c))


def star_flux(
    name: str,
    wave: np.ndarray,
    teff: float | None = None,
    logg: float = DWARF_LOGG,
    feh: float = 0.0,
) -> np.ndarray:
    """A built-in spectrum for one star of subclass ``name`` at its own Teff, log g, [Fe/H].

    Real stars are a continuum, not 45 spectra: the simulator draws each star's parameters
    around its subclass, so a model trained on the survey sees types between the templates,
    giants and supergiants as well as dwarfs, and metal-poor as well as solar stars.
    White dwarfs and carbon stars keep their recipes (only Teff moves their continuum).
    """
    t = SUBCLASS_TEFF[name] if teff is None else float(teff)
    if name in {"WD", "WDmagnetic", "CarbonWD"}:
        tau = _white_dwarf(wave, name, t)
    elif name.startswith("Carbon"):
        tau = _carbon(wave, name, t)
    else:
        tau = _optical_depth(wave, name, t, logg, feh)
    if teff is None or name in _SPECIAL:
        cont = planck(wave, COLOR_TEMPERATURE[name] * t / SUBCLASS_TEFF[name])
    else:
        cont = planck(wave, colour_temperature(t))
    if name not in _SPECIAL:
        cont = cont * red_tilt(wave, t)
    if name.startswith("M"):  # fitted to M dwarfs; L dwarfs keep their own recipe
        cont = cont * red_step(wave, t)
    flux = cont * np.exp(-tau)
    if name == "Carbon_lines":  # emission lines (Halpha, Hbeta) as in SDSS 'Carbon_lines'
        flux += cont * (_line(wave, 6564.6, 0.8, 2.5) + _line(wave, 4862.7, 0.5, 2.5))
    return flux / np.median(flux[(wave > 5500) & (wave < 6500)])


def _physics_label(name: str) -> str | None:
    """The built-in subclass whose physics can change a file's spectrum called ``name``;
    None for white dwarfs, carbon stars and names the built-in set does not have."""
    label = normalize_subclass(name).label
    if name in _SPECIAL or label not in SUBCLASS_TEFF or label in _SPECIAL:
        return None
    return label


def absorption_change(
    name: str, wave: np.ndarray, logg: float, feh: float, ref_feh: float = 0.0
) -> np.ndarray:
    """Factor by which the built-in physics changes subclass ``name``'s absorption from a
    dwarf at ``ref_feh`` to a star of ``logg`` and ``feh`` (1 for non-MK names).

    Lets another template family borrow the luminosity and metallicity criteria: a file of
    40 mean spectra holds one star per subclass, the sky holds giants and metal-poor stars
    too, and a model trained on the file alone takes a metal-poor K1 giant for an F5."""
    label = _physics_label(name)
    if label is None:
        return np.ones_like(wave)
    t = SUBCLASS_TEFF[label]
    key = (name, ref_feh, wave.tobytes())  # the same for every star of a subclass: once
    if key not in _REFERENCE_DEPTH:
        _REFERENCE_DEPTH[key] = _optical_depth(wave, name, t, DWARF_LOGG, ref_feh)
    return np.exp(_REFERENCE_DEPTH[key] - _optical_depth(wave, name, t, logg, feh))


def physics_change(
    name: str, wave: np.ndarray, teff: float, logg: float, feh: float, ref_feh: float = 0.0
) -> np.ndarray:
    """Factor by which the built-in physics changes subclass ``name``'s spectrum from a dwarf
    at its own Teff and ``ref_feh`` to a star of ``teff``, ``logg`` and ``feh``.

    Lets a template file's star sit anywhere in its subclass's Teff interval with the
    file's own character kept. A log-flux blend with the neighbouring template did that
    before, and across a wide gap it is not a star: A0 and F2 blended half-way have Balmer
    lines half-way between theirs, where a real A6 has them near their A2 peak.
    """
    label = _physics_label(name)
    if label is None:
        return np.ones_like(wave)
    key = (name, ref_feh, wave.tobytes())  # the same for every star of a subclass: once
    if key not in _REFERENCE_FLUX:
        _REFERENCE_FLUX[key] = star_flux(name, wave, SUBCLASS_TEFF[label], DWARF_LOGG, ref_feh)
    return star_flux(name, wave, teff, logg, feh) / _REFERENCE_FLUX[key]


#: physics_change's reference dwarfs, per (name, ref_feh, wavelengths).
_REFERENCE_FLUX: dict[tuple[str, float, bytes], np.ndarray] = {}


#: absorption_change's dwarf optical depths, per (name, ref_feh, wavelengths): a survey has
#: a few dozen subclasses on one lattice, and each was computed again for every star.
_REFERENCE_DEPTH: dict[tuple[str, float, bytes], np.ndarray] = {}


def _teff_sequence(names: tuple[str, ...]) -> list[tuple[float, str]]:
    """(Teff, label) of the subclasses among ``names`` on the Teff sequence, coolest first
    ('M0V' and 'M0' are one class; white dwarfs and carbon stars are not on it)."""
    labels = {normalize_subclass(n).label for n in names}
    return sorted((SUBCLASS_TEFF[n], n) for n in labels if n in SUBCLASS_TEFF and n not in _SPECIAL)


def teff_range(name: str, names: tuple[str, ...] | list[str]) -> tuple[float, float]:
    """Teff interval whose stars the SDSS fit would call ``name`` among ``names``: half-way
    (in log Teff) to the neighbouring subclasses on either side; the ends extend as far."""
    label = normalize_subclass(name).label
    if name in _SPECIAL or label not in SUBCLASS_TEFF:
        t = SUBCLASS_TEFF.get(name, 5000.0)
        return t, t
    seq = [t for t, _ in _teff_sequence(tuple(names))]
    logs = np.log10(seq)
    i = seq.index(SUBCLASS_TEFF[label])
    lo = (logs[i - 1] + logs[i]) / 2 if i > 0 else logs[i] - (logs[i + 1] - logs[i]) / 2
    hi = (logs[i] + logs[i + 1]) / 2 if i + 1 < len(seq) else logs[i] + (logs[i] - logs[i - 1]) / 2
    return float(10.0**lo), float(10.0**hi)


def _mk_sequence(names: tuple[str, ...] | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(log Teff, MK type number) of the subclasses among ``names``, coolest first; L and T
    dwarfs have no MK number."""
    seq = [(t, normalize_subclass(lab).spectral_type) for t, lab in _teff_sequence(tuple(names))]
    seq = [(t, k) for t, k in seq if k is not None]
    return np.log10([t for t, _ in seq]), np.array([k for _, k in seq], dtype=float)


#: MK types (O0 = 0 ... M5 = 65) at which the giant and supergiant Teff offsets are given.
LUMINOSITY_TEFF_TYPES = (0.0, 10.0, 15.0, 20.0, 30.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0)
#: log10 Teff of a giant (log g 2.5, III) and a supergiant (log g 1.2, Ib) minus that of a
#: dwarf of the same MK type, after the standard MK temperature scales (Schmidt-Kaler 1982):
#: MK types are line ratios, and a giant shows a K0's ratios at ~4750 K where a dwarf shows
#: them at ~5250 K (Pollux, K0 III, 4860 K; Aldebaran, K5 III, 3900 K; a K5 dwarf ~4400 K).
#: Near zero at A and late M, largest in G-K. Until simulator version 15 a K0 giant was drawn
#: at a K0 dwarf's Teff, with a G8 dwarf's colours and Balmer lines, and the models typed the
#: real (MILES) giants 2-3 subtypes late (benchmarks/real_library.py, README).
GIANT_DLOG_TEFF = (-0.01, -0.015, -0.01, 0.0, -0.009, -0.013, -0.049, -0.043, -0.042, -0.006, 0.0)
SUPERGIANT_DLOG_TEFF = (
    -0.03, -0.06, -0.054, -0.01, 0.0, -0.036, -0.075, -0.075, -0.053, -0.023, 0.0,
)  # fmt: skip
#: log g at and above which a star has its dwarf's Teff (dwarfs scatter around DWARF_LOGG).
LUMINOSITY_TEFF_START = 4.2
GIANT_LOGG, SUPERGIANT_LOGG = 2.5, 1.2


def luminosity_teff(teff: float, mk_type: float | None, logg: float) -> float:
    """The Teff at which a star of gravity ``logg`` has the MK type ``mk_type`` that a dwarf
    has at ``teff``: linear in log g from the dwarfs (LUMINOSITY_TEFF_START) to the giants,
    and on to the supergiants. Stars off the MK sequence keep ``teff``."""
    if mk_type is None:
        return teff
    giant = float(np.interp(mk_type, LUMINOSITY_TEFF_TYPES, GIANT_DLOG_TEFF))
    if logg >= GIANT_LOGG:
        share = (LUMINOSITY_TEFF_START - min(logg, LUMINOSITY_TEFF_START)) / (
            LUMINOSITY_TEFF_START - GIANT_LOGG
        )
        return teff * 10.0 ** (share * giant)
    supergiant = float(np.interp(mk_type, LUMINOSITY_TEFF_TYPES, SUPERGIANT_DLOG_TEFF))
    share = min((GIANT_LOGG - logg) / (GIANT_LOGG - SUPERGIANT_LOGG), 1.0)
    return teff * 10.0 ** (giant + share * (supergiant - giant))


def spectral_type_at(teff: float, names: tuple[str, ...] | list[str]) -> float:
    """MK type number of a star of this Teff on the sequence of ``names`` (log-Teff
    interpolation between subclasses): the type a star drawn in teff_range really has."""
    log_teff, types = _mk_sequence(names)
    return float(np.interp(np.log10(teff), log_teff, types))


def teff_at_type(mk_type: float, names: tuple[str, ...] | list[str]) -> float:
    """The Teff of MK type ``mk_type`` on the sequence of ``names``: spectral_type_at's inverse
    (types fall as Teff rises), clipped to the sequence's ends."""
    log_teff, types = _mk_sequence(names)
    return float(10.0 ** np.interp(mk_type, types[::-1], log_teff[::-1]))


@lru_cache(maxsize=1)
def builtin_templates() -> TemplateSet:
    """The built-in template set on the wide lattice :data:`WIDE_LOGLAM`."""
    wave = 10.0**WIDE_LOGLAM
    flux = np.vstack([star_flux(name, wave) for name in BUILTIN_NAMES])
    return TemplateSet(BUILTIN_NAMES, WIDE_LOGLAM.copy(), flux)


# ----------------------------------------------------------------------------- real SDSS file
def load_sdss_templates(path: Path) -> TemplateSet:
    """Read an idlspec2d spEigenStar file: rows named NAMEk, log-linear wavelengths."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"template file not found: {path}")
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header
            data = hdul[0].data
    except OSError as exc:
        raise ValueError(f"{path} is not a readable FITS file: {exc}") from exc
    if data is None or data.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D template image in HDU0, got {data!r:.60}")
    missing = [key for key in ("COEFF0", "COEFF1") if key not in header]
    if missing:
        raise ValueError(f"{path}: header lacks {', '.join(missing)} (log-lambda solution)")
    names = []
    for k in range(data.shape[0]):
        key = f"NAME{k}"
        if key not in header:
            raise ValueError(f"{path}: header lacks {key} naming template row {k}")
        names.append(str(header[key]).strip())
    loglam = float(header["COEFF0"]) + float(header["COEFF1"]) * np.arange(data.shape[1])
    return TemplateSet(tuple(names), loglam, np.asarray(data, dtype=np.float64))


def load_templates(path: Path | None = None) -> TemplateSet:
    """The real SDSS template file when a path is given, else the built-in set."""
    return builtin_templates() if path is None else load_sdss_templates(Path(path))


def extend_for_photometry(templates: TemplateSet, edge_pixels: int = 30) -> TemplateSet:
    """Resample onto :data:`WIDE_LOGLAM` and add tails beyond each covered range.

    Zero-padded ends of the SDSS file count as uncovered. Negative (noise) values are clipped
    to zero: a flux cannot be negative, and photometry of negative flux is meaningless.
    """
    if templates.loglam.shape == WIDE_LOGLAM.shape and np.allclose(templates.loglam, WIDE_LOGLAM):
        return templates
    wave = 10.0**WIDE_LOGLAM
    out = np.zeros((len(templates.names), WIDE_LOGLAM.size))
    for row, name in enumerate(templates.names):
        flux = templates.flux[row]
        covered = np.flatnonzero(flux != 0)
        if covered.size < 2 * edge_pixels:
            raise ValueError(f"template {name!r} covers too few pixels to extend")
        lo, hi = covered[0], covered[-1]
        loglam = templates.loglam[lo : hi + 1]
        inner = np.interp(WIDE_LOGLAM, loglam, flux[lo : hi + 1])
        body = _tail_shape(name, wave)
        blue = np.median(flux[lo : lo + edge_pixels]) / np.median(
            body[_near(loglam[0], edge_pixels)]
        )
        red = np.median(flux[hi - edge_pixels + 1 : hi + 1]) / np.median(
            body[_near(loglam[-1], -edge_pixels)]
        )
        result = np.where(loglam[0] > WIDE_LOGLAM, body * blue, inner)
        result = np.where(loglam[-1] < WIDE_LOGLAM, body * red, result)
        out[row] = np.clip(result, 0.0, None)
    log.debug("extended %d templates to %d pixels", len(templates.names), WIDE_LOGLAM.size)
    return TemplateSet(templates.names, WIDE_LOGLAM.copy(), out)


def _tail_shape(name: str, wave: np.ndarray) -> np.ndarray:
    """Shape used beyond a template's coverage: the built-in template of the same subclass
    (it has the Balmer jump and UV blanketing a Planck curve lacks), else a Planck curve."""
    builtin = builtin_templates()
    row = builtin.index_of(name)
    if row is not None:
        return builtin.flux[row]
    return planck(wave, teff_of(name))


def _near(loglam_edge: float, count: int) -> slice:
    """Wide-grid pixels of the `count` template pixels at an edge (negative: ending there)."""
    i = round((loglam_edge - WIDE_LOGLAM[0]) / DLOGLAM)
    return slice(i, i + count) if count > 0 else slice(i + count + 1, i + 1)
