"""End to end in a real headless Chromium: lookup, spectrum, predictions, re-run, accuracy, SQL.

Screenshots of every page go to artifacts/screenshots/ (gitignored) as test artifacts.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack.dashboard import data

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
WAIT_S = 20

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_url(dashboard_app, dashboard_warehouse):  # noqa: F811
    from werkzeug.serving import make_server

    data.configure(dashboard_warehouse)
    srv = make_server("127.0.0.1", 0, dashboard_app.server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "chromium / chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="startrack-chromium-")
    opts = webdriver.ChromeOptions()
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,1800",
    ):  # fmt: skip
        opts.add_argument(arg)
    opts.binary_location = str(CHROMIUM)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, css: str, text: str | None = None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT_S)
    if text is None:
        return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return driver.find_element(By.CSS_SELECTOR, css)


def _shot(driver, name: str) -> None:
    time.sleep(0.4)  # let plotly finish its transition before the picture
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _type(element, text: str) -> None:
    """Replace a React-controlled field's text the way a user does (clear() bypasses React)."""
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def _click(driver, element_id: str) -> None:
    """Scroll the button to the middle of the window first (a header may cover the edge)."""
    from selenium.webdriver.common.by import By

    button = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    time.sleep(0.2)
    button.click()


def _no_error_overlay(driver) -> None:
    from selenium.webdriver.common.by import By

    assert not driver.find_elements(By.CSS_SELECTOR, ".dash-fe-error__title")
    assert "Traceback" not in driver.page_source


def test_star_lookup_spectrum_predictions_and_rerun(browser, server_url) -> None:
    from selenium.webdriver.common.by import By

    snap = data.current_snapshot()
    star_id = snap.table("spectra_index").to_pandas()["star_id"].iloc[2]
    t0 = time.perf_counter()
    browser.get(server_url + "/")
    _wait(browser, "#star-alert", "Enter a star id")
    load_s = time.perf_counter() - t0
    _shot(browser, "star_home")
    assert load_s < 10

    box = browser.find_element(By.ID, "star-input")
    _type(box, f"spec-{star_id}.fits")
    _click(browser, "star-go")
    _wait(browser, "#star-title-id", star_id)
    for branch in ("dense", "lstm", "fusion"):
        card = _wait(browser, f"#pred-card-{branch} .pred-label")
        assert card.text.strip()
    _wait(browser, "#star-spectrum .main-svg")
    _wait(browser, "#star-spectrum .legend", "Balmer")
    _no_error_overlay(browser)
    _shot(browser, "star")

    _click(browser, "star-rerun")
    result = _wait(browser, "#star-rerun-result", "matches stored")
    assert "ms" in result.text
    _shot(browser, "star_rerun")

    box = browser.find_element(By.ID, "star-input")
    _type(box, "banana-split")
    _click(browser, "star-go")
    alert = _wait(browser, "#star-alert .alert", "Invalid id")
    assert "PLATE-MJD-FIBER" in alert.text
    _no_error_overlay(browser)
    _shot(browser, "star_invalid")


def test_permalink_opens_the_star(browser, server_url) -> None:
    star_id = data.current_snapshot().table("stars").to_pandas()["star_id"].iloc[5]
    browser.get(f"{server_url}/star/{star_id}")
    _wait(browser, "#star-title-id", star_id)
    _wait(browser, "#pred-card-fusion .pred-label")


def test_accuracy_page_and_a_confusion_cell(browser, server_url) -> None:
    snap = data.current_snapshot()
    version = data.model_versions(snap)[0]
    cell = data.confusion(snap, version, "fusion", "test").sort_values("n").iloc[-1]
    browser.get(server_url + "/accuracy")
    _wait(browser, "#acc-confusion .main-svg")
    _wait(browser, "#acc-value-accuracy")
    _wait(browser, "#acc-types-note", "own MK type")
    _shot(browser, "accuracy")
    # A real user's click on a cell reaches dcc.Graph as a plotly_click event: emit that.
    browser.execute_script(
        "const gd = document.querySelector('#acc-confusion .js-plotly-plot');"
        "gd.emit('plotly_click', {points: [{x: arguments[0], y: arguments[1], curveNumber: 0}]});",
        cell["predicted"], cell["actual"],
    )  # fmt: skip
    _wait(browser, "#acc-cell-title", f"actual {cell['actual']} → predicted {cell['predicted']}")
    links = browser.find_elements("css selector", "#acc-cell-stars a.star-link")
    assert links and links[0].get_attribute("href").split("/star/")[1]
    _shot(browser, "accuracy_cell")


def test_sql_refusal_and_other_pages(browser, server_url) -> None:

    browser.get(server_url + "/sql")
    area = _wait(browser, "#sql-query")
    _type(area, "DROP TABLE stars")
    _click(browser, "sql-run")
    alert = _wait(browser, "#sql-result .alert", "Refused")
    assert "read-only" in alert.text
    _shot(browser, "sql_refused")
    _type(area, "SELECT label, count(*) AS n FROM stars GROUP BY label ORDER BY n DESC")
    _click(browser, "sql-run")
    _wait(browser, "#sql-summary", "rows")
    _shot(browser, "sql")

    browser.get(server_url + "/explore")
    _wait(browser, "#exp-sky .main-svg")
    _wait(browser, "#exp-count", "stars shown")
    _shot(browser, "explore")
    browser.get(server_url + "/runs")
    _wait(browser, "#runs-snapshot")
    _shot(browser, "runs")
    _no_error_overlay(browser)


def test_phone_width_layout(browser, server_url) -> None:
    star_id = data.current_snapshot().table("spectra_index").to_pandas()["star_id"].iloc[0]
    browser.set_window_size(400, 1600)
    try:
        browser.get(f"{server_url}/star/{star_id}")
        _wait(browser, "#pred-card-fusion .pred-label")
        _wait(browser, "#star-spectrum .main-svg")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 420  # no horizontal scrolling on a phone
        _shot(browser, "star_phone")
    finally:
        browser.set_window_size(1400, 1800)


def test_serving_continues_while_score_publishes(server_url, dashboard_warehouse) -> None:  # noqa: F811
    """Requests during a real scoring run all succeed; the new run shows once published."""
    import json
    import urllib.request

    from startrack.ml.score import score_warehouse
    from startrack.warehouse.store import Warehouse

    wh = Warehouse(dashboard_warehouse)
    star_id = data.random_star_id(wh.current())
    before = wh.current_id()
    errors: list[str] = []
    done = threading.Event()
    seen: set[str] = set()

    def hammer() -> None:
        while not done.is_set():
            for path in (f"/api/star/{star_id}", "/", "/accuracy", "/runs"):
                try:
                    with urllib.request.urlopen(server_url + path, timeout=30) as resp:
                        body = resp.read()
                        if path.startswith("/api/"):
                            seen.add(json.loads(body)["snapshot"])
                except Exception as exc:  # any failure is what this test is about
                    errors.append(f"{path}: {exc}")

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        run = score_warehouse(wh, full=True, progress=False)
        time.sleep(1.0)
    finally:
        done.set()
        thread.join()
    assert not errors, errors[:3]
    assert wh.current_id() != before and wh.current_id() in seen
    assert run["run_id"] in set(data.runs_tables(wh.current())["scoring_runs"]["run_id"])
