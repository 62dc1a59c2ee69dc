"""Pieces of the star page added for day-to-day use (kept apart from the page's core layout).

Download links for the star's spectrum, the observed/rest wavelength frame; more per-star
tools live here as they come.
"""

from __future__ import annotations

import math
from functools import lru_cache

import dash_bootstrap_components as dbc
import numpy as np
from dash import html

from startrack.dashboard import data, downloads, template_answer, version_changes
from startrack.dashboard.components import error_alert
from startrack.warehouse.store import WarehouseEmpty


def spectrum_download_links(star_id: str | None) -> list | None:
    """'Download spectrum: CSV · FITS' for a star with a spectrum; nothing otherwise."""
    if not star_id:
        return None
    try:
        spec = data.spectrum(data.current_snapshot(), star_id)
    except WarehouseEmpty:
        return None
    if spec is None:
        return None
    return [
        html.Span("Download the gridded spectrum: ", className="text-muted"),
        html.A("CSV", href=downloads.spectrum_url(star_id, "csv"), id="star-dl-csv",
               download=f"spec-{star_id}.csv", className="me-2"),
        html.A("FITS", href=downloads.spectrum_url(star_id, "fits"), id="star-dl-fits",
               download=f"startrack-spec-{star_id}.fits", className="me-2"),
        html.Span("(flux, ivar, mask, vacuum wavelength; units in the header)",
                  className="text-muted"),
    ]  # fmt: skip


def wavelength_frame(
    wave: np.ndarray, z: float | None, frame: str
) -> tuple[np.ndarray, str, float]:
    """-> (wavelengths to plot, the axis note naming the frame, redshift of the line markers).

    Observed: the pixels as measured, with the rest-frame line markers moved by (1 + z) so
    they sit where the star's lines fall. Rest: wavelengths divided by (1 + z), markers at
    their laboratory wavelengths. Without a redshift the two are the same and say so.
    """
    has_z = z is not None and math.isfinite(float(z))
    zf = float(z) if has_z else 0.0
    kms = zf * 299_792.458
    if frame == "rest" and has_z:
        return wave / (1.0 + zf), f"rest frame, z = {zf:.2e} ({kms:+.0f} km/s) removed", 0.0
    if frame == "rest":
        return wave, "observed frame: no redshift known, so no rest frame", 0.0
    note = f"observed frame, z = {zf:.2e} ({kms:+.0f} km/s)" if has_z else "observed frame"
    return wave, note, zf


def template_fit_view(star_id: str | None) -> tuple[object, str | None]:
    """-> (the template-fit answer as page content, the best label to overlay or None)."""
    if not star_id:
        return None, None
    try:
        snap = data.current_snapshot()
        ans = template_answer.fit_star(snap, star_id)
    except template_answer.NoFit as exc:
        return html.P(str(exc), className="text-muted small mb-0", id="fit-result"), None
    except WarehouseEmpty as exc:
        return error_alert(str(exc), "No data"), None
    actual = (data.star_record(snap, star_id) or {}).get("label")
    preds = data.star_predictions(snap, star_id)
    fusion = preds.loc[preds["branch"] == "fusion", "label"]
    gap = ans.relative_gap
    verdict = (
        dbc.Badge(f"ambiguous: best two within {gap:.1%}", color="warning", text_color="dark",
                  id="fit-ambiguous")
        if ans.ambiguous
        else dbc.Badge(f"clear: runner-up {gap:.1%} worse" if gap is not None else "one class",
                       color="success", id="fit-clear")
    )  # fmt: skip
    agree = []
    if actual:
        agree.append(f"SDSS label {actual}: {'same' if actual == ans.best_label else 'differs'}")
    if not fusion.empty:
        same = fusion.iloc[0] == ans.best_label
        agree.append(f"fusion model {fusion.iloc[0]}: {'same' if same else 'differs'}")
    rows = [
        html.Tr([html.Td(lab), html.Td(f"{r:.4f}"), html.Td(f"+{(r / ans.rchi2 - 1):.2%}")])
        for lab, r in ans.ranking
    ]
    body = [
        html.Div(
            [
                html.Span(ans.best_label, className="fs-4 fw-bold me-2", id="fit-best"),
                html.Span(f"template {ans.best_template} · reduced χ² {ans.rchi2:.4f} "
                          f"({ans.dof} dof) · {ans.velocity_kms:+.0f} km/s · ", className="small"),
                verdict,
            ]
        ),
        html.P(" · ".join(agree), className="small text-muted mb-1"),
        html.Table(
            [html.Thead(html.Tr([html.Th("class"), html.Th("reduced χ²"), html.Th("vs best")])),
             html.Tbody(rows)],
            className="table table-sm small mb-1 w-auto",
        ),
        html.P(f"runner-up {ans.runner_up_label} · {ans.seconds * 1e3:.0f} ms · the best template "
               "is overlaid on the spectrum", className="small text-muted mb-0"),
    ]  # fmt: skip
    return html.Div(body, id="fit-result"), ans.best_label


@lru_cache(maxsize=2)
def _predictor(model_dir: str):
    from startrack.ml.inference import Predictor

    return Predictor.from_directory(model_dir)


def previous_version(snap) -> dict | None:
    """The model trained just before the current one (the models table keeps every version)."""
    models = data.models(snap)
    if len(models) < 2:
        return None
    ordered = models.sort_values("created_at", ascending=False)
    current = data.current_model(snap)
    older = ordered[ordered["version"] != (current or {}).get("version")]
    return None if older.empty else older.iloc[0].to_dict()


def previous_prediction(snap, star_id: str) -> dict | None:
    """The previous model version's fusion answer for the star: as stored, else run now.

    ``prediction_history`` keeps what each version answered when it was scored; a version
    scored before that table existed is loaded from its artifact (once per process) and run
    on demand. None when there is no earlier version.
    """
    prev = previous_version(snap)
    star = data.star_record(snap, star_id)
    if prev is None or star is None:
        return None
    stored = data.star_predictions(snap, star_id)
    now = stored.loc[stored["branch"] == "fusion", "label"]
    hist = version_changes.star_history(snap, star_id)
    kept = hist[hist["model_version"] == prev["version"]]
    if not kept.empty:
        row = kept.iloc[0]
        return {
            "version": prev["version"],
            "label": row["fusion_label"],
            "prob": float(row["fusion_prob"]),
            "current_label": None if now.empty else now.iloc[0],
            "source": f"stored by scoring run {row['scoring_run']}",
        }
    spec = data.spectrum(snap, star_id)
    out = _predictor(str(snap.root / prev["path"])).predict_star(
        star, spec.as_record() if spec is not None else None
    )
    fusion = out["branches"].get("fusion") or {}
    return {
        "version": prev["version"],
        "label": fusion.get("label"),
        "prob": fusion.get("prob"),
        "current_label": None if now.empty else now.iloc[0],
        "source": "re-run now from its artifact (scored before answers were kept)",
    }


def previous_prediction_view(star_id: str | None):
    """A line under the predictions: what the previous version said, highlighted if it changed."""
    if not star_id:
        return None
    try:
        snap = data.current_snapshot()
        prev = previous_prediction(snap, star_id)
    except WarehouseEmpty:
        return None
    except Exception as exc:  # an older artifact this code cannot load: say so, no traceback
        return html.P(f"previous model version not runnable here: {type(exc).__name__}: {exc}",
                      className="small text-muted mb-2", id="star-previous")  # fmt: skip
    if prev is None or prev["label"] is None:
        return None
    changed = prev["current_label"] is not None and prev["label"] != prev["current_label"]
    text = (
        f"Previous model {prev['version']}: fusion {prev['label']} ({100 * prev['prob']:.1f}%), "
        f"{prev['source']}"
    )
    badge = (
        dbc.Badge(f"changed class: {prev['label']} → {prev['current_label']}", color="warning",
                  text_color="dark", className="ms-2", id="star-previous-changed")
        if changed
        else dbc.Badge("same class as now", color="light", text_color="dark", className="ms-2")
    )  # fmt: skip
    return html.P([text, badge], className="small mb-2", id="star-previous")
