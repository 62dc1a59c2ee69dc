"""Fold one run's catalog rows and spectrum headers into the warehouse's ``stars`` table.

DuckDB does the merge so that it runs out of core: the star table can exceed memory. Rules:
- within one run the first row of an id wins; later rows are rejects ("duplicate id");
- a new value never erases an old one with NULL (coalesce), so nothing already ingested is lost;
- catalog values take precedence over values read from a spectrum's SPECOBJ header;
- a row whose values did not change keeps its old ``source`` and ``ingest_run``, so
  re-running an ingest is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from startrack.warehouse.contract import STARS

KEY = ("plate", "mjd", "fiberid")
META = ("source", "ingest_run", "has_spectrum")
VALUE_COLUMNS = [c for c in STARS.names if c not in KEY and c not in META]


@dataclass(frozen=True)
class MergeResult:
    added: int
    updated: int
    total: int
    duplicates: pa.Table  # source, item, reason of rows dropped as duplicate ids


def merge_stars(
    con: duckdb.DuckDBPyConnection,
    base_stars: Path | None,
    catalog_parts: list[Path],
    spectrum_stars: Path | None,
    spectra_index: pa.Table,
    run_id: str,
    out: Path,
) -> MergeResult:
    """Write the merged ``stars`` table to ``out`` (Parquet, sorted by id)."""
    empty = STARS.empty_table()
    con.register("_empty", empty)
    _view(con, "base", [base_stars] if base_stars else [])
    _view(con, "cat_raw", catalog_parts, numbered=True)
    _view(con, "spec_raw", [spectrum_stars] if spectrum_stars else [], numbered=True)
    con.register("_index", spectra_index)

    _rank(con, "cat", "cat_raw")
    _rank(con, "spec", "spec_raw")
    duplicates = con.sql(
        """
        SELECT source, 'id ' || star_id AS item,
               'duplicate id ' || star_id || ': already given by ' || _first_source AS reason
        FROM cat WHERE _rank > 1
        ORDER BY _file, _row
        """
    ).to_arrow_table()

    def pick(col: str) -> str:
        return f'coalesce(c."{col}", s."{col}", b."{col}") AS "{col}"'

    values = ", ".join(pick(c) for c in VALUE_COLUMNS)
    same = " AND ".join(f'n."{c}" IS NOT DISTINCT FROM b."{c}"' for c in VALUE_COLUMNS)
    con.execute(
        f"""
        CREATE TEMP VIEW merged AS
        WITH joined AS (
            SELECT plate, mjd, fiberid, {values},
                   coalesce(c.source, s.source) AS new_source,
                   (c.plate IS NOT NULL OR s.plate IS NOT NULL) AS touched
            FROM (SELECT * FROM base) b
            FULL OUTER JOIN (SELECT * FROM cat WHERE _rank = 1) c USING (plate, mjd, fiberid)
            FULL OUTER JOIN (SELECT * FROM spec WHERE _rank = 1) s USING (plate, mjd, fiberid)
        )
        SELECT n.*, b.plate IS NOT NULL AS existed,
               b.plate IS NOT NULL AND ({same}) AS unchanged,
               b.source AS old_source, b.ingest_run AS old_run
        FROM joined n
        LEFT JOIN base b USING (plate, mjd, fiberid)
        """
    )
    added, updated, total = con.execute(
        """
        SELECT count(*) FILTER (WHERE NOT existed),
               count(*) FILTER (WHERE existed AND touched AND NOT unchanged),
               count(*)
        FROM merged
        """
    ).fetchone()
    columns = []
    for name in STARS.names:
        if name == "source":
            columns.append("CASE WHEN unchanged OR NOT touched THEN old_source ELSE new_source END")
        elif name == "ingest_run":
            columns.append("CASE WHEN unchanged OR NOT touched THEN old_run ELSE $1 END")
        elif name == "has_spectrum":
            columns.append("i.star_id IS NOT NULL")
        else:
            columns.append(f'm."{name}"')
    select = ", ".join(
        f'CAST({expr} AS {_sql_type(STARS.field(n).type)}) AS "{n}"'
        for expr, n in zip(columns, STARS.names, strict=True)
    )
    con.execute(
        f"""
        COPY (
            SELECT {select}
            FROM merged m
            LEFT JOIN (SELECT DISTINCT plate, mjd, fiberid, star_id FROM _index) i
                USING (plate, mjd, fiberid)
            ORDER BY plate, mjd, fiberid
        ) TO '{_quote(out)}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)
        """,
        [run_id],
    )
    return MergeResult(int(added), int(updated), int(total), duplicates)


def _rank(con: duckdb.DuckDBPyConnection, name: str, src: str) -> None:
    """Number the rows of each id in input order; the window is skipped when ids are unique."""
    repeats = con.execute(
        f"SELECT count(*) - count(DISTINCT (plate, mjd, fiberid)) FROM {src}"
    ).fetchone()[0]
    if repeats == 0:
        con.execute(
            f"CREATE TEMP VIEW {name} AS SELECT *, 1 AS _rank, NULL AS _first_source FROM {src}"
        )
        return
    con.execute(
        f"""CREATE TEMP TABLE {name} AS
            SELECT *, row_number() OVER w AS _rank, first(source) OVER w AS _first_source
            FROM {src}
            WINDOW w AS (PARTITION BY plate, mjd, fiberid ORDER BY _file, _row)"""
    )


def _view(con: duckdb.DuckDBPyConnection, name: str, files: list[Path], numbered=False) -> None:
    if files:
        listing = ", ".join(f"'{_quote(f)}'" for f in files)
        extra = (
            ", list_position([" + listing + "], filename) AS _file, file_row_number AS _row"
            if numbered
            else ""
        )
        cols = ", ".join(f'"{c}"' for c in STARS.names)
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW {name} AS
                SELECT {cols}{extra}
                FROM read_parquet([{listing}], filename = true, file_row_number = true,
                                  union_by_name = true)"""
        )
    else:
        extra = ", 0 AS _file, 0 AS _row" if numbered else ""
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *{extra} FROM _empty")


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _sql_type(t: pa.DataType) -> str:
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    return "VARCHAR"
