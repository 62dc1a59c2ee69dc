"""Ingest, scoring and simulation on a real Dask LocalCluster (2 worker processes).

Every test compares the cluster's warehouse with the one the local process pool builds from
the same inputs: the same stars, byte-identical spectrum arrays, the same rejects, identical
predicted labels and probabilities within 1e-6.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import REAL_SPEC
from distributed import Client, LocalCluster

from startrack.cli import main
from startrack.etl import ingest_cluster
from startrack.etl.ingest import ingest
from startrack.executors import (
    SchedulerUnavailable,
    _check_shared,
    local_workers,
    open_executor,
    resolve_scheduler,
    scheduler_address,
)
from startrack.ml.publish import train_and_publish
from startrack.ml.score import score_warehouse
from startrack.ml.score_cluster import model_loads
from startrack.ml.train_config import TrainConfig
from startrack.simulator.simulate import simulate_survey
from startrack.warehouse.store import Warehouse


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=":0",  # any free port: never clash with 8787
        memory_limit="1.5GiB",
    ) as lc:
        yield lc.scheduler_address


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A simulated survey with bad files, a same-name duplicate and a renamed duplicate."""
    out = tmp_path_factory.mktemp("survey")
    s = simulate_survey(out, 400, 120, seed=3, templates=None, labels_from=None, workers=1,
                        bad_files=6)  # fmt: skip
    extra = out / "extra"
    (extra / "again").mkdir(parents=True)
    first, second = sorted(s.spectra_dir.iterdir())[:2]
    shutil.copy(first, extra / "again" / first.name)  # duplicate by name: rejected up front
    shutil.copy(second, extra / "copy-of-a-spectrum.fits")  # duplicate found from the header
    inputs = [s.spectra_dir, extra] + ([REAL_SPEC] if REAL_SPEC.exists() else [])
    return s.catalog_path, inputs


def table(wh: Warehouse, sql: str):
    con = duckdb.connect(str(wh.root / "startrack.duckdb"), read_only=True)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def assert_same_warehouse(a: Warehouse, b: Warehouse) -> None:
    stars = "select * exclude (ingest_run) from stars order by star_id"
    assert table(a, stars).equals(table(b, stars))
    spectra = table(a, "select * exclude (ingest_run) from spectra order by star_id")
    other = table(b, "select * exclude (ingest_run) from spectra order by star_id")
    assert spectra.num_rows == other.num_rows > 0
    for name in spectra.column_names:
        x, y = spectra[name].combine_chunks(), other[name].combine_chunks()
        if name in ("flux", "ivar", "mask"):  # byte for byte (NaN != NaN for equals())
            assert np.asarray(x.flatten()).tobytes() == np.asarray(y.flatten()).tobytes(), name
        else:
            assert x.equals(y), name
    rejects = "select source, item, reason from rejects order by all"
    assert table(a, rejects).equals(table(b, rejects))


def assert_index_points_at_its_spectrum(wh: Warehouse) -> None:
    idx = table(wh, "select star_id, file, row_group, row from spectra_index").to_pylist()
    assert idx
    for r in idx[:: max(1, len(idx) // 25)]:
        group = pq.ParquetFile(wh.root / r["file"]).read_row_group(r["row_group"], ["star_id"])
        assert group["star_id"][r["row"]].as_py() == r["star_id"]


def test_ingest_on_the_cluster_gives_the_local_result(tmp_path, cluster, survey):
    catalog, spectra = survey
    local = Warehouse(tmp_path / "local")
    dask = Warehouse(tmp_path / "dask")
    rep_local = ingest(local, [catalog], spectra, workers=2, progress=False)
    rep_dask = ingest(dask, [catalog], spectra, progress=False, scheduler=cluster)
    assert rep_dask.status == rep_local.status == "ok with rejects"
    assert rep_dask.rejects == rep_local.rejects
    reasons = " | ".join(r["reason"] for r in rep_dask.rejects)
    for bad in ("not a FITS file", "truncated file", "all-zero ivar", "duplicate id"):
        assert bad in reasons  # bad files read on a worker are rejected exactly as locally
    assert sum("duplicate id" in r["reason"] for r in rep_dask.rejects) == 2
    assert_same_warehouse(local, dask)
    assert_index_points_at_its_spectrum(dask)
    # every part the workers wrote is listed, none is left over
    listed = {Path(p).name for p in dask.current().manifest["spectra_files"]}
    assert listed == {p.name for p in (dask.root / "spectra").iterdir()}
    # re-ingesting through the cluster is idempotent, and reports what the local path reports
    again = ingest(dask, [catalog], spectra, progress=False, scheduler=cluster)
    again_local = ingest(local, [catalog], spectra, workers=2, progress=False)
    assert again.spectra_added == again.stars_added == 0
    assert again.spectra_skipped == again_local.spectra_skipped >= rep_dask.spectra_added
    assert (again.status, again.rejects) == (again_local.status, again_local.rejects)
    assert_same_warehouse(local, dask)


def test_a_worker_killed_mid_ingest_costs_a_retry_not_the_run(
    tmp_path, cluster, survey, monkeypatch
):
    catalog, spectra = survey
    local = Warehouse(tmp_path / "local")
    ingest(local, [catalog], spectra, workers=2, progress=False)
    monkeypatch.setattr(ingest_cluster, "files_per_task", lambda n, w: 1)  # ~130 small tasks
    with Client(cluster) as client:
        pids_before = client.run(os.getpid)
        dask = Warehouse(tmp_path / "dask")
        outcome: dict = {}

        def run() -> None:
            outcome["report"] = ingest(dask, [catalog], spectra, progress=False, scheduler=cluster)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any((dask.root / "spectra").glob("*.parquet")):
            time.sleep(0.005)
        assert thread.is_alive(), "the ingest finished before a worker could be killed"
        victim = sorted(pids_before.values())[0]
        os.kill(victim, signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive()
        client.wait_for_workers(2, timeout=30)  # the nanny restarted it
        pids_after = client.run(os.getpid)
    assert victim not in pids_after.values()
    assert outcome["report"].status == "ok with rejects"
    assert_same_warehouse(local, dask)
    assert_index_points_at_its_spectrum(dask)


def test_scoring_on_the_cluster_gives_the_local_predictions(tmp_path, cluster, survey):
    catalog, spectra = survey
    local = Warehouse(tmp_path / "local")
    ingest(local, [catalog], spectra, workers=2, progress=False)
    train_and_publish(local, TrainConfig(epochs=1, min_class_count=2), progress=False,
                      baselines=False)  # fmt: skip
    shutil.copytree(local.root, tmp_path / "dask", symlinks=True)
    dask = Warehouse(tmp_path / "dask")
    run_local = score_warehouse(local, progress=False)
    run_dask = score_warehouse(dask, progress=False, scheduler=cluster)
    stars = len(local.current().table("stars"))  # 400, + 1 with the real SDSS spectrum
    assert stars >= 400 and run_dask["stars_scored"] == run_local["stars_scored"] == stars
    sql = """select star_id, branch, label, prob, [t.label for t in topk] topk_labels,
                    [t.prob for t in topk] topk_probs, actual, correct, within_one, split
             from predictions order by star_id, branch"""
    a, b = table(local, sql).to_pandas(), table(dask, sql).to_pandas()
    assert len(a) == len(b) > 2 * 400
    for col in ("star_id", "branch", "label", "actual", "correct", "within_one", "split"):
        assert a[col].equals(b[col]), col
    assert (a["topk_labels"].map(list) == b["topk_labels"].map(list)).all()
    np.testing.assert_allclose(b["prob"], a["prob"], atol=1e-6)
    np.testing.assert_allclose(np.stack(b["topk_probs"]), np.stack(a["topk_probs"]), atol=1e-6)
    metrics = "select * exclude (value) from metrics order by all"
    assert table(local, metrics).equals(table(dask, metrics))
    # the model was loaded at most once per worker, even over a second (incremental) run
    with Client(cluster) as client:
        assert sum(client.run(model_loads).values()) >= 1
        score_warehouse(dask, full=True, progress=False, scheduler=cluster)
        assert max(client.run(model_loads).values()) == 1


def test_simulate_on_a_local_cluster_writes_identical_files(tmp_path):
    args = ["simulate", "--stars", "300", "--spectra", "60", "--seed", "5", "--with-bad-files",
            "3", "-q"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a"), "--workers", "1"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--scheduler", "local:2"]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 2 + 60 + 3  # the catalog, the list of real stars, spectra, bad files
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["ingest", "score", "simulate"])
def test_a_scheduler_that_is_not_there_fails_at_once_in_one_line(
    tmp_path, survey, command, monkeypatch, capsys
):
    """Checked as the command starts: before the writer lock, before reading any data."""
    address = f"tcp://127.0.0.1:{unused_port()}"
    args = {
        "ingest": ["ingest", str(survey[0]), "--no-progress"],
        "score": ["score", "--no-progress"],
        "simulate": ["simulate", "--stars", "50", "--spectra", "10", "--out", str(tmp_path)],
    }[command]
    monkeypatch.setenv("STARTRACK_SCHEDULER", address)  # the environment variable works too
    capsys.readouterr()
    t0 = time.monotonic()
    assert main(["--warehouse", str(tmp_path / "wh"), *args]) == 2
    assert time.monotonic() - t0 < 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"cannot reach the Dask scheduler at {address}" in err
    assert not (tmp_path / "wh").exists()  # nothing was started


@pytest.mark.parametrize("address", ["http://nowhere", "tcp://host-without-port", "local:0"])
def test_a_malformed_scheduler_address_is_a_one_line_error(tmp_path, capsys, address):
    code = main(["simulate", "--out", str(tmp_path), "--scheduler", address])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--scheduler" in err, err


def test_workers_must_see_the_shared_directory(tmp_path, cluster):
    with open_executor(cluster, 1) as runner:
        assert runner.is_dask and runner.workers == 2
        runner.require_shared(tmp_path / "shared")  # same machine: every worker sees it
        missing = runner.client.run(_check_shared, str(tmp_path / "nowhere" / "probe"), "x")
        assert all("FileNotFoundError" in v for v in missing.values())
        (tmp_path / "probe").write_text("other")
        differs = runner.client.run(_check_shared, str(tmp_path / "probe"), "x")
        assert all("other content" in v for v in differs.values())


def _fails(path: str) -> None:
    Path(path).read_text()  # a file no worker has


def test_a_task_that_keeps_failing_is_one_line_after_its_retries(tmp_path, cluster):
    with open_executor(cluster, 1) as runner, pytest.raises(SchedulerUnavailable) as info:
        list(runner.map(_fails, [str(tmp_path / "missing.fits")]))
    message = str(info.value)
    assert "\n" not in message
    assert "after 2 retries: FileNotFoundError" in message and "nothing was published" in message


def test_scheduler_addresses_are_read_as_a_dask_user_writes_them(monkeypatch):
    assert local_workers("local:3") == 3 and local_workers("LOCAL") == (os.cpu_count() or 1)
    assert local_workers("tcp://10.0.0.5:8786") is None
    assert scheduler_address("10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert scheduler_address("tls://head-node:8786/") == "tls://head-node:8786"
    monkeypatch.delenv("STARTRACK_SCHEDULER", raising=False)
    assert resolve_scheduler(None) is None  # no option, no variable: the local pool
    monkeypatch.setenv("STARTRACK_SCHEDULER", "local:2")
    assert resolve_scheduler(None) == "local:2"
    assert resolve_scheduler("local:1") == "local:1"  # the option wins
