"""Like-for-like accuracy: every branch over the same stars, unknown labels counted apart.

The stored ``metrics`` mix populations: the branches are recomputed over every scored star
(stars ingested after training included) while the baselines stay frozen at training time,
and SDSS labels the model was never trained on count as errors. Here the three branches are
scored live from ``predictions`` over exactly the stars all three answered, and labels
outside the model's classes are listed separately instead of silently counted as wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from startrack.dashboard import data
from startrack.warehouse.store import Snapshot

SPLIT_SQL = {
    "test": "p.split = 'test'",
    "test_spectra": "p.split = 'test' AND s.has_spectrum",
    "all": "TRUE",
}


@dataclass(frozen=True)
class FairComparison:
    branches: pd.DataFrame  #: branch, n, accuracy, within_one — same stars for every branch
    outside: pd.DataFrame  #: label, stars — SDSS labels outside the model's classes
    n_common: int  #: stars every branch answered with a label in the model's classes


def model_classes(snap: Snapshot, version: str) -> list[str]:
    models = data.models(snap)
    row = models[models["version"] == version]
    if row.empty or "labels" not in row.columns:
        return []
    try:
        return list(json.loads(row["labels"].iloc[0]))
    except (TypeError, ValueError):
        return []


def like_for_like(snap: Snapshot, version: str, split: str) -> FairComparison | None:
    """None when there are no per-star predictions for this version (an older model)."""
    classes = model_classes(snap, version)
    if not classes:
        return None
    where = SPLIT_SQL.get(split, SPLIT_SQL["test"])
    base = (
        "WITH p AS (SELECT p.plate, p.mjd, p.fiberid, p.branch, p.actual, p.correct, "
        "p.within_one FROM predictions p JOIN stars s USING (plate, mjd, fiberid) "
        f"WHERE p.model_version = $v AND p.actual IS NOT NULL AND {where}), "
        "common AS (SELECT plate, mjd, fiberid, any_value(actual) AS actual FROM p "
        "GROUP BY plate, mjd, fiberid "
        "HAVING count(DISTINCT branch) = (SELECT count(DISTINCT branch) FROM p)) "
    )
    params = {"v": version, "classes": classes}
    branches = data.query(
        snap,
        base + "SELECT p.branch, count(*) AS n, avg(p.correct::INT) AS accuracy, "
        "avg(p.within_one::INT) AS within_one FROM p JOIN common c USING (plate, mjd, fiberid) "
        "WHERE list_contains($classes, c.actual) GROUP BY p.branch",
        params,
    )
    order = {b: i for i, b in enumerate(data.MODEL_BRANCHES)}
    branches = branches.sort_values("branch", key=lambda s: s.map(order)).reset_index(drop=True)
    outside = data.query(
        snap,
        base + "SELECT actual AS label, count(*) AS stars FROM common "
        "WHERE NOT list_contains($classes, actual) GROUP BY actual ORDER BY stars DESC, label",
        params,
    )
    if branches.empty and outside.empty:
        return None  # no stored per-star predictions of this version (an older model)
    n_common = int(branches["n"].max()) if not branches.empty else 0
    return FairComparison(branches, outside, n_common)
