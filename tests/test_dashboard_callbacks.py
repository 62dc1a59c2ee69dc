"""Dashboard callbacks called directly on a real small warehouse (no browser)."""

from __future__ import annotations

import json

import plotly
import pytest
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack.dashboard import data


def text_of(component) -> str:
    """Everything a component tree would render, as one searchable string."""
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


@pytest.fixture
def pages(dashboard_app, dashboard_warehouse):  # noqa: F811
    data.configure(dashboard_warehouse)
    from startrack.dashboard.pages import accuracy, explore, runs, sql, star

    return {"star": star, "accuracy": accuracy, "explore": explore, "runs": runs, "sql": sql}


@pytest.fixture
def snap(pages):
    return data.current_snapshot()


def _spectrum_star(snap) -> str:
    return snap.table("spectra_index").to_pandas()["star_id"].iloc[3]


def test_lookup_accepts_every_id_form(pages, snap) -> None:
    star_id = _spectrum_star(snap)
    plate, mjd, fiber = star_id.split("-")
    for text in (star_id, f"{int(plate)}-{mjd}-{int(fiber)}", f"spec-{star_id}.fits"):
        current, alert, _info, style = pages["star"].lookup("star-go", text)
        assert current == star_id and alert is None and style == {}
    current, *_ = pages["star"].lookup("star-go-parts", None, plate, mjd, int(fiber))
    assert current == star_id


def test_lookup_shows_sdss_class_and_three_predictions(pages, snap) -> None:
    star_id = _spectrum_star(snap)
    rec = data.star_record(snap, star_id)
    _, _, info, _ = pages["star"].lookup(None, None, initial=star_id)
    text = text_of(info)
    assert rec["subclass"] in text and rec["label"] in text
    for branch in ("dense", "lstm", "fusion"):
        assert f"pred-card-{branch}" in text
    assert "right" in text or "wrong" in text or "within one" in text
    # the continuous type of every branch and the star's quality flags (issue 11)
    preds = data.star_predictions(snap, star_id)
    fusion = preds[preds["branch"] == "fusion"].iloc[0]
    if fusion["spectral_type"] == fusion["spectral_type"]:  # not NaN: an MK answer
        assert f"type {fusion['spectral_type']:.1f} ± {fusion['spectral_type_err']:.1f}" in text
    assert "star-flags" in text
    flags = list(fusion["flags"])
    assert all(pages["star"].FLAG_TEXT[f] in text for f in flags) or (
        not flags and "no quality warnings" in text
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not-an-id", "Invalid id"),
        ("", "Invalid id"),
        ("0001-50000-0001", "not in the warehouse"),
        ("0001-40000-0001", "MJD 40000 is out of range (50000..99999)"),  # before SDSS
    ],
)
def test_lookup_errors_are_messages(pages, text, needle) -> None:
    current, alert, info, style = pages["star"].lookup("star-go", text)
    assert current is None and info is None and style == {"display": "none"}
    assert needle in text_of(alert) and "Traceback" not in text_of(alert)


def test_random_star_has_a_spectrum(pages, snap) -> None:
    current, *_ = pages["star"].lookup("star-random", None)
    assert data.spectrum(snap, current) is not None


def test_first_visit_without_an_id_shows_a_hint(pages) -> None:
    current, alert, _, _style = pages["star"].lookup(None, None)
    assert current is None and "Enter a star id" in text_of(alert)


def test_spectrum_view_with_templates_lines_and_smoothing(pages, snap) -> None:
    star_id = _spectrum_star(snap)
    fig = pages["star"].spectrum_view(star_id, ["Balmer"], 2, ["predicted", "actual"])
    names = [t.name for t in fig.data]
    assert any(n and n.startswith("flux (smoothed") for n in names)
    assert sum(1 for n in names if n and n.startswith("template")) >= 1
    balmer = next(t for t in fig.data if t.name == "Balmer")
    tio = next(t for t in fig.data if t.name == "TiO")
    assert balmer.visible is True and tio.visible == "legendonly"
    stars = snap.table("stars").to_pandas()
    photometric = stars[~stars["has_spectrum"]]["star_id"].iloc[0]
    assert "photometry only" in text_of(pages["star"].spectrum_view(photometric, [], 0, []))


def test_rerun_inference_reproduces_the_stored_prediction(pages, snap) -> None:
    star_id = _spectrum_star(snap)
    out = text_of(pages["star"].rerun(1, star_id))
    assert "matches stored: dense, lstm, fusion" in out
    assert " ms " in out
    assert pages["star"].rerun(0, star_id) is None


def test_accuracy_view_and_confusion_click(pages, snap) -> None:
    acc = pages["accuracy"]
    version = data.model_versions(snap)[0]
    options, value = acc.branch_options(version)
    assert value == "fusion" and "baseline_hgb" in options
    _cards, _headline, conf, _classes, _snr = acc.accuracy_view(version, "fusion", "all", "counts")
    cells = data.confusion(snap, version, "fusion", "all")
    assert sum(map(sum, conf.data[0].z)) == cells["n"].sum()
    # baselines are evaluated on held-out stars only, side by side with the model there
    _, test_headline, _, _, _ = acc.accuracy_view(version, "fusion", "test", "counts")
    assert "baseline_hgb" in text_of(test_headline) and "baseline_pca_lr" in text_of(test_headline)
    _, _, normed, _, _ = acc.accuracy_view(version, "fusion", "all", "rows")
    row_sums = [sum(r) for r in normed.data[0].z if sum(r) > 0]
    assert row_sums == pytest.approx([1.0] * len(row_sums))
    cell = cells.sort_values("n").iloc[-1]
    click = {"points": [{"x": cell["predicted"], "y": cell["actual"]}]}
    listing = text_of(acc.cell_stars(click, version, "fusion", "all"))
    star = data.confusion_stars(snap, version, "fusion", "all", cell["actual"], cell["predicted"])
    assert f"/star/{star['star_id'].iloc[0]}" in listing
    assert "baselines keep no per-star" in text_of(
        acc.cell_stars(click, version, "baseline_hgb", "all")
    )
    types = text_of(acc.type_view(version, "test"))
    assert "own MK type" in types and "SDSS label" in types and "fusion" in types


def test_explore_view(pages) -> None:
    count, sky, _cc, table = pages["explore"].explore_view("correctness", None, [0, 100], "wrong")
    assert "stars shown" in count
    assert {t.name for t in sky.data} <= {"wrong"}
    assert "/star/" in text_of(table)


def test_sql_console_runs_refuses_and_reports(pages) -> None:
    run = pages["sql"].run_sql
    assert "rows" in text_of(run("SELECT label, count(*) FROM stars GROUP BY label"))
    for bad in ("DROP TABLE stars", "COPY stars TO '/tmp/x.csv'", "ATTACH '/tmp/x.db'",
                "INSTALL httpfs"):  # fmt: skip
        assert "Refused" in text_of(run(bad)), bad
    assert "Refused" in text_of(run("SELECT * FROM read_csv('/etc/passwd')"))
    assert "Query failed" in text_of(run("SELEC nonsense"))
    assert "Refused" in text_of(run(""))


def test_runs_page_lists_runs_and_rejects(pages, snap) -> None:
    text = text_of(pages["runs"].layout())
    assert snap.id in text and "Ingest runs" in text and "Model versions" in text


def test_api_star(dashboard_app, snap) -> None:  # noqa: F811
    client = dashboard_app.server.test_client()
    star_id = _spectrum_star(snap)
    ok = client.get(f"/api/star/{star_id}")
    assert ok.status_code == 200
    body = ok.get_json()
    assert body["star_id"] == star_id and set(body["predictions"]) == {"dense", "lstm", "fusion"}
    assert body["metadata"]["ra"] is not None
    short = star_id.split("-")
    assert client.get(f"/api/star/{int(short[0])}-{short[1]}-{int(short[2])}").status_code == 200
    bad = client.get("/api/star/banana")
    assert bad.status_code == 400 and "not a star id" in bad.get_json()["error"]
    missing = client.get("/api/star/0001-50000-0001")
    assert missing.status_code == 404 and "not in the warehouse" in missing.get_json()["error"]


def test_star_page_links_to_skyserver_and_the_sas_file(pages, snap) -> None:
    from startrack.sdss_urls import star_links

    star_id = _spectrum_star(snap)
    rec = data.star_record(snap, star_id)
    _, _, info, _ = pages["star"].lookup(None, None, initial=star_id)
    found = {}

    def walk(c) -> None:
        if getattr(c, "id", None) in ("star-skyserver", "star-sas"):
            found[c.id] = c.href
        for child in getattr(c, "children", None) or []:
            if not isinstance(child, str):
                walk(child)

    for c in info:
        walk(c)
    plate, mjd, fiber = (int(x) for x in star_id.split("-"))
    assert found["star-skyserver"] == (
        "https://skyserver.sdss.org/dr17/VisualTools/explore/summary"
        f"?plate={plate}&mjd={mjd}&fiber={fiber}"
    )
    assert found["star-sas"] == star_links(plate, mjd, fiber, rec.get("specobjid"))["sas"]
    assert found["star-sas"].endswith(f"/{plate:04d}/spec-{star_id}.fits")
    assert "/spectra/lite/" in found["star-sas"]


def test_navbar_lists_the_registered_pages_in_their_order(pages) -> None:
    from startrack.dashboard import app

    links = app.nav_pages()
    assert links[:2] == [("Star", "/"), ("Accuracy", "/accuracy")]
    assert {name for name, _ in links} >= {"Explore", "Runs", "SQL", "Many stars", "Sky search"}
    assert len(links) == len(app.PAGES)
    rendered = text_of(app.navbar())
    for name, href in links:
        assert f'"href": "{href}"' in rendered and name in rendered


def test_decorated_callbacks_stay_plain_functions(pages) -> None:
    """@callback registers the function with Dash and hands it back unchanged."""
    import dash

    from startrack.dashboard import app

    # Dash moves the global registrations into the app's map once the app has served
    registered = " ".join(
        [*dash._callback.GLOBAL_CALLBACK_MAP, *app.create_app(data.warehouse().root).callback_map]
    )
    assert "star-spectrum.figure" in registered and "nav-collapse.is_open" in registered
    view = pages["star"].spectrum_view
    assert view.__name__ == "spectrum_view" and not hasattr(view, "__wrapped__")
    assert app._toggle_nav(1, False) is True and app._toggle_nav(None, False) is False


def test_a_branch_without_its_input_says_why_it_has_no_answer(pages) -> None:
    """A scored star without photometry has lstm and fusion answers and no dense one: its card
    says why, not "not scored yet"; an unscored star says it is not scored."""
    row = {"label": "K3", "prob": 0.8, "topk": [("K3", 0.8)], "spectral_type": 53.0,
           "spectral_type_err": 1.0}  # fmt: skip
    scored = text_of(pages["star"].prediction_cards({"lstm": row, "fusion": row}, "K3"))
    assert "no prediction (no colour" in scored and "not scored yet" not in scored
    unscored = text_of(pages["star"].prediction_cards({}, "K3"))
    assert unscored.count("not scored yet") == 2 and "no prediction (no spectrum)" in unscored
