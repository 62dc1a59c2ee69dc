"""The ingest command end to end: real files in, warehouse out, bad input never lost."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
from astropy.io import fits
from fits_factory import spec_name, write_spec

from startrack.etl.ingest import ingest
from startrack.warehouse.store import Warehouse

CLI = [sys.executable, "-m", "startrack.cli"]


def q(wh: Warehouse, sql: str):
    con = duckdb.connect(str(wh.root / "startrack.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_real_spec_lite_file(tmp_path, real_spec):
    wh = Warehouse(tmp_path / "wh")
    report = ingest(wh, spectra=[real_spec], progress=False)
    assert report.status == "ok", report.summary()
    row = q(
        wh, "select plate, mjd, fiberid, subclass, label, has_spectrum, elodie_sptype from stars"
    )
    assert row == [(2942, 54521, 124, "G2", "G2", True, "F8")]
    (lo, hi, exact, norm, masked) = q(
        wh,
        """select 10^(3.55 + 1e-4 * pix_start), 10^(3.55 + 1e-4 * (pix_end - 1)), exact_shift,
                  norm,
                      list_count(list_filter(list_slice(mask, pix_start + 1, pix_end), lambda m: m))
                      / (pix_end - pix_start)
           from spectra""",
    )[0]
    assert 3790 < lo < 3830 and 9150 < hi < 9230  # SDSS-I/II coverage
    assert exact and norm > 0 and masked < 0.2
    # the original pixels are recoverable unchanged, in physical units
    flux = np.array(q(wh, "select list_slice(flux, pix_start + 1, pix_end) from spectra")[0][0])
    original = fits.getdata(real_spec, "COADD")["flux"]
    np.testing.assert_array_equal(flux, original.astype(np.float32))


def test_catalog_and_spectra_merge_and_reingest_is_idempotent(tmp_path):
    spectra = tmp_path / "spectra"
    spectra.mkdir()
    for fiber in (1, 2, 3):
        write_spec(spectra / spec_name(1000, 52000, fiber), fiber=fiber, seed=fiber)
    cat = tmp_path / "cat.csv"
    cat.write_text(
        "plate,mjd,fiberID,subClass,psfMag_u,psfMag_g,psfMag_r,psfMag_i,psfMag_z,z\n"
        "1000,52000,1,K3V (32147),19.1,18.0,17.5,17.3,17.2,0.0001\n"
        "1000,52000,7,A0,17.0,16.5,16.6,16.7,16.8,-0.0002\n"
    )
    wh = Warehouse(tmp_path / "wh")
    first = ingest(wh, catalogs=[cat], spectra=[spectra], progress=False)
    assert (first.stars_added, first.spectra_added, first.rejects) == (4, 3, [])
    rows = q(wh, "select fiberid, subclass, label, has_spectrum, mag_r from stars order by 1")
    assert rows[0] == (1, "K3V (32147)", "K3", True, 17.5)  # catalog wins, spectrum kept
    assert rows[-1] == (7, "A0", "A0", False, 16.6)
    before = q(wh, "select * from stars order by star_id")
    again = ingest(wh, catalogs=[cat], spectra=[spectra], progress=False)
    assert (again.stars_added, again.stars_updated, again.spectra_added) == (0, 0, 0)
    assert again.spectra_skipped == 3
    assert q(wh, "select * from stars order by star_id") == before
    assert q(wh, "select count(*) from spectra") == [(3,)]
    assert q(wh, "select count(*) from ingest_runs") == [(2,)]


def test_bad_inputs_land_in_rejects_and_the_run_goes_on(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good = write_spec(d / spec_name(1000, 52000, 10), fiber=10)
    truncated = d / spec_name(1000, 52000, 11)
    truncated.write_bytes(good.read_bytes()[:5000])
    (d / spec_name(1000, 52000, 12)).write_bytes(b"")
    (d / spec_name(1000, 52000, 13)).write_text("this is not a FITS file\n" * 50)
    write_spec(d / spec_name(1000, 52000, 14), fiber=14, flux=np.full(3800, np.nan))
    write_spec(d / spec_name(1000, 52000, 15), fiber=15, ivar=np.zeros(3800))
    corrupt = bytearray(good.read_bytes())
    corrupt[2880 : 2880 + 400] = b"\x00garbage" * 50
    (d / spec_name(1000, 52000, 16)).write_bytes(bytes(corrupt))
    cat = tmp_path / "cat.csv"
    cat.write_text(
        "plate,mjd,fiberid,subclass\n"
        "1000,52000,20,F5\n"
        ",52000,21,F5\n"
        "abc,52000,22,F5\n"
        "1000,52000,20,G2\n"
    )
    wh = Warehouse(tmp_path / "wh")
    report = ingest(wh, catalogs=[cat], spectra=[d], progress=False)
    assert report.status == "ok with rejects"
    assert report.spectra_added == 1 and report.stars_added == 2
    rejected = q(wh, "select source, item, reason from rejects order by source, item")
    sources = {Path(s).name for s, _, _ in rejected}
    for fiber in (11, 12, 13, 14, 15, 16):
        assert spec_name(1000, 52000, fiber) in sources, rejected
    reasons = " | ".join(r for _, _, r in rejected).lower()
    assert "duplicate" in reasons
    assert sum(1 for s, _, _ in rejected if s.endswith("cat.csv")) == 3
    assert all(r for _, _, r in rejected)  # every reject says why


def test_nothing_usable_exits_nonzero_and_strict_publishes_nothing(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / spec_name(1, 51000, 1)).write_text("junk")
    wh = tmp_path / "wh"
    proc = subprocess.run(
        [*CLI, "--warehouse", str(wh), "ingest", str(d)], capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "nothing usable" in proc.stdout
    good = tmp_path / "good"
    good.mkdir()
    write_spec(good / spec_name(1000, 52000, 1))
    proc = subprocess.run(
        [*CLI, "--warehouse", str(wh), "ingest", "--strict", str(good), str(d)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert q(Warehouse(wh), "select count(*) from stars") == [(0,)]
    assert q(Warehouse(wh), "select count(*) from rejects") == [(2,)]  # both runs recorded


def test_gzipped_and_missing_inputs(tmp_path, real_spec):
    gz = tmp_path / (real_spec.name + ".gz")
    gz.write_bytes(gzip.compress(real_spec.read_bytes()))
    wh = Warehouse(tmp_path / "wh")
    assert ingest(wh, spectra=[gz], progress=False).spectra_added == 1
    proc = subprocess.run(
        [*CLI, "--warehouse", str(wh.root), "ingest", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no such" in proc.stderr and "Traceback" not in proc.stderr


def test_kill_9_during_ingest_keeps_the_previous_warehouse(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write_spec(d / spec_name(1000, 52000, 1))
    wh = Warehouse(tmp_path / "wh")
    ingest(wh, spectra=[d], progress=False)
    before = (wh.current_id(), q(wh, "select * from stars"))
    big = tmp_path / "big"
    big.mkdir()
    for fiber in range(1, 301):
        write_spec(big / spec_name(2000, 53000, fiber), plate=2000, mjd=53000, fiber=fiber)
    # The real ingest, with small part files so that "mid-run" is observable: we kill it
    # right after it has written its first spectrum part, long before it could publish.
    script = (
        "import sys; import startrack.etl.ingest as ing; ing.PART_ROWS = 20; "
        "from startrack.warehouse.store import Warehouse; "
        "ing.ingest(Warehouse(sys.argv[1]), spectra=[sys.argv[2]], workers=1, progress=False)"
    )
    parts_before = set((wh.root / "spectra").iterdir())
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(wh.root), str(big)], start_new_session=True
    )
    deadline = time.time() + 60
    while time.time() < deadline and not set((wh.root / "spectra").iterdir()) - parts_before:
        assert proc.poll() is None, "the ingest ended before it could be killed mid-run"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    orphans = set((wh.root / "spectra").iterdir()) - parts_before
    assert orphans  # it was killed mid-run
    assert (wh.current_id(), q(wh, "select * from stars")) == before
    # and the next writer finishes the job and cleans up after the dead one at once (the
    # orphans are seconds old: no waiting for the 2-minute grace period of published parts)
    report = ingest(wh, spectra=[big], progress=False)
    assert report.spectra_added == 300
    assert q(wh, "select count(*) from stars") == [(301,)]
    assert not any(p.exists() for p in orphans)
    listed = {wh.root / rel for rel in wh.current().manifest["spectra_files"]}
    assert set((wh.root / "spectra").iterdir()) == listed
    shutil.rmtree(big)
