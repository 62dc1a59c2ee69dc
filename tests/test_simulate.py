"""`startrack simulate`: a small survey in the real SDSS formats, deterministic per seed."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from startrack.errors import UsageError
from startrack.simulator.cli import add_arguments, run
from startrack.simulator.simulate import (
    CATALOG_COLUMNS,
    plan_survey,
    simulate_survey,
    specobjid,
)

N_STARS, N_SPECTRA, SEED = 300, 24, 7


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("survey")
    simulate_survey(out, N_STARS, N_SPECTRA, SEED, None, None, workers=1)
    return out


def _spectra(out: Path) -> list[Path]:
    return sorted((out / "spectra").glob("spec-*.fits"))


def test_catalog_has_casjobs_columns_and_unique_ids(survey):
    cat = pd.read_csv(survey / "catalog.csv", dtype={"specObjID": str})
    assert list(cat.columns) == CATALOG_COLUMNS
    assert len(cat) == N_STARS
    assert not cat.duplicated(["plate", "mjd", "fiberID"]).any()
    assert cat.groupby("plate")["mjd"].nunique().max() == 1  # one MJD per plate
    assert cat["fiberID"].between(1, 640).all() and cat["plate"].between(266, 3000).all()
    assert (cat["class"] == "STAR").all()
    assert cat[[c for c in cat.columns if c.startswith("psfMag_")]].notna().all().all()


def test_every_spectrum_is_a_catalog_star(survey):
    cat = pd.read_csv(survey / "catalog.csv", dtype={"specObjID": str})
    files = _spectra(survey)
    assert len(files) == N_SPECTRA
    keys = {
        f"spec-{p:04d}-{m:05d}-{f:04d}.fits"
        for p, m, f in zip(cat.plate, cat.mjd, cat.fiberID, strict=True)
    }
    assert {f.name for f in files} <= keys


def test_fits_files_have_the_real_file_structure(survey, real_spec):
    with fits.open(real_spec) as real, fits.open(_spectra(survey)[0]) as sim:
        assert [h.name for h in sim] == ["PRIMARY", "COADD", "SPECOBJ"]
        assert sim["COADD"].columns.names == real["COADD"].columns.names
        assert sim["COADD"].columns.formats == real["COADD"].columns.formats
        real_forms = dict(
            zip(real["SPECOBJ"].columns.names, real["SPECOBJ"].columns.formats, strict=True)
        )
        for name, form in zip(
            sim["SPECOBJ"].columns.names, sim["SPECOBJ"].columns.formats, strict=True
        ):
            assert real_forms[name] == form, name
        for key in ("PLATEID", "MJD", "FIBERID", "PLUG_RA", "PLUG_DEC"):
            assert key in sim[0].header
        row = sim["SPECOBJ"].data[0]
        assert row["CLASS"] == "STAR" and row["PLATE"] == sim[0].header["PLATEID"]
        assert (
            row["SPECOBJID"].strip() == specobjid([row["PLATE"]], [row["MJD"]], [row["FIBERID"]])[0]
        )


def test_spectra_are_on_the_sdss_lattice_and_range(survey):
    for path in _spectra(survey)[:10]:
        data = fits.getdata(path, "COADD")
        k = data["loglam"].astype(np.float64) * 1e4
        assert np.abs(k - np.round(k)).max() < 0.02
        assert np.all(np.diff(np.round(k)) == 1)
        wave = 10.0 ** data["loglam"]
        assert 3795 < wave[0] < 3830 and 9150 < wave[-1] < 9210
        masked = data["ivar"] == 0
        assert np.all(masked == (data["and_mask"] != 0))


def test_spectrum_snr_matches_the_plan(survey):
    plan, _ = plan_survey(N_STARS, N_SPECTRA, SEED)
    target = {
        f"spec-{p:04d}-{m:05d}-{f:04d}.fits": s
        for p, m, f, s in zip(plan.plate, plan.mjd, plan.fiberID, plan.snr_target, strict=True)
    }
    ratios = []
    for path in _spectra(survey):
        data = fits.getdata(path, "COADD")
        good = data["ivar"] > 0
        measured = np.median(data["flux"][good] * np.sqrt(data["ivar"][good]))
        ratios.append(measured / target[path.name])
        assert fits.getdata(path, "SPECOBJ")["SN_MEDIAN_ALL"][0] == pytest.approx(measured, 1e-4)
    assert np.median(ratios) == pytest.approx(1.0, abs=0.1)
    assert min(ratios) > 0.6 and max(ratios) < 1.4


def test_spectrum_flux_level_matches_its_magnitude(survey):
    cat = pd.read_csv(survey / "catalog.csv")
    path = _spectra(survey)[0]
    row = fits.getdata(path, "SPECOBJ")[0]
    star = cat[(cat.plate == row["PLATE"]) & (cat.fiberID == row["FIBERID"])].iloc[0]
    r_spec = 22.5 - 2.5 * np.log10(row["SPECTROFLUX"][2])
    assert r_spec == pytest.approx(star.psfMag_r, abs=0.1 + 3 * star.psfMagErr_r)


def test_same_seed_gives_identical_output_with_any_worker_count(survey, tmp_path):
    simulate_survey(tmp_path, N_STARS, N_SPECTRA, SEED, None, None, workers=2)
    assert (tmp_path / "catalog.csv").read_bytes() == (survey / "catalog.csv").read_bytes()
    for a, b in zip(_spectra(survey), _spectra(tmp_path), strict=True):
        assert a.name == b.name
        assert a.read_bytes() == b.read_bytes()


def test_different_seed_gives_different_survey(survey, tmp_path):
    simulate_survey(tmp_path, N_STARS, N_SPECTRA, SEED + 1, None, None, workers=1)
    assert (tmp_path / "catalog.csv").read_bytes() != (survey / "catalog.csv").read_bytes()


def test_default_labels_are_uneven_like_the_real_table():
    plan, _ = plan_survey(5000, 0, 1)
    counts = plan["subClass"].value_counts()
    assert counts.index[0] == "A0" and counts["A0"] > 10 * counts.get("O", 0)


def test_labels_from_real_table_use_real_identifiers(real_labels, real_templates, tmp_path):
    summary = simulate_survey(tmp_path, 400, 10, 3, real_templates, real_labels, workers=1)
    cat = pd.read_csv(tmp_path / "catalog.csv")
    real = pd.read_csv(real_labels)
    merged = cat.merge(real, on=["plate", "mjd", "fiberID"], suffixes=("", "_real"))
    assert len(merged) == 400 and (merged.subClass == merged.subClass_real).all()
    assert summary.n_skipped_labels == (real.subClass == "M9").sum()  # no M9 in the SDSS file
    assert "M9" not in set(cat.subClass)


def test_bad_files_are_written_on_request(tmp_path):
    summary = simulate_survey(tmp_path, 60, 5, 2, None, None, workers=1, bad_files=3)
    assert summary.n_bad_files == 3 and len(_spectra(tmp_path)) == 8
    readable = 0
    for path in _spectra(tmp_path):
        try:
            with fits.open(path) as hdul:
                hdul["COADD"].data["ivar"].sum()
                readable += 1
        except Exception:
            continue
    assert readable < 8  # the truncated and non-FITS files do not open


def test_bad_requests_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="--spectra"):
        plan_survey(10, 20, 1)
    with pytest.raises(FileNotFoundError, match="labels-from"):
        plan_survey(10, 1, 1, labels_from=tmp_path / "nope.csv")
    bad = tmp_path / "labels.csv"
    bad.write_text("plate,mjd\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        plan_survey(10, 1, 1, labels_from=bad)


def test_cli_options_and_run(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--out", str(tmp_path), "--stars", "40", "--spectra", "3", "--workers", "1"]
    )
    assert run(args) == 0
    assert "40 stars" in capsys.readouterr().out
    with pytest.raises(UsageError, match="--spectra must be between 0 and --stars") as caught:
        run(parser.parse_args(["--out", str(tmp_path), "--stars", "5", "--spectra", "9"]))
    assert caught.value.exit_code == 2
