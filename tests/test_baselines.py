"""The scikit-learn baselines learn a small synthetic problem and respect their row caps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from startrack import grid
from startrack.ml import baselines
from startrack.ml.metrics import evaluate

CLASSES = ["A0", "F5", "G2", "K3", "M2"]


def _stars(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Colours that redden along the MK sequence, with scatter so the problem is not trivial."""
    k = rng.integers(0, len(CLASSES), n)
    r = rng.uniform(15, 19, n)
    g_r = 0.0 + 0.35 * k + rng.normal(0, 0.15, n)
    u_g = 1.0 + 0.4 * k + rng.normal(0, 0.25, n)
    stars = pd.DataFrame(
        {
            "label": np.array(CLASSES, dtype=object)[k],
            "z": rng.normal(0, 1e-4, n),
            "mag_u": r + g_r + u_g,
            "mag_g": r + g_r,
            "mag_r": r,
            "mag_i": r - 0.1 * k,
            "mag_z": r - 0.2 * k,
            "snr": rng.uniform(2, 50, n),
        }
    )
    stars.loc[rng.uniform(size=n) < 0.1, "mag_u"] = np.nan  # missing photometry stays NaN
    return stars


def _spectra(labels: np.ndarray, rng: np.random.Generator):
    """Slope and one absorption line depend on the class; noise, masked edges."""
    n = len(labels)
    lam = grid.wavelength()
    k = np.array([CLASSES.index(lab) for lab in labels])
    slope = (lam[None, :] / 6000.0) ** (-2.0 + k[:, None])
    line = 1 - 0.1 * k[:, None] * np.exp(-0.5 * ((lam[None, :] - 6563.0) / 10.0) ** 2)
    flux = 40.0 * slope * line * (1 + rng.normal(0, 0.1, (n, grid.NPIX)))
    ivar = np.full_like(flux, 1.0)
    mask = np.zeros_like(flux, dtype=bool)
    mask[:, :200] = True
    flux[:, :200] = np.nan
    ivar[:, :200] = 0.0
    norm = np.nanmedian(flux, axis=1)
    return flux, ivar, mask, norm


def test_tabular_matrix_keeps_missing_values_as_nan() -> None:
    stars = _stars(50, np.random.default_rng(0))
    x = baselines.tabular_matrix(stars)
    assert x.shape == (50, len(baselines.TABULAR_FEATURE_NAMES))
    u = baselines.TABULAR_FEATURE_NAMES.index("mag_u")
    ug = baselines.TABULAR_FEATURE_NAMES.index("u-g")
    assert np.array_equal(np.isnan(x[:, u]), stars["mag_u"].isna().to_numpy())
    assert np.array_equal(np.isnan(x[:, ug]), stars["mag_u"].isna().to_numpy())


def test_hgb_baseline_beats_chance() -> None:
    rng = np.random.default_rng(1)
    train, test = _stars(1500, rng), _stars(500, rng)
    model = baselines.fit_hgb_baseline(baselines.tabular_matrix(train), train["label"], seed=0)
    labels, proba, classes = baselines.predict(model, baselines.tabular_matrix(test))
    ev = evaluate(test["label"], labels, proba, classes, test["snr"].to_numpy())
    assert classes == sorted(CLASSES)
    assert ev.accuracy > 0.6  # chance is 0.2
    assert ev.within_one >= ev.accuracy


def test_pca_lr_baseline_beats_chance() -> None:
    rng = np.random.default_rng(2)
    labels = np.array(CLASSES, dtype=object)[rng.integers(0, len(CLASSES), 400)]
    x = baselines.spectral_matrix(*_spectra(labels, rng))
    assert x.shape == (400, grid.NPIX // baselines.DOWNSAMPLE)
    assert np.all(x[:, :50] == 0.0)  # fully masked bins are 0, like the model's input
    model = baselines.fit_pca_lr_baseline(x[:300], labels[:300], seed=0, n_components=20)
    pred, proba, classes = baselines.predict(model, x[300:])
    assert classes == sorted(CLASSES)
    assert np.mean(pred == labels[300:]) > 0.6
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_stratified_cap_keeps_rare_classes() -> None:
    y = np.array(["A0"] * 9000 + ["O"] * 15 + ["K3"] * 985, dtype=object)
    idx = baselines.stratified_cap(y, 1000, seed=0)
    kept = pd.Series(y[idx]).value_counts()
    assert len(idx) <= 1020 and kept["O"] == 15 and kept["A0"] == 900
    assert len(np.unique(idx)) == len(idx)
    assert np.array_equal(baselines.stratified_cap(y, 20_000, seed=0), np.arange(len(y)))


def test_bad_training_input_is_refused() -> None:
    with pytest.raises(ValueError, match="2 classes"):
        baselines.fit_hgb_baseline(np.zeros((10, 3)), ["A0"] * 10)
    with pytest.raises(ValueError, match="missing labels"):
        baselines.fit_hgb_baseline(np.zeros((3, 3)), ["A0", None, "F5"])
    with pytest.raises(ValueError, match="one label per row"):
        baselines.fit_pca_lr_baseline(np.zeros((3, 3)), ["A0", "F5"])


def test_run_baselines_scores_every_branch_on_the_models_split() -> None:
    from startrack.ml.features import split_of
    from startrack.ml.inference import Spectra
    from startrack.simulator.templates import builtin_templates

    rng = np.random.default_rng(3)
    stars = _stars(600, rng)
    stars["star_id"] = [f"1000-52000-{i:04d}" for i in range(len(stars))]
    has = rng.uniform(size=len(stars)) < 0.5
    flux, ivar, mask, norm = _spectra(stars["label"].to_numpy()[has], rng)
    row = np.full(len(stars), -1)
    row[has] = np.arange(has.sum())
    spectra = Spectra(flux, ivar, mask, norm, row)

    tables = baselines.run_baselines(stars, spectra, "v-test", templates=builtin_templates())
    m = tables["metrics"]
    assert set(m["branch"]) == {"baseline_hgb", "baseline_pca_lr", "baseline_template"}
    assert set(m["split"]) <= {"val", "test", "val_spectra", "test_spectra"}
    assert (m["model_version"] == "v-test").all()
    overall = m[m["snr_bin"].isna() & (m["metric"] == "accuracy")].set_index(["branch", "split"])
    n_test = sum(split_of(s) == "test" for s in stars["star_id"])
    n_test_spec = sum(split_of(s) == "test" for s in stars["star_id"][has])
    assert overall.loc[("baseline_hgb", "test"), "n"] == n_test
    assert overall.loc[("baseline_pca_lr", "test"), "n"] == n_test_spec
    assert overall.loc[("baseline_hgb", "test"), "value"] > 0.5
    conf = tables["confusion"]
    assert (
        conf.groupby(["branch", "split"])["n"].sum()[("baseline_template", "test")] == n_test_spec
    )
