"""On-demand re-inference of one star with the current model (startrack.ml.inference).

``startrack.ml.on_demand.predict_star`` keeps one Predictor per warehouse per process: it loads
the model once and reloads it when the current model changes, so a model published by
``startrack train`` is used on the next click.
"""

from __future__ import annotations

from startrack.dashboard import data
from startrack.ml.on_demand import predict_star
from startrack.warehouse.store import Warehouse


class InferenceUnavailable(RuntimeError):
    """No model can run here (none trained yet)."""


def rerun_inference(snap, star_id: str) -> dict:
    """Run the current model on one star now: the Predictor's answer plus what is stored.

    Returns {branches: {dense|lstm|fusion: {label, prob, topk} | None}, latency_ms,
    model_version, stored: {branch: label}, matches: {branch: bool | None}}.
    """
    star = data.star_record(snap, star_id)
    if star is None:
        raise data.StarNotFound(f"star {star_id} is not in the warehouse")
    if data.current_model(snap) is None:
        raise InferenceUnavailable("no trained model in this warehouse: run `startrack train`")
    spec = data.spectrum(snap, star_id)
    try:
        result = predict_star(
            Warehouse(snap.root), star=star, spectrum=spec.as_record() if spec else None
        )
    except LookupError as exc:
        raise InferenceUnavailable(str(exc)) from None
    stored = data.star_predictions(snap, star_id)
    stored_labels = dict(zip(stored["branch"], stored["label"], strict=True))
    matches = {}
    for branch, pred in result["branches"].items():
        old = stored_labels.get(branch)
        matches[branch] = None if pred is None or old is None else pred["label"] == old
    return {**result, "stored": stored_labels, "matches": matches}
