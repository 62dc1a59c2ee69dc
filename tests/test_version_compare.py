"""Two model versions side by side, on a warehouse where a second model was really trained."""

from __future__ import annotations

import shutil

import pytest
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack.dashboard import data, version_compare
from startrack.ml.publish import train_and_publish
from startrack.ml.score import score_warehouse
from startrack.ml.train_config import TrainConfig
from startrack.warehouse.store import Warehouse


@pytest.fixture(scope="module")
def two_versions(dashboard_app, dashboard_warehouse, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("versions") / "wh"
    shutil.copytree(dashboard_warehouse, root, symlinks=True)
    wh = Warehouse(root)
    first = wh.current()
    train_and_publish(wh, TrainConfig(epochs=1, min_class_count=3, seed=2), progress=False,
                      baselines=False)  # fmt: skip
    score_warehouse(wh, progress=False)
    data.configure(root)
    yield wh.current(), first
    data.configure(dashboard_warehouse)


def test_headlines_side_by_side(two_versions) -> None:
    snap, _ = two_versions
    versions = data.model_versions(snap)
    assert len(versions) >= 2
    new, old = versions[0], versions[1]
    table = version_compare.compare_headlines(snap, new, old, "test")
    fusion = table[table["branch"] == "fusion"].iloc[0]
    ha = data.headline_metrics(snap, new, "test").set_index("branch")
    hb = data.headline_metrics(snap, old, "test").set_index("branch")
    assert fusion["accuracy A"] == pytest.approx(ha.loc["fusion", "accuracy"])
    assert fusion["accuracy B"] == pytest.approx(hb.loc["fusion", "accuracy"])
    assert fusion["Δ accuracy"] == pytest.approx(fusion["accuracy B"] - fusion["accuracy A"])
    assert fusion["n A"] == ha.loc["fusion", "n"] and fusion["n B"] == hb.loc["fusion", "n"]


def test_confusion_change_matches_the_stored_cells(two_versions) -> None:
    snap, _ = two_versions
    new, old = data.model_versions(snap)[:2]
    moved = version_compare.confusion_change(snap, new, old, "fusion", "all", top=1000)
    a = data.confusion(snap, new, "fusion", "all").set_index(["actual", "predicted"])["n"]
    b = data.confusion(snap, old, "fusion", "all").set_index(["actual", "predicted"])["n"]
    assert not moved.empty
    for row in moved.itertuples():
        key = (row.actual, row.predicted)
        assert a.get(key, 0) == row.A and b.get(key, 0) == row.B and row.change == row.B - row.A
    assert (moved["change"] != 0).all()


def test_accuracy_page_compare_view(two_versions) -> None:
    from startrack.dashboard.pages import accuracy

    snap, _ = two_versions
    new, old = data.model_versions(snap)[:2]
    text = str(accuracy.compare_view(new, old, "fusion", "test"))
    assert f"A = {new}" in text and f"B = {old}" in text and "moved most" in text
    assert accuracy.compare_view(new, None, "fusion", "test") is None


def test_like_for_like_needs_the_versions_own_predictions(two_versions) -> None:
    from startrack.dashboard import fair_metrics

    snap, _ = two_versions
    new, old = data.model_versions(snap)[:2]
    assert fair_metrics.like_for_like(snap, new, "all") is not None
    assert fair_metrics.like_for_like(snap, old, "all") is None  # only current predictions kept


def test_previous_version_prediction_reproduces_its_stored_answer(
    two_versions, dashboard_warehouse  # noqa: F811
) -> None:  # fmt: skip
    """The previous model, run now from its artifact, says what it said when it was current."""
    from startrack.dashboard import star_extras

    snap, _ = two_versions
    before = Warehouse(dashboard_warehouse).current().table("predictions").to_pandas()
    old_fusion = before[before["branch"] == "fusion"].set_index("star_id")["label"]
    stars = data._spectrum_ids(snap)[:4] + tuple(
        snap.table("stars").to_pandas().query("not has_spectrum")["star_id"].iloc[:2]
    )
    for star_id in stars:
        prev = star_extras.previous_prediction(snap, star_id)
        assert prev["version"] == data.model_versions(snap)[1]
        assert prev["label"] == old_fusion[star_id]
    view = str(star_extras.previous_prediction_view(stars[0]))
    assert "Previous model" in view and ("changed class" in view or "same class" in view)
