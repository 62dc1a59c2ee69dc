"""prediction_history: every scored model version's answer per star, checked by hand."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dashboard_fixtures import dashboard_warehouse  # noqa: F401
from history_fixtures import TwoVersions, two_versions_warehouse  # noqa: F401

from startrack.ml.prediction_history import COLUMNS, TABLE, build_history
from startrack.ml.score import score_warehouse
from startrack.warehouse.store import Warehouse


@pytest.fixture
def tv(two_versions_warehouse: TwoVersions) -> TwoVersions:  # noqa: F811
    return two_versions_warehouse


def _wide(predictions: pd.DataFrame) -> pd.DataFrame:
    """The history layout built by hand from long predictions rows (star x branch)."""
    wide = predictions.pivot(index="star_id", columns="branch", values=["label", "prob"])
    wide.columns = [f"{branch}_{what}" for what, branch in wide.columns]
    return wide


def test_history_holds_both_versions_star_by_star(tv: TwoVersions) -> None:
    assert tv.old != tv.new
    hist = tv.snapshot.table(TABLE).to_pandas()
    assert tuple(hist.columns) == COLUMNS
    assert set(hist["model_version"]) == {tv.old, tv.new}
    assert not hist.duplicated(["star_id", "model_version"]).any()
    for version, preds in ((tv.old, tv.old_predictions), (tv.new, tv.new_predictions)):
        mine = hist[hist["model_version"] == version].set_index("star_id")
        expected = _wide(preds)
        assert set(mine.index) == set(expected.index)  # every scored star, once
        for branch in ("fusion", "dense", "lstm"):
            got = mine[f"{branch}_label"].reindex(expected.index)
            want = expected[f"{branch}_label"]
            assert (got.fillna("-") == want.fillna("-")).all(), branch
            probs = mine[f"{branch}_prob"].reindex(expected.index).astype(float)
            assert probs.sub(expected[f"{branch}_prob"].astype(float)).abs().max() < 1e-6
        no_spec = preds.groupby("star_id")["branch"].apply(lambda b: "lstm" not in set(b))
        assert mine.loc[no_spec[no_spec].index, "lstm_label"].isna().all()
        runs = preds.drop_duplicates("star_id").set_index("star_id")["run_id"]
        assert (mine["scoring_run"].reindex(runs.index) == runs).all()
        splits = preds.drop_duplicates("star_id").set_index("star_id")["split"]
        assert (mine["split"].reindex(splits.index) == splits).all()


def test_history_is_sorted_by_star_for_point_lookups(tv) -> None:
    hist = pq.read_table(tv.snapshot.table_path(TABLE)).to_pandas()
    keys = list(
        zip(hist["plate"], hist["mjd"], hist["fiberid"], hist["model_version"], strict=True)
    )
    assert keys == sorted(keys)


def test_changed_stars_by_hand(tv: TwoVersions) -> None:
    """The stars whose fusion answer changed, straight from the two predictions tables."""
    old = tv.old_predictions.query("branch == 'fusion'").set_index("star_id")["label"]
    new = tv.new_predictions.query("branch == 'fusion'").set_index("star_id")["label"]
    changed_by_hand = set(old.index[old != new.reindex(old.index)])
    assert changed_by_hand, "two differently trained models should disagree on some star"
    con = tv.snapshot.connect()
    try:
        changed = {
            r[0]
            for r in con.execute(
                f"SELECT a.star_id FROM {TABLE} a JOIN {TABLE} b USING (plate, mjd, fiberid) "
                "WHERE a.model_version = ? AND b.model_version = ? "
                "AND a.fusion_label <> b.fusion_label",
                [tv.old, tv.new],
            ).fetchall()
        }
    finally:
        con.close()
    assert changed == changed_by_hand


def test_rescoring_replaces_only_its_own_version(tv, tmp_path) -> None:
    """score --full again: the current version's rows are replaced (not doubled), the old kept."""
    import shutil

    root = tmp_path / "wh"
    shutil.copytree(tv.root, root, symlinks=True)
    wh = Warehouse(root)
    before = wh.require_current().table(TABLE).to_pandas()
    run = score_warehouse(wh, full=True, progress=False)
    after = wh.require_current().table(TABLE).to_pandas()
    assert len(after) == len(before)
    old_b = before[before["model_version"] == tv.old].reset_index(drop=True)
    old_a = after[after["model_version"] == tv.old].reset_index(drop=True)
    pd.testing.assert_frame_equal(old_a, old_b)
    new_a = after[after["model_version"] == tv.new]
    assert (new_a["scoring_run"] == run["run_id"]).all()
    new_b = before[before["model_version"] == tv.new].set_index("star_id")["fusion_label"]
    assert (new_a.set_index("star_id")["fusion_label"].reindex(new_b.index) == new_b).all()


def test_a_version_scored_before_the_history_existed_is_picked_up(
    tv: TwoVersions, tmp_path
) -> None:  # fmt: skip
    """An upgraded warehouse: no history yet, the old version only in ``predictions``."""
    out = tmp_path / "history.parquet"
    new_file = tv.snapshot.table_path("predictions")
    n = build_history(out, new_file, tv.new, old_history=None,
                      old_predictions=tv.old_predictions_file)  # fmt: skip
    hist = pd.read_parquet(out)
    assert n == len(hist)
    counts = hist.groupby("model_version")["star_id"].nunique()
    assert counts[tv.old] == tv.old_predictions["star_id"].nunique()
    assert counts[tv.new] == tv.new_predictions["star_id"].nunique()
    # the old predictions of the version being scored are never taken over
    again = tmp_path / "again.parquet"
    build_history(again, new_file, tv.new, old_predictions=new_file)
    assert set(pd.read_parquet(again)["model_version"]) == {tv.new}


def test_an_older_predictions_layout_is_skipped_not_fatal(tv, tmp_path) -> None:
    legacy = tmp_path / "legacy.parquet"
    pd.DataFrame({"plate": [1], "mjd": [2], "fiberid": [3], "fusion_label": ["A0"]}).to_parquet(
        legacy
    )
    out = tmp_path / "h.parquet"
    build_history(out, tv.snapshot.table_path("predictions"), tv.new, old_predictions=legacy)
    assert set(pd.read_parquet(out)["model_version"]) == {tv.new}


@pytest.mark.parametrize("branch", ["fusion", "dense"])
def test_every_star_has_an_answer_per_version(tv, branch) -> None:
    hist = tv.snapshot.table(TABLE).to_pandas()
    assert hist[f"{branch}_label"].notna().all()
    assert hist[f"{branch}_prob"].between(0, 1).all()
