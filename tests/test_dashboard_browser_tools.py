"""The astronomer's tools in a real headless Chromium: many stars, downloads, cone search.

Same server and browser fixtures as test_dashboard_browser; files the browser downloads land
in a temporary folder (Chrome DevTools' download behaviour) and are read back like a user
would, with pandas / astropy. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401
from test_dashboard_browser import (  # noqa: F401
    _click,
    _no_error_overlay,
    _shot,
    _type,
    _wait,
    browser,
    server_url,
)

from startrack.dashboard import data

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def downloads(browser, tmp_path: Path) -> Path:  # noqa: F811
    """A fresh folder the browser saves downloads into."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)}
    )
    return folder


def _downloaded(folder: Path, name: str, timeout_s: float = 20) -> Path:
    """Wait (bounded) until the browser has finished writing ``name``."""
    path = folder / name
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and not list(folder.glob("*.crdownload")) and path.stat().st_size:
            return path
        time.sleep(0.2)
    raise AssertionError(f"{name} was not downloaded; folder has {sorted(os.listdir(folder))}")


def test_many_stars_paste_upload_and_download(browser, server_url, downloads, tmp_path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    snap = data.current_snapshot()
    known = snap.table("stars").to_pandas()["star_id"].sample(6, random_state=5).tolist()
    browser.get(server_url + "/stars")
    area = _wait(browser, "#many-text")
    _type(area, "\n".join([known[0], f"spec-{known[1]}.fits", *known[2:], "1-51608-1", "xyz"]))
    _click(browser, "many-go")
    summary = _wait(browser, "#many-summary", "6 of 8 found")
    assert "1 not in the warehouse" in summary.text and "1 unreadable" in summary.text
    links = browser.find_elements(By.CSS_SELECTOR, "#many-result a.star-link")
    assert [a.text for a in links[:6]] == known
    assert "0001-51608-0001" in _wait(browser, "#many-unknown").text
    assert "xyz" in _wait(browser, "#many-invalid").text
    _no_error_overlay(browser)
    _shot(browser, "many_stars")

    _click(browser, "many-dl-csv")
    table = pd.read_csv(_downloaded(downloads, "stars.csv"))
    assert table["star_id"].iloc[:6].tolist() == known
    assert table["found"].tolist() == [True] * 6 + [False, False]
    _click(browser, "many-dl-parquet")
    frame = pq.read_table(_downloaded(downloads, "stars.parquet")).to_pandas()
    assert frame["fusion_label"].notna().sum() == 6

    csv_file = tmp_path / "casjobs.csv"
    rows = "\n".join(",".join(str(int(p)) for p in s.split("-")) for s in known[:3])
    csv_file.write_text(f"plate,mjd,fiberID\n{rows}\n")
    upload = browser.find_element(By.CSS_SELECTOR, "#many-upload input[type=file]")
    upload.send_keys(str(csv_file))
    _wait(browser, "#many-summary", "3 of 3 found")
    _wait(browser, "#many-upload-name", "casjobs.csv")
    _shot(browser, "many_stars_upload")


def test_api_stars_from_outside_the_browser(server_url) -> None:  # noqa: F811
    """A script's POST over real HTTP: JSON in, CSV out; a malformed body is a 400."""
    import json
    import urllib.error
    import urllib.request

    star_id = data.current_snapshot().table("stars").to_pandas()["star_id"].iloc[0]
    req = urllib.request.Request(
        server_url + "/api/stars?format=csv", data=json.dumps([star_id]).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        table = pd.read_csv(io.BytesIO(resp.read()))
    assert table["star_id"].tolist() == [star_id] and table["found"].tolist() == [True]
    bad = urllib.request.Request(server_url + "/api/stars", data=b"{oops",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=30)
    assert err.value.code == 400 and "not valid JSON" in err.value.read().decode()


def test_spectrum_and_sql_downloads(browser, server_url, downloads) -> None:  # noqa: F811
    from astropy.table import Table

    snap = data.current_snapshot()
    star_id = snap.table("spectra_index").to_pandas()["star_id"].iloc[4]
    browser.get(f"{server_url}/star/{star_id}")
    _wait(browser, "#star-spectrum-downloads", "FITS")
    _click(browser, "star-dl-fits")
    table = Table.read(_downloaded(downloads, f"startrack-spec-{star_id}.fits"), hdu="SPECTRUM")
    spec = data.spectrum(snap, star_id)
    assert (
        len(table) == spec.pix_end - spec.pix_start and str(table["WAVELENGTH"].unit) == "Angstrom"
    )
    _click(browser, "star-dl-csv")
    assert len(pd.read_csv(_downloaded(downloads, f"spec-{star_id}.csv"))) == len(table)
    _shot(browser, "star_downloads")

    browser.get(server_url + "/sql")
    area = _wait(browser, "#sql-query")
    _type(area, "SELECT label, count(*) AS n FROM stars GROUP BY label ORDER BY n DESC")
    _click(browser, "sql-run")
    _wait(browser, "#sql-summary", "rows")
    _click(browser, "sql-download-csv")
    result = pd.read_csv(_downloaded(downloads, "query.csv"))
    assert result["n"].sum() == len(snap.table("stars"))
    _no_error_overlay(browser)


def test_confusion_cell_and_mislabel_downloads(browser, server_url, downloads) -> None:  # noqa: F811
    snap = data.current_snapshot()
    version = data.model_versions(snap)[0]
    cells = data.confusion(snap, version, "fusion", "test")
    cell = cells[cells["actual"] != cells["predicted"]].sort_values("n").iloc[-1]
    browser.get(server_url + "/accuracy")
    _wait(browser, "#acc-confusion .main-svg")
    _wait(browser, "#acc-fair-note", "the same stars in every row")
    browser.execute_script(
        "const gd = document.querySelector('#acc-confusion .js-plotly-plot');"
        "gd.emit('plotly_click', {points: [{x: arguments[0], y: arguments[1], curveNumber: 0}]});",
        cell["predicted"], cell["actual"],
    )  # fmt: skip
    _wait(browser, "#acc-cell-download")
    _click(browser, "acc-cell-download")
    name = f"confusion-fusion-test-{cell['actual']}-as-{cell['predicted']}.csv"
    stars = pd.read_csv(_downloaded(downloads, name))
    assert len(stars) == cell["n"] and set(stars["label"]) == {cell["predicted"]}
    _shot(browser, "accuracy_cell_download")

    browser.get(server_url + "/explore")
    _wait(browser, "#exp-disagree-download")
    _click(browser, "exp-disagree-download")
    ranking = pd.read_csv(_downloaded(downloads, "candidate-mislabels-fusion.csv"))
    assert len(ranking) and (ranking["actual"] != ranking["label"]).all()
    _no_error_overlay(browser)


def test_cone_search_and_sky_map_click(browser, server_url) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    snap = data.current_snapshot()
    centre = snap.table("stars").to_pandas().iloc[17]
    browser.get(f"{server_url}/cone")
    _type(_wait(browser, "#cone-ra"), "banana")
    _type(browser.find_element(By.ID, "cone-dec"), "12")
    _click(browser, "cone-go")
    _wait(browser, "#cone-result .alert", "not an angle")
    ra_hms = SkyCoord(centre["ra"], centre["dec"], unit="deg").ra.to_string(
        unit="hourangle", sep=":", precision=3
    )
    _type(browser.find_element(By.ID, "cone-ra"), ra_hms)
    _type(browser.find_element(By.ID, "cone-dec"), f"{centre['dec']:.6f}")
    _type(browser.find_element(By.ID, "cone-radius"), "3 deg")
    _click(browser, "cone-go")
    _wait(browser, "#cone-summary", "radius 3 deg")
    first = _wait(browser, "#cone-result a.star-link")
    assert first.text == centre["star_id"]
    _no_error_overlay(browser)
    _shot(browser, "cone_search")

    browser.get(server_url + "/explore")
    _wait(browser, "#exp-sky .main-svg")
    _wait(browser, "#exp-count", "stars shown")
    star_id = browser.execute_script(
        "const gd = document.querySelector('#exp-sky .js-plotly-plot');"
        "const tr = gd.data.find(t => t.customdata && t.customdata.length);"
        "const pt = {customdata: tr.customdata[0], curveNumber: gd.data.indexOf(tr),"
        " pointNumber: 0};"
        "gd.emit('plotly_click', {points: [pt]}); return pt.customdata;"
    )
    _wait(browser, "#star-title-id", star_id)
    assert browser.current_url.endswith(f"/star/{star_id}")
    _shot(browser, "explore_click_to_star")


_LABEL_BOXES = """
const boxes = [...document.querySelectorAll('#star-spectrum .textpoint text')]
  .map(t => t.getBoundingClientRect()).filter(r => r.width > 0)
  .map(r => [r.left, r.right, r.top, r.bottom]);
return boxes;
"""


def _overlaps(boxes: list[list[float]]) -> list[tuple]:
    """Pairs of label boxes that overlap by more than a pixel each way."""
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if min(a[1], b[1]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[2], b[2]) > 1:
                out.append((a, b))
    return out


def test_line_labels_do_not_overprint_and_frame_is_shown(browser, server_url) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    snap = data.current_snapshot()
    star_id = snap.table("spectra_index").to_pandas()["star_id"].iloc[2]
    browser.get(f"{server_url}/star/{star_id}")
    _wait(browser, "#star-spectrum .textpoint text")
    title = _wait(browser, "#star-spectrum .g-xtitle")
    assert "observed frame" in title.text
    boxes = browser.execute_script(_LABEL_BOXES)
    assert len(boxes) >= 8 and not _overlaps(boxes)
    browser.execute_script(
        "Plotly.relayout(document.querySelector('#star-spectrum .js-plotly-plot'),"
        " {'xaxis.range': [3780, 4150]});"
    )
    time.sleep(0.8)
    zoomed = browser.execute_script(_LABEL_BOXES)
    assert len(zoomed) >= 5 and not _overlaps(zoomed)  # H8..Hε, Ca II H & K all readable
    _shot(browser, "spectrum_blue_end_zoomed")

    rest = browser.find_element(By.XPATH, "//*[@id='star-frame']//label[contains(., 'rest')]")
    driver_click = browser.execute_script
    driver_click("arguments[0].click();", rest)
    _wait(browser, "#star-spectrum .g-xtitle", "rest frame")
    _no_error_overlay(browser)
    _shot(browser, "spectrum_rest_frame")


def test_runs_page_wide_tables_scroll_inside_their_card(browser, server_url) -> None:  # noqa: F811
    browser.set_window_size(1000, 1400)
    try:
        browser.get(server_url + "/runs")
        _wait(browser, "#runs-ingest_runs table")
        page = browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth];"
        )
        assert page[0] <= page[1], f"the page scrolls sideways: {page}"
        boxes = browser.execute_script(
            "return [...document.querySelectorAll('[id^=runs-] .card')].map(c => {"
            " const s = c.querySelector('.table-responsive'); const r = c.getBoundingClientRect();"
            " return [c.parentElement.id, r.right, s ? s.scrollWidth : 0, s ? s.clientWidth : 0,"
            " s ? getComputedStyle(s).overflowX : ''];});"
        )
        for name, right, scroll_w, client_w, overflow in boxes:
            assert right <= 1000, f"{name} card runs off the page"
            if scroll_w > client_w:
                assert overflow == "auto", name  # the wide table scrolls inside its card
        assert any(s > c for _, _, s, c, _ in boxes), "expected at least one wide runs table"
        _shot(browser, "runs_narrow")
    finally:
        browser.set_window_size(1400, 1800)


def test_template_fit_on_the_star_page(browser, server_url) -> None:  # noqa: F811
    snap = data.current_snapshot()
    stars = snap.table("stars").to_pandas()
    star_id = stars[stars["has_spectrum"]].sort_values("snr").iloc[-1]["star_id"]
    browser.get(f"{server_url}/star/{star_id}")
    _wait(browser, "#star-spectrum .main-svg")
    _click(browser, "star-fit")
    best = _wait(browser, "#fit-best")
    assert best.text.strip()
    result = _wait(browser, "#fit-result", "reduced χ²")
    assert "runner-up" in result.text
    assert "within" in result.text or "worse" in result.text  # the 1 % ambiguity verdict
    _wait(browser, "#star-spectrum .legend", "best χ² fit")
    _no_error_overlay(browser)
    _shot(browser, "star_template_fit")
