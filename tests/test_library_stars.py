"""Real stars in the surveys (simulator/library_stars.py): the shipped STELIB stars are real,
of every type and class, none of them a MILES star; a survey observes a share of its spectra
from them, labelled as the SDSS fit would, and lists them with their provenance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from scipy.ndimage import binary_erosion, gaussian_filter1d

from startrack.labels import normalize_subclass, parse_mk
from startrack.simulator.library_stars import (
    LIBRARY_PATH,
    build_library,
    load_library,
    nearest_classes,
    star_name_key,
)
from startrack.simulator.simulate import BIT_NODATA, plan_survey, simulate_survey
from startrack.simulator.templates import BUILTIN_NAMES
from startrack.star_id import spec_file_name

ROOT = Path(__file__).resolve().parents[1]
WHEELS = sorted((ROOT / "data" / "external").glob("sdss_mangadap-*.whl"))
needs_wheel = pytest.mark.skipif(
    not WHEELS, reason="needs the sdss-mangadap wheel in data/external (`make miles`)"
)


def test_the_shipped_library_holds_real_stars_of_every_type_and_class():
    lib = load_library()
    assert len(lib.names) >= 120
    assert LIBRARY_PATH.stat().st_size < 3_000_000  # small enough to ship
    letters = {"OBAFGKM"[int(t) // 10] for t in lib.spectral_types}
    assert letters == set("OBAFGKM")
    assert {"V", "III", "I"} <= set(lib.luminosity)
    assert np.all(np.isfinite(lib.flux)) and np.all(lib.flux >= 0)
    # each star is its own spectrum, on the SDSS lattice, with real data over most of it
    sdss = (lib.loglam >= np.log10(3800)) & (lib.loglam <= np.log10(9200))
    assert np.all((lib.flux[:, sdss] > 0).mean(axis=1) >= 0.4)
    assert len({tuple(np.round(f[::97], 4)) for f in lib.flux}) >= len(lib.names) - 1
    assert "STELIB" in lib.provenance and "MILES" in lib.provenance
    for sptype, t in zip(lib.sptypes, lib.spectral_types, strict=True):
        assert parse_mk(sptype)[0] == t


def test_star_names_are_matched_whatever_their_zero_padding():
    assert star_name_key("HD 002857") == star_name_key("HD2857") == "HD2857"
    assert star_name_key("HR718") != star_name_key("HD718")


def test_a_real_star_gets_the_nearest_class_its_family_has():
    got = nearest_classes(np.array([47.0, 53.0, 20.5, 3.0, 65.0]), BUILTIN_NAMES)
    assert got.tolist() == ["G5", "K3", "A0", "O", "M5"]  # not the peculiar 'A0p'
    with pytest.raises(ValueError, match="no MK classes"):
        nearest_classes(np.array([40.0]), ("WD", "Carbon"))


@needs_wheel
def test_the_library_rebuilds_from_the_wheel_and_holds_no_miles_star(tmp_path):
    import zipfile

    from startrack.simulator.library_stars import _miles_names

    rebuilt = build_library(WHEELS[-1], tmp_path / "stelib.npz")
    shipped = load_library()
    assert rebuilt.names == shipped.names
    np.testing.assert_allclose(rebuilt.flux, shipped.flux, rtol=1e-6)
    miles = _miles_names(zipfile.ZipFile(WHEELS[-1]))
    assert len(miles) > 900
    assert not {star_name_key(n) for n in shipped.names} & miles
    with np.load(tmp_path / "stelib.npz") as f:
        assert len(f["left_out_in_miles"]) > 100  # the overlap is real, and left out


def _spectrum(survey: Path, row) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    name = spec_file_name(int(row.plate), int(row.mjd), int(row.fiberID))
    with fits.open(survey / "spectra" / name) as hdul:
        coadd, obj = hdul[1].data, hdul[2].data[0]
        return (
            np.asarray(coadd["loglam"], float),
            np.asarray(coadd["flux"], float),
            np.asarray(coadd["and_mask"]),
            {"z": float(obj["Z"]), "elodie": obj["ELODIE_SPTYPE"].strip(),
             "subclass": obj["SUBCLASS"].strip()},
        )  # fmt: skip


def _lines(flux: np.ndarray) -> np.ndarray:
    """The spectrum's lines, smoothed over the noise: flux over its running continuum."""
    return gaussian_filter1d(flux, 3.0) / gaussian_filter1d(flux, 40.0) - 1.0


def test_a_survey_observes_a_share_of_real_stars_labelled_as_sdss_would(tmp_path):
    survey = tmp_path / "survey"
    simulate_survey(survey, 800, 160, seed=3, templates=None, labels_from=None, workers=1,
                    targeting="types", real_stars=0.5)  # fmt: skip
    real = pd.read_csv(survey / "real_stars.csv")
    assert len(real) == 80 and real["library"].str.contains("STELIB").all()
    lib = load_library()
    row_of = {n: k for k, n in enumerate(lib.names)}
    correlations, controls, gaps_masked = [], [], 0
    for row in real.itertuples():
        k = row_of[row.star]
        loglam, flux, mask, obj = _spectrum(survey, row)
        # a star the SDSS fit gives the planned class (the nearest built-in class to its MK
        # type); its ELODIE type is its own MK type
        assert obj["subclass"] == row.subClass == nearest_classes(lib.spectral_types[[k]],
                                                                  BUILTIN_NAMES)[0]  # fmt: skip
        assert normalize_subclass(obj["elodie"]).spectral_type == lib.spectral_types[k]
        # its spectrum is the library star's, where the library has data; masked elsewhere
        rest = np.interp(loglam - np.log10(1 + obj["z"]), lib.loglam, lib.flux[k])
        good = (mask == 0) & (rest > 0)
        # (its catalog z is measured, so a pixel or two off the true one at the edges)
        nodata = binary_erosion(rest == 0, iterations=2, border_value=1)
        assert np.all(mask[nodata] & BIT_NODATA)
        gaps_masked += int((rest == 0).any())
        correlations.append(np.corrcoef(_lines(flux[good]), _lines(rest[good]))[0, 1])
        other = int(np.argmax(np.abs(lib.spectral_types - lib.spectral_types[k])))
        rest = np.interp(loglam - np.log10(1 + obj["z"]), lib.loglam, lib.flux[other])
        good &= rest > 0
        controls.append(np.corrcoef(_lines(flux[good]), _lines(rest[good]))[0, 1])
    # noisy (S/N down to ~3), but the star's own lines, not those of a star of another type
    assert np.median(correlations) > 0.4 > np.median(controls) + 0.15  # measured 0.51, 0.18
    assert np.mean(np.array(correlations) > np.array(controls)) > 0.9
    assert gaps_masked > 0  # some STELIB stars have no data over part of SDSS's range


def test_every_library_star_is_observed_about_as_often():
    """Not by its class's share: one M6 giant used to be every real M6 of a survey."""
    stars, _ = plan_survey(4000, 2000, seed=2, targeting="types", real_stars=0.25)
    rows = stars.loc[stars["library_row"] >= 0, "library_row"].to_numpy(int)
    assert rows.size == 500
    used = np.bincount(rows, minlength=len(load_library().names))
    assert (used > 0).all()  # all 126 stars, 3-4 observations each
    assert used.max() - used.min() <= 1
    # ... and each still observed as the class its spectrum was planned as
    planned = stars.loc[stars["library_row"] >= 0, "subClass"].to_numpy(str)
    nearest = nearest_classes(load_library().spectral_types[rows], BUILTIN_NAMES)
    assert (planned == nearest).all()
    # a class with fewer planned spectra than stars: its stars share them, the rest goes on
    few = plan_survey(4000, 200, seed=2, targeting="types", real_stars=0.5)[0]
    assert (few["library_row"] >= 0).sum() == 100


def test_real_stars_leave_the_simulated_rest_of_the_survey_as_it_was(tmp_path):
    kw = {"seed": 5, "templates": None, "labels_from": None, "workers": 1}
    simulate_survey(tmp_path / "a", 300, 60, real_stars=0.0, **kw)
    simulate_survey(tmp_path / "b", 300, 60, real_stars=0.3, **kw)
    assert not (tmp_path / "a" / "real_stars.csv").exists()
    simulate_survey(tmp_path / "c", 300, 60, real_stars=0.5, variety=False, **kw)
    assert not (tmp_path / "c" / "real_stars.csv").exists()  # an oracle's survey: none
    real = pd.read_csv(tmp_path / "b" / "real_stars.csv")
    a, b = pd.read_csv(tmp_path / "a" / "catalog.csv"), pd.read_csv(tmp_path / "b" / "catalog.csv")
    key = ["plate", "mjd", "fiberID"]
    is_real = b.set_index(key).index.isin(real.set_index(key).index)
    assert is_real.sum() == 18
    pd.testing.assert_frame_equal(a[~is_real].reset_index(drop=True),
                                  b[~is_real].reset_index(drop=True))  # fmt: skip
    with_spectrum = np.array(
        [(tmp_path / "b" / "spectra" / spec_file_name(r.plate, r.mjd, r.fiberID)).exists()
         for r in b.itertuples()]
    )  # fmt: skip
    assert with_spectrum.sum() == 60
    for row in b[~is_real & with_spectrum].itertuples():
        np.testing.assert_array_equal(_spectrum(tmp_path / "a", row)[1],
                                      _spectrum(tmp_path / "b", row)[1])  # fmt: skip


def test_simulate_says_what_a_bad_share_of_real_stars_is(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "startrack.cli", "simulate", "--out", str(tmp_path / "s"),
         "--real-stars", "1.5"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--real-stars: must be a share from 0 to 1, got 1.5" in run.stderr
    with pytest.raises(ValueError, match="--real-stars must be a share"):
        simulate_survey(tmp_path / "t", 10, 2, 0, None, None, 1, real_stars=-0.1)
