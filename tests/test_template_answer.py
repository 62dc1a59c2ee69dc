"""The pipeline's own answer on the star page: the SDSS-method template fit, on demand."""

from __future__ import annotations

import json

import plotly
import pytest
from conftest import REAL_SPEC, REAL_TEMPLATES, need_shared
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack.dashboard import data, star_extras, template_answer
from startrack.etl.ingest import ingest
from startrack.warehouse.store import Warehouse


@pytest.fixture
def snap(dashboard_app, dashboard_warehouse):  # noqa: F811
    data.configure(dashboard_warehouse)
    return data.current_snapshot()


def _brightest_spectrum_star(snap) -> str:
    stars = snap.table("stars").to_pandas()
    with_spec = stars[stars["has_spectrum"] & stars["label"].notna()]
    return with_spec.sort_values("snr").iloc[-1]["star_id"]


def test_fit_recovers_the_template_of_a_bright_simulated_star(snap) -> None:
    """The fixture survey is simulated from the built-in templates, which the fit uses too."""
    star_id = _brightest_spectrum_star(snap)
    ans = template_answer.fit_star(snap, star_id)
    assert ans.best_label == data.star_record(snap, star_id)["label"]
    labels = [lab for lab, _ in ans.ranking]
    values = [r for _, r in ans.ranking]
    assert labels[0] == ans.best_label and values == sorted(values)
    assert ans.runner_up_label == labels[1] and ans.runner_up_rchi2 == values[1]
    assert ans.ambiguous == ((values[1] - values[0]) / values[0] < 0.01)
    assert 0.5 < ans.rchi2 < 3 and ans.dof > 1000 and abs(ans.velocity_kms) <= 300


def test_star_page_view_and_overlay(snap) -> None:
    from startrack.dashboard.pages import star

    star_id = _brightest_spectrum_star(snap)
    view, label = star_extras.template_fit_view(star_id)
    text = json.dumps(view, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)
    assert "reduced χ²" in text and "runner-up" in text and label in text
    fig = star.spectrum_view(star_id, [], 0, [], "observed", label)
    assert f"template {label} (best χ² fit)" in [t.name for t in fig.data]
    photometry_only = snap.table("stars").to_pandas().query("not has_spectrum")["star_id"].iloc[0]
    view, label = star_extras.template_fit_view(photometry_only)
    assert label is None and "no spectrum to fit" in str(view)


def test_real_sdss_spectrum_with_the_real_sdss_templates(tmp_path, dashboard_warehouse) -> None:  # noqa: F811
    """spec-2942-54521-0124 (SDSS: G2, ELODIE F8) against spEigenStar: a late-F/G answer."""
    spec = need_shared(REAL_SPEC)
    templates = need_shared(REAL_TEMPLATES)
    wh = Warehouse(tmp_path / "wh")
    report = ingest(wh, catalogs=[], spectra=[spec], workers=1, progress=False)
    assert report.status == "ok", report.summary()
    try:
        data.configure(wh.root, str(templates))
        ans = template_answer.fit_star(data.current_snapshot(), "2942-54521-0124")
    finally:
        data.configure(dashboard_warehouse)
    assert ans.best_label in {"F5", "F9", "G0", "G2", "G5"}
    assert ans.rchi2 > 0 and ans.runner_up_label is not None
