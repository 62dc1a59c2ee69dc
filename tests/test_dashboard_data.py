"""Dashboard data layer on a real small warehouse: lookups, spectra, metrics, snapshot switch."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import dashboard_warehouse  # noqa: F401  (session fixture)

from startrack import grid
from startrack.dashboard import data, figures, overlay
from startrack.lines import LINES
from startrack.warehouse.store import Warehouse, WarehouseEmpty


@pytest.fixture
def snap(dashboard_warehouse):  # noqa: F811
    data.configure(dashboard_warehouse)
    return data.current_snapshot()


def _stars(snap) -> pd.DataFrame:
    return snap.table("stars").to_pandas()


def test_star_record_matches_the_stars_table(snap) -> None:
    stars = _stars(snap)
    row = stars.iloc[7]
    rec = data.star_record(snap, row["star_id"])
    assert rec["label"] == row["label"] and rec["subclass"] == row["subclass"]
    assert rec["ra"] == pytest.approx(row["ra"])
    assert data.star_record(snap, "0001-40000-0001") is None


def test_spectrum_read_through_the_index_equals_the_spectra_view(snap) -> None:
    index = snap.table("spectra_index").to_pandas()
    star_id = index["star_id"].iloc[len(index) // 2]
    spec = data.spectrum(snap, star_id)
    con = snap.connect()
    flux, pix_start = con.execute(
        "SELECT flux, pix_start FROM spectra WHERE star_id = ?", [star_id]
    ).fetchone()
    con.close()
    assert spec.flux.shape == (grid.NPIX,)
    np.testing.assert_array_equal(spec.flux, np.asarray(flux, dtype=np.float32))
    assert spec.pix_start == pix_start < spec.pix_end
    assert not spec.mask[spec.pix_start : spec.pix_end].all()
    assert data.spectrum(snap, "0001-40000-0001") is None


def test_predictions_per_star_have_three_branches_only_with_a_spectrum(snap) -> None:
    stars = _stars(snap)
    with_spec = stars[stars["has_spectrum"]]["star_id"].iloc[0]
    without = stars[~stars["has_spectrum"]]["star_id"].iloc[0]
    assert data.star_predictions(snap, with_spec)["branch"].tolist() == ["dense", "lstm", "fusion"]
    assert data.star_predictions(snap, without)["branch"].tolist() == ["dense", "fusion"]
    pairs = data.topk_pairs(data.star_predictions(snap, with_spec)["topk"].iloc[0])
    probs = [p for _, p in pairs]
    assert len(pairs) >= 2 and probs == sorted(probs, reverse=True)


def test_headline_accuracy_agrees_with_the_predictions(snap) -> None:
    version = data.model_versions(snap)[0]
    head = data.headline_metrics(snap, version, "test").set_index("branch")
    assert {"dense", "lstm", "fusion", "baseline_hgb"} <= set(head.index)
    preds = snap.table("predictions").to_pandas()
    fusion = preds[(preds["branch"] == "fusion") & (preds["split"] == "test")]
    fusion = fusion[fusion["actual"].notna()]
    assert head.loc["fusion", "accuracy"] == pytest.approx(fusion["correct"].mean())
    assert head.loc["fusion", "n"] == len(fusion)


def test_continuous_type_scores_agree_with_the_predictions_and_own_types(snap) -> None:
    from startrack.labels import spectral_types

    version = data.model_versions(snap)[0]
    table = data.type_scores(snap, version, "all")
    assert set(table["against"]) == {"SDSS label", "own MK type"}
    assert set(table["branch"]) == set(data.MODEL_BRANCHES)
    preds = snap.table("predictions").to_pandas()
    stars = _stars(snap)[["plate", "mjd", "fiberid", "elodie_sptype"]]
    fusion = preds[preds["branch"] == "fusion"].merge(stars, on=["plate", "mjd", "fiberid"])
    own = spectral_types(fusion["elodie_sptype"])
    err = np.abs(fusion["spectral_type"].to_numpy(float) - own)[np.isfinite(own)]
    assert len(err) > 20, "the fixture's stars carry their own (ELODIE) types"
    row = table[(table["branch"] == "fusion") & (table["against"] == "own MK type")].iloc[0]
    assert row["n"] == len(err)
    assert row["within 2.5"] == pytest.approx(np.mean(np.nan_to_num(err, nan=np.inf) <= 2.5))
    assert row["median error"] == pytest.approx(np.median(np.nan_to_num(err, nan=np.inf)))


def test_confusion_matrix_and_its_cells(snap) -> None:
    version = data.model_versions(snap)[0]
    cells = data.confusion(snap, version, "fusion", "all")
    matrix = data.confusion_matrix(cells)
    assert list(matrix.index) == list(matrix.columns)
    assert matrix.to_numpy().sum() == cells["n"].sum()
    biggest = cells.sort_values("n").iloc[-1]
    stars = data.confusion_stars(
        snap, version, "fusion", "all", biggest["actual"], biggest["predicted"]
    )
    assert len(stars) == min(biggest["n"], 200)
    assert (stars["actual"] == biggest["actual"]).all()
    assert (stars["label"] == biggest["predicted"]).all()
    assert data.confusion_stars(snap, version, "baseline_hgb", "all", "A0", "A0").empty


def test_explore_filters(snap) -> None:
    pts = data.explore_points(snap)
    assert len(pts) == len(_stars(snap))
    wrong = data.explore_points(snap, correctness="wrong")
    assert len(wrong) and not wrong["correct"].any()
    label = data.label_options(snap)[0]
    only = data.explore_points(snap, labels=(label,), snr_min=5.0)
    assert (only["label"] == label).all() and (only["snr"] >= 5).all()
    assert len(data.explore_points(snap, max_points=10)) == 10
    dis = data.disagreements(snap, "fusion", (), 20)
    assert (dis["actual"] != dis["label"]).all()
    assert dis["prob"].is_monotonic_decreasing


def test_runs_tables(snap) -> None:
    tables = data.runs_tables(snap)
    assert len(tables["ingest_runs"]) >= 1 and len(tables["models"]) == 1
    assert set(tables) == {"ingest_runs", "scoring_runs", "models", "rejects"}


def test_star_json_is_plain_json(snap) -> None:
    import json

    star_id = snap.table("spectra_index").to_pandas()["star_id"].iloc[0]
    doc = data.star_json(snap, star_id)
    text = json.dumps(doc)  # must not raise
    assert doc["label"] and set(doc["predictions"]) == {"dense", "lstm", "fusion"}
    assert "NaN" not in text
    with pytest.raises(data.StarNotFound, match="not in the warehouse"):
        data.star_json(snap, "0001-40000-0001")


def test_a_newly_published_snapshot_is_picked_up_and_the_old_one_stays_readable(
    dashboard_warehouse,  # noqa: F811
    tmp_path,
) -> None:
    root = tmp_path / "wh"
    shutil.copytree(dashboard_warehouse, root, symlinks=True)
    data.configure(root)
    old = data.current_snapshot()
    star_id = _stars(old)["star_id"].iloc[0]
    before = data.star_record(old, star_id)["label"]
    stars = _stars(old)
    stars.loc[stars["star_id"] == star_id, "label"] = "T2"
    with Warehouse(root).writer(command="test relabel") as w:
        w.put_table("stars", stars)
    new = data.current_snapshot()
    assert new.id != old.id
    assert data.star_record(new, star_id)["label"] == "T2"
    data.star_record.cache_clear()
    assert data.star_record(old, star_id)["label"] == before  # the old snapshot still reads


def test_empty_warehouse_says_what_to_do(tmp_path) -> None:
    data.configure(tmp_path / "nothing")
    with pytest.raises(WarehouseEmpty, match="startrack ingest"):
        data.current_snapshot()


# ----------------------------------------------------------------------------- figures
def test_spectrum_figure_is_small_and_binned(snap) -> None:
    star_id = snap.table("spectra_index").to_pandas()["star_id"].iloc[0]
    spec = data.spectrum(snap, star_id)
    s, e = spec.pix_start, spec.pix_end
    tmpl = overlay.template_on_grid(data.star_record(snap, star_id)["label"])
    scaled = overlay.scale_template(spec.flux[s:e], spec.ivar[s:e], spec.mask[s:e], tmpl[s:e])
    fig = figures.spectrum_figure(
        data.wavelength()[s:e], spec.flux[s:e], spec.ivar[s:e], spec.mask[s:e],
        templates={"template": scaled}, smooth_px=2,
    )  # fmt: skip
    flux_trace = next(t for t in fig.data if t.name and t.name.startswith("flux"))
    assert len(flux_trace.x) <= figures.MAX_POINTS
    assert flux_trace.x[0] >= data.wavelength()[s] - 5
    assert figures.figure_bytes(fig) < 80_000
    names = {t.name for t in fig.data}
    assert {"±1σ (ivar)", "template", "Balmer", "TiO"} <= names
    assert any(str(n).startswith("masked pixels") for n in names)


def test_binning_is_an_inverse_variance_mean() -> None:
    wave = np.arange(6.0)
    flux = np.array([1.0, 3.0, 5.0, 5.0, 9.0, 9.0])
    ivar = np.array([1.0, 1.0, 4.0, 0.0, 1.0, 1.0])
    good = ivar > 0
    wb, fb, sb = figures.bin_spectrum(wave, flux, ivar, good, max_points=3)
    np.testing.assert_allclose(fb, [2.0, 5.0, 9.0])
    np.testing.assert_allclose(sb, [1 / np.sqrt(2), 0.5, 1 / np.sqrt(2)])
    np.testing.assert_allclose(wb, [0.5, 2.5, 4.5])


def test_template_scaling_recovers_a_known_factor() -> None:
    tmpl = overlay.template_on_grid("K3")
    s, e = 500, 4000
    truth = 3.5 * tmpl[s:e] * np.linspace(0.9, 1.1, e - s)
    ivar = np.ones(e - s)
    scaled = overlay.scale_template(truth, ivar, np.zeros(e - s, bool), tmpl[s:e])
    np.testing.assert_allclose(scaled, truth, rtol=1e-6)


def test_line_list_is_on_the_grid_and_in_vacuum() -> None:
    wave = grid.wavelength()
    assert all(wave[0] < line.wavelength < wave[-1] for line in LINES)
    halpha = next(line for line in LINES if line.name == "Hα")
    assert halpha.wavelength == pytest.approx(6564.61)
    nad2 = next(line for line in LINES if line.name == "Na D2")
    assert nad2.wavelength == pytest.approx(5891.58, abs=0.02)  # NIST vacuum value
