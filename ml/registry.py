"""The model registry: which trained model is current, and where its artifact lives.

The ``models`` table (startrack.warehouse.contract) has one row per trained model, exactly one
with ``is_current``; the artifact folder is ``<warehouse>/<path>``.
"""

from __future__ import annotations

from pathlib import Path

from startrack.ml.inference import Predictor


def current_model_row(snapshot) -> dict | None:
    if snapshot is None:
        return None
    models = snapshot.table("models").to_pandas()
    if models.empty:
        return None
    cur = models[models["is_current"]]
    row = (cur if not cur.empty else models.sort_values("created_at")).iloc[-1]
    return row.to_dict()


def current_model_dir(warehouse) -> Path | None:
    """Directory of the current model artifact of a Warehouse, or None."""
    row = current_model_row(warehouse.current())
    return warehouse.root / row["path"] if row else None


def warehouse_predictor(warehouse, check_every_s: float = 2.0) -> Predictor:
    """A Predictor that follows the warehouse's current model (reloads when it changes)."""
    return Predictor(lambda: current_model_dir(warehouse), check_every_s=check_every_s)
