"""Downloads: the gridded spectrum (CSV, FITS read back with astropy), tables, the SQL result."""

from __future__ import annotations

import base64
import io

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack import grid
from startrack.dashboard import data, downloads


@pytest.fixture
def snap(dashboard_app, dashboard_warehouse):  # noqa: F811
    data.configure(dashboard_warehouse)
    return data.current_snapshot()


@pytest.fixture
def client(dashboard_app, snap):  # noqa: F811
    return dashboard_app.server.test_client()


def _spectrum_star(snap) -> str:
    return snap.table("spectra_index").to_pandas()["star_id"].iloc[1]


def test_spectrum_fits_reads_back_with_units_and_the_warehouse_values(client, snap) -> None:
    star_id = _spectrum_star(snap)
    resp = client.get(downloads.spectrum_url(star_id, "fits"))
    assert resp.status_code == 200
    assert f"startrack-spec-{star_id}.fits" in resp.headers["Content-Disposition"]
    spec = data.spectrum(snap, star_id)
    rec = data.star_record(snap, star_id)
    with fits.open(io.BytesIO(resp.data)) as hdul:
        head = hdul[0].header
        assert head["STAR_ID"] == star_id and head["PLATE"] == rec["plate"]
        assert head["SUBCLASS"] == rec["subclass"] and head["SNAPSHOT"] == snap.id
        assert "vacuum" in hdul["SPECTRUM"].header.comments["TTYPE1"]
    table = Table.read(io.BytesIO(resp.data), hdu="SPECTRUM")
    s, e = spec.pix_start, spec.pix_end
    assert len(table) == e - s
    assert table["WAVELENGTH"].unit == u.AA
    assert table["FLUX"].unit.to(u.erg / u.s / u.cm**2 / u.AA) == pytest.approx(1e-17)
    assert (1 * table["IVAR"].unit * (1 * table["FLUX"].unit) ** 2).decompose().value == (
        pytest.approx(1.0)
    )
    np.testing.assert_allclose(table["WAVELENGTH"], grid.wavelength()[s:e])
    np.testing.assert_array_equal(np.asarray(table["FLUX"]), spec.flux[s:e])
    np.testing.assert_array_equal(np.asarray(table["IVAR"]), spec.ivar[s:e])
    np.testing.assert_array_equal(np.asarray(table["MASK"]), spec.mask[s:e])


def test_spectrum_csv(client, snap) -> None:
    star_id = _spectrum_star(snap)
    resp = client.get(downloads.spectrum_url(star_id, "csv"))
    df = pd.read_csv(io.BytesIO(resp.data))
    spec = data.spectrum(snap, star_id)
    s, e = spec.pix_start, spec.pix_end
    assert list(df.columns) == [
        "wavelength_vacuum_angstrom", "flux_1e-17_erg_s-1_cm-2_angstrom-1", "ivar_of_flux",
        "masked",
    ]  # fmt: skip
    np.testing.assert_allclose(df.iloc[:, 0], grid.wavelength()[s:e], rtol=1e-6)
    np.testing.assert_allclose(df.iloc[:, 1], spec.flux[s:e], rtol=1e-6)
    assert df["masked"].tolist() == spec.mask[s:e].tolist()


def test_spectrum_errors_are_json(client, snap) -> None:
    photometry_only = snap.table("stars").to_pandas().query("not has_spectrum")["star_id"].iloc[0]
    cases = {
        "/api/spectrum/banana.fits": (400, "not a star id"),
        "/api/spectrum/2942-54521-0124.txt": (400, ".csv or .fits"),
        "/api/spectrum/0001-51608-0001.csv": (404, "not in the warehouse"),
        f"/api/spectrum/{photometry_only}.fits": (404, "photometry only"),
    }
    for url, (status, needle) in cases.items():
        resp = client.get(url)
        assert resp.status_code == status, url
        assert needle in resp.get_json()["error"]


def test_confusion_cell_and_mislabel_downloads(client, snap) -> None:
    version = data.model_versions(snap)[0]
    cells = data.confusion(snap, version, "fusion", "all")
    cell = cells[cells["actual"] != cells["predicted"]].sort_values("n").iloc[-1]
    resp = client.get(
        downloads.confusion_url(version, "fusion", "all", cell["actual"], cell["predicted"])
    )
    df = pd.read_csv(io.BytesIO(resp.data))
    assert len(df) == cell["n"]  # every star of the cell, not the 200 the page lists
    assert set(df["actual"]) == {cell["actual"]} and set(df["label"]) == {cell["predicted"]}

    resp = client.get(downloads.mislabels_url("fusion"))
    df = pd.read_csv(io.BytesIO(resp.data))
    preds = snap.table("predictions").to_pandas()
    wrong = preds[(preds["branch"] == "fusion") & preds["actual"].notna() & ~preds["correct"]]
    assert len(df) == len(wrong) and df["prob"].is_monotonic_decreasing
    label = df["actual"].iloc[0]
    one = pd.read_csv(io.BytesIO(client.get(downloads.mislabels_url("fusion", [label])).data))
    assert set(one["actual"]) == {label}

    bad = client.get("/api/confusion-stars.csv?version=nope&branch=fusion&actual=A0&predicted=F5")
    assert bad.status_code == 400 and "version must be one of" in bad.get_json()["error"]
    bad = client.get(f"/api/confusion-stars.csv?version={version}&branch=fusion")
    assert bad.status_code == 400 and "missing parameter 'actual'" in bad.get_json()["error"]


def test_sql_csv_download_respects_the_row_limit(snap) -> None:
    from startrack.dashboard.pages import sql

    sent = sql.download_csv("SELECT star_id, label FROM stars ORDER BY star_id")
    table = pd.read_csv(io.BytesIO(base64.b64decode(sent["content"])))
    n_stars = len(snap.table("stars"))
    if n_stars > sql.ROW_LIMIT:
        assert sent["filename"] == f"query-first-{sql.ROW_LIMIT}-rows.csv"
        assert len(table) == sql.ROW_LIMIT
    sent = sql.download_csv("SELECT label, count(*) AS n FROM stars GROUP BY 1")
    assert sent["filename"] == "query.csv"
    assert pd.read_csv(io.BytesIO(base64.b64decode(sent["content"])))["n"].sum() == n_stars
    import dash

    assert sql.download_csv("DROP TABLE stars") is dash.no_update


def test_sql_cut_result_says_so(snap, monkeypatch) -> None:
    from startrack.dashboard.pages import sql

    monkeypatch.setattr(sql, "ROW_LIMIT", 7)
    sent = sql.download_csv("SELECT star_id FROM stars")
    assert sent["filename"] == "query-first-7-rows.csv"
    assert len(pd.read_csv(io.BytesIO(base64.b64decode(sent["content"])))) == 7
    shown = str(sql.run_sql("SELECT star_id FROM stars"))
    assert "stopped at the 7-row limit" in shown and "CSV download holds these 7 rows" in shown
