"""``startrack fetch`` against a fake SkyServer and a fake SAS on 127.0.0.1 (tests/fake_sdss.py).

The SAS serves the real spec-2942-54521-0124 (SDSS-I/II, run2d 26) when ../shared/sdss is
there, and simulated spec-lite files under both layouts (26 and v5_13_2), with the faults a
public server has: 503, bodies cut off, stalls past the timeout, dropped connections, HTML
error pages served as 200, and 404s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import REAL_SPEC
from fake_sdss import FakeSAS, FakeSkyServer
from fits_factory import write_spec

from startrack.cli import main
from startrack.etl.fetch.download import Transient, verify_spec_file
from startrack.etl.fetch.session import RateLimiter
from startrack.sdss_urls import encode_specobjid, sas_spec_lite_path, spec_name

STARTRACK = Path(sys.executable).with_name("startrack")
FAST = ["--backoff", "0.02", "--timeout", "1", "--rate", "0", "--no-progress"]


def _survey(tmp: Path, n: int, with_real: bool = True) -> tuple[list[dict], dict[str, Path]]:
    """Catalog rows as SkyServer has them, and the spec-lite file of each (name -> path)."""
    src = tmp / "sas-src"
    src.mkdir(parents=True, exist_ok=True)
    rows, files = [], {}
    stars = []
    if with_real and REAL_SPEC.exists():
        stars.append((2942, 54521, 124, "26", REAL_SPEC, "G2", 94.3))
    for i in range(n - len(stars)):
        if i % 2:
            plate, mjd, run = 1000 + i, 52000 + i, "26"
        else:
            plate, mjd, run = 4000 + i, 55500 + i, "v5_13_2"
        fiber = 1 + (i * 37) % 1000
        path = write_spec(src / spec_name(plate, mjd, fiber), plate, mjd, fiber, seed=i)
        stars.append((plate, mjd, fiber, run, path, "G2", 5.0 + i))
    for plate, mjd, fiber, run, path, subclass, sn in stars:
        rows.append(
            {
                "specObjID": encode_specobjid(plate, mjd, fiber, run),
                "plate": plate,
                "mjd": mjd,
                "fiberID": fiber,
                "run2d": run,
                "ra": 150.0,
                "dec": 2.0,
                "class": "STAR",
                "subClass": subclass,
                "z": 1e-4,
                "zErr": 1e-5,
                "zWarning": 0,
                "snMedian": sn,
                "elodieSpType": "G0",
                **{f"psfMag_{b}": 18.0 + k * 0.3 for k, b in enumerate("ugriz")},
                **{f"psfMagErr_{b}": 0.02 for b in "ugriz"},
            }
        )
        files[spec_name(plate, mjd, fiber)] = path
    return rows, files


def _serve_all(sas: FakeSAS, rows: list[dict], files: dict[str, Path], skip=()) -> None:
    for r in rows:
        name = spec_name(r["plate"], r["mjd"], r["fiberID"])
        if name not in skip:
            path = sas_spec_lite_path(r["plate"], r["mjd"], r["fiberID"], r["run2d"], 17)
            sas.serve(path, files[name])


def _argv(out: Path, sky: FakeSkyServer, sas: FakeSAS, *more: str) -> list[str]:
    return ["fetch", "--out", str(out), "--skyserver-url", sky.url, "--sas-url", sas.url, *FAST,
            *more]  # fmt: skip


def _assert_nothing_corrupt(spectra: Path) -> None:
    for f in spectra.glob("spec-*.fits"):
        verify_spec_file(f)  # raises on anything partial or damaged


# ----------------------------------------------------------------------------- URLs
def test_sas_layout_and_specobjid_match_the_real_archive(real_spec) -> None:
    from astropy.io import fits

    from startrack.sdss_urls import explore_url, run2d_from_specobjid, sas_spec_lite_url

    assert sas_spec_lite_url(2942, 54521, 124, "26") == (
        "https://data.sdss.org/sas/dr17/sdss/spectro/redux/26/spectra/lite/2942/"
        "spec-2942-54521-0124.fits"
    )
    assert sas_spec_lite_url(3586, 55181, 1, "v5_13_2", release=17) == (
        "https://data.sdss.org/sas/dr17/eboss/spectro/redux/v5_13_2/spectra/lite/3586/"
        "spec-3586-55181-0001.fits"
    )
    assert sas_spec_lite_path(266, 51602, 3, 26, 16).startswith("dr16/sdss/spectro/redux/26/")
    assert "/0266/spec-0266-51602-0003.fits" in sas_spec_lite_path(266, 51602, 3, "26", 16)
    with fits.open(real_spec) as h:
        sid = int(h["SPECOBJ"].data["SPECOBJID"][0])
        run2d = h["SPECOBJ"].data["RUN2D"][0].strip()
    assert encode_specobjid(2942, 54521, 124, run2d) == sid
    assert run2d_from_specobjid(sid) == "26"
    for run in ("26", "103", "104", "v5_7_0", "v5_13_0", "v5_13_2"):
        assert run2d_from_specobjid(encode_specobjid(10234, 58100, 999, run)) == run
    assert explore_url(2942, 54521, 124).endswith(
        "/dr17/VisualTools/explore/summary?plate=2942&mjd=54521&fiber=124"
    )


def test_run2d_guess_trusts_only_a_specobjid_of_the_same_spectrum() -> None:
    from startrack.sdss_urls import guess_run2d

    boss = encode_specobjid(4000, 55500, 7, "v5_13_0")
    assert guess_run2d(4000, 55500, 7, boss, release=16) == "v5_13_0"
    assert guess_run2d(4000, 55500, 8, boss, release=17) == "v5_13_2"  # another fiber's id
    assert guess_run2d(1000, 52000, 1, str(1000 * 10**12 + 1)) == "26"  # not an SDSS id
    assert guess_run2d(1000, 52000, 1, None) == "26"
    assert guess_run2d(3600, 55100, 1, "") == "v5_13_2"


def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(20.0)
    t0 = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - t0 >= 0.5 - 0.02


# ----------------------------------------------------------------------------- catalog
def test_catalog_arrives_whole_across_capped_pages(tmp_path, capsys) -> None:
    rows, _ = _survey(tmp_path, 1, with_real=False)
    base = rows[0]
    rows = [{**base, "fiberID": k + 1,
             "specObjID": encode_specobjid(base["plate"], base["mjd"], k + 1, base["run2d"])}
            for k in range(23)]  # fmt: skip
    with FakeSkyServer(rows, row_cap=5) as sky, FakeSAS() as sas:
        # ask for pages of 10: the server's cap of 5 must not end the catalog early
        assert main(_argv(tmp_path / "out", sky, sas, "--page-rows", "10")) == 0
        queries = list(sky.queries)
    cat = pd.read_parquet(tmp_path / "out" / "catalog.parquet")
    assert len(cat) == 23
    assert sorted(cat["fiberID"]) == list(range(1, 24))
    assert cat["specObjID"].map(int).is_monotonic_increasing
    assert len(queries) == 6  # 5 + 5 + 5 + 5 + 3 rows, then an empty page
    assert all("TOP 10" in q and "s.class = 'STAR'" in q for q in queries)
    last_of_page_1 = sorted(r["specObjID"] for r in rows)[4]
    assert f"s.specObjID > {last_of_page_1}" in queries[1]
    # SkyServer's text columns stay text; magnitudes are numbers the ETL understands
    assert cat["run2d"].tolist()[0] == "v5_13_2" and cat["psfMag_g"].dtype.kind == "f"
    out = capsys.readouterr().out
    assert "catalog: 23 rows in 5 pages" in out


def test_catalog_resumes_after_the_server_fails(tmp_path, capsys) -> None:
    rows, _ = _survey(tmp_path, 1, with_real=False)
    base = rows[0]
    rows = [{**base, "fiberID": k + 1,
             "specObjID": encode_specobjid(base["plate"], base["mjd"], k + 1, base["run2d"])}
            for k in range(12)]  # fmt: skip
    out = tmp_path / "out"
    with FakeSkyServer(rows, row_cap=4) as sky, FakeSAS() as sas:
        sky.faults = [None, None] + [503] * 20  # two pages, then the server goes down
        code = main(_argv(out, sky, sas, "--page-rows", "4", "--retries", "2"))
        err = capsys.readouterr().err
        assert code == 2
        assert "SkyServer failed (HTTP 503) after retries: Server too busy" in err
        assert "Traceback" not in err
        assert not (out / "catalog.parquet").exists()
        assert len(list((out / ".catalog").glob("page-*.parquet"))) == 2
        sky.faults = []
        sky.queries.clear()
        assert main(_argv(out, sky, sas, "--page-rows", "4")) == 0
        eighth = sorted(r["specObjID"] for r in rows)[7]
        assert f"s.specObjID > {eighth}" in sky.queries[0]  # resumed after page 2
    cat = pd.read_parquet(out / "catalog.parquet")
    assert sorted(cat["fiberID"]) == list(range(1, 13))  # whole, no duplicates


def test_stars_cap_where_and_own_sql(tmp_path, capsys) -> None:
    rows, _ = _survey(tmp_path, 9, with_real=False)
    with FakeSkyServer(rows, row_cap=4) as sky, FakeSAS() as sas:
        args = _argv(tmp_path / "a", sky, sas, "--stars", "6", "--where", "s.snMedian > 5")
        assert main(args) == 0
        assert len(pd.read_parquet(tmp_path / "a" / "catalog.parquet")) == 6
        assert all("(s.snMedian > 5)" in q for q in sky.queries)
        sql = tmp_path / "q.sql"
        sql.write_text("SELECT specObjID, plate, mjd, fiberID, run2d FROM SpecObj\n")
        assert main(_argv(tmp_path / "b", sky, sas, "--sql", str(sql), "--format", "csv")) == 0
        assert (
            "FROM (SELECT specObjID, plate, mjd, fiberID, run2d FROM SpecObj) AS q"
            in (sky.queries[-1])
        )
    csv = pd.read_csv(tmp_path / "b" / "catalog.csv")
    assert len(csv) == 9


def test_bad_sql_reports_the_servers_message(tmp_path, capsys) -> None:
    sql = tmp_path / "bad.sql"
    sql.write_text("SELECT specObjID FROM SpecObjj WHERE class = 'STAR'")
    with FakeSkyServer([], row_cap=4) as sky, FakeSAS() as sas:
        code = main(_argv(tmp_path / "out", sky, sas, "--sql", str(sql)))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        "startrack fetch: error: SkyServer rejected the query (HTTP 400): "
        "Invalid object name 'SpecObjj'."
    )


def test_network_down_is_one_line(tmp_path) -> None:
    with FakeSkyServer([]) as sky:
        dead = sky.url  # the port is closed once the server stops
    r = subprocess.run(
        [str(STARTRACK), "fetch", "--out", str(tmp_path / "o"), "--skyserver-url", dead,
         "--retries", "1", "--backoff", "0.01", "--spectra", "5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach SkyServer" in lines[0], r.stderr
    assert "Connection refused" in lines[0]


# ----------------------------------------------------------------------------- spectra
def test_spectra_survive_every_fault_and_a_second_run_downloads_nothing(tmp_path, capsys) -> None:
    rows, files = _survey(tmp_path, 12)
    names = [spec_name(r["plate"], r["mjd"], r["fiberID"]) for r in rows]
    gone = names[3]  # not on the server: 404
    with FakeSkyServer(rows, row_cap=5) as sky, FakeSAS() as sas:
        _serve_all(sas, rows, files, skip={gone})
        sas.slow_seconds = 2.5  # past the 1 s timeout
        faults = ["503", "truncate", "slow", "html", "drop", "503"]
        sas.faults = {names[i]: [f] for i, f in enumerate(faults) if names[i] != gone}
        sas.faults[names[6]] = ["truncate", "html"]  # two different faults, then whole
        out = tmp_path / "out"
        assert main(_argv(out, sky, sas, "--spectra", "all", "--workers", "4")) == 0
        printed = capsys.readouterr().out
        for name in names:
            got = out / "spectra" / name
            if name == gone:
                assert not got.exists()
            else:  # every file that exists arrived intact: byte for byte the server's
                assert got.read_bytes() == files[name].read_bytes(), name
        assert sas.requests[names[6]] == 3 and sas.requests[names[1]] == 2
        assert not list((out / "spectra").glob(".*"))  # no temporary files left
        manifest = json.loads((out / "fetch.json").read_text())
        assert manifest["spectra"]["asked"] == 12
        assert manifest["spectra"]["got"] == 11 and manifest["spectra"]["missing"] == 1
        assert manifest["files"][gone]["status"] == "missing"
        assert "404" in manifest["files"][gone]["reason"]
        assert manifest["files"][gone]["url"].endswith(
            sas_spec_lite_path(rows[3]["plate"], rows[3]["mjd"], rows[3]["fiberID"],
                               rows[3]["run2d"], 17)
        )  # fmt: skip
        assert "got 11" in printed and "(404) 1" in printed and "failed 0" in printed

        sas.requests.clear()
        assert main(_argv(out, sky, sas, "--spectra", "all")) == 0
        assert sum(sas.requests.values()) == 0  # nothing downloaded again, the 404 not re-asked
        assert "already here 11" in capsys.readouterr().out


def test_the_rate_cap_holds_across_workers(tmp_path) -> None:
    rows, files = _survey(tmp_path, 13, with_real=False)
    with FakeSkyServer(rows) as sky, FakeSAS() as sas:
        _serve_all(sas, rows, files)
        args = _argv(tmp_path / "out", sky, sas, "--spectra", "all", "--workers", "8")
        args[args.index("--rate") + 1] = "8"
        assert main(args) == 0
        times = sorted(sas.times)
    assert len(times) == 13
    # 13 requests at most 8 per second, evenly spaced: the last starts >= 12/8 s after the first
    assert times[-1] - times[0] >= 12 / 8 - 0.05


def test_a_file_that_never_comes_whole_fails_with_its_reason(tmp_path, capsys) -> None:
    rows, files = _survey(tmp_path, 3, with_real=False)
    bad = spec_name(rows[0]["plate"], rows[0]["mjd"], rows[0]["fiberID"])
    with FakeSkyServer(rows) as sky, FakeSAS() as sas:
        _serve_all(sas, rows, files)
        sas.faults = {bad: ["html"] * 10}
        code = main(_argv(tmp_path / "out", sky, sas, "--spectra", "all"))
    captured = capsys.readouterr()
    assert code == 1
    err = captured.err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("startrack fetch: 1 of 3 spectra failed")
    assert bad in err[0] and "not a FITS file" in err[0] and "re-run" in err[0]
    assert not (tmp_path / "out" / "spectra" / bad).exists()
    manifest = json.loads((tmp_path / "out" / "fetch.json").read_text())
    assert manifest["files"][bad]["status"] == "failed"
    assert "<!DOCTYPE html>" in manifest["files"][bad]["reason"]


def test_an_unreachable_sas_stops_early_with_one_line(tmp_path) -> None:
    rows, _ = _survey(tmp_path, 30, with_real=False)
    with FakeSAS() as sas:
        dead = sas.url  # closed once the server stops
    with FakeSkyServer(rows) as sky:
        r = subprocess.run(
            [str(STARTRACK), "fetch", "--out", str(tmp_path / "o"), "--skyserver-url", sky.url,
             "--sas-url", dead, "--spectra", "all", "--retries", "0", "--backoff", "0.01",
             "--rate", "0", "--workers", "2"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("startrack fetch: 30 of 30 spectra failed (the SAS is unreachable")
    assert "cannot connect: Connection refused)" in last
    manifest = json.loads((tmp_path / "o" / "fetch.json").read_text())
    reasons = [f["reason"] for f in manifest["files"].values()]
    assert sum(x.startswith("not tried") for x in reasons) >= 5  # it stopped asking


def test_verify_rejects_partial_and_foreign_files(tmp_path) -> None:
    good = write_spec(tmp_path / "spec-1000-52000-0001.fits")
    data = good.read_bytes()
    (tmp_path / "half.fits").write_bytes(data[: len(data) // 2])
    (tmp_path / "page.fits").write_bytes(b"<html>busy</html>")
    verify_spec_file(good, len(data))
    for name, size in (("half.fits", None), ("page.fits", None), ("half.fits", len(data))):
        with pytest.raises(Transient):
            verify_spec_file(tmp_path / name, size)
    real = write_spec(tmp_path / "spec-1000-52000-0002.fits", specobj=True)
    cut = real.read_bytes()[:-2880]  # the last HDU loses its last block: COADD still reads
    (tmp_path / "cut.fits").write_bytes(cut)
    with pytest.raises(Transient):
        verify_spec_file(tmp_path / "cut.fits")
    nocoadd = tmp_path / "nocoadd.fits"
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU()]).writeto(nocoadd)
    with pytest.raises(Transient, match="COADD"):
        verify_spec_file(nocoadd)


@pytest.mark.slow
def test_kill_9_mid_download_leaves_nothing_corrupt_and_resumes(tmp_path) -> None:
    rows, files = _survey(tmp_path, 10)
    out = tmp_path / "out"
    with FakeSkyServer(rows) as sky, FakeSAS() as sas:
        _serve_all(sas, rows, files)
        sas.dribble_seconds = 1.0  # each body takes ~1 s to arrive
        cmd = [str(STARTRACK), "fetch", "--out", str(out), "--skyserver-url", sky.url,
               "--sas-url", sas.url, "--spectra", "all", "--workers", "2"]  # fmt: skip
        log = (tmp_path / "fetch.log").open("w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            spectra = out / "spectra"
            # wait until one file is complete and another is half-way
            while time.monotonic() < deadline:
                done = list(spectra.glob("spec-*.fits")) if spectra.exists() else []
                partial = list(spectra.glob(".spec-*.part")) if spectra.exists() else []
                if done and any(p.stat().st_size > 0 for p in partial):
                    break
                time.sleep(0.05)
            else:
                listing = sorted(p.name for p in spectra.iterdir()) if spectra.exists() else []
                pytest.fail(
                    f"the fetch never got mid-download (exit {proc.poll()}): {listing} "
                    f"{(tmp_path / 'fetch.log').read_text()[-2000:]}"
                )
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=10)
        complete = list(spectra.glob("spec-*.fits"))
        assert 0 < len(complete) < len(rows)
        _assert_nothing_corrupt(spectra)  # nothing partial under a final name

        sas.dribble_seconds = 0.0
        before = dict(sas.requests)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        for name, src in files.items():
            assert (spectra / name).read_bytes() == src.read_bytes()
        assert not list(spectra.glob(".*"))
        for f in complete:  # resumed: complete files were not asked for again
            assert sas.requests[f.name] == before.get(f.name, 0)

        sas.requests.clear()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and sum(sas.requests.values()) == 0


def test_ingest_of_a_fetch_has_no_rejects(tmp_path, capsys) -> None:
    rows, files = _survey(tmp_path, 8)
    out, wh = tmp_path / "out", tmp_path / "wh"
    with FakeSkyServer(rows, row_cap=3) as sky, FakeSAS() as sas:
        _serve_all(sas, rows, files)
        first = spec_name(rows[0]["plate"], rows[0]["mjd"], rows[0]["fiberID"])
        sas.faults = {first: ["truncate"]}
        args = _argv(out, sky, sas, "--spectra", "all", "--ingest", "--warehouse", str(wh))
        assert main(args) == 0
    con = duckdb.connect(str(wh / "startrack.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from rejects").fetchone()[0] == 0
        assert con.execute("select count(*) from stars").fetchone()[0] == 8
        assert con.execute("select count(*) from spectra").fetchone()[0] == 8
        mags = con.execute("select count(*) from stars where mag_g is not null").fetchone()[0]
        assert mags == 8
    finally:
        con.close()
    # and the plain `startrack ingest DIR` reads the same folder (catalog + spectra)
    wh2 = tmp_path / "wh2"
    r = subprocess.run(
        [str(STARTRACK), "ingest", str(out), "--warehouse", str(wh2)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(wh2 / "startrack.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from rejects").fetchone()[0] == 0
        assert con.execute("select count(*) from stars where mag_r is not null").fetchone()[0] == 8
    finally:
        con.close()


def test_help_and_bad_arguments(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fetch", "--help"])
    assert exc.value.code == 0
    assert "--skyserver-url" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["fetch", "--out", str(tmp_path), "--spectra", "lots"])
    assert exc.value.code == 2
    assert "expected a number or 'all'" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["fetch", "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "file", ignore_errors=True)
