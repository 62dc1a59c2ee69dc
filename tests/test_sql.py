"""Read-only SQL: what a user may ask, and what is refused with a clear message."""

from __future__ import annotations

import pandas as pd
import pytest

from startrack.warehouse.sql import QueryFailed, QueryRefused, run_query
from startrack.warehouse.store import Warehouse


@pytest.fixture
def snap(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    with wh.writer(command="fixture") as w:
        w.put_table("numbers", pd.DataFrame({"n": range(100)}))
    return wh.current()


def test_select_and_limit(snap):
    result = run_query(snap, "select n from numbers order by n", limit=10)
    assert list(result.frame["n"]) == list(range(10))
    assert result.truncated
    full = run_query(snap, "SELECT count(*) AS c FROM numbers;")
    assert full.frame["c"][0] == 100 and not full.truncated


@pytest.mark.parametrize(
    "sql",
    [
        "delete from numbers",
        "drop table numbers",
        "create table t as select 1",
        "insert into numbers values (1)",
        "copy numbers to '/tmp/x.csv'",
        "attach '/tmp/other.duckdb' as o",
        "install httpfs",
        "load httpfs",
        "set threads = 1",
        "select 1; drop table numbers",
        "pragma version",
    ],
)
def test_writes_and_escapes_are_refused(snap, sql):
    with pytest.raises(QueryRefused, match=r"refused|one statement"):
        run_query(snap, sql)


def test_reading_files_outside_the_warehouse_is_refused(snap):
    with pytest.raises(QueryRefused, match="refused"):
        run_query(snap, "select * from read_csv('/etc/passwd')")


def test_syntax_error_is_a_clear_message(snap):
    with pytest.raises(QueryFailed, match="syntax"):
        run_query(snap, "selec nothing")


def test_time_limit_interrupts(snap):
    with pytest.raises(QueryFailed, match="longer than"):
        run_query(snap, "select count(*) from range(100000000000) a, range(1000) b", timeout_s=0.5)


def test_sandboxed_queries_do_not_lock_other_connections(snap):
    """DuckDB shares one instance per file in a process: the sandbox must not leak into it."""
    plain = snap.connect()
    for _ in range(3):
        assert run_query(snap, "select count(*) c from numbers").frame["c"][0] == 100
    plain.execute("SET threads = 1")  # still configurable
    assert plain.execute("select count(*) from numbers").fetchone()[0] == 100
    plain.close()
