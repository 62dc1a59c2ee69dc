"""A template file's spectra are placed on the MK scale by what they show, not by their names
(simulator/type_scale.py): the SDSS pipeline's 'F2' template shows an F7, its 'G5' a K2."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REAL_TEMPLATES, need_shared

from startrack.labels import spectral_type_of
from startrack.simulator import simulate
from startrack.simulator.templates import builtin_templates, extend_for_photometry, load_templates
from startrack.simulator.type_scale import (
    indicators,
    measured_types,
    place_on_scale,
    resample_onto_names,
)

FK = ("F2", "F5", "F9", "G0", "G2", "G5", "K1", "K3", "K5")


def _placed(loglam: np.ndarray, flux_row: np.ndarray) -> float:
    return place_on_scale(indicators(loglam, flux_row))["all"]


def _file_from_builtin():
    """A 'template file' of built-in dwarfs (names, log-lambda, flux)."""
    bt = builtin_templates()
    names = ("A0", "F2", "F5", "F9", "G0", "G5", "K1", "K3", "K5", "K7", "M0")
    return names, bt.loglam, bt.flux[[bt.index_of(n) for n in names]].copy()


def test_correctly_named_spectra_are_placed_at_their_names_and_left_alone() -> None:
    names, loglam, flux = _file_from_builtin()
    placed = measured_types(loglam, flux, names)
    for name, t in zip(names, placed, strict=True):
        assert abs(t - spectral_type_of(name)) <= 1.0, (name, t)
    out = resample_onto_names(loglam, flux, names)
    for row, name in enumerate(names):
        ratio = np.log(out[row] / flux[row])
        assert np.std(ratio) < 0.05, name  # the same spectrum (up to scale)


def test_a_spectrum_filed_under_the_wrong_name_is_found_and_the_name_gets_its_own_type() -> None:
    # the file's 'G5' is really a K1 dwarf (as the SDSS file's G5 is a K2): the survey's G5
    # stars must look like G5 stars, not like K1 stars
    names, loglam, flux = _file_from_builtin()
    g5, k1 = names.index("G5"), names.index("K1")
    flux[g5] = flux[k1]
    placed = measured_types(loglam, flux, names)
    assert placed[g5] >= 50.0
    out = resample_onto_names(loglam, flux, names)
    assert abs(_placed(loglam, out[g5]) - 45.0) <= 1.5
    assert abs(_placed(loglam, out[k1]) - 51.0) <= 1.0
    for name in ("A0", "M0"):  # outside F-K: the file's own spectrum
        np.testing.assert_array_equal(out[names.index(name)], flux[names.index(name)])


def test_real_sdss_templates_are_off_mk_where_the_readme_says_and_rendered_on_it() -> None:
    ts = extend_for_photometry(load_templates(need_shared(REAL_TEMPLATES)))
    placed = dict(zip(ts.names, measured_types(ts.loglam, ts.flux, ts.names), strict=True))
    assert placed["F2"] >= 35.5  # an F7, not an F2
    assert placed["G2"] <= 39.0  # hotter than a G0
    assert placed["G5"] >= 50.0  # a K dwarf
    out = resample_onto_names(ts.loglam, ts.flux, ts.names)
    for name in FK:
        t = _placed(ts.loglam, out[ts.index_of(name)])
        assert abs(t - spectral_type_of(name)) <= 1.5, (name, t)
    for name in ("A0", "M2", "WD", "Carbon", "L0"):
        row = ts.index_of(name)
        np.testing.assert_array_equal(out[row], ts.flux[row])


def test_a_measured_file_survey_draws_its_o_and_b_stars_from_the_physics() -> None:
    """The SDSS file's O, OB, B6 and B9 rows are hot subdwarfs (He II 4686 in B6 and B9): a
    'measured' survey draws those types from the built-in dwarfs at the rows' flux level,
    standing for solar [Fe/H]; A0 and cooler rows, and a 'names' survey, keep the file's."""
    from startrack.simulator.templates import star_flux

    tpl = str(need_shared(REAL_TEMPLATES).resolve())
    raw = extend_for_photometry(load_templates(need_shared(REAL_TEMPLATES)))
    measured = simulate._wide_templates(tpl, "measured")
    ctx = simulate._context(tpl, "measured")
    window = (measured.wavelength > 5500) & (measured.wavelength < 6500)
    for name in ("O", "OB", "B6", "B9"):
        row = measured.index_of(name)
        dwarf = star_flux(name, measured.wavelength)
        ratio = measured.flux[row] / dwarf
        np.testing.assert_allclose(ratio, ratio[window].mean(), rtol=1e-6)  # the dwarf's shape
        assert np.median(measured.flux[row][window]) == pytest.approx(
            np.median(raw.flux[raw.index_of(name)][window]), rel=1e-6
        )
        assert ctx.reference_feh[row] == 0.0
    for name in ("A0", "K7", "WD"):
        np.testing.assert_array_equal(
            measured.flux[measured.index_of(name)], raw.flux[raw.index_of(name)]
        )
    named = simulate._wide_templates(tpl, "names")
    np.testing.assert_array_equal(named.flux[named.index_of("B6")], raw.flux[raw.index_of("B6")])


def test_names_option_keeps_the_file_and_a_bad_choice_is_refused() -> None:
    tpl = str(need_shared(REAL_TEMPLATES).resolve())
    named = simulate._wide_templates(tpl, "names")
    measured = simulate._wide_templates(tpl, "measured")
    g5 = named.index_of("G5")
    assert _placed(named.loglam, named.flux[g5]) >= 50.0
    assert abs(_placed(measured.loglam, measured.flux[g5]) - 45.0) <= 1.5
    with pytest.raises(ValueError, match="--template-types must be one of measured, names"):
        simulate.plan_survey(10, 1, 1, tpl, template_types="mk")


def test_line_strengths_script_prints_where_each_sdss_template_sits(tmp_path) -> None:
    """benchmarks/line_strengths.py, as a user runs it: the JSON it writes agrees with the
    README's placement (the SDSS 'G5' shows a K2) and with what a survey renders."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    templates = need_shared(REAL_TEMPLATES)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "line_strengths.py"
    out = tmp_path / "placement.json"
    done = subprocess.run(
        [sys.executable, str(script), "--templates", str(templates), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    placed = json.loads(out.read_text())["G5"]["builtin_scale"]
    assert placed["all"] >= 50.0 and abs(placed["simulated"] - 45.0) <= 1.5
    assert "simulated" in done.stdout


def _write_template_file(path, names, loglam, flux) -> None:
    """``names`` and ``flux`` as a template file in the spEigenStar layout."""
    from astropy.io import fits

    hdu = fits.PrimaryHDU(flux.astype(np.float32))
    hdu.header["COEFF0"] = float(loglam[0])
    hdu.header["COEFF1"] = float(loglam[1] - loglam[0])
    for k, name in enumerate(names):
        hdu.header[f"NAME{k}"] = name
    hdu.writeto(path)


def test_a_star_drawn_from_a_row_rendered_on_the_scale_has_the_lines_of_its_own_metallicity(
    tmp_path,
) -> None:
    """A file's F-K spectra rendered on the scale show their type as its (solar) dwarfs do, so
    they stand for [Fe/H] 0 and the physics changes a star's [Fe/H] from there. Until version
    12 every row stood for the file's stars' mean (-0.5): a disc G2 drawn from a row of solar
    lines got a G band stronger than a K1 dwarf's (6.8 A for 5.2), and a model trained on the
    SDSS file typed F9-K0 stars 4-6 subtypes early (README, Generalization, stop 35)."""
    from startrack.simulator.line_indices import equivalent_widths
    from startrack.simulator.templates import (
        DWARF_LOGG,
        SUBCLASS_TEFF,
        WIDE_LOGLAM,
        physics_change,
        star_flux,
    )

    names = ("A0", "F2", "F5", "F9", "G0", "G2", "G5", "K1", "K3", "K5", "K7", "M0")
    loglam = 3.578 + 1e-4 * np.arange(3892)
    wave = 10.0**loglam
    flux = np.vstack([star_flux(n, wave, SUBCLASS_TEFF[n], DWARF_LOGG, 0.0) for n in names])
    path = tmp_path / "dwarfs.fits"
    _write_template_file(path, names, loglam, flux)

    ctx = simulate._context(str(path), "measured")
    for name in ("A0", "K7", "M0"):  # kept as the file has them: its stars' mean
        assert ctx.reference_feh[ctx.templates.index_of(name)] == simulate.TEMPLATE_FILE_FEH
    wide = 10.0**WIDE_LOGLAM
    for name in ("F5", "G2", "K1"):
        row = ctx.templates.index_of(name)
        assert ctx.reference_feh[row] == 0.0, name
        teff = SUBCLASS_TEFF[name]
        for feh in (-0.2, -1.5):
            drawn = ctx.templates.flux[row] * physics_change(
                name, wide, teff, DWARF_LOGG, feh, ctx.reference_feh[row]
            )
            got = equivalent_widths(wide, drawn)
            want = equivalent_widths(wide, star_flux(name, wide, teff, DWARF_LOGG, feh))
            for index in ("G band", "Mg b", "H beta"):
                assert got[index] == pytest.approx(want[index], abs=0.25), (name, feh, index)
    named = simulate._context(str(path), "names")
    assert np.all(named.reference_feh == simulate.TEMPLATE_FILE_FEH)  # the file's own spectra


def test_a_disc_g2_from_the_real_sdss_file_keeps_its_row_s_lines() -> None:
    """The SDSS file's rendered G2 has the metal lines of a -0.2 dwarf (G band 4.9 A, Mg b
    2.5): a disc star drawn from it keeps about those, where every row standing for the file's
    -0.5 gave it a solar G5's (5.9 and 2.9)."""
    from startrack.simulator.line_indices import equivalent_widths
    from startrack.simulator.templates import DWARF_LOGG, SUBCLASS_TEFF, physics_change

    ctx = simulate._context(str(need_shared(REAL_TEMPLATES).resolve()), "measured")
    wave = ctx.templates.wavelength
    row = ctx.templates.index_of("G2")
    base = equivalent_widths(wave, ctx.templates.flux[row])
    disc = ctx.templates.flux[row] * physics_change(
        "G2", wave, SUBCLASS_TEFF["G2"], DWARF_LOGG, -0.2, ctx.reference_feh[row]
    )
    drawn = equivalent_widths(wave, disc)
    assert drawn["G band"] <= base["G band"] and drawn["G band"] > 0.8 * base["G band"]
    assert drawn["Mg b"] <= base["Mg b"] < 2.7
