"""The changed-stars comparison (data layer and HTTP API) against a hand check of the tables."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401
from history_fixtures import TwoVersions, two_versions_warehouse  # noqa: F401

from startrack.dashboard import data, version_changes


@pytest.fixture(scope="module")
def tv(two_versions_warehouse: TwoVersions, dashboard_app, dashboard_warehouse):  # noqa: F811
    data.configure(two_versions_warehouse.root)
    yield two_versions_warehouse
    data.configure(dashboard_warehouse)


@pytest.fixture(scope="module")
def client(tv, dashboard_app):  # noqa: F811
    return dashboard_app.server.test_client()


def _by_hand(tv: TwoVersions, branch: str = "fusion") -> pd.DataFrame:
    """Changed stars from the two predictions tables and the stars table, with pandas."""
    old = tv.old_predictions.query("branch == @branch").set_index("star_id")
    new = tv.new_predictions.query("branch == @branch").set_index("star_id")
    stars = tv.snapshot.table("stars").to_pandas().set_index("star_id")
    both = old.index.intersection(new.index)
    df = pd.DataFrame(
        {
            "old": old.loc[both, "label"],
            "new": new.loc[both, "label"],
            "sdss": stars["label"].reindex(both),
            "split": old.loc[both, "split"],
        }
    )
    df = df[df["old"] != df["new"]]
    outcome = pd.Series("both wrong", index=df.index)
    outcome[df["old"] == df["sdss"]] = "broken"
    outcome[df["new"] == df["sdss"]] = "fixed"
    outcome[df["sdss"].isna()] = "no SDSS label"
    return df.assign(outcome=outcome)


def test_changed_fusion_stars_match_the_hand_check(tv: TwoVersions) -> None:
    snap = tv.snapshot
    assert set(version_changes.history_versions(snap)) == {tv.old, tv.new}
    ch = version_changes.changed_stars(snap, tv.new, tv.old, "fusion", "all", "all", 100_000)
    assert (ch.old, ch.new) == (tv.old, tv.new)  # ordered by training time, not by the pick
    hand = _by_hand(tv)
    assert ch.available and ch.changed == len(hand) == ch.listed == len(ch.stars) > 0
    assert ch.compared == tv.old_predictions.query("branch == 'fusion'")["star_id"].nunique()
    assert ch.counts == {o: int((hand["outcome"] == o).sum()) for o in version_changes.OUTCOMES}
    got = ch.stars.set_index("star_id")
    assert set(got.index) == set(hand.index)
    for col, want in (("old_prediction", "old"), ("new_prediction", "new"), ("outcome", "outcome")):
        assert (got[col] == hand.loc[got.index, want]).all(), col
    assert got["new_prob"].is_monotonic_decreasing  # most confident new answers first
    old_prob = tv.old_predictions.query("branch == 'fusion'").set_index("star_id")["prob"]
    assert (got["old_prob"] - old_prob.loc[got.index]).abs().max() < 1e-6


def test_outcome_split_branch_and_limit(tv: TwoVersions) -> None:
    snap = tv.snapshot
    hand = _by_hand(tv)
    full = version_changes.changed_stars(snap, tv.old, tv.new, "fusion", "all", "all", 100_000)
    for outcome in version_changes.OUTCOMES:
        ch = version_changes.changed_stars(snap, tv.old, tv.new, "fusion", "all", outcome)
        assert set(ch.stars["star_id"]) == set(hand.index[hand["outcome"] == outcome])
        assert ch.changed == full.changed and ch.counts == full.counts  # counts stay global
    test = version_changes.changed_stars(snap, tv.old, tv.new, "fusion", "test")
    assert set(test.stars["star_id"]) == set(hand.index[hand["split"] == "test"])
    dense = version_changes.changed_stars(snap, tv.old, tv.new, "dense", "all", "all", 100_000)
    assert set(dense.stars["star_id"]) == set(_by_hand(tv, "dense").index)
    lstm = version_changes.changed_stars(snap, tv.old, tv.new, "lstm", "all", "all", 100_000)
    assert lstm.compared == tv.old_predictions.query("branch == 'lstm'")["star_id"].nunique()
    two = version_changes.changed_stars(snap, tv.old, tv.new, "fusion", "all", "all", 2)
    assert len(two.stars) == min(2, full.changed) and two.listed == full.changed
    assert list(two.stars["star_id"]) == list(full.stars["star_id"][:2])


def test_a_version_without_history_is_said_plainly(tv: TwoVersions) -> None:
    ch = version_changes.changed_stars(tv.snapshot, tv.new, "20200101-oldmodel")
    assert not ch.available and ch.missing == ("20200101-oldmodel",) and ch.stars.empty
    with pytest.raises(ValueError):
        version_changes.changed_stars(tv.snapshot, tv.old, tv.new, "baseline_hgb")


def test_api_json_and_csv(tv: TwoVersions, client) -> None:
    hand = _by_hand(tv)
    r = client.get(f"/api/version-changes?a={tv.old}&b={tv.new}&limit=100000")
    assert r.status_code == 200
    body = r.get_json()
    assert body["changed"] == len(hand) and len(body["stars"]) == len(hand)
    assert body["old"] == tv.old and body["new"] == tv.new
    r = client.get(f"/api/version-changes.csv?a={tv.new}&b={tv.old}&outcome=fixed")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    csv = pd.read_csv(io.BytesIO(r.data))
    assert list(csv.columns) == version_changes.COLUMNS
    assert set(csv["star_id"]) == set(hand.index[hand["outcome"] == "fixed"])


@pytest.mark.parametrize(
    "query",
    [
        "",
        "a=nope&b=nope",
        "a={old}",
        "a={old}&b={new}&branch=baseline_hgb",
        "a={old}&b={new}&split=everything",
        "a={old}&b={new}&outcome=maybe",
        "a={old}&b={new}&limit=ten",
        "a={old}&b={new}&limit=0",
        "a={old}&b={new}&limit=99999999999999999999999",
        "a=%00%ff&b={new}",
    ],
)
def test_api_malformed_requests_answer_400(tv: TwoVersions, client, query: str) -> None:
    q = query.format(old=tv.old, new=tv.new)
    for path in ("/api/version-changes", "/api/version-changes.csv"):
        r = client.get(f"{path}?{q}")
        assert r.status_code == 400, (path, q, r.data[:200])
        assert r.get_json()["error"]


def test_accuracy_page_changes_view(tv: TwoVersions) -> None:
    from startrack.dashboard.version_changes_view import changes_view

    hand = _by_hand(tv)
    text = str(changes_view(tv.new, tv.old, "all", "fusion", "all"))
    assert f"{tv.old} → {tv.new}" in text and f"{len(hand):,} changed" in text
    for outcome in ("fixed", "broken", "both wrong"):
        assert f"{outcome}: {int((hand['outcome'] == outcome).sum()):,}" in text
    assert "/api/version-changes.csv?" in text
    shown = [star for star in hand.index if star in text]  # the page lists at most 200
    assert len(shown) == min(len(hand), 200)
    missing = str(changes_view(tv.new, "20200101-oldmodel", "all", "fusion", "all"))
    assert "No per-star predictions are stored for 20200101-oldmodel" in missing
    assert "pick two different versions" in str(changes_view(tv.new, tv.new, "all", None, None))
    assert changes_view(tv.new, None, "test", "fusion", "all") is None


def test_star_page_previous_answer_is_read_from_the_history(tv: TwoVersions, monkeypatch) -> None:
    from startrack.dashboard import star_extras

    snap = tv.snapshot
    hand = _by_hand(tv)
    star_id = hand.index[0]
    prev = star_extras.previous_prediction(snap, star_id)
    assert prev["version"] == tv.old and prev["source"].startswith("stored by scoring run")
    assert (prev["label"], prev["current_label"]) == (hand.loc[star_id, "old"],
                                                      hand.loc[star_id, "new"])  # fmt: skip
    view = str(star_extras.previous_prediction_view(star_id))
    assert f"changed class: {hand.loc[star_id, 'old']} → {hand.loc[star_id, 'new']}" in view
    # a previous version scored before the history existed: its artifact is run instead
    monkeypatch.setattr(
        version_changes, "star_history", lambda *_: pd.DataFrame(columns=["model_version"])
    )
    rerun = star_extras.previous_prediction(snap, star_id)
    assert rerun["source"].startswith("re-run now") and rerun["label"] == prev["label"]
