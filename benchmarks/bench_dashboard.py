"""Benchmark the dashboard on any warehouse: lookup p95, accuracy callbacks, page load, payload.

    python benchmarks/bench_dashboard.py --warehouse DIR [--lookups 200] [--no-browser]

Targets (issue 4, full-scale 800k stars / 25k spectra): lookup callback p95 <= 20 ms, accuracy
page callbacks <= 200 ms, first page load in Chromium <= 1.5 s, a small spectrum payload.
Caches are cleared before each timed call, so the figures are cold per star (a new snapshot's
first request), not cache hits. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _clear_caches() -> None:
    from startrack.dashboard import data

    for obj in vars(data).values():  # per-star caches; open Parquet file handles stay
        if hasattr(obj, "cache_clear"):
            obj.cache_clear()


def _pct(values: list[float]) -> dict:
    arr = np.asarray(values)
    return {"p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p95_ms": round(float(np.percentile(arr, 95)), 2),
            "max_ms": round(float(arr.max()), 2), "n": len(values)}  # fmt: skip


def _timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1e3, out


def bench_callbacks(n_lookups: int, seed: int) -> dict:
    from startrack.dashboard import data, figures
    from startrack.dashboard.pages import accuracy, star
    from startrack.lines import DEFAULT_GROUPS

    snap = data.current_snapshot()
    rng = random.Random(seed)
    spec_ids = list(data._spectrum_ids(snap))
    con = snap.connect()
    n_stars = con.execute("SELECT count(*) FROM stars").fetchone()[0]
    k = max(1, n_lookups // 2)
    sample = f"SELECT star_id FROM stars USING SAMPLE reservoir({k} ROWS) REPEATABLE (1)"
    phot_ids = [r[0] for r in con.execute(sample).fetchall()]
    con.close()
    ids = rng.sample(spec_ids, min(len(spec_ids), n_lookups // 2)) + phot_ids
    rng.shuffle(ids)
    star.lookup("star-go", ids[0])  # warm imports and the connection
    lookup_ms, spectrum_ms, both_ms, payload = [], [], [], []
    for sid in ids:
        _clear_caches()
        a, _ = _timed(star.lookup, "star-go", sid)
        b, fig = _timed(star.spectrum_view, sid, list(DEFAULT_GROUPS), 0, ["predicted", "actual"])
        lookup_ms.append(a)
        spectrum_ms.append(b)
        both_ms.append(a + b)
        if data.spectrum(snap, sid) is not None:
            payload.append(figures.figure_bytes(fig))
    out = {
        "stars": int(n_stars), "spectra": len(spec_ids),
        "lookup_callback": _pct(lookup_ms), "spectrum_callback": _pct(spectrum_ms),
        "lookup_plus_spectrum": _pct(both_ms),
        "spectrum_payload_bytes": {"mean": int(statistics.mean(payload)), "max": max(payload)}
        if payload else None,
    }  # fmt: skip
    versions = data.model_versions(snap)
    if versions:
        version = versions[0]
        view_ms, cell_ms = [], []
        for branch in data.branches(snap, version):
            for split in ("test", "all"):
                _clear_caches()
                t, _ = _timed(accuracy.accuracy_view, version, branch, split, "counts")
                view_ms.append(t)
        cells = data.confusion(snap, version, "fusion", "all")
        for cell in cells.sort_values("n", ascending=False).head(10).itertuples():
            _clear_caches()
            click = {"points": [{"x": cell.predicted, "y": cell.actual}]}
            t, _ = _timed(accuracy.cell_stars, click, version, "fusion", "all")
            cell_ms.append(t)
        out["accuracy_view_callback"] = _pct(view_ms)
        out["confusion_cell_callback"] = _pct(cell_ms) if cell_ms else None
    return out


def bench_browser(app, star_id: str, repeats: int = 3) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_port}"
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--window-size=1400,1000"):  # fmt: skip
        opts.add_argument(arg)
    opts.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    results: dict[str, list[float]] = {"home": [], "star_page_with_spectrum": [], "accuracy": []}
    targets = {
        "home": ("/", "#star-alert .alert"),
        "star_page_with_spectrum": (f"/star/{star_id}", "#star-spectrum .main-svg .scatterlayer"),
        "accuracy": ("/accuracy", "#acc-confusion .main-svg .heatmaplayer"),
    }
    try:
        for i in range(repeats):
            for name, (path, css) in targets.items():
                if i == 0:
                    driver.get("about:blank")
                _clear_caches()
                t0 = time.perf_counter()
                driver.get(url + path)
                WebDriverWait(driver, 30).until(
                    ec.presence_of_element_located((By.CSS_SELECTOR, css))
                )
                results[name].append(time.perf_counter() - t0)
    finally:
        driver.quit()
        srv.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return {
        name: {"first_s": round(v[0], 3), "median_s": round(statistics.median(v), 3)}
        for name, v in results.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True, type=Path)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    from startrack.dashboard import data
    from startrack.dashboard.serve import create_app

    app = create_app(args.warehouse)
    report = {"warehouse": str(args.warehouse.resolve())}
    report.update(bench_callbacks(args.lookups, args.seed))
    if not args.no_browser and Path("/usr/bin/chromium").exists():
        snap = data.current_snapshot()
        star_id = data.example_star_ids(snap)[0]
        report["page_load_chromium"] = bench_browser(app, star_id)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
