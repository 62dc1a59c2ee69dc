"""Read-only SQL over a published snapshot, for the CLI and the dashboard's SQL console.

Three independent fences: only SELECT/EXPLAIN statements are accepted (DuckDB's own parser
classifies them, no regexes); the database is opened read-only; and the connection is
sandboxed so table functions cannot read files outside the warehouse, install or load
extensions. A timer interrupts queries that run past the time limit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import duckdb
import pandas as pd

from startrack.warehouse.store import Snapshot

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class QueryRefused(ValueError):
    """The statement is not a read-only query over the warehouse."""


class QueryFailed(RuntimeError):
    """DuckDB rejected or interrupted the query; the message says why."""


@dataclass(frozen=True)
class QueryResult:
    frame: pd.DataFrame
    truncated: bool  # more rows existed than the limit
    snapshot: str


def check_statement(sql: str) -> None:
    """Raise QueryRefused unless ``sql`` is exactly one SELECT or EXPLAIN statement."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise QueryRefused("empty query: write a SELECT statement")
    try:
        statements = duckdb.connect().extract_statements(text)
    except duckdb.Error as exc:
        raise QueryFailed(f"SQL syntax error: {exc}") from None
    if len(statements) != 1:
        raise QueryRefused(f"one statement at a time, please (got {len(statements)})")
    kind = statements[0].type
    if kind not in ALLOWED:
        name = str(kind).rsplit(".", 1)[-1]
        raise QueryRefused(
            f"refused: {name} statements are not allowed; the warehouse is read-only here "
            "(only SELECT, WITH ... SELECT, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN)"
        )


def run_query(
    snapshot: Snapshot, sql: str, limit: int | None = 10_000, timeout_s: float | None = 30.0
) -> QueryResult:
    """Run one read-only query; at most ``limit`` rows; interrupted after ``timeout_s``."""
    check_statement(sql)
    text = sql.strip().rstrip(";")
    con = snapshot.connect(sandbox=True)
    timer = threading.Timer(timeout_s, con.interrupt) if timeout_s else None
    try:
        if timer:
            timer.start()
        try:
            cursor = con.execute(text)
            rows = cursor.fetchmany(limit + 1) if limit is not None else cursor.fetchall()
            names = [d[0] for d in cursor.description or []]
        except duckdb.InterruptException:
            raise QueryFailed(f"query stopped: it ran longer than {timeout_s:g} s") from None
        except duckdb.PermissionException as exc:
            raise QueryRefused(f"refused: {str(exc).splitlines()[0]}") from None
        except duckdb.Error as exc:
            raise QueryFailed(str(exc).splitlines()[0]) from None
    finally:
        if timer:
            timer.cancel()
        con.close()
    truncated = limit is not None and len(rows) > limit
    frame = pd.DataFrame.from_records(rows[:limit] if truncated else rows, columns=names)
    return QueryResult(frame, truncated, snapshot.id)
