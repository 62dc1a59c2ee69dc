"""Two model versions side by side: headline metrics and how the confusion matrix moved.

Both come from the stored ``metrics`` and ``confusion`` tables, which keep every version. Each
figure carries its own n: a version scored after new stars arrived is measured on more stars.
"""

from __future__ import annotations

import pandas as pd

from startrack.dashboard import data
from startrack.warehouse.store import Snapshot

METRICS = data.HEADLINE_METRICS


def compare_headlines(snap: Snapshot, a: str, b: str, split: str) -> pd.DataFrame:
    """branch, then for each metric: value in A (= a), in B (= b), B - A; and n in A and B."""
    left = data.headline_metrics(snap, a, split).set_index("branch")
    right = data.headline_metrics(snap, b, split).set_index("branch")
    branches = [x for x in (*data.MODEL_BRANCHES, *data.BASELINES)
                if x in left.index or x in right.index]  # fmt: skip
    rows = []
    for br in branches:
        row: dict[str, object] = {"branch": br}
        for m in METRICS:
            va = left[m].get(br) if m in left else None
            vb = right[m].get(br) if m in right else None
            row[f"{m} A"] = va
            row[f"{m} B"] = vb
            row[f"Δ {m}"] = (
                None if va is None or vb is None or pd.isna(va) or pd.isna(vb) else vb - va
            )
        row["n A"] = left["n"].get(br) if "n" in left else None
        row["n B"] = right["n"].get(br) if "n" in right else None
        rows.append(row)
    return pd.DataFrame(rows)


def confusion_change(
    snap: Snapshot, a: str, b: str, branch: str, split: str, top: int = 20
) -> pd.DataFrame:
    """The cells whose counts moved most between the versions (actual, predicted, a, b, change)."""
    ca = data.confusion(snap, a, branch, split).rename(columns={"n": "n_a"})
    cb = data.confusion(snap, b, branch, split).rename(columns={"n": "n_b"})
    both = ca.merge(cb, on=["actual", "predicted"], how="outer").fillna({"n_a": 0, "n_b": 0})
    both["change"] = both["n_b"] - both["n_a"]
    both["cell"] = (both["actual"] == both["predicted"]).map({True: "right", False: "wrong"})
    both = both[both["change"] != 0]
    both = both.reindex(both["change"].abs().sort_values(ascending=False).index).head(top)
    out = both[["actual", "predicted", "cell", "n_a", "n_b", "change"]].astype(
        {"n_a": int, "n_b": int, "change": int}
    )
    return out.rename(columns={"n_a": "A", "n_b": "B"}).reset_index(drop=True)
