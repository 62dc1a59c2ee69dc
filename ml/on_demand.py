"""On-demand inference: the one function the dashboard (or a script) calls for a single star.

The model is loaded once per process and warehouse, and reloaded when the warehouse's current
model changes (``Predictor`` checks the published snapshot at most every few seconds).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from startrack.ml.inference import Predictor
from startrack.ml.registry import warehouse_predictor
from startrack.warehouse.read import read_spectrum, read_star
from startrack.warehouse.store import Warehouse

_predictors: dict[Path, Predictor] = {}
_lock = threading.Lock()


class StarUnknown(LookupError):
    """The warehouse has no such star."""


def predictor_for(warehouse: Warehouse) -> Predictor:
    with _lock:
        if warehouse.root not in _predictors:
            _predictors[warehouse.root] = warehouse_predictor(warehouse)
        return _predictors[warehouse.root]


def predict_star(
    warehouse: Warehouse,
    star_id: str | None = None,
    *,
    star: Mapping | None = None,
    spectrum: Mapping | None = None,
) -> dict:
    """Three predictions for one star, given its id or a tabular row (plus a spectrum).

    With ``star_id`` the row and spectrum are read from the published snapshot. Returns
    ``{branches: {dense|lstm|fusion: {label, prob, topk} | None}, latency_ms, model_version}``
    (``lstm`` is None without a spectrum). Raises LookupError when no model is trained yet.
    """
    if star_id is not None:
        snap = warehouse.require_current()
        con = snap.connect()
        try:
            star = read_star(con, star_id)
            if star is None:
                raise StarUnknown(f"star {star_id} is not in the warehouse")
            spec = read_spectrum(snap, con, star_id)
        finally:
            con.close()
        spectrum = spec.as_record() if spec is not None else None
    if star is None:
        raise ValueError("give a star_id, or a star row (and optionally a spectrum)")
    return predictor_for(warehouse).predict_star(star, spectrum)
