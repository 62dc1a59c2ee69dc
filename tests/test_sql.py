"""Read-only SQL: what a user may ask, and what is refused with a clear message."""

from __future__ import annotations

import time

import duckdb
import pandas as pd
import pytest

from startrack.warehouse.sql import QueryFailed, QueryRefused, run_query
from startrack.warehouse.store import Warehouse


@pytest.fixture
def snap(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    with wh.writer(command="fixture") as w:
        w.put_table("confusion", pd.DataFrame({"n": range(100)}))
    return wh.current()


def test_select_and_limit(snap):
    result = run_query(snap, "select n from confusion order by n", limit=10)
    assert list(result.frame["n"]) == list(range(10))
    assert result.truncated
    full = run_query(snap, "SELECT count(*) AS c FROM confusion;")
    assert full.frame["c"][0] == 100 and not full.truncated


@pytest.mark.parametrize(
    "sql",
    [
        "delete from confusion",
        "drop table confusion",
        "create table t as select 1",
        "insert into confusion values (1)",
        "copy confusion to '/tmp/x.csv'",
        "attach '/tmp/other.duckdb' as o",
        "install httpfs",
        "load httpfs",
        "set threads = 1",
        "select 1; drop table confusion",
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
        assert run_query(snap, "select count(*) c from confusion").frame["c"][0] == 100
    plain.execute("SET threads = 1")  # still configurable
    assert plain.execute("select count(*) from confusion").fetchone()[0] == 100
    plain.close()


# --- issue 10.1: the console must not write, whatever the spelling -------------------------


@pytest.fixture
def spectra_snap(tmp_path):
    """A snapshot with a spectrum part, so the sandbox has files it may read."""
    wh = Warehouse(tmp_path / "wh")
    with wh.writer(command="fixture") as w:
        w.put_table("confusion", pd.DataFrame({"n": range(100)}))
        part = w.new_spectra_part(0)
        pd.DataFrame({"star_id": ["0001-50000-0001"], "snr_median": [5.0]}).to_parquet(part)
        w.add_spectra_part(part)
    return wh.current()


def _attacks(root) -> list[str]:
    current = root / "CURRENT"
    stars = next((root / "snapshots").iterdir()) / "confusion.parquet"
    part = next((root / "spectra").iterdir())
    return [
        f"explain analyze copy (select 'pwned') to '{current}' (header false)",
        f"EXPLAIN ANALYZE COPY (select 1 n) TO '{stars}' (FORMAT parquet)",
        f"/* x */ explain (format json) analyze copy (select 1) to '{part}'",
        f"explain analyse copy confusion to '{root}/new.csv'",
        f"explain copy confusion to '{root}/new.csv'",
        f"-- comment\nexplain analyze export database '{root}/dump'",
        f"explain analyze attach '{root}/new.duckdb' as x",
        "explain analyze create table t as select 1",
        "explain analyze install httpfs",
        f"select * from query('copy (select 1) to ''{root}/q.csv''')",
        "select * from enable_profiling()",
        "select * from checkpoint()",
        "select write_log('x')",
        "pivot confusion on n",
    ]


def test_no_spelling_writes_through_the_console(spectra_snap):
    root = spectra_snap.root
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for sql in _attacks(root):
        with pytest.raises((QueryRefused, QueryFailed)):
            run_query(spectra_snap, sql)
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # nothing created, nothing overwritten
    assert run_query(spectra_snap, "select count(*) c from confusion").frame["c"][0] == 100


@pytest.mark.parametrize(
    "sql",
    [
        "explain select count(*) from confusion",
        "EXPLAIN ANALYZE select count(*) from confusion",
        "explain (format json) select 1",
        "/* note */ select max(n) from confusion",
        "summarize confusion",
        "describe confusion",
        "from confusion limit 3",
        "select count(*) from spectra",
        "select * from range(3)",
        "select * from duckdb_tables()",
    ],
)
def test_read_only_forms_still_work(spectra_snap, sql):
    assert len(run_query(spectra_snap, sql).frame.columns) >= 1


def test_the_sandboxed_connection_itself_cannot_write(spectra_snap):
    """The second fence holds even for a statement the check would have refused."""
    root = spectra_snap.root
    con = spectra_snap.connect(sandbox=True)
    try:
        for target in (root / "CURRENT", root / "x.csv", spectra_snap.dir / "confusion.parquet"):
            with pytest.raises(duckdb.Error):
                con.execute(f"copy (select 1) to '{target}'")
        with pytest.raises(duckdb.Error):
            con.execute("set allowed_directories = ['/']")
        assert con.execute("select count(*) from spectra").fetchone()[0] == 1
    finally:
        con.close()
    assert (root / "CURRENT").read_text().strip() == spectra_snap.id


def test_published_files_are_read_only_on_disk(spectra_snap):
    root = spectra_snap.root
    files = [root / "CURRENT", *spectra_snap.dir.iterdir(), *(root / "spectra").iterdir()]
    assert files and all(p.stat().st_mode & 0o222 == 0 for p in files)


def test_memory_is_bounded_per_query(snap):
    with pytest.raises(QueryFailed, match="memory limit"):
        run_query(
            snap,
            "select string_agg(repeat('x', 1000), ',') from range(5000000)",
            memory_limit="200MB",
        )


def test_time_limit_holds_on_the_wall_clock(snap):
    started = time.perf_counter()
    with pytest.raises(QueryFailed, match="longer than"):
        run_query(
            snap,
            "select length(string_agg(repeat('x', 1000), ',')) from range(3000000)",
            timeout_s=0.5,
            memory_limit="8GB",
        )
    assert time.perf_counter() - started < 2.5
