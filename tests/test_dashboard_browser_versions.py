"""Comparing two model versions in a real headless Chromium: the changed stars, their CSV, and
the star page's previous answer, on a warehouse where two versions were really trained.

Screenshots go to artifacts/screenshots/ (accuracy_versions*.png, star_previous_version.png).
"""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401
from history_fixtures import TwoVersions, two_versions_warehouse  # noqa: F401
from test_dashboard_browser import _no_error_overlay, _shot, _wait, browser  # noqa: F401
from test_dashboard_browser_tools import _downloaded
from test_version_changes import _by_hand

from startrack.dashboard import data

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def versions_url(two_versions_warehouse, dashboard_app, dashboard_warehouse):  # noqa: F811
    from werkzeug.serving import make_server

    data.configure(two_versions_warehouse.root)
    srv = make_server("127.0.0.1", 0, dashboard_app.server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=10)
    data.configure(dashboard_warehouse)


def _pick(driver, group: str, label: str) -> None:
    """Click the radio option whose label reads ``label`` inside the group ``group``."""
    from selenium.webdriver.common.by import By

    for element in driver.find_elements(By.CSS_SELECTOR, f"#{group} label"):
        if element.text.strip() == label:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
            element.click()
            return
    raise AssertionError(f"no option {label!r} in #{group}")


def test_changed_stars_between_versions(
    browser, versions_url, two_versions_warehouse: TwoVersions, tmp_path  # noqa: F811
) -> None:  # fmt: skip
    from selenium.webdriver.common.by import By

    tv = two_versions_warehouse
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)}
    )
    hand = _by_hand(tv)
    test = hand[hand["split"] == "test"]  # the page opens on the test split
    assert len(test), "the fixture's two versions should disagree on some test star"

    browser.get(versions_url + "/accuracy")  # defaults: current version vs the previous one
    note = _wait(browser, "#acc-changes-note", f"{len(test):,} changed")
    assert f"{tv.old} → {tv.new}" in note.text
    for outcome in ("fixed", "broken", "both wrong"):
        badge = browser.find_element(By.ID, f"acc-changes-{outcome.replace(' ', '-')}")
        assert badge.text == f"{outcome}: {int((test['outcome'] == outcome).sum()):,}"
    links = browser.find_elements(By.CSS_SELECTOR, "#acc-changes-table a.star-link")
    assert {a.text for a in links} == set(test.index)
    _no_error_overlay(browser)
    browser.execute_script(
        "document.getElementById('acc-changes-note').scrollIntoView({block: 'start'});"
    )
    _shot(browser, "accuracy_versions")

    # the commonest outcome alone, then its CSV as a user downloads it
    outcome = test["outcome"].value_counts().index[0]
    want = set(test.index[test["outcome"] == outcome])
    _pick(browser, "acc-changes-outcome", outcome)
    _wait(browser, "#acc-changes-download", f"all {len(want):,} listed")
    links = browser.find_elements(By.CSS_SELECTOR, "#acc-changes-table a.star-link")
    assert {a.text for a in links} == want
    _shot(browser, "accuracy_versions_filtered")
    link = browser.find_element(By.ID, "acc-changes-download")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
    link.click()
    csv = pd.read_csv(_downloaded(folder, f"changed-fusion-{tv.old}-to-{tv.new}-test.csv"))
    assert set(csv["star_id"]) == want and (csv["outcome"] == outcome).all()

    # another branch: the dense head's own changes
    _pick(browser, "acc-changes-outcome", "all changes")
    _pick(browser, "acc-changes-branch", "dense")
    dense = _by_hand(tv, "dense").query("split == 'test'")
    _wait(browser, "#acc-changes-note", "dense · split 'test': ")
    _wait(browser, "#acc-changes-note", f"{len(dense):,} changed")

    # a changed star's page says what the previous version answered, from the history
    _pick(browser, "acc-changes-branch", "fusion")
    _wait(browser, "#acc-changes-note", "fusion · split 'test'")
    star_id = browser.find_elements(By.CSS_SELECTOR, "#acc-changes-table a.star-link")[0].text
    browser.get(f"{versions_url}/star/{star_id}")
    prev = _wait(browser, "#star-previous", "stored by scoring run")
    old, new = hand.loc[star_id, "old"], hand.loc[star_id, "new"]
    assert f"Previous model {tv.old}: fusion {old}" in prev.text
    assert f"changed class: {old} → {new}" in prev.text
    _no_error_overlay(browser)
    _shot(browser, "star_previous_version")
