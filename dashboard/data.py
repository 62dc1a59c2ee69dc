"""All warehouse access of the dashboard: small functions returning DataFrames and dicts.

Callbacks never touch SQL or DuckDB; they call these. Every function takes the
:class:`~startrack.warehouse.store.Snapshot` to read, which each request gets from
:func:`current_snapshot` (a read of the small ``CURRENT`` file), so a snapshot published by
``startrack score`` is picked up on the next request while a request already running keeps
reading the immutable snapshot it started with. Results are cached per snapshot id (the
Snapshot is part of every cache key), so nothing stale is ever served after a publish.

The dashboard never writes: connections are DuckDB read-only, spectra are read with pyarrow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from startrack import grid
from startrack.labels import sort_key
from startrack.star_id import star_key
from startrack.vocabulary import BASELINES, BRANCHES
from startrack.warehouse.contract import STORED_TABLES
from startrack.warehouse.contract import schema as declared_schema
from startrack.warehouse.read import Spectrum, read_spectrum, read_star
from startrack.warehouse.store import Snapshot, Warehouse, WarehouseEmpty

log = logging.getLogger(__name__)

MODEL_BRANCHES = BRANCHES  #: the model's branches (startrack.vocabulary), named for the pages
HEADLINE_METRICS = ("accuracy", "macro_f1", "within_one")
ENV_TEMPLATES = "STARTRACK_TEMPLATES"  #: optional path of the real SDSS template file
OPEN_SNAPSHOTS = 4  #: read-only connections kept open (old ones stay readable meanwhile)


class StarNotFound(LookupError):
    """The id is well formed but the warehouse has no such star."""


@dataclass
class _State:
    warehouse: Warehouse
    templates_path: Path | None


_state: _State | None = None
_connections: OrderedDict[str, duckdb.DuckDBPyConnection] = OrderedDict()
_conn_lock = threading.Lock()


def configure(warehouse_path: str | os.PathLike[str], templates_path: str | None = None) -> None:
    """Point the dashboard at a warehouse (and optionally the real SDSS template file)."""
    global _state
    templates = templates_path or os.environ.get(ENV_TEMPLATES)
    _state = _State(Warehouse(warehouse_path), Path(templates) if templates else None)


def templates_path() -> str | None:
    """The configured SDSS template file (None: the built-in set), as the overlay caches it."""
    return str(_state.templates_path) if _state and _state.templates_path else None


def warehouse() -> Warehouse:
    if _state is None:
        raise RuntimeError("startrack.dashboard.data.configure(warehouse_path) was not called")
    return _state.warehouse


def current_snapshot() -> Snapshot:
    """The published snapshot right now (raises WarehouseEmpty with advice when none)."""
    return warehouse().require_current()


def _cursor(snap: Snapshot) -> duckdb.DuckDBPyConnection:
    """A cursor on this snapshot's read-only database (one connection per snapshot, shared)."""
    key = str(snap.db_path)
    with _conn_lock:
        con = _connections.get(key)
        if con is None:
            # Attached into a private in-memory instance, so this long-lived connection does
            # not pin DuckDB's per-file shared instance (see Snapshot.connect).
            con = duckdb.connect()
            con.execute("ATTACH $1 AS snap (READ_ONLY)", [key])
            _add_missing_tables(con)
            _connections[key] = con
            while len(_connections) > OPEN_SNAPSHOTS:
                _, old = _connections.popitem(last=False)
                old.close()
        else:
            _connections.move_to_end(key)
        cur = con.cursor()
    cur.execute("SET search_path = 'snap.main,memory.main'")
    return cur


def _add_missing_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Empty stand-ins (in memory) for contract tables a snapshot lacks.

    Snapshots published since the contract hold every table; older ones may lack the model's
    tables until the next writer publishes. The stand-ins come after the snapshot on the
    search path, so a real table always wins.
    """
    have = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'snap'"
        ).fetchall()
    }
    for name in STORED_TABLES:
        if name not in have:
            con.register("_empty", declared_schema(name).empty_table())
            con.execute(f'CREATE TABLE memory.main."{name}" AS SELECT * FROM _empty')
            con.unregister("_empty")


def query(
    snap: Snapshot, sql: str, params: list | dict | None = None, small: bool = False
) -> pd.DataFrame:
    """Run internal SQL (ours, never the user's: that goes through warehouse.sql).

    ``small``: a few rows expected (one star's): plain tuples skip DuckDB's pandas conversion,
    which costs ~2 ms per query, a third of a lookup.
    """
    cur = _cursor(snap)
    try:
        cur.execute(sql, params or [])
        if not small:
            return cur.df()
        rows = cur.fetchall()
        return pd.DataFrame.from_records(rows, columns=[d[0] for d in cur.description])
    finally:
        cur.close()


#: Columns the model may add to ``predictions`` (continuous type, quality flags): shown only
#: when the snapshot's table has them, so pages work before and after the model gains them.
OPTIONAL_PREDICTION_COLUMNS = ("spectral_type", "spectral_type_err", "flags")


@lru_cache(maxsize=8)
def table_columns(snap: Snapshot, name: str) -> tuple[str, ...]:
    """Column names of one table of the snapshot (empty when the table is absent)."""
    df = query(
        snap,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = 'snap' AND table_name = ? ORDER BY ordinal_position",
        [name],
    )
    return tuple(df["column_name"])


def optional_prediction_columns(snap: Snapshot) -> tuple[str, ...]:
    """Which of spectral_type, spectral_type_err, flags the ``predictions`` table has."""
    have = set(table_columns(snap, "predictions"))
    return tuple(c for c in OPTIONAL_PREDICTION_COLUMNS if c in have)


# ----------------------------------------------------------------------------- one star
@lru_cache(maxsize=1024)
def star_record(snap: Snapshot, star_id: str) -> dict | None:
    """The ``stars`` row of a canonical star id, or None."""
    cur = _cursor(snap)
    try:
        return read_star(cur, star_id)
    finally:
        cur.close()


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


@lru_cache(maxsize=1024)
def star_predictions(snap: Snapshot, star_id: str) -> pd.DataFrame:
    """Stored predictions of the current model for one star: one row per branch."""
    extras = "".join(f", {c}" for c in optional_prediction_columns(snap))
    df = query(
        snap,
        "SELECT branch, label, prob, topk, actual, correct, within_one, split, model_version, "
        f"scored_at{extras} FROM predictions WHERE plate = ? AND mjd = ? AND fiberid = ?",
        star_key(star_id),
        small=True,
    )
    order = {b: i for i, b in enumerate(MODEL_BRANCHES)}
    return df.sort_values("branch", key=lambda s: s.map(order)).reset_index(drop=True)


@lru_cache(maxsize=128)
def spectrum(snap: Snapshot, star_id: str) -> Spectrum | None:
    """One spectrum (cached per snapshot): spectra_index, then one Parquet row-group read."""
    cur = _cursor(snap)
    try:
        return read_spectrum(snap, cur, star_id)
    finally:
        cur.close()


@lru_cache(maxsize=8)
def _spectrum_ids(snap: Snapshot) -> tuple[str, ...]:
    return tuple(query(snap, "SELECT star_id FROM spectra_index ORDER BY star_id")["star_id"])


def random_star_id(snap: Snapshot, rng: random.Random | None = None) -> str | None:
    """A random star that has a spectrum (else any star); None for an empty warehouse."""
    ids = _spectrum_ids(snap)
    if ids:
        return (rng or random).choice(ids)
    df = query(snap, "SELECT star_id FROM stars USING SAMPLE 1 ROWS")
    return None if df.empty else str(df["star_id"].iloc[0])


@lru_cache(maxsize=8)
def example_star_ids(snap: Snapshot, n: int = 4) -> tuple[str, ...]:
    """A few stars worth showing: spectra of different labels, right and wrong predictions."""
    df = query(
        snap,
        "SELECT p.star_id, p.actual, p.correct FROM predictions p "
        "JOIN spectra_index s USING (plate, mjd, fiberid) "
        "WHERE p.branch = 'fusion' AND p.actual IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY p.actual, p.correct ORDER BY p.star_id) = 1 "
        "ORDER BY p.correct DESC, p.actual LIMIT 64",
    )
    if not df.empty:
        right = df[df["correct"].fillna(False).astype(bool)]["star_id"].tolist()
        wrong = df[~df["correct"].fillna(False).astype(bool)]["star_id"].tolist()
        picks = right[: max(1, n - 1)] + wrong[:1]
        picks += [s for s in right + wrong if s not in picks]
        return tuple(picks[:n])
    return tuple(_spectrum_ids(snap)[:n])


# ----------------------------------------------------------------------------- models
@lru_cache(maxsize=8)
def models(snap: Snapshot) -> pd.DataFrame:
    return query(snap, "SELECT * FROM models ORDER BY created_at DESC")


def current_model(snap: Snapshot) -> dict | None:
    df = models(snap)
    cur = df[df["is_current"].fillna(False).astype(bool)] if not df.empty else df
    return None if cur.empty else cur.iloc[0].to_dict()


@lru_cache(maxsize=8)
def model_versions(snap: Snapshot) -> tuple[str, ...]:
    """Versions with metrics, the current one first."""
    found = query(snap, "SELECT DISTINCT model_version FROM metrics")["model_version"].tolist()
    cur = current_model(snap)
    known = models(snap)["version"].tolist()
    ordered = [v for v in known if v in found] + sorted(v for v in found if v not in known)
    if cur and cur["version"] in ordered:
        ordered.remove(cur["version"])
        ordered.insert(0, cur["version"])
    return tuple(ordered)


@lru_cache(maxsize=32)
def branches(snap: Snapshot, version: str) -> tuple[str, ...]:
    """Branches with metrics for a version: model heads first, then baselines."""
    found = set(
        query(snap, "SELECT DISTINCT branch FROM metrics WHERE model_version = ?", [version])[
            "branch"
        ]
    )
    first = [b for b in (*MODEL_BRANCHES, *BASELINES) if b in found]
    return tuple(first + sorted(found - set(first)))


# ----------------------------------------------------------------------------- accuracy
@lru_cache(maxsize=64)
def headline_metrics(snap: Snapshot, version: str, split: str) -> pd.DataFrame:
    """branch x (accuracy, macro_f1, within_one, n): every branch and baseline side by side."""
    cols = ["branch", *HEADLINE_METRICS, "n"]
    df = _overall_metrics(snap, version, split, "metric IN ('accuracy', 'macro_f1', 'within_one')")
    if df.empty:
        return pd.DataFrame(columns=cols)
    wide = df.pivot_table(index="branch", columns="metric", values="value", aggfunc="first")
    wide["n"] = df.groupby("branch")["n"].max()
    wide = wide.reindex(columns=[*HEADLINE_METRICS, "n"]).reset_index()
    return wide.sort_values("branch", key=lambda s: s.map(_branch_rank)).reset_index(drop=True)


def _overall_metrics(snap: Snapshot, version: str, split: str, metric_sql: str) -> pd.DataFrame:
    """(branch, metric, value, n) over all S/N for the metrics ``metric_sql`` selects."""
    return query(
        snap,
        "SELECT branch, metric, value, n FROM metrics WHERE model_version = ? AND split = ? "
        f"AND snr_bin IS NULL AND {metric_sql}",
        [version, split],
    )


def _branch_rank(branch: str) -> int:
    """The model's branches first, then the baselines, each in vocabulary order."""
    order = (*MODEL_BRANCHES, *BASELINES)
    return order.index(branch) if branch in order else len(order)


#: (metric prefix, what the continuous type is scored against), as the accuracy page names it.
TYPE_TRUTHS = (("type", "SDSS label"), ("own_type", "own MK type"))


@lru_cache(maxsize=64)
def type_scores(snap: Snapshot, version: str, split: str) -> pd.DataFrame:
    """branch x truth: the continuous type's median error (subtypes), within 2.5 / 5 and n,
    against the SDSS label's type and against each star's own MK type (ELODIE_SPTYPE)."""
    cols = ["branch", "against", "median error", "within 2.5", "within 5", "n"]
    df = _overall_metrics(snap, version, split, "regexp_matches(metric, '^(own_)?type_')")
    if df.empty:
        return pd.DataFrame(columns=cols)
    branches = sorted(df["branch"].unique(), key=_branch_rank)
    cell = {(r.branch, r.metric): (r.value, r.n) for r in df.itertuples(index=False)}
    out = [
        {
            "branch": b,
            "against": name,
            "median error": cell[(b, f"{prefix}_median_error")][0],
            "within 2.5": cell[(b, f"{prefix}_within_2_5")][0],
            "within 5": cell[(b, f"{prefix}_within_5")][0],
            "n": int(cell[(b, f"{prefix}_median_error")][1]),
        }
        for prefix, name in TYPE_TRUTHS
        for b in branches
        if (b, f"{prefix}_median_error") in cell
    ]
    return pd.DataFrame(out, columns=cols)


@lru_cache(maxsize=64)
def confusion(snap: Snapshot, version: str, branch: str, split: str) -> pd.DataFrame:
    """Non-zero cells (actual, predicted, n)."""
    return query(
        snap,
        "SELECT actual, predicted, n FROM confusion WHERE model_version = ? AND branch = ? "
        "AND split = ?",
        [version, branch, split],
    )


def confusion_matrix(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells as a square matrix, labels along the MK sequence on both axes."""
    labels = sorted(set(cells["actual"]) | set(cells["predicted"]), key=sort_key)
    matrix = cells.pivot_table(index="actual", columns="predicted", values="n", aggfunc="sum")
    return matrix.reindex(index=labels, columns=labels).fillna(0).astype(int)


@lru_cache(maxsize=64)
def class_metrics(snap: Snapshot, version: str, branch: str, split: str) -> pd.DataFrame:
    df = query(
        snap,
        "SELECT label, precision, recall, f1, support FROM class_metrics "
        "WHERE model_version = ? AND branch = ? AND split = ?",
        [version, branch, split],
    )
    return df.sort_values("label", key=lambda s: s.map(sort_key)).reset_index(drop=True)


def _snr_bin_low(name: str) -> float:
    try:
        return float(str(name).split("-")[0].rstrip("+"))
    except ValueError:
        return math.inf


@lru_cache(maxsize=64)
def accuracy_by_snr(snap: Snapshot, version: str, split: str) -> pd.DataFrame:
    """(branch, snr_bin, value, n) for metric 'accuracy', bins in S/N order."""
    df = query(
        snap,
        "SELECT branch, snr_bin, value, n FROM metrics WHERE model_version = ? AND split = ? "
        "AND metric = 'accuracy' AND snr_bin IS NOT NULL",
        [version, split],
    )
    df["_low"] = df["snr_bin"].map(_snr_bin_low)
    return df.sort_values(["branch", "_low"]).drop(columns="_low").reset_index(drop=True)


def confusion_stars(
    snap: Snapshot, version: str, branch: str, split: str, actual: str, predicted: str,
    limit: int = 200,
) -> pd.DataFrame:  # fmt: skip
    """Stars in one confusion cell (model heads only: baselines keep no per-star rows)."""
    cols = ["star_id", "actual", "label", "prob", "snr", "split"]
    if branch not in MODEL_BRANCHES:
        return pd.DataFrame(columns=cols)
    split_sql = "AND p.split = ?" if split != "all" else ""
    if split == "test_spectra":  # the test stars with a spectrum, as ml.score counts them
        split, split_sql = "test", "AND p.split = ? AND s.has_spectrum"
    params = [version, branch, actual, predicted] + ([split] if split != "all" else []) + [limit]
    return query(
        snap,
        "SELECT p.star_id, p.actual, p.label, p.prob, s.snr, p.split FROM predictions p "
        "LEFT JOIN stars s USING (plate, mjd, fiberid) "
        "WHERE p.model_version = ? AND p.branch = ? AND p.actual = ? AND p.label = ? "
        f"{split_sql} ORDER BY p.prob DESC, p.star_id LIMIT ?",
        params,
    )


# ----------------------------------------------------------------------------- explore
@lru_cache(maxsize=8)
def label_options(snap: Snapshot) -> tuple[str, ...]:
    labels = query(snap, "SELECT DISTINCT label FROM stars WHERE label IS NOT NULL")["label"]
    return tuple(sorted(labels, key=sort_key))


@lru_cache(maxsize=64)
def explore_points(
    snap: Snapshot,
    labels: tuple[str, ...] = (),
    snr_min: float | None = None,
    snr_max: float | None = None,
    correctness: str = "all",
    branch: str = "fusion",
    max_points: int = 20_000,
) -> pd.DataFrame:
    """A deterministic sample of stars (ra, dec, colors, label, prediction) under filters."""
    where, params = ["TRUE"], []
    if labels:
        where.append(f"s.label IN ({', '.join('?' for _ in labels)})")
        params.extend(labels)
    if snr_min is not None:
        where.append("s.snr >= ?")
        params.append(float(snr_min))
    if snr_max is not None:
        where.append("s.snr <= ?")
        params.append(float(snr_max))
    if correctness in ("right", "wrong"):
        where.append("p.correct" if correctness == "right" else "NOT p.correct")
    pred_cols = "p.label AS predicted, p.prob, p.correct"
    join = (
        "LEFT JOIN predictions p ON p.plate = s.plate AND p.mjd = s.mjd "
        "AND p.fiberid = s.fiberid AND p.branch = ?"
    )
    sql = (
        f"SELECT s.star_id, s.ra, s.dec, s.label, s.snr, s.has_spectrum, "
        f"s.mag_u - s.mag_g AS u_g, s.mag_g - s.mag_r AS g_r, s.mag_r - s.mag_i AS r_i, "
        f"s.mag_i - s.mag_z AS i_z, {pred_cols} FROM stars s {join} "
        f"WHERE {' AND '.join(where)} ORDER BY hash(s.star_id) LIMIT ?"
    )
    return query(snap, sql, [branch, *params, int(max_points)])


@lru_cache(maxsize=32)
def disagreements(
    snap: Snapshot, branch: str = "fusion", labels: tuple[str, ...] = (), limit: int = 50
) -> pd.DataFrame:
    """The most confident predictions that disagree with SDSS: candidate mislabels."""
    where, params = ["p.branch = ?", "NOT p.correct", "p.actual IS NOT NULL"], [branch]
    if labels:
        where.append(f"p.actual IN ({', '.join('?' for _ in labels)})")
        params.extend(labels)
    return query(
        snap,
        "SELECT p.star_id, p.actual, p.label, p.prob, s.snr, p.split FROM predictions p "
        "LEFT JOIN stars s USING (plate, mjd, fiberid) "
        f"WHERE {' AND '.join(where)} ORDER BY p.prob DESC, p.star_id LIMIT ?",
        [*params, int(limit)],
    )


# ----------------------------------------------------------------------------- runs
@lru_cache(maxsize=8)
def runs_tables(snap: Snapshot, rejects_limit: int = 200) -> dict[str, pd.DataFrame]:
    """ingest_runs, scoring_runs, models, rejects (newest first), for the Runs page."""
    out: dict[str, pd.DataFrame] = {}
    specs = {
        "ingest_runs": "SELECT * FROM ingest_runs ORDER BY started_at DESC",
        "scoring_runs": "SELECT * FROM scoring_runs ORDER BY started_at DESC",
        "models": "SELECT version, created_at, is_current, data_snapshot, code_version, "
        "train_seconds, path FROM models ORDER BY created_at DESC",
        "rejects": f'SELECT * FROM rejects ORDER BY "at" DESC LIMIT {int(rejects_limit)}',
    }
    for name, sql in specs.items():
        out[name] = query(snap, sql)
    return out


@lru_cache(maxsize=8)
def table_names(snap: Snapshot) -> tuple[str, ...]:
    return tuple(
        query(snap, "SELECT table_name FROM information_schema.tables ORDER BY table_name")[
            "table_name"
        ]
    )


# ----------------------------------------------------------------------------- helpers
def topk_pairs(topk: Any) -> list[tuple[str, float]]:
    """Normalize top-k from the table (list of {label, prob}) or the Predictor (pairs)."""
    if topk is None or (isinstance(topk, float) and math.isnan(topk)):
        return []
    pairs = []
    for item in list(topk):
        if isinstance(item, dict):
            pairs.append((str(item["label"]), float(item["prob"])))
        else:
            lab, p = item
            pairs.append((str(lab), float(p)))
    return pairs


def star_json(snap: Snapshot, star_id: str) -> dict:
    """What /api/star returns: label, predictions, metadata (JSON-safe)."""
    rec = star_record(snap, star_id)
    if rec is None:
        raise StarNotFound(f"star {star_id} is not in the warehouse (snapshot {snap.id})")
    preds = star_predictions(snap, star_id)
    predictions = {
        row["branch"]: {
            "label": row["label"],
            "prob": _json_safe(row["prob"]),
            "topk": [{"label": lab, "prob": p} for lab, p in topk_pairs(row["topk"])],
            "correct": _json_safe(row["correct"]),
            "model_version": row["model_version"],
        }
        for _, row in preds.iterrows()
    }
    return {
        "star_id": star_id,
        "snapshot": snap.id,
        "label": rec.get("label"),
        "subclass": rec.get("subclass"),
        "class": rec.get("class"),
        "predictions": predictions,
        "metadata": {k: _json_safe(v) for k, v in rec.items()},
        "has_spectrum": bool(rec.get("has_spectrum")),
    }


def _json_safe(value: Any) -> Any:
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):
        return value
    return json.loads(json.dumps(value, default=str))


def wavelength() -> np.ndarray:
    return _wavelength()


@lru_cache(maxsize=1)
def _wavelength() -> np.ndarray:
    return grid.wavelength()


__all__ = [
    "BASELINES",
    "MODEL_BRANCHES",
    "Spectrum",
    "StarNotFound",
    "WarehouseEmpty",
    "configure",
    "current_snapshot",
]
