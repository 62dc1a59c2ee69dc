"""Evaluation metrics on small cases one can check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from startrack.labels import within_one_array, within_one_subtype
from startrack.ml.metrics import evaluate, expected_calibration_error


def test_accuracy_and_macro_f1_by_hand() -> None:
    y_true = ["G2", "G2", "K3", "K3", "M1"]
    y_pred = ["G2", "G3", "K3", "K1", "M1"]
    ev = evaluate(y_true, y_pred, None, [], None)
    assert ev.accuracy == pytest.approx(3 / 5)
    # Present classes G2, K3, M1: F1 = 2/3, 2/3, 1 (G3/K1 are absent from y_true: not averaged).
    assert ev.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    present = ["G2", "K3", "M1"]
    assert ev.macro_f1 == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro"))


def test_within_one_uses_numeric_type_difference() -> None:
    # G2 (42) vs G3 (43): within one; K1 (51) vs K3 (53): not; A0 vs B9 (20 vs 19): within one.
    y_true = ["G2", "K3", "A0", "WD", "WD", "M9"]
    y_pred = ["G3", "K1", "B9", "WD", "Carbon", "L0"]
    ev = evaluate(y_true, y_pred, None, [], None)
    expected = [True, False, True, True, False, False]
    assert within_one_array(np.array(y_true, object), np.array(y_pred, object)).tolist() == expected
    assert [within_one_subtype(a, p) for a, p in zip(y_true, y_pred, strict=True)] == expected
    assert ev.within_one == pytest.approx(3 / 6)


def test_confusion_is_ordered_along_mk_sequence_and_tables_keep_nonzero_cells() -> None:
    y_true = ["M1", "A0", "K3", "A0"]
    y_pred = ["M1", "A0", "A0", "F5"]
    ev = evaluate(y_true, y_pred, None, ["WD"], None)
    assert ev.labels == ["A0", "F5", "K3", "M1", "WD"]
    assert ev.confusion.sum() == 4
    assert ev.confusion[ev.labels.index("K3"), ev.labels.index("A0")] == 1
    tables = ev.to_tables("v1", "fusion", "test")
    conf = tables["confusion"]
    assert len(conf) == 4 and (conf["n"] > 0).all()
    assert set(conf.columns) == {"model_version", "branch", "split", "actual", "predicted", "n"}
    cm = tables["class_metrics"].set_index("label")
    assert cm.loc["A0", "precision"] == pytest.approx(1 / 2)  # predicted A0 twice, once right
    assert cm.loc["A0", "recall"] == pytest.approx(1 / 2)
    assert cm.loc["WD", "support"] == 0
    assert (tables["metrics"]["branch"] == "fusion").all()


def test_by_snr_bins_count_and_score() -> None:
    y_true = ["G2"] * 6
    y_pred = ["G2", "K0", "G2", "G3", "G2", "G2"]
    snr = np.array([1.0, 3.0, 12.0, 15.0, 50.0, np.nan])
    ev = evaluate(y_true, y_pred, None, [], snr)
    b = ev.by_snr.set_index("snr_bin")
    assert list(b.index) == ["0-5", "5-10", "10-20", "20-40", "40+"]
    assert b.loc["0-5", "n"] == 2 and b.loc["0-5", "accuracy"] == pytest.approx(0.5)
    assert b.loc["10-20", "accuracy"] == pytest.approx(0.5)
    assert b.loc["10-20", "within_one"] == pytest.approx(1.0)
    assert b.loc["5-10", "n"] == 0 and b["n"].sum() == 5  # the NaN S/N is in no bin
    metrics = ev.to_tables("v1", "dense", "test")["metrics"]
    overall = metrics[metrics["snr_bin"].isna()].set_index("metric")
    assert overall.loc["accuracy", "n"] == 6
    binned = metrics[metrics["snr_bin"] == "10-20"].set_index("metric")
    assert binned.loc["within_one", "value"] == pytest.approx(1.0) and binned["n"].eq(2).all()
    assert "5-10" not in set(metrics["snr_bin"].dropna())  # empty bins produce no rows


def test_ece_is_near_zero_for_calibrated_probabilities_and_large_when_overconfident() -> None:
    rng = np.random.default_rng(0)
    n = 40_000
    conf = rng.uniform(0.34, 1.0, n)
    correct = rng.uniform(size=n) < conf  # right exactly as often as claimed
    ece, table = expected_calibration_error(correct, conf)
    assert ece < 0.01
    assert table["n"].sum() == n and len(table) == 15
    ece_bad, _ = expected_calibration_error(rng.uniform(size=n) < 0.5, np.full(n, 0.99))
    assert ece_bad == pytest.approx(0.49, abs=0.02)


def test_evaluate_calibration_with_probabilities() -> None:
    classes = ["A0", "F5", "K3"]
    rng = np.random.default_rng(1)
    n = 30_000
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    # Draw the true class from the predicted distribution: calibrated by construction.
    cum = proba.cumsum(axis=1)
    y_true = np.array(classes, object)[(rng.uniform(size=(n, 1)) > cum).sum(axis=1)]
    y_pred = np.array(classes, object)[proba.argmax(axis=1)]
    ev = evaluate(y_true, y_pred, proba, classes, None)
    assert ev.ece is not None and ev.ece < 0.015
    assert ev.log_loss is not None and math.isfinite(ev.log_loss)
    tables = ev.to_tables("v1", "fusion", "val")
    assert "ece" in set(tables["metrics"]["metric"])


def test_log_loss_respects_column_order_of_classes() -> None:
    classes = ["O", "B9", "A0"]  # MK order, not lexicographic
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    ev = evaluate(["O", "A0"], ["O", "B9"], proba, classes, None)
    assert ev.log_loss == pytest.approx(-(np.log(0.7) + np.log(0.3)) / 2)
    assert ev.ece == pytest.approx((abs(1 - 0.7) + abs(0 - 0.6)) / 2)


def test_bad_input_gets_a_clear_error() -> None:
    with pytest.raises(ValueError, match="y_pred has 1"):
        evaluate(["A0", "F5"], ["A0"], None, [], None)
    with pytest.raises(ValueError, match="missing"):
        evaluate(["A0", None], ["A0", "A0"], None, [], None)
    with pytest.raises(ValueError, match="classes"):
        evaluate(["A0"], ["A0"], np.array([[0.5, 0.5]]), ["A0"], None)
    with pytest.raises(ValueError, match="snr"):
        evaluate(["A0"], ["A0"], None, [], np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="empty"):
        evaluate([], [], None, [], None)
