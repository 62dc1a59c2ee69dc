"""Read-only SQL over a published snapshot, for the CLI and the dashboard's SQL console.

The console is public (the dashboard has no login), so "read-only" is enforced by three
independent fences, each sufficient against a different mistake in the others:

1. **The statement is proven read-only before DuckDB runs it.** DuckDB's own parser must see
   exactly one statement whose syntax tree is a pure SELECT (``json_serialize_sql`` refuses to
   serialize anything else); ``EXPLAIN`` is unwrapped and what it wraps must be such a SELECT
   too (``EXPLAIN ANALYZE`` executes its statement). Every function in the tree is checked:
   table functions against an allow-list of read-only ones, scalar functions against the few
   with side effects.
2. **The connection cannot create or overwrite a file.** It is an in-memory DuckDB instance
   with the snapshot attached READ_ONLY, external access disabled, and file access allowed
   only for the exact spectrum part files the snapshot's ``spectra`` view reads — not the
   warehouse directory, so ``CURRENT``, snapshots and new files are out of reach; no spilling
   to a temp directory; configuration locked.
3. **Published files are read-only on disk** (``Writer.publish`` makes them 0444), which holds
   for the non-root user a deployment runs as (the Dockerfile's ``startrack`` user).

Each query also gets a memory limit (its own DuckDB instance) and a hard wall-clock limit.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from startrack.errors import UsageError
from startrack.warehouse.store import Snapshot

#: Table functions a console query may call: generators, metadata and Parquet reads (file
#: access itself is fenced by the connection's sandbox).
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "repeat",
        "repeat_row",
        "summary",
        "query_table",
        "json_each",
        "json_tree",
        "read_parquet",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "pragma_table_info",
        "pragma_show",
        "pragma_version",
        "pragma_database_size",
        "pragma_storage_info",
        "pragma_collations",
        "pragma_platform",
        "duckdb_columns",
        "duckdb_constraints",
        "duckdb_databases",
        "duckdb_dependencies",
        "duckdb_functions",
        "duckdb_indexes",
        "duckdb_keywords",
        "duckdb_schemas",
        "duckdb_sequences",
        "duckdb_settings",
        "duckdb_tables",
        "duckdb_types",
        "duckdb_views",
        "icu_calendar_names",
        "pg_timezone_names",
        "test_all_types",
    }
)
#: Scalar functions with side effects (logs, sequences, sleeping a worker, nested SQL).
REFUSED_FUNCTIONS = frozenset(
    {"write_log", "nextval", "setval", "setseed", "pg_sleep", "sleep_ms", "json_deserialize_sql"}
)
DEFAULT_MEMORY_LIMIT = "1GB"
_GRACE_S = 1.0  # after the time limit: how long an interrupted query may take to stop

_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
_EXPLAIN = re.compile(
    r"\Aexplain\s+(?:analy[sz]e\s+)?(?:\((?:[^()'\"]|'[^']*'|\"[^\"]*\")*\)\s*)?", re.I
)


class QueryRefused(UsageError, ValueError):
    """The statement is not a read-only query over the warehouse."""


class QueryFailed(UsageError, RuntimeError):
    """DuckDB rejected or interrupted the query; the message says why."""


@dataclass(frozen=True)
class QueryResult:
    frame: pd.DataFrame
    truncated: bool  # more rows existed than the limit
    snapshot: str


def _parser() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


def _one_statement(con: duckdb.DuckDBPyConnection, text: str) -> duckdb.Statement:
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryFailed(f"SQL syntax error: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryRefused(f"one statement at a time, please (got {len(statements)})")
    return statements[0]


def _functions(tree: Any, table: bool = False) -> Iterator[tuple[str, bool]]:
    """(function name, is a table function) for every call in a serialized syntax tree."""
    if isinstance(tree, dict):
        is_table = tree.get("type") == "TABLE_FUNCTION"
        if "function_name" in tree:
            yield str(tree["function_name"]).lower(), table
        for value in tree.values():
            yield from _functions(value, is_table)
    elif isinstance(tree, list):
        for item in tree:
            yield from _functions(item, table)


def _check_select(con: duckdb.DuckDBPyConnection, body: str) -> None:
    """Raise unless ``body`` is one statement whose syntax tree is a pure SELECT."""
    refused = QueryRefused(
        "refused: only read-only queries are allowed here (SELECT, WITH ... SELECT, FROM, "
        "DESCRIBE, SHOW, SUMMARIZE, and EXPLAIN [ANALYZE] of those)"
    )
    if _one_statement(con, body).type != duckdb.StatementType.SELECT:
        raise refused
    serialized = json.loads(con.execute("SELECT json_serialize_sql($1)", [body]).fetchone()[0])
    if serialized.get("error"):
        raise refused
    for name, is_table in _functions(serialized["statements"]):
        if is_table and name not in ALLOWED_TABLE_FUNCTIONS:
            raise QueryRefused(f"refused: the table function {name}() is not allowed here")
        if name in REFUSED_FUNCTIONS:
            raise QueryRefused(f"refused: {name}() has side effects and is not allowed here")


def check_statement(sql: str) -> None:
    """Raise QueryRefused unless ``sql`` is provably one read-only query."""
    text = sql.strip().rstrip(";").strip()
    if not _LEADING_COMMENTS.sub("", text):
        raise QueryRefused("empty query: write a SELECT statement")
    con = _parser()
    try:
        kind = _one_statement(con, text).type
        if kind == duckdb.StatementType.EXPLAIN:
            body = _LEADING_COMMENTS.sub("", text)
            match = _EXPLAIN.match(body)
            if not match or not body[match.end() :].strip():
                raise QueryRefused("refused: EXPLAIN must wrap a SELECT statement")
            _check_select(con, body[match.end() :])
        elif kind == duckdb.StatementType.SELECT:
            _check_select(con, text)
        else:
            name = str(kind).rsplit(".", 1)[-1]
            raise QueryRefused(
                f"refused: {name} statements are not allowed; the warehouse is read-only here "
                "(only SELECT, WITH ... SELECT, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN)"
            )
    finally:
        con.close()


def _execute(
    con: duckdb.DuckDBPyConnection, text: str, limit: int | None, out: dict[str, Any]
) -> None:
    try:
        cursor = con.execute(text)
        out["rows"] = cursor.fetchmany(limit + 1) if limit is not None else cursor.fetchall()
        out["names"] = [d[0] for d in cursor.description or []]
    except BaseException as exc:  # handed to the caller's thread
        out["error"] = exc


def run_query(
    snapshot: Snapshot,
    sql: str,
    limit: int | None = 10_000,
    timeout_s: float | None = 30.0,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> QueryResult:
    """Run one read-only query: at most ``limit`` rows, ``timeout_s`` seconds, ``memory_limit``.

    The query runs in a worker thread so the time limit holds even when DuckDB is slow to
    notice an interrupt (a single huge aggregate): the caller gets its answer at most
    ``_GRACE_S`` after the limit.
    """
    check_statement(sql)
    text = sql.strip().rstrip(";")
    try:
        con = snapshot.connect(sandbox=True, memory_limit=memory_limit)
    except duckdb.Error as exc:
        raise QueryFailed(f"cannot open the warehouse: {str(exc).splitlines()[0]}") from None
    out: dict[str, Any] = {}
    worker = threading.Thread(target=_execute, args=(con, text, limit, out), daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        con.interrupt()
        worker.join(_GRACE_S)
        if worker.is_alive():  # DuckDB will stop it soon; the caller does not wait for that
            raise QueryFailed(f"query stopped: it ran longer than {timeout_s:g} s")
    con.close()
    exc = out.get("error")
    if isinstance(exc, duckdb.InterruptException):
        raise QueryFailed(f"query stopped: it ran longer than {timeout_s:g} s")
    if isinstance(exc, duckdb.OutOfMemoryException):
        raise QueryFailed(
            f"query stopped: it needs more than the {memory_limit} memory limit "
            "(aggregate or filter more, or select fewer columns)"
        )
    if isinstance(exc, duckdb.PermissionException):
        raise QueryRefused(f"refused: {str(exc).splitlines()[0]}")
    if isinstance(exc, duckdb.Error):
        raise QueryFailed(str(exc).splitlines()[0])
    if exc is not None:
        raise exc
    rows, names = out["rows"], out["names"]
    truncated = limit is not None and len(rows) > limit
    frame = pd.DataFrame.from_records(rows[:limit] if truncated else rows, columns=names)
    return QueryResult(frame, truncated, snapshot.id)
