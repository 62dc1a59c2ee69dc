"""Where a template file's spectra sit on the MK type scale, and the file resampled onto it.

A template file names its spectra by its own scale. The SDSS pipeline's ``spEigenStar`` names
are not MK types: measured against the built-in dwarfs (MK-calibrated: a Teff per subclass and
g-r on the Covey et al. 2007 locus), its 'F2' template shows an F7, its 'G2' an F8 and its
'G5' a K2. g-r, H beta, the G band, Mg b and the 4000 A break all point the same way, and
ELODIE types the one real SDSS 'G2' star in ``../shared`` F8. A model trained on the names
learns that scale, 4-7 subtypes off MK for F2-G5, whatever it learns.

So the simulator places a file's F-K spectra where their features put them, and the spectrum
it renders for an F-K subclass is the log-flux interpolation, at that subclass's MK type, of
the placed spectra on either side. A0-A9 and K7 and cooler templates (the scale covers A0-K7)
keep their names and anchor the ends; O and B ones, which nothing here can place (the SDSS
file's are hot subdwarfs), give way to the built-in physics (``hot_rows_from_physics``).
``benchmarks/line_strengths.py`` prints the placement.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from startrack.labels import normalize_subclass, spectral_type_of
from startrack.simulator.line_indices import d4000n, equivalent_widths

log = logging.getLogger(__name__)

#: Indicators that place a spectrum on the type scale, and the difference that counts as one
#: unit of mismatch (roughly one subtype for F-K dwarfs).
SCALE_INDICATORS: dict[str, float] = {
    "g-r": 0.05,
    "H beta": 0.4,
    "G band": 0.6,
    "Mg b": 0.5,
    "D4000n": 0.08,
}
#: Built-in subclasses that span the scale (A0 ... K7), in MK order.
SCALE_NAMES: tuple[str, ...] = ("A0", "F2", "F5", "F9", "G0", "G2", "G5", "K1", "K3", "K5", "K7")
#: MK types whose templates are placed by measurement (F0-K5): the indicators type F-K stars;
#: A stars' Balmer lines peak at A2 and cannot tell A0 from A5, and the scale ends at K7.
PLACED_RANGE: tuple[float, float] = (30.0, 55.0)
#: Values a template file may choose between: placed by its features, or by its names.
TEMPLATE_TYPES: tuple[str, ...] = ("measured", "names")
#: [Fe/H] of the built-in dwarfs the scale is measured against. A file's F-K spectra rendered
#: on the scale show these dwarfs' type by their features together, so they stand for this
#: [Fe/H], not for the mean of the file's own stars (``reference_feh``).
SCALE_FEH = 0.0


def indicators(loglam: np.ndarray, flux: np.ndarray) -> dict[str, float]:
    """g-r and the type-sensitive indices of one spectrum on the wide lattice."""
    from startrack.simulator.photometry import ab_magnitudes

    wave = 10.0**loglam
    ew = equivalent_widths(wave, flux)
    mags = ab_magnitudes(loglam, flux[None])[0]
    return {
        "g-r": float(mags[1] - mags[2]),
        **{k: ew[k] for k in ("H beta", "G band", "Mg b")},
        "D4000n": d4000n(wave, flux),
    }


@lru_cache(maxsize=2)
def builtin_scale(step: float = 0.25) -> tuple[np.ndarray, tuple[dict[str, float], ...]]:
    """(MK type numbers, indicators per type) of built-in dwarfs on a fine grid from A0 to K7,
    each at the Teff interpolated (in log) between its neighbouring subclasses."""
    from startrack.simulator.templates import WIDE_LOGLAM, star_flux, teff_at_type

    types = np.array([spectral_type_of(n) for n in SCALE_NAMES])
    grid = np.arange(types[0], types[-1] + 1e-9, step)
    wave = 10.0**WIDE_LOGLAM
    scale = []
    for t in grid:
        name = SCALE_NAMES[int(np.argmin(np.abs(types - t)))]
        flux = star_flux(name, wave, teff=teff_at_type(t, SCALE_NAMES), feh=SCALE_FEH)
        scale.append(indicators(WIDE_LOGLAM, flux))
    return grid, tuple(scale)


def place_on_scale(target: dict[str, float]) -> dict[str, float]:
    """The built-in type each indicator alone, and all together ('all'), say a spectrum is.
    An indicator the spectrum does not cover (not finite) is left out."""
    grid, scale = builtin_scale()
    usable = {k: u for k, u in SCALE_INDICATORS.items() if np.isfinite(target.get(k, np.nan))}
    if not usable:
        raise ValueError("no type indicator could be measured on this spectrum")
    out = {}
    for key, unit in usable.items():
        out[key] = float(grid[np.argmin([abs(s[key] - target[key]) / unit for s in scale])])
    cost = [sum(((s[k] - target[k]) / u) ** 2 for k, u in usable.items()) for s in scale]
    out["all"] = float(grid[int(np.argmin(cost))])
    return out


def measured_types(loglam: np.ndarray, flux: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Each row's MK type on the scale: measured for F-K names, the name's own for other MK
    names, NaN outside MK (white dwarfs, carbon stars, peculiar types)."""
    out = np.full(len(names), np.nan)
    lo, hi = PLACED_RANGE
    for row, name in enumerate(names):
        label = normalize_subclass(name)
        if label.spectral_type is None or label.peculiar:
            continue
        out[row] = label.spectral_type
        if lo <= label.spectral_type <= hi:
            try:
                out[row] = place_on_scale(indicators(loglam, flux[row]))["all"]
            except ValueError as exc:
                log.warning("template %r keeps its name's type: %s", name, exc)
    return out


def rendered_on_scale(names: tuple[str, ...]) -> np.ndarray:
    """Which rows ``resample_onto_names`` renders on the scale (MK names in the placed range)."""
    named = np.array([_type_or_nan(n) for n in names])
    lo, hi = PLACED_RANGE
    return np.isfinite(named) & (named >= lo) & (named <= hi)


#: MK types hotter than this (A0) are drawn from the built-in physics in a 'measured' file
#: survey, not from the file's rows (``hot_rows_from_physics``).
PHYSICS_HOTTER_THAN = 20.0


def physics_rows(names: tuple[str, ...]) -> np.ndarray:
    """Which rows ``hot_rows_from_physics`` replaces: MK names hotter than A0 that the built-in
    physics knows."""
    from startrack.simulator.templates import SUBCLASS_TEFF

    named = np.array([_type_or_nan(n) for n in names])
    known = np.array([normalize_subclass(n).label in SUBCLASS_TEFF for n in names], dtype=bool)
    return np.isfinite(named) & (named < PHYSICS_HOTTER_THAN) & known


def hot_rows_from_physics(
    loglam: np.ndarray, flux: np.ndarray, names: tuple[str, ...]
) -> np.ndarray:
    """The file's flux with its O and B rows replaced by built-in dwarfs of their names.

    The A0-K7 scale can place F-K spectra, but nothing places a file's O and B rows, and the
    SDSS file's are not MK stars: its O, OB, B6 and B9 templates are hot subdwarfs (He II 4686
    in B6 and B9, Balmer lines weaker in OB than in O; README, Generalization, stop 30). A
    model trained on them typed every real O and B star of the MILES library 6-9 subtypes late;
    with these rows from the physics, O6-O8 0.00 -> 0.17-1.00 and O9-B1 0.00-0.20 ->
    0.20-0.53 within 2.5, three seeds (benchmarks/real_library.py; README, stop 38). Each
    replaced row keeps the file's flux level at 5500-6500 A and stands for a solar dwarf
    (``reference_feh``)."""
    from startrack.simulator.templates import star_flux

    rows = np.flatnonzero(physics_rows(names))
    if rows.size == 0:
        return flux
    wave = 10.0**loglam
    window = (wave > 5500.0) & (wave < 6500.0)
    out = flux.copy()
    for row in rows:
        dwarf = star_flux(normalize_subclass(names[row]).label, wave)
        out[row] = dwarf * np.median(flux[row][window]) / np.median(dwarf[window])
        log.info("template %r: drawn from the built-in physics (O and B rows)", names[row])
    return out


def reference_feh(names: tuple[str, ...], resampled: bool, file_feh: float) -> np.ndarray:
    """The [Fe/H] each row of a file stands for, from which the physics changes a star's:
    ``SCALE_FEH`` for the rows ``resample_onto_names`` rendered on the scale (when
    ``resampled``), ``file_feh`` (the mean of the file's own stars) for the rest.

    Until simulator version 12 every row stood for ``file_feh`` (-0.5): a disc star drawn from
    the SDSS file's rendered G2 got a solar G5's metal lines (G band 5.9 A, Mg b 2.9, for the
    row's 4.9 and 2.5), and a model trained on the file typed built-in F9-K0 stars 4-6
    subtypes early (README, Generalization, stop 35)."""
    on_scale = rendered_on_scale(names) | physics_rows(names)
    on_scale = on_scale if resampled else np.zeros(len(names), dtype=bool)
    return np.where(on_scale, SCALE_FEH, float(file_feh))


def resample_onto_names(loglam: np.ndarray, flux: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The file's flux with each F-K row replaced by the log-flux interpolation, at its name's
    MK type, of the placed spectra (other rows unchanged): a replaced row shows its name's type
    as the scale's dwarfs, at ``SCALE_FEH``, show it (``reference_feh``)."""
    placed = measured_types(loglam, flux, names)
    named = np.array([_type_or_nan(n) for n in names])
    lo, hi = PLACED_RANGE
    inside = np.isfinite(placed) & rendered_on_scale(names)
    if not inside.any():
        return flux
    # anchors: the placed rows, plus the nearest MK row with a name outside on either side
    anchors = list(np.flatnonzero(inside))
    outside = np.flatnonzero(np.isfinite(placed) & ~inside)
    below = [r for r in outside if named[r] < lo]
    above = [r for r in outside if named[r] > hi]
    if below:
        anchors.append(max(below, key=lambda r: named[r]))
    if above:
        anchors.append(min(above, key=lambda r: named[r]))
    anchors.sort(key=lambda r: placed[r])
    at = placed[anchors]
    window = (loglam > np.log10(5500.0)) & (loglam < np.log10(6500.0))
    logs = np.vstack(
        [np.log(np.clip(flux[r] / np.median(flux[r][window]), 1e-30, None)) for r in anchors]
    )
    out = flux.copy()
    for row in np.flatnonzero(inside):
        t = named[row]
        j = int(np.clip(np.searchsorted(at, t), 1, len(anchors) - 1))
        a, b = logs[j - 1], logs[j]
        # indicators are not linear in a log-flux blend: take the blend whose features say t
        shown = np.array([_placed(loglam, np.exp((1 - w) * a + w * b)) for w in BLEND_STEPS])
        w = float(BLEND_STEPS[int(np.argmin(np.abs(shown - t) + 1e-3 * BLEND_STEPS))])
        blend = np.exp((1.0 - w) * a + w * b)
        out[row] = blend * np.median(flux[row][window]) / np.median(blend[window])
        log.info(
            "template %r shows type %.1f; rendered for its name (%.0f) as %.0f%% %s (%.1f) + "
            "%.0f%% %s (%.1f)",
            names[row], placed[row], t, 100 * (1 - w), names[anchors[j - 1]], at[j - 1],
            100 * w, names[anchors[j]], at[j],
        )  # fmt: skip
    return out


#: Blend weights tried between two anchors.
BLEND_STEPS: np.ndarray = np.linspace(0.0, 1.0, 41)


def _placed(loglam: np.ndarray, flux: np.ndarray) -> float:
    return place_on_scale(indicators(loglam, flux))["all"]


def _type_or_nan(name: str) -> float:
    label = normalize_subclass(name)
    return np.nan if label.spectral_type is None or label.peculiar else label.spectral_type
