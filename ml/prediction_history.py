"""Every scored model version's answer per star, kept across versions (``prediction_history``).

``predictions`` holds the current model's rows only (with top-k, flags, ...); comparing two
versions star by star needs the older versions' answers too. This slim table keeps them: one
row per star and model version,

    star_id VARCHAR, plate INT, mjd INT, fiberid INT, model_version VARCHAR, split VARCHAR,
    fusion_label, dense_label, lstm_label VARCHAR, fusion_prob, dense_prob, lstm_prob FLOAT
    (calibrated; lstm NULL without a spectrum), spectral_type FLOAT (the fusion head's
    continuous MK type, NULL when absent), scoring_run VARCHAR (the run that scored the row),

sorted by (plate, mjd, fiberid, model_version) so one star's rows sit together.

Each scoring run rewrites it in one DuckDB COPY: the version being scored gets the rows of the
new ``predictions`` file (replacing its older rows), other versions' rows are carried over
from the previous snapshot. A version scored before this table existed is picked up from the
previous snapshot's ``predictions`` the first time a newer version is scored, so an upgraded
warehouse keeps the answers it still has.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

TABLE = "prediction_history"
BRANCHES = ("fusion", "dense", "lstm")

#: Output columns, in order (the pivot below produces exactly these).
COLUMNS = (
    "star_id",
    "plate",
    "mjd",
    "fiberid",
    "model_version",
    "split",
    *(f"{b}_label" for b in BRANCHES),
    *(f"{b}_prob" for b in BRANCHES),
    "spectral_type",
    "scoring_run",
)

#: Columns a ``predictions`` file needs to be pivoted (the long star x branch layout).
LONG_PREDICTIONS = {"plate", "mjd", "fiberid", "model_version", "branch", "label", "prob", "run_id"}


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> set[str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_quote(path)})").fetchall()
    return {r[0] for r in rows}


def _pivot_sql(con: duckdb.DuckDBPyConnection, predictions: Path, where: str) -> str:
    """One row per (star, version) from long ``predictions`` rows (star x branch)."""
    have = _parquet_columns(con, predictions)
    picks = [
        *(f"max(label) FILTER (branch = '{b}') AS {b}_label" for b in BRANCHES),
        *(f"(max(prob) FILTER (branch = '{b}'))::FLOAT AS {b}_prob" for b in BRANCHES),
        "(max(spectral_type) FILTER (branch = 'fusion'))::FLOAT AS spectral_type"
        if "spectral_type" in have
        else "NULL::FLOAT AS spectral_type",
        "max(run_id) AS scoring_run",
    ]
    split = "any_value(split)" if "split" in have else "NULL::VARCHAR"
    return (
        "SELECT any_value(star_id) AS star_id, plate, mjd, fiberid, model_version, "
        f"{split} AS split, {', '.join(picks)} "
        f"FROM read_parquet({_quote(predictions)}) WHERE {where} "
        "GROUP BY plate, mjd, fiberid, model_version"
    )


def build_history(
    out: Path,
    new_predictions: Path,
    version: str,
    old_history: Path | None = None,
    old_predictions: Path | None = None,
    temp_dir: Path | None = None,
) -> int:
    """Write the new ``prediction_history`` Parquet to ``out``; returns its row count.

    ``new_predictions``: this run's complete predictions of ``version``. ``old_history`` /
    ``old_predictions``: the previous snapshot's tables (None when it has none): their rows
    of other versions are kept, this version's are replaced.
    """
    con = duckdb.connect(config={"memory_limit": "768MB"})
    try:
        if temp_dir is not None:
            con.execute(f"SET temp_directory = {_quote(temp_dir)}")
        con.execute("SET preserve_insertion_order = false")
        cols = ", ".join(COLUMNS)
        parts = [f"SELECT {cols} FROM ({_pivot_sql(con, new_predictions, 'TRUE')})"]
        kept: set[str] = set()
        if old_history is not None:
            kept = {
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT model_version FROM read_parquet({_quote(old_history)})"
                ).fetchall()
            }
            parts.append(
                f"SELECT {cols} FROM read_parquet({_quote(old_history)}) "
                f"WHERE model_version <> {_quote(version)}"
            )
        if old_predictions is not None and not _parquet_columns(con, old_predictions) >= set(
            LONG_PREDICTIONS
        ):
            log.warning("previous predictions table has an older layout: not carried over")
            old_predictions = None
        if old_predictions is not None:  # versions scored before the history was kept
            listed = f"SELECT DISTINCT model_version FROM read_parquet({_quote(old_predictions)})"
            seed = {r[0] for r in con.execute(listed).fetchall()} - kept - {version}
            if seed:  # usually none: a third branch in the union would cost a full re-sort
                wanted = ", ".join(_quote(v) for v in sorted(seed))
                parts.append(
                    f"SELECT {cols} FROM ("
                    f"{_pivot_sql(con, old_predictions, f'model_version IN ({wanted})')})"
                )
        union = " UNION ALL ".join(parts)
        con.execute(
            f"COPY (SELECT * FROM ({union}) ORDER BY plate, mjd, fiberid, model_version) "
            f"TO {_quote(out)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
        (n,) = con.execute(f"SELECT count(*) FROM read_parquet({_quote(out)})").fetchone()
    finally:
        con.close()
    return int(n)


def record_history(writer, base, new_predictions: Path, version: str) -> None:
    """Scoring's hook: put the updated ``prediction_history`` into the writer's snapshot."""
    tables = base.tables if base is not None else []
    old_history = base.table_path(TABLE) if TABLE in tables else None
    old_predictions = base.table_path("predictions") if "predictions" in tables else None
    out = writer.scratch(f"{TABLE}.parquet")
    n = build_history(
        out,
        new_predictions,
        version,
        old_history,
        old_predictions,
        temp_dir=writer.scratch("history_tmp"),
    )
    writer.put_parquet(TABLE, out)
    log.info("prediction history: %d rows (star x model version)", n)
