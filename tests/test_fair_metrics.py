"""Like-for-like accuracy: the branches over the same stars, unknown labels apart."""

from __future__ import annotations

import json

import pytest
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack.dashboard import data, fair_metrics


@pytest.fixture
def snap(dashboard_app, dashboard_warehouse):  # noqa: F811
    data.configure(dashboard_warehouse)
    return data.current_snapshot()


@pytest.mark.parametrize("split", ["test", "all"])
def test_same_stars_for_every_branch_and_unknown_labels_apart(snap, split) -> None:
    version = data.model_versions(snap)[0]
    fair = fair_metrics.like_for_like(snap, version, split)
    classes = set(json.loads(data.current_model(snap)["labels"]))
    preds = snap.table("predictions").to_pandas()
    preds = preds[preds["actual"].notna() & (preds["model_version"] == version)]
    if split == "test":
        preds = preds[preds["split"] == "test"]
    answered = preds.groupby("star_id")["branch"].nunique()
    common = set(answered[answered == preds["branch"].nunique()].index)
    actual = preds.drop_duplicates("star_id").set_index("star_id")["actual"]
    known = {s for s in common if actual[s] in classes}
    assert fair.branches["branch"].tolist() == ["dense", "lstm", "fusion"]
    assert fair.branches["n"].tolist() == [len(known)] * 3 == [fair.n_common] * 3
    for row in fair.branches.itertuples():
        mine = preds[(preds["branch"] == row.branch) & preds["star_id"].isin(known)]
        assert row.accuracy == pytest.approx(mine["correct"].mean())
        assert row.within_one == pytest.approx(mine["within_one"].mean())
    outside = {s for s in common if actual[s] not in classes}
    assert int(fair.outside["stars"].sum()) == len(outside)
    assert set(fair.outside["label"]) == {actual[s] for s in outside}
    assert not set(fair.outside["label"]) & classes


def test_accuracy_page_card(dashboard_app, snap) -> None:  # noqa: F811
    from startrack.dashboard.pages import accuracy

    version = data.model_versions(snap)[0]
    text = str(accuracy.fair_view(version, "test"))
    assert "the same stars in every row" in text and "frozen at training time" in text
    assert "no per-star predictions" in str(accuracy.fair_view("m-unknown", "test"))
