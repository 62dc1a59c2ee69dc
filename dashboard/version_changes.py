"""The stars whose prediction changed between two model versions, from ``prediction_history``.

One DuckDB query answers a comparison: the changed stars (limited, best-confidence first)
and, from one aggregate over the same join, how many stars both versions answered, how many
changed and how the changes split against the SDSS label — fixed (the newer version matches
it), broken (the older one did), both wrong, or no SDSS label to judge by. Versions are
ordered by training time, so "old → new" means the same whichever way round they were picked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from startrack.dashboard import data
from startrack.warehouse.read import star_key
from startrack.warehouse.store import Snapshot

TABLE = "prediction_history"
BRANCHES = ("fusion", "dense", "lstm")
OUTCOMES = ("fixed", "broken", "both wrong", "no SDSS label")
SPLITS = ("all", "test", "test_spectra", "train", "val")
COLUMNS = ["star_id", "sdss_label", "old_prediction", "old_prob", "new_prediction",
           "new_prob", "outcome", "snr", "split"]  # fmt: skip
DEFAULT_LIMIT = 500
_OUTCOME_COUNTS = ", ".join(f"count(*) FILTER (outcome = '{o}') AS \"n_{o}\"" for o in OUTCOMES)


@dataclass(frozen=True)
class VersionChanges:
    """A comparison of ``old`` and ``new`` on one branch and split."""

    old: str
    new: str
    branch: str
    split: str
    outcome: str = "all"
    missing: tuple[str, ...] = ()  #: versions with no per-star rows stored
    compared: int = 0  #: stars both versions answered
    changed: int = 0
    counts: dict[str, int] = field(default_factory=dict)  #: changed stars per outcome
    listed: int = 0  #: changed stars passing the outcome filter (rows may be fewer: limit)
    stars: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMNS))

    @property
    def available(self) -> bool:
        return not self.missing


@lru_cache(maxsize=8)
def history_versions(snap: Snapshot) -> tuple[str, ...]:
    """Model versions with per-star rows in ``prediction_history``."""
    df = data.query(snap, f"SELECT DISTINCT model_version FROM {TABLE}")
    return tuple(sorted(df["model_version"]))


def chronological(snap: Snapshot, a: str, b: str) -> tuple[str, str]:
    """(older, newer) by the models table's training time; unknown versions count as oldest."""
    created = data.models(snap).set_index("version")["created_at"]

    def when(v: str):
        return created.get(v, pd.Timestamp.min.tz_localize("UTC"))

    return (a, b) if pd.Timestamp(when(a)) <= pd.Timestamp(when(b)) else (b, a)


def _split_sql(split: str) -> str:
    """The split as a WHERE clause on the joined versions (``a`` = the older one's rows)."""
    if split == "all":
        return ""
    if split == "test_spectra":  # the test stars with a spectrum, as ml.score counts them
        return (
            "WHERE a.split = 'test' AND (plate, mjd, fiberid) IN "
            "(SELECT (plate, mjd, fiberid) FROM stars WHERE has_spectrum)"
        )
    return f"WHERE a.split = '{split}'"  # one of SPLITS, checked by the caller


@lru_cache(maxsize=64)
def changed_stars(
    snap: Snapshot,
    a: str,
    b: str,
    branch: str = "fusion",
    split: str = "all",
    outcome: str = "all",
    limit: int = DEFAULT_LIMIT,
) -> VersionChanges:
    """Stars whose ``branch`` answer differs between versions ``a`` and ``b`` (any order)."""
    if branch not in BRANCHES or split not in SPLITS or outcome not in ("all", *OUTCOMES):
        raise ValueError(f"unknown branch, split or outcome: {branch!r}, {split!r}, {outcome!r}")
    old, new = chronological(snap, a, b)
    have = set(history_versions(snap))
    missing = tuple(v for v in (old, new) if v not in have)
    base = VersionChanges(old, new, branch, split, outcome, missing=missing)
    if missing:
        return base
    label, prob = f"{branch}_label", f"{branch}_prob"
    df = data.query(
        snap,
        f"""
        WITH a AS (SELECT plate, mjd, fiberid, star_id, split, {label} AS label, {prob} AS prob
                   FROM {TABLE} WHERE model_version = $old AND {label} IS NOT NULL),
             b AS (SELECT plate, mjd, fiberid, {label} AS label, {prob} AS prob
                   FROM {TABLE} WHERE model_version = $new AND {label} IS NOT NULL),
             j AS (
                SELECT a.*, b.label AS new_label, b.prob AS new_prob,
                       a.label <> b.label AS changed
                FROM a JOIN b USING (plate, mjd, fiberid) {_split_sql(split)}),
             -- the stars table only for the changed stars: most stars keep their answer
             ch AS (
                SELECT j.star_id, s.label AS sdss_label, j.label AS old_prediction,
                       j.prob AS old_prob, j.new_label AS new_prediction, j.new_prob,
                       CASE WHEN s.label IS NULL THEN 'no SDSS label'
                            WHEN j.new_label = s.label THEN 'fixed'
                            WHEN j.label = s.label THEN 'broken'
                            ELSE 'both wrong' END AS outcome,
                       s.snr, j.split
                FROM j LEFT JOIN stars s USING (plate, mjd, fiberid) WHERE j.changed),
        -- counts by aggregation, rows by a LIMIT: DuckDB's windowed count(*) FILTER (...)
        -- OVER () takes minutes on 800,000 rows; this takes milliseconds
             counts AS (SELECT (SELECT count(*) FROM j) AS n_compared,
                               count(*) AS n_changed,
                               count(*) FILTER ($outcome = 'all' OR outcome = $outcome)
                                   AS n_listed,
                               {_OUTCOME_COUNTS}
                        FROM ch),
             listed AS (SELECT * FROM ch WHERE $outcome = 'all' OR outcome = $outcome
                        ORDER BY new_prob DESC, star_id LIMIT $limit)
        SELECT * FROM counts LEFT JOIN listed ON TRUE  -- one row at least: the counts
        ORDER BY listed.new_prob DESC NULLS LAST, listed.star_id
        """,
        {"old": old, "new": new, "outcome": outcome, "limit": int(limit)},
    )
    first = df.iloc[0]
    stars = df[df["star_id"].notna()][COLUMNS].reset_index(drop=True)
    return VersionChanges(
        old, new, branch, split, outcome,
        compared=int(first["n_compared"]),
        changed=int(first["n_changed"]),
        counts={o: int(first[f"n_{o}"]) for o in OUTCOMES},
        listed=int(first["n_listed"]),
        stars=stars,
    )  # fmt: skip


@lru_cache(maxsize=1024)
def star_history(snap: Snapshot, star_id: str) -> pd.DataFrame:
    """One star's stored answers, one row per model version (empty when none are stored)."""
    cols = ["model_version", "fusion_label", "fusion_prob", "scoring_run"]
    return data.query(
        snap,
        f"SELECT {', '.join(cols)} FROM {TABLE} WHERE plate = ? AND mjd = ? AND fiberid = ?",
        list(star_key(star_id)),
        small=True,
    )
