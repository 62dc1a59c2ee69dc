"""Training on tiny synthetic stars: the split, the class set, learning, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ml_synthetic import synthetic_data

from startrack.ml.features import split_fraction, split_of
from startrack.ml.train import class_set, neighbour_matrix, train_model
from startrack.ml.train_config import AugmentConfig, TrainConfig


def test_split_is_stable_and_roughly_80_10_10():
    assert split_of("2942-54521-0124") == split_of("2942-54521-0124")
    f = split_fraction("2942-54521-0124")
    assert 0 <= f < 1 and f == pytest.approx(split_fraction("2942-54521-0124"))
    splits = [split_of(f"{p}-5{p}-{i:04d}") for p in range(1000, 1010) for i in range(1000)]
    counts = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert counts["train"] == pytest.approx(0.8, abs=0.02)
    assert counts["val"] == pytest.approx(0.1, abs=0.02)
    assert counts["test"] == pytest.approx(0.1, abs=0.02)


def test_class_set_drops_rare_labels_and_orders_along_mk():
    import pandas as pd

    labels = pd.Series(["K3"] * 30 + ["A0"] * 25 + ["O"] * 3 + [None] * 5)
    assert class_set(labels, 20) == ["A0", "K3"]
    nb = neighbour_matrix(["A0", "F5", "K3", "WD"])
    assert nb[0, 1] and nb[1, 2] and not nb[0, 2] and not nb[3].any()


@pytest.mark.slow
def test_a_few_epochs_beat_chance_clearly_on_every_head():
    data = synthetic_data(600, spec_fraction=0.6, seed=3)
    # a rare label must be left out, not learned
    data.stars.loc[:2, "label"] = "O"
    # the fixture's classes differ in continuum slope as well as lines; the calibration-tilt
    # augmentation hides slope on purpose (real spectra's slopes lie), and with it the lstm
    # needs more than 8 epochs on 360 spectra to read the lines alone (0.39-0.54 for 0.57-0.64)
    cfg = TrainConfig(
        epochs=8, batch_size=32, min_class_count=5, seed=0, patience=10,
        augment=AugmentConfig(p_calib_tilt=0.0),
    )  # fmt: skip
    result = train_model(data, cfg, progress=False)
    meta = result.meta
    assert "O" not in meta["labels"] and len(meta["labels"]) == 6
    val = meta["metrics"]["validation"]
    chance = 1 / 6
    assert val["lstm_accuracy"] > 3 * chance
    assert val["fusion_accuracy_spectrum"] > 3 * chance
    assert val["dense_accuracy"] > 1.5 * chance
    assert set(meta["temperatures"]) == {"dense", "lstm", "fusion", "fusion_spectrum"}
    assert all(0.05 <= t <= 20 for t in meta["temperatures"].values())
    # the continuous type's own temperatures: without own (ELODIE) types the targets are the
    # labels, so they come out as the class temperatures of the same spectra
    readout = meta["type_readout"]
    assert readout["neighbours"] == 1 and set(readout["temperatures"]) == {
        "lstm",
        "fusion_spectrum",
    }
    for key, t in readout["temperatures"].items():
        assert t == pytest.approx(meta["temperatures"][key], rel=1e-3)
    assert len(result.history) == 8
    assert len(meta["features"]["stats"]["mean"]) == len(meta["features"]["names"])


def test_same_seed_same_model():
    data = synthetic_data(120, spec_fraction=0.5, seed=5)
    cfg = TrainConfig(epochs=1, batch_size=16, min_class_count=2, seed=7)
    a = train_model(data, cfg, progress=False).model.state_dict()
    b = train_model(data, cfg, progress=False).model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_model_options_reach_the_network_and_its_saved_config():
    data = synthetic_data(120, spec_fraction=0.5, seed=5)
    cfg = TrainConfig(epochs=1, batch_size=16, min_class_count=2, model_options={"line_indices": 8})
    model = train_model(data, cfg, progress=False).model
    assert model.cfg.line_indices == 8 and model.spectrum.indices is not None
    assert model.index_proj.in_features == 8
    assert model.cfg.to_dict()["line_indices"] == 8  # what the artifact stores
    default = train_model(data, TrainConfig(epochs=1, batch_size=16, min_class_count=2), False)
    assert default.model.spectrum.indices is None  # off by default (stop 22)
    assert not any(name.startswith("index_") for name, _ in default.model.named_parameters())


def test_too_few_classes_is_a_clear_error():
    data = synthetic_data(60, seed=1)
    data.stars["label"] = "A0"
    with pytest.raises(ValueError, match="at least 2 labels"):
        train_model(data, TrainConfig(epochs=1, min_class_count=1), progress=False)


def test_photometry_only_training_set_works():
    data = synthetic_data(200, spec_fraction=0.0, seed=2)
    assert (data.spec_row < 0).all() and data.flux.shape[0] == 0
    result = train_model(data, TrainConfig(epochs=1, min_class_count=2), progress=False)
    assert np.isfinite(result.history[0]["loss_dense"])


def test_learning_rate_warms_up_then_anneals_to_the_floor():
    from startrack.ml.train import lr_factor

    assert lr_factor(0.0) == pytest.approx(0.02)
    assert lr_factor(0.05) == pytest.approx(1.0)
    assert lr_factor(0.5) < lr_factor(0.2) < 1.0
    assert lr_factor(1.0) == pytest.approx(0.02) and lr_factor(3.0) == pytest.approx(0.02)


def test_class_balanced_sampling_draws_rare_spectrum_classes_more_often():
    from startrack.ml.train import _batches

    y = np.array([0] * 90 + [1] * 10)
    counts = np.bincount(y).astype(float)
    p = counts[y] ** -0.5
    p /= p.sum()
    cfg = TrainConfig(batch_size=20, phot_per_spec=0.0)
    rng = np.random.default_rng(0)
    drawn = np.concatenate(
        [b for _ in range(50) for b in _batches(np.arange(100), np.arange(0), cfg, rng, p)]
    )
    share_rare = float((y[drawn] == 1).mean())
    assert share_rare == pytest.approx(0.25, abs=0.03)  # sqrt(10)/(sqrt(10)+sqrt(90)) = 0.25


def test_sampling_balances_labels_or_the_stars_own_types():
    from startrack.ml.train import sampling_probabilities

    # 90 A0 stars, most of them at A0 itself and a few at A4-A5; 10 F2 stars; 5 white dwarfs
    y = np.array([0] * 90 + [1] * 10 + [2] * 5)
    types = np.r_[np.full(80, 20.0), np.full(10, 24.5), np.full(10, 32.0), np.full(5, np.nan)]
    by_label = sampling_probabilities(y, types, 0.0, 1.0)
    assert by_label[:90].sum() == pytest.approx(by_label[90:100].sum())
    assert by_label[0] == pytest.approx(by_label[85])  # an A4 labelled A0 is just an A0
    by_type = sampling_probabilities(y, types, 3.0, 1.0)
    groups = [slice(0, 80), slice(80, 90), slice(90, 100), slice(100, 105)]
    mass = [by_type[g].sum() for g in groups]
    np.testing.assert_allclose(mass, 0.25)  # A0-A2, A3-A5, F0-F2 and the white dwarfs
    assert by_type.sum() == pytest.approx(1.0)
    half = sampling_probabilities(y, types, 3.0, 0.5)
    assert half[85] / half[0] == pytest.approx(np.sqrt(80 / 10))
    assert sampling_probabilities(y, types, 3.0, 0.0) is None


def test_the_dense_loss_sees_the_stars_drawn_by_type_as_if_drawn_by_label():
    from startrack.ml.train import label_draw_weights, sampling_probabilities

    y = np.array([0] * 90 + [1] * 10)
    types = np.r_[np.full(80, 20.0), np.full(10, 24.5), np.full(10, 32.0)]
    cfg = TrainConfig()
    p = sampling_probabilities(y, types, cfg.sample_type_bin, cfg.sample_power)
    w = label_draw_weights(y, types, p, cfg.sample_power)
    by_label = sampling_probabilities(y, types, 0.0, cfg.sample_power)
    for label in (0, 1):  # expected weight per label under the draw by type = its draw by label
        assert (p * w)[y == label].sum() == pytest.approx(by_label[y == label].sum())
    assert (p * w).sum() == pytest.approx(1.0)  # mean weight 1 over what is drawn
    assert (label_draw_weights(y, types, None, cfg.sample_power) == 1).all()


def test_time_budget_stops_training_and_still_returns_a_calibrated_model():
    data = synthetic_data(200, spec_fraction=0.5, seed=4)
    cfg = TrainConfig(epochs=50, batch_size=16, min_class_count=2, time_budget_s=0.5)
    result = train_model(data, cfg, progress=False)
    assert 1 <= len(result.history) < 50
    assert set(result.meta["temperatures"]) == {"dense", "lstm", "fusion", "fusion_spectrum"}


def test_min_epochs_outlast_the_time_budget():
    """On a slow machine the budget would stop after one epoch: the minimum wins."""
    data = synthetic_data(120, spec_fraction=0.5, seed=4)
    cfg = TrainConfig(epochs=50, batch_size=16, min_class_count=2, time_budget_s=0.01)
    assert len(train_model(data, cfg, progress=False).history) == 1
    cfg.min_epochs = 3
    assert len(train_model(data, cfg, progress=False).history) == 3


def test_early_stopping_waits_for_the_annealing_half_then_stops():
    """Labels that carry no signal: validation never improves for long, so training stops,
    but not before half the schedule (early plateaus at a high learning rate are common)."""
    data = synthetic_data(200, spec_fraction=0.3, seed=11)
    rng = np.random.default_rng(0)
    data.stars["label"] = rng.choice(["A0", "F5", "K3"], len(data.stars))
    cfg = TrainConfig(epochs=12, batch_size=16, min_class_count=2, seed=0, patience=1)
    result = train_model(data, cfg, progress=False)
    ran = result.meta["metrics"]["epochs_run"]
    assert 6 <= ran < 12
    assert result.meta["metrics"]["best_epoch"] <= ran - 1
