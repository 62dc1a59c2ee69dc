"""The command line as users run it: subcommand help, SQL output formats, full spec files,
and the production WSGI entry point."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from fits_factory import spec_name, write_spec

CLI = [sys.executable, "-m", "startrack.cli"]
COMMANDS = ("simulate", "ingest", "sql", "status", "train", "score", "serve", "demo")


def run(*args, wh=None, check=True) -> subprocess.CompletedProcess:
    cmd = [*CLI, *(["--warehouse", str(wh)] if wh else []), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    out = run(command, "--help").stdout
    assert out.startswith(f"usage: startrack {command}") and "--warehouse" in out


def test_help_does_not_load_torch_or_the_simulator():
    """`startrack --help` builds every subcommand's arguments; torch and the survey simulator
    load only when a command runs (importing them took most of --help's 3 s)."""
    code = (
        "import sys; from startrack.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'startrack.simulator.simulate') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_negative_model_size_is_refused_before_any_work():
    out = run("train", "--line-indices", "-1", check=False)
    assert out.returncode == 2 and "--line-indices: must be 0 or more, got -1" in out.stderr


def test_train_balances_spectra_over_types_unless_asked_for_labels():
    from startrack.cli import build_parser
    from startrack.ml.train_cli import train_config

    parser = build_parser()
    assert train_config(parser.parse_args(["train"])).sample_type_bin == 3.0
    by_label = train_config(parser.parse_args(["train", "--balance", "labels"]))
    assert by_label.sample_type_bin == 0.0
    out = run("train", "--balance", "classes", check=False)
    assert out.returncode == 2 and "invalid choice: 'classes'" in out.stderr


def _hot_spectra(survey) -> int:
    """Stars of the demo survey with a spectrum whose label is O, OB, B6 or B9."""
    cat = pd.read_csv(survey / "catalog.csv")
    files = {p.name for p in (survey / "spectra").glob("spec-*.fits")}
    names = cat.apply(lambda r: spec_name(r.plate, r.mjd, r.fiberID), axis=1)
    return int((names.isin(files) & cat.subClass.isin(["O", "OB", "B6", "B9"])).sum())


def test_demo_spreads_its_spectra_over_the_types_and_remakes_the_survey_when_asked_otherwise(
    tmp_path,
):
    survey, args = tmp_path / "survey", ["--stars", "3000", "--spectra", "600", "--workers", "1"]
    run("demo", "--survey", str(survey), *args, "--until", "simulate", wh=tmp_path / "wh")
    assert json.loads((survey / "demo-settings.json").read_text())["targeting"] == "types"
    spread = _hot_spectra(survey)
    out = run("demo", "--survey", str(survey), *args, "--targeting", "random",
              "--until", "simulate", wh=tmp_path / "wh")  # fmt: skip
    assert "already made" not in out.stderr
    mixed = _hot_spectra(survey)
    # SDSS's label mix gives O-B9 about 2 % of the spectra; spread over the MK types, ~20 %
    assert spread >= 60 and mixed <= 30, (spread, mixed)
    out = run("demo", "--survey", str(survey), *args, "--targeting", "random",
              "--until", "simulate", wh=tmp_path / "wh")  # fmt: skip
    assert "already made" in out.stderr


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A warehouse from one spec-lite file and one *full* spec file (extra per-exposure HDUs)."""
    tmp = tmp_path_factory.mktemp("cli")
    lite = write_spec(tmp / spec_name(1000, 52000, 1), fiber=1, subclass="K3")
    full = write_spec(tmp / spec_name(1000, 52000, 2), fiber=2, subclass="M2V")
    with fits.open(full, mode="append") as hdul:  # spec-full files carry each exposure too
        for cam in ("B1-00012345", "R1-00012345"):
            hdul.append(
                fits.BinTableHDU.from_columns(
                    [fits.Column("flux", "E", array=np.ones(2000, np.float32))], name=cam
                )
            )
    wh = tmp / "wh"
    proc = run("ingest", str(lite), str(full), wh=wh)
    assert "added 2" in proc.stdout, proc.stdout + proc.stderr
    return wh


def test_sql_formats(warehouse):
    table = run("sql", "select fiberid, label from stars order by 1", wh=warehouse).stdout
    assert "K3" in table and "M2" in table
    csv = run("sql", "select fiberid, label from stars order by 1", "-f", "csv", wh=warehouse)
    assert csv.stdout.splitlines() == ["fiberid,label", "1,K3", "2,M2"]
    rows = json.loads(run("sql", "select fiberid, label from stars order by 1", "-f", "json",
                          wh=warehouse).stdout)  # fmt: skip
    assert rows == [{"fiberid": 1, "label": "K3"}, {"fiberid": 2, "label": "M2"}]
    refused = run("sql", "delete from stars", wh=warehouse, check=False)
    assert refused.returncode == 2 and "refused" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_sql_cannot_overwrite_current_issue_10(warehouse):
    """The exact report: EXPLAIN ANALYZE executed a COPY over CURRENT and broke every command."""
    current = warehouse / "CURRENT"
    before = current.read_text()
    sql = f"explain analyze copy (select 'pwned') to '{current}' (header false)"
    refused = run("sql", sql, wh=warehouse, check=False)
    assert refused.returncode == 2 and "refused" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert current.read_text() == before
    assert run("sql", "select count(*) n from stars", "-f", "csv", wh=warehouse).stdout == "n\n2\n"
    bad_limit = run("sql", "select 1", "--memory-limit", "lots", wh=warehouse, check=False)
    assert bad_limit.returncode == 2 and "Traceback" not in bad_limit.stderr


def test_status_and_empty_warehouse(warehouse, tmp_path):
    status = json.loads(run("status", "--json", wh=warehouse).stdout)
    assert status["tables"]["stars"] == 2 and status["tables"]["spectra"] == 2
    empty = run("sql", "select 1", wh=tmp_path / "none", check=False)
    assert empty.returncode == 3 and "empty" in empty.stderr and "Traceback" not in empty.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_gunicorn_serves_the_dashboard(warehouse):
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    if not os.path.exists(gunicorn):
        pytest.skip("gunicorn not installed (pip install 'startrack[serve]')")
    port = _free_port()
    env = {**os.environ, "STARTRACK_WAREHOUSE": str(warehouse)}
    proc = subprocess.Popen(
        [gunicorn, "-w", "1", "-b", f"127.0.0.1:{port}", "startrack.dashboard.wsgi:server"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/star/1000-52000-2") as r:
                    star = json.loads(r.read())
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        assert star["label"] == "M2" and star["has_spectrum"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
