"""The transfer benchmark's S/N reweighting: the figures the README quotes for S/N 4-60."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_transfer

    return bench_transfer


def test_snr_weights_are_log_uniform_over_the_real_sets_range(bench):
    rng = np.random.default_rng(0)
    snr = 10 ** rng.normal(0.75, 0.3, 20000)  # a survey: mostly faint
    snr[:5] = [np.nan, -1.0, 0.0, 3.9, 61.0]
    w = bench.log_uniform_snr_weights(snr)
    assert w.sum() == pytest.approx(1.0)
    outside = ~((snr >= 4) & (snr <= 60))
    assert (w[outside] == 0).all()
    edges = np.geomspace(4, 60, 7)  # the six log bins: equal mass each
    mass = [w[(snr >= a) & (snr < b)].sum() for a, b in itertools.pairwise(edges)]
    np.testing.assert_allclose(mass, 1 / 6, rtol=1e-6)


def test_weighted_type_metrics_count_each_star_by_its_weight(bench):
    truth = np.array([20.0, 30.0, 40.0, 50.0, np.nan])
    pred = np.array([20.0, 34.0, 50.0, np.nan, 0.0])  # errors 0, 4, 10, miss; no MK truth
    plain = bench.type_metrics(truth, pred)
    assert plain["within_5"] == 0.5 and plain["n"] == 4
    same = bench.type_metrics(truth, pred, np.ones(5))
    assert {k: same[k] for k in ("within_1", "within_2_5", "within_5")} == {
        k: plain[k] for k in ("within_1", "within_2_5", "within_5")
    }
    heavy = bench.type_metrics(truth, pred, np.array([3.0, 1.0, 0.0, 0.0, 1.0]))
    assert heavy == {
        "median_error": 0.0, "within_1": 0.75, "within_2_5": 0.75, "within_5": 1.0, "n": 2
    }  # fmt: skip


def test_type_uniform_weights_give_every_type_bin_the_same_mass(bench):
    rng = np.random.default_rng(1)
    own = np.r_[np.full(900, 20.0), rng.uniform(21, 69, 100), [np.nan, 40.0]]  # A0 dominates
    snr_w = np.r_[np.ones(1000), 1.0, 0.0]  # the last star is outside the S/N range
    w = bench.type_uniform_weights(own, snr_w)
    assert w.sum() == pytest.approx(1.0)
    assert w[-2] == 0 and w[-1] == 0  # no own type; no S/N weight
    bins = np.floor(own[:-2] / bench.TYPE_BIN)
    mass = [w[:-2][bins == b].sum() for b in np.unique(bins)]
    np.testing.assert_allclose(mass, 1 / len(mass), rtol=1e-9)
    # within a bin the stars keep their relative S/N weights
    snr_w2 = snr_w.copy()
    snr_w2[0] = 3.0
    w2 = bench.type_uniform_weights(own, snr_w2)
    assert w2[0] == pytest.approx(3 * w2[1])
    # no star with an own type (or none in the S/N range): all weights 0, and the metrics say n 0
    none = bench.type_uniform_weights(np.array([np.nan, 30.0]), np.array([1.0, 0.0]))
    assert (none == 0).all()
    assert bench.type_metrics(np.array([np.nan, 30.0]), np.array([20.0, 30.0]), none) == {"n": 0}


def test_per_type_bin_figures_show_which_types_are_typed_late_or_early(bench):
    """A model that types every B2-B4 star 4 subtypes late and every K star right: the B2-B4
    bin says +4 and none within 2.5; the K bins 0 and all; a star off the S/N range counts
    nowhere."""
    own = np.r_[np.linspace(12.0, 14.9, 10), np.linspace(51.0, 59.9, 30), [13.0]]
    pred = own + np.r_[np.full(10, 4.0), np.zeros(30), [-9.0]]
    weights = np.r_[np.ones(40), 0.0]
    bins = bench.by_type_bin(own, pred, weights)
    assert list(bins) == ["B2-B4", "K1-K3", "K4-K6", "K7-K9"]
    assert bins["B2-B4"] == {"n": 10, "signed_median": 4.0, "within_2_5": 0.0, "within_5": 1.0}
    assert all(bins[k]["signed_median"] == 0 and bins[k]["within_2_5"] == 1 for k in list(bins)[1:])
    assert bench.type_bin_name(23) == "M9-M9"


def test_reddened_condition_dims_spectrum_and_photometry_along_one_law(bench):
    from types import SimpleNamespace

    import pandas as pd

    from startrack.grid import NPIX, wavelength
    from startrack.ml.augment import SDSS_EXTINCTION

    n = 3
    stars = pd.DataFrame({f"mag_{b}": np.full(n, 17.0) for b in "ugriz"})
    data = SimpleNamespace(
        stars=stars,
        spec_row=np.arange(n),
        flux=np.ones((n, NPIX), np.float32),
        ivar=np.ones((n, NPIX), np.float32),
        mask=np.zeros((n, NPIX), bool),
        norm=np.ones(n, np.float32),
    )
    rows = np.arange(n)
    for ebv in (0.1, 0.4):
        seen, spectra = bench.observed_as(data, rows, "reddened", ebv=ebv)
        blue, red = spectra.flux[0, wavelength() < 4000].mean(), spectra.flux[0, -50:].mean()
        assert blue < red < 1.0  # dust dims the blue most
        assert seen["mag_g"].iloc[0] == pytest.approx(17.0 + SDSS_EXTINCTION[1] * ebv)
    _, default = bench.observed_as(data, rows, "reddened")
    _, explicit = bench.observed_as(data, rows, "reddened", ebv=bench.REDDENED_EBV)
    assert np.array_equal(default.flux, explicit.flux)
    assert (data.flux == 1).all()  # the survey's own arrays are untouched


def test_reddened_condition_carries_the_gas_lines_of_its_dust(bench):
    """A library's star behind E(B-V) 0.4 shows its dust's Na D and Ca II K; the
    dust-only condition (the measure before stop 31) is the same continuum without them."""
    from types import SimpleNamespace

    import pandas as pd

    from startrack.grid import NPIX, air_to_vacuum, wavelength

    stars = pd.DataFrame({f"mag_{b}": [17.0] for b in "ugriz"})
    data = SimpleNamespace(
        stars=stars, spec_row=np.arange(1), flux=np.ones((1, NPIX), np.float32),
        ivar=np.ones((1, NPIX), np.float32), mask=np.zeros((1, NPIX), bool),
        norm=np.ones(1, np.float32),
    )  # fmt: skip
    _, gas = bench.observed_as(data, np.arange(1), "reddened")
    _, dust = bench.observed_as(data, np.arange(1), "reddened_dust_only")
    wave = wavelength()
    for line in (5889.95, 3933.66):
        at = np.argmin(np.abs(wave - float(air_to_vacuum(line))))
        assert gas.flux[0, at] / dust.flux[0, at] < 0.9
    far = (wave > 5000) & (wave < 5500)
    np.testing.assert_allclose(gas.flux[0, far], dust.flux[0, far], rtol=1e-6)


def test_type_spread_test_survey_gives_the_rare_types_their_spectra(bench, tmp_path):
    """The benchmark's second test survey must really be spread over the types: with SDSS's
    label mix a B2-B7 bin holds a handful of spectra and the uniform figure weighs it fully."""
    from bench_ml import survey_warehouse

    from startrack.labels import spectral_types
    from startrack.ml.dataset import load_training_data

    def early_b_share(name: str, targeting: str) -> float:
        # templates=None: the built-in family with its own label mix (no ../shared needed)
        wh, _ = survey_warehouse(tmp_path, name, 2_000, 200, 21, None, targeting=targeting)
        data = load_training_data(wh.current())
        own = spectral_types(data.stars["elodie_sptype"].to_numpy(object))
        spec = own[data.spec_row >= 0]
        return float(np.mean((spec >= 10) & (spec < 19)))  # B0-B8

    spread, mix = early_b_share("builtin-types", "types"), early_b_share("builtin-var", "random")
    assert spread > 0.08 and spread > 4 * mix
