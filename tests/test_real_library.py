"""The real-star benchmark (benchmarks/real_library.py): MILES types read right, and a library
star written as a spec-lite file is what the ETL and the models see of a real observation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MILES_WHEELS = sorted((ROOT / "data" / "external").glob("sdss_mangadap-*.whl"))


@pytest.fixture
def rl(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import real_library

    return real_library


def test_the_parameter_file_is_read_by_its_header_columns(rl):
    # Three rows of paramsMILES_v9.1.txt (MILES v9.1, miles.iac.es), as the file lays them out.
    text = "\n".join(
        [
            "Name                  MILES   CaT   SpT            Teff   log g   [Fe/H]  Refs"
            "   Libraries",
            "                      s????   ",
            " - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -",
            "BD-011792              0266         G6V             4948   3.05    -1.05   111",
            "BD+012916              0505   677   KIIvw           4238   0.34    -1.49   221"
            "         I      ",
            "HD000000               0999                         5000   4.00     0.00   111",
        ]
    )
    rows = rl._param_rows(text)
    assert {k: v[:2] for k, v in rows.items()} == {
        "0266": ("BD-011792", "G6V"),
        "0505": ("BD+012916", "KIIvw"),
        "0999": ("HD000000", ""),  # no type: the Teff column is not taken for one
    }
    assert rows["0266"][2] == (4948.0, 3.05, -1.05)  # Teff, log g, [Fe/H]


def test_a_library_star_observed_is_ingested_as_a_real_spectrum_would_be(rl, tmp_path):
    """A star covering 3540-7410 A (as MILES does), written three times, goes through the ETL:
    the spectra keep its coverage, S/N and velocity; the catalog photometry holds g and r (the
    bands the spectrum covers) and no u, i or z."""
    from startrack.etl.ingest import ingest
    from startrack.ml.dataset import load_training_data
    from startrack.simulator.templates import star_flux
    from startrack.warehouse.store import Warehouse

    wave = np.arange(3540.5, 7410.0, 0.9)
    star = rl.LibraryStar("0001", "HD000001", "G2V", wave, star_flux("G2", wave))
    truth = rl.write_library([star] * 3, copies=1, seed=3, spectra_dir=tmp_path / "spectra")
    assert len(truth) == 3 and truth["mk_type"].eq(42.0).all()
    wh = Warehouse(tmp_path / "wh")
    ingest(wh, spectra=[tmp_path / "spectra"], progress=False)
    d = load_training_data(wh.current())
    assert len(d.stars) == 3 and (d.spec_row >= 0).all()
    stars = d.stars.set_index("fiberid").loc[truth["fiberid"]]
    np.testing.assert_allclose(stars["z"], truth["z"], atol=1e-6)
    np.testing.assert_allclose(stars["snr"], truth["snr"], rtol=0.25)
    assert stars[["mag_g", "mag_r"]].notna().all().all()
    assert stars[["mag_u", "mag_i", "mag_z"]].isna().all().all()
    spectra = d.spectra()
    covered = np.flatnonzero(spectra.ivar[0] > 0)
    from startrack.grid import wavelength

    lam = wavelength()[covered]
    assert lam.min() >= 3801.0 and 7300.0 < lam.max() <= 7415.0


def test_fibers_stay_on_sdss_plates(rl, tmp_path):
    wave = np.arange(3540.5, 7410.0, 0.9)
    star = rl.LibraryStar("0001", "HD000001", "K3III", wave, np.ones_like(wave))
    rl.FIBERS_PER_PLATE, old = 2, rl.FIBERS_PER_PLATE
    try:
        truth = rl.write_library([star], copies=5, seed=0, spectra_dir=tmp_path)
    finally:
        rl.FIBERS_PER_PLATE = old
    assert list(zip(truth["plate"], truth["fiberid"], strict=True)) == [
        (9000, 1), (9000, 2), (9001, 1), (9001, 2), (9002, 1),
    ]  # fmt: skip
    assert len(list(tmp_path.glob("spec-*.fits"))) == 5


@pytest.mark.skipif(not MILES_WHEELS, reason="no MILES library: `make miles` fetches it")
def test_the_miles_library_is_read_from_the_wheel(rl):
    stars = list(rl.load_miles(MILES_WHEELS[-1]))
    typed = [s for s in stars if rl.parse_mk(s.sptype)[0] is not None]
    assert len(stars) == 984  # 985 in MILES v9.1; the DAP leaves m0970 (a short, bad spectrum)
    assert 870 <= len(typed) <= 890
    lum = {rl.parse_mk(s.sptype)[1] for s in typed}
    assert lum == {"V", "IV", "III", "II", "I", ""}
    a0 = next(s for s in stars if s.name == "HD031295")
    assert a0.sptype == "A0V"
    # vacuum wavelengths over MILES's range; H beta's core where it is in vacuum (4862.7 A)
    assert math.isclose(a0.wavelength_vac[0], 3541.5, abs_tol=1.5)
    near = (a0.wavelength_vac > 4840) & (a0.wavelength_vac < 4885)
    assert abs(a0.wavelength_vac[near][np.argmin(a0.flux[near])] - 4862.7) < 1.5
    assert a0.parameters == (8991.0, 4.08, -0.89)  # Teff, log g, [Fe/H] of the parameter file


@pytest.mark.skipif(not MILES_WHEELS, reason="no MILES library: `make miles` fetches it")
def test_builtin_physics_against_real_stars_is_scored_per_index(rl):
    """`line_strengths.py --miles`: the built-in physics at each MILES F-M star's own Teff, log
    g and [Fe/H] against the star, for every index, on the stars of odd id. The score is a
    regression guard: the physics of simulator versions 15-16 is at 200 in all (its Fe 4383,
    Fe 4531 and Ca 4455 are ~0 where real G-K stars have 3-10 A: no metal-line forest; a
    forest fitted to the even ids reached 73 and typed real stars worse: README, stop 38)."""
    import line_strengths

    _, score = line_strengths.miles_comparison(MILES_WHEELS[-1], held_out=True)
    assert set(score) == set(line_strengths.MISMATCH_UNITS)
    assert all(np.isfinite(v) and v > 0 for v in score.values()), score
    assert score["Fe 4383"] > 20.0  # the missing forest shows
    assert sum(score.values()) < 210.0, score


def test_late_type_bias_splits_dwarfs_from_giants_and_metal_poor_from_rich(rl):
    """The figure that says a model types F9-K5 dwarfs early (README, stop 41): each star
    counts in its own gravity and [Fe/H] band, and no other type counts at all."""
    import pandas as pd

    params = pd.DataFrame(
        {"logg": [4.5, 4.5, 4.4, 2.5, 2.4, 4.5, np.nan],
         "feh": [0.0, 0.1, -1.6, 0.0, -0.7, 0.0, 0.0]}
    )  # fmt: skip
    own = np.array([50.0, 45.0, 48.0, 50.0, 52.0, 20.0, 50.0])  # an A0 and a star without log g
    pred = np.array([47.0, 43.0, 41.0, 51.0, 52.5, 40.0, 10.0])
    bias = rl.late_type_bias(own, pred, params)
    assert bias["dwarfs [Fe/H] -0.5..1"] == {"n": 2, "signed_median": -2.5, "beyond_5": 0.0}
    assert bias["dwarfs [Fe/H] -5..-1"] == {"n": 1, "signed_median": -7.0, "beyond_5": 1.0}
    assert bias["giants [Fe/H] -0.5..1"] == {"n": 1, "signed_median": 1.0, "beyond_5": 0.0}
    assert bias["giants [Fe/H] -1..-0.5"]["n"] == 1
    assert bias["dwarfs [Fe/H] -1..-0.5"] == {"n": 0, "signed_median": None, "beyond_5": None}


def test_a_builtin_twin_carries_its_own_parameters_not_its_real_stars(rl):
    """--twins splits the late types by the twin's gravity and [Fe/H]: a solar dwarf or giant
    at its class's log g, whatever the real star it stands in for."""
    wave = np.linspace(3600.0, 7400.0, 500)
    real = rl.LibraryStar("0001", "HD000001", "K0V", wave, np.ones_like(wave), (5100.0, 4.6, -1.8))
    twin = rl.builtin_twin(real)
    teff, logg, feh = twin.parameters
    assert (logg, feh) == (rl.CLASS_LOGG["V"], 0.0)
    assert 5000.0 < teff < 5500.0  # a K0 dwarf's Teff on the built-in scale
    assert twin.flux.shape == wave.shape and np.all(twin.flux > 0)
    giant = rl.builtin_twin(rl.LibraryStar("0002", "HD000002", "K0III", wave, real.flux))
    assert giant.parameters[1] == rl.CLASS_LOGG["III"] and giant.parameters[0] < teff
