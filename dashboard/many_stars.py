"""Many stars at once: one DuckDB query joins a list of ids against stars and predictions.

A per-id lookup loop costs a query per star (~1 ms each: 10 s for 10,000 ids); joining the
whole list as an Arrow table costs one scan, whatever the list's length. Every requested id
comes back as a row, in the order given; ids the warehouse lacks have ``found = false``.
The continuous type and quality flags appear only when the ``predictions`` table has them.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from startrack.dashboard import data
from startrack.dashboard.id_lists import IdList
from startrack.labels import MK_LETTERS
from startrack.warehouse.store import Snapshot

BRANCHES = data.MODEL_BRANCHES
#: Columns of the result, before the optional continuous-type and flag columns.
BASE_COLUMNS = (
    "star_id", "input", "found", "ra", "dec", "snr", "has_spectrum", "sdss_subclass",
    "sdss_label",
    *(f"{b}_{c}" for b in BRANCHES for c in ("label", "prob")),
    "fusion_correct", "model_version",
)  # fmt: skip


def type_name(value: float | None) -> str | None:
    """A continuous MK type as text: 53.4 -> 'K3.4' (O0 = 0 ... M9 = 69)."""
    if value is None or not np.isfinite(value):
        return None
    letter = MK_LETTERS[int(min(max(value, 0.0), 69.999) // 10)]
    return f"{letter}{value - 10 * MK_LETTERS.index(letter):.1f}"


def _prediction_sql(extras: tuple[str, ...]) -> str:
    cols = []
    for b in BRANCHES:
        for c in ("label", "prob"):
            cols.append(f"any_value(p.{c}) FILTER (WHERE p.branch = '{b}') AS {b}_{c}")
    cols.append("any_value(p.correct) FILTER (WHERE p.branch = 'fusion') AS fusion_correct")
    for c in extras:
        name = c if c == "flags" else f"fusion_{c}"
        cols.append(f"any_value(p.{c}) FILTER (WHERE p.branch = 'fusion') AS {name}")
    cols.append("any_value(p.model_version) AS model_version")
    return (
        f"SELECT p.plate, p.mjd, p.fiberid, {', '.join(cols)} FROM predictions p "
        "JOIN q USING (plate, mjd, fiberid) GROUP BY p.plate, p.mjd, p.fiberid"
    )


def lookup_many(snap: Snapshot, ids: IdList) -> pd.DataFrame:
    """One row per requested id (input order): SDSS label, three predictions, S/N, found."""
    extras = data.optional_prediction_columns(snap)
    keys = np.array([[int(p) for p in s.split("-")] for s in ids.ids], dtype=np.int32).reshape(
        -1, 3
    )
    q = pa.table(
        {
            "ord": pa.array(np.arange(len(ids.ids), dtype=np.int32)),
            "input": pa.array(ids.inputs, pa.string()),
            "star_id": pa.array(ids.ids, pa.string()),
            "plate": pa.array(keys[:, 0]),
            "mjd": pa.array(keys[:, 1]),
            "fiberid": pa.array(keys[:, 2]),
        }
    )
    pred_cols = [f"{b}_{c}" for b in BRANCHES for c in ("label", "prob")] + [
        "fusion_correct",
        *(c if c == "flags" else f"fusion_{c}" for c in extras),
        "model_version",
    ]
    with_p = f", p AS ({_prediction_sql(extras)})"
    join_p = "LEFT JOIN p USING (plate, mjd, fiberid)"
    select_p = ", ".join(f"p.{c}" for c in pred_cols)
    sql = (
        "WITH s AS (SELECT s.* FROM stars s JOIN q USING (plate, mjd, fiberid))"
        f"{with_p} "
        "SELECT q.star_id, q.input, s.star_id IS NOT NULL AS found, s.ra, s.dec, s.snr, "
        "s.has_spectrum, s.subclass AS sdss_subclass, s.label AS sdss_label, "
        f"{select_p} FROM q LEFT JOIN s USING (plate, mjd, fiberid) {join_p} ORDER BY q.ord"
    )
    cur = data._cursor(snap)
    try:
        cur.register("q", q)
        df = cur.execute(sql).df()
    finally:
        cur.close()
    if "fusion_spectral_type" in df.columns:
        at = df.columns.get_loc("fusion_spectral_type") + 1
        df.insert(at, "fusion_type", [type_name(v) for v in df["fusion_spectral_type"]])
    return df


def summary(ids: IdList, df: pd.DataFrame) -> dict:
    """Counts for the page and the API: requested, found, unknown, invalid, duplicates."""
    found = int(df["found"].sum()) if not df.empty else 0
    return {
        "requested": len(ids.ids) + len(ids.invalid) + ids.duplicates,
        "found": found,
        "unknown": len(df) - found,
        "invalid": len(ids.invalid),
        "duplicates": ids.duplicates,
    }


def invalid_frame(ids: IdList) -> pd.DataFrame:
    return pd.DataFrame(ids.invalid, columns=["input", "reason"])


def full_table(ids: IdList, df: pd.DataFrame) -> pd.DataFrame:
    """Every entry of the request as a row, for downloads: found stars, unknown ids (note
    'not in the warehouse') and unreadable entries (note: why) — nothing dropped."""
    out = df.copy()
    out.insert(3, "note", np.where(out["found"].astype(bool), "", "not in the warehouse"))
    if ids.invalid:
        bad = pd.DataFrame(
            {
                "star_id": None,
                "input": [raw for raw, _ in ids.invalid],
                "found": False,
                "note": [reason for _, reason in ids.invalid],
            }
        )
        out = pd.concat([out, bad.astype({"found": out["found"].dtype})], ignore_index=True)
    return out


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """Lists (quality flags) as 'a;b' text, for CSV."""
    out = df.copy()
    if "flags" in out.columns:
        out["flags"] = [
            ";".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else v
            for v in out["flags"]
        ]
    return out


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    return _flat(df).to_csv(index=False).encode()


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    return buf.getvalue()
