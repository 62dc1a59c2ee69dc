"""The snapshot store: atomic publish, one writer, readers never blocked, kill -9 safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from startrack.warehouse import contract
from startrack.warehouse.contract import STORED_TABLES, ContractError
from startrack.warehouse.store import Warehouse, WarehouseBusy, WarehouseEmpty


def publish(wh: Warehouse, n: int) -> None:
    with wh.writer(command=f"test {n}") as w:
        w.put_table("confusion", pd.DataFrame({"n": range(n)}))


def count(wh: Warehouse) -> int:
    con = duckdb.connect(str(wh.root / "startrack.duckdb"), read_only=True)
    try:
        return con.execute("select count(*) from confusion").fetchone()[0]
    finally:
        con.close()


def test_empty_warehouse_says_what_to_do(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    assert wh.current() is None
    with pytest.raises(WarehouseEmpty, match="startrack ingest"):
        wh.require_current()


def test_publish_swaps_snapshot_and_keeps_tables(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    publish(wh, 3)
    first = wh.current_id()
    with wh.writer(command="other") as w:
        w.put_table("rejects", pd.DataFrame({"reason": ["a"]}))
    assert wh.current_id() != first
    snap = wh.current()
    assert set(snap.tables) == set(STORED_TABLES)  # every table, empty where nothing was put
    assert snap.table("rejects")["reason"].to_pylist() == ["a"]
    assert snap.table("models").schema == contract.schema("models")
    assert count(wh) == 3  # carried over from the parent snapshot
    assert snap.manifest["parent"] == first


def test_failed_writer_publishes_nothing(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    publish(wh, 2)
    before = wh.current_id()
    with pytest.raises(RuntimeError), wh.writer(command="boom") as w:
        w.put_table("confusion", pd.DataFrame({"n": range(99)}))
        raise RuntimeError("boom")
    assert wh.current_id() == before
    assert count(wh) == 2
    assert not any((wh.root / ".staging").iterdir())


def test_second_writer_gets_a_clear_message(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    with (
        wh.writer(command="first"),
        pytest.raises(WarehouseBusy, match="another StarTrack writer") as info,
        wh.writer(command="second", wait=0.3),
    ):
        pass
    assert f"pid {os.getpid()}" in str(info.value)


def test_reader_open_while_writer_publishes(tmp_path):
    """A reader holding the old snapshot open keeps working; new readers see the new one."""
    wh = Warehouse(tmp_path / "wh")
    publish(wh, 5)
    old = wh.current().connect()
    publish(wh, 7)
    assert old.execute("select count(*) from confusion").fetchone()[0] == 5
    assert count(wh) == 7
    old.close()


def test_sandboxed_connection_cannot_read_other_files(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    publish(wh, 1)
    con = wh.current().connect(sandbox=True)
    with pytest.raises(duckdb.PermissionException):
        con.execute("select * from read_text('/etc/passwd')").fetchall()
    assert con.execute("select count(*) from spectra").fetchone()[0] == 0


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    from startrack.warehouse.store import Warehouse
    wh = Warehouse(sys.argv[1])
    with wh.writer(command="doomed") as w:
        w.put_table("confusion", pd.DataFrame({"n": range(1000)}))
        print("staged", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("moment", ["while staging", "right after start"])
def test_kill_9_leaves_last_snapshot_published(tmp_path, moment):
    wh = Warehouse(tmp_path / "wh")
    publish(wh, 4)
    before = wh.current_id()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(wh.root)], stdout=subprocess.PIPE, text=True
    )
    if moment == "while staging":
        assert proc.stdout.readline().strip() == "staged"
    else:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert wh.current_id() == before
    assert count(wh) == 4
    # The lock died with the writer: the next writer proceeds and sweeps the leftovers.
    publish(wh, 6)
    assert count(wh) == 6
    assert not any((wh.root / ".staging").iterdir())


def test_old_snapshots_are_collected(tmp_path, monkeypatch):
    from startrack.warehouse import store

    monkeypatch.setattr(store, "MIN_AGE_S", 0.0)
    wh = Warehouse(tmp_path / "wh")
    for n in range(6):
        publish(wh, n + 1)
    assert len(wh.snapshots()) == store.KEEP_SNAPSHOTS
    assert wh.current_id() == wh.snapshots()[-1]
    assert Path(os.readlink(wh.root / "startrack.duckdb")).parts[1] == wh.current_id()


def test_current_is_the_truth_after_a_kill_between_the_two_renames(tmp_path):
    """kill -9 after CURRENT was replaced but before the link swap: readers and the next
    writer go by CURRENT, and the next writer repairs the link."""
    wh = Warehouse(tmp_path / "wh")
    publish(wh, 2)
    old = wh.current_id()
    publish(wh, 3)
    new = wh.current_id()
    link = wh.root / "startrack.duckdb"
    link.unlink()
    link.symlink_to(Path("snapshots") / old / "startrack.duckdb")  # the state the kill left
    con = wh.current().connect()  # StarTrack's readers open the snapshot CURRENT names
    assert con.execute("select count(*) from confusion").fetchone()[0] == 3
    con.close()
    with wh.writer(command="next writer") as w:
        assert w.base.id == new  # the writer builds on CURRENT, not on the link
        assert os.readlink(link) == f"snapshots/{new}/startrack.duckdb"  # repaired at once
        w.put_table("confusion", pd.DataFrame({"n": range(4)}))
    assert os.readlink(link) == f"snapshots/{wh.current_id()}/startrack.duckdb"
    assert count(wh) == 4


def test_orphan_parts_of_a_dead_writer_go_with_the_next_writer(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    wh = Warehouse(tmp_path / "wh")
    with wh.writer(command="with a part") as w:
        kept = w.new_spectra_part(0)
        pq.write_table(pa.table({"x": [1]}), kept)
        w.add_spectra_part(kept)
    orphan = wh.root / "spectra" / "20260101T000000000000-dead-00000.parquet"
    pq.write_table(pa.table({"x": [2]}), orphan)  # fresh: a writer killed a second ago
    publish(wh, 5)
    assert kept.exists() and not orphan.exists()


def test_writers_store_only_what_the_contract_declares(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    publish(wh, 2)
    before = wh.current_id()
    with pytest.raises(ContractError, match="'letters' is not declared"), wh.writer("x") as w:
        w.put_table("letters", pd.DataFrame({"c": ["a"]}))
    extra = r"columns \['colour'\] are not declared"
    with pytest.raises(ContractError, match=extra), wh.writer("x") as w:
        w.put_table("confusion", pd.DataFrame({"n": [1], "colour": ["red"]}))
    with pytest.raises(ContractError, match="'n'"), wh.writer("x") as w:
        w.put_table("confusion", pd.DataFrame({"n": ["many"]}))
    assert wh.current_id() == before  # nothing half-written was published
    with wh.writer("typed") as w:  # a narrower type is cast to the declared one
        w.put_table("confusion", pd.DataFrame({"n": pd.Series([7], dtype="int8")}))
    table = wh.current().table("confusion")
    assert table.schema == contract.schema("confusion") and table["n"].to_pylist() == [7]
