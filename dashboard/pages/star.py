"""Star lookup: SDSS classification, the three model predictions, spectrum, photometry.

The callbacks are decorated with ``@callback``; Dash returns the function unchanged, so tests
call them (``lookup``, ``spectrum_view``, ``rerun``) directly.
"""

from __future__ import annotations

import itertools
import logging

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, State, callback, ctx, dcc, html

from startrack.dashboard import data, figures, overlay, star_extras
from startrack.dashboard.components import card, control, error_alert, fmt, info_alert
from startrack.labels import within_one_subtype
from startrack.lines import DEFAULT_GROUPS, GROUPS
from startrack.sdss_urls import star_links
from startrack.star_id import EXAMPLE, InvalidStarId, from_parts, parse_star_id
from startrack.vocabulary import BANDS
from startrack.warehouse.store import WarehouseEmpty

log = logging.getLogger(__name__)


BRANCH_TITLES = {
    "dense": "Dense (photometry)",
    "lstm": "LSTM (spectrum)",
    "fusion": "Fusion (both)",
}
SMOOTH_MARKS = {0: "off", 1: "1", 2: "2", 4: "4", 8: "8 px"}
HIDE = {"display": "none"}
SHOW: dict = {}


# ----------------------------------------------------------------------------- layout
def _examples() -> list:
    try:
        ids = data.example_star_ids(data.current_snapshot())
    except WarehouseEmpty:
        return []
    links = [dcc.Link(s, href=f"/star/{s}", className="me-2 example-link") for s in ids]
    return [html.Span("Examples: ", className="text-muted small me-1"), *links]


def layout(star_id: str | None = None, **_query) -> html.Div:
    """The page: the lookup card and its alert, then the (hidden until a star) result."""
    return html.Div(
        [
            dcc.Store(id="star-initial", data=star_id),
            dcc.Store(id="star-current"),
            dcc.Store(id="star-fit-label"),
            dbc.Row(
                [
                    dbc.Col(_lookup_card(star_id), xs=12, lg=5, xl=4),
                    dbc.Col(html.Div(id="star-alert"), xs=12, lg=7, xl=8),
                ]
            ),
            _result(),
        ]
    )


def _lookup_card(star_id: str | None) -> dbc.Card:
    """Id box with Look up / Random, the plate-MJD-fiber fields, example ids."""
    return dbc.Card(
        dbc.CardBody(
            [
                html.Label(
                    "Star id (PLATE-MJD-FIBER or spec file name)",
                    htmlFor="star-input",
                    className="form-label small text-muted",
                ),
                dbc.InputGroup(
                    [
                        dbc.Input(
                            id="star-input",
                            value=star_id or "",
                            placeholder=EXAMPLE,
                            debounce=False,
                            type="text",
                            autoComplete="off",
                        ),
                        dbc.Button("Look up", id="star-go", color="primary", n_clicks=0),
                        dbc.Button(
                            "Random", id="star-random", color="secondary", n_clicks=0, outline=True
                        ),
                    ],
                    className="mb-2",
                ),
                dbc.Row(
                    [
                        dbc.Col(
                            dbc.Input(id="star-plate", placeholder="plate", type="text", size="sm"),
                            xs=3,
                        ),
                        dbc.Col(
                            dbc.Input(id="star-mjd", placeholder="MJD", type="text", size="sm"),
                            xs=3,
                        ),
                        dbc.Col(
                            dbc.Input(id="star-fiber", placeholder="fiber", type="text", size="sm"),
                            xs=3,
                        ),
                        dbc.Col(
                            dbc.Button(
                                "Go",
                                id="star-go-parts",
                                size="sm",
                                color="primary",
                                outline=True,
                                n_clicks=0,
                                className="w-100",
                            ),
                            xs=3,
                        ),
                    ],
                    className="g-1 mb-2",
                ),
                html.Div(_examples(), className="small"),
            ]
        ),
        className="mb-3",
    )


def _spectrum_controls() -> dbc.Row:
    """Line markers, smoothing, wavelength frame, template overlays."""
    return dbc.Row(
        [
            control(
                "Line markers",
                dbc.Checklist(
                    id="star-lines",
                    options=[{"label": g, "value": g} for g in GROUPS],
                    value=list(DEFAULT_GROUPS),
                    inline=True,
                    className="small",
                ),
                xs=12,
                lg=6,
            ),
            control(
                "Smoothing (Gaussian σ, pixels)",
                dcc.Slider(id="star-smooth", min=0, max=8, step=None, value=0, marks=SMOOTH_MARKS),
                xs=12,
                md=6,
                lg=3,
            ),
            control(
                "Wavelength frame",
                dbc.RadioItems(
                    id="star-frame",
                    value="observed",
                    inline=True,
                    className="small",
                    options=[
                        {"label": "observed", "value": "observed"},
                        {"label": "rest (z removed)", "value": "rest"},
                    ],
                ),
                xs=12,
                md=6,
                lg=3,
            ),
            control(
                "Template overlay",
                dbc.Checklist(
                    id="star-templates",
                    value=["predicted", "actual"],
                    inline=True,
                    className="small",
                    options=[
                        {"label": "predicted class", "value": "predicted"},
                        {"label": "SDSS class", "value": "actual"},
                    ],
                ),
                xs=12,
                md=6,
                lg=3,
            ),
        ],
        className="g-2",
    )


def _rerun_box() -> html.Div:
    return html.Div(
        [
            dbc.Button("Re-run inference", id="star-rerun", color="warning", n_clicks=0, size="sm"),
            dcc.Loading(html.Div(id="star-rerun-out", className="mt-2"), type="dot"),
        ]
    )


def _result() -> html.Div:
    """Star info, previous prediction, spectrum, template fit and re-run cards."""
    return html.Div(
        id="star-result",
        style=HIDE,
        children=[
            html.Div(id="star-info"),
            html.Div(id="star-previous-box"),
            dbc.Card(
                [
                    dbc.CardHeader("Spectrum"),
                    dbc.CardBody(
                        [
                            _spectrum_controls(),
                            html.Div(id="star-spectrum-downloads", className="small mt-1"),
                            # the graph mounts with the first star: plotly.js (the biggest
                            # bundle) then loads only when there is a spectrum to draw
                            dcc.Loading(html.Div(id="star-graph-box"), type="default"),
                        ]
                    ),
                ],
                className="mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader("The pipeline's own answer: SDSS-method template fit"),
                    dbc.CardBody(
                        [
                            dbc.Button(
                                "Run the template fit",
                                id="star-fit",
                                color="info",
                                n_clicks=0,
                                size="sm",
                                outline=True,
                            ),
                            dcc.Loading(html.Div(id="star-fit-out", className="mt-2"), type="dot"),
                        ]
                    ),
                ],
                className="mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader("Re-run inference with the current model"),
                    dbc.CardBody(_rerun_box()),
                ],
                className="mb-3",
            ),
        ],
    )


# ----------------------------------------------------------------------------- lookup
def resolve_query(
    trigger: str | None, text: str | None, plate=None, mjd=None, fiber=None, initial=None
) -> str | None:
    """Canonical star id of what the user asked for (raises InvalidStarId); None = nothing yet."""
    if trigger == "star-random":
        sid = data.random_star_id(data.current_snapshot())
        if sid is None:
            raise InvalidStarId("the warehouse has no stars yet")
        return sid
    if trigger == "star-go-parts":
        return from_parts(plate, mjd, fiber).star_id
    if trigger in ("star-go", "star-input"):
        return parse_star_id(text).star_id
    if initial:
        return parse_star_id(initial).star_id
    return None


def lookup(
    trigger: str | None, text: str | None, plate=None, mjd=None, fiber=None, initial=None
) -> tuple:
    """-> (current star id, alert, info children, result style)."""
    try:
        text, initial = _text(text), _text(initial)
        star_id = resolve_query(trigger, text, plate, mjd, fiber, initial)
        if star_id is None:
            hint = info_alert(
                f"Enter a star id such as {EXAMPLE}, pick an example, or press Random."
            )
            return None, hint, None, HIDE
        snap = data.current_snapshot()
        rec = data.star_record(snap, star_id)
        if rec is None:
            msg = f"star {star_id} is not in the warehouse (snapshot {snap.id}). Try Random or an example."  # noqa: E501
            return None, error_alert(msg, "Unknown star"), None, HIDE
        return star_id, None, star_info(snap, star_id, rec), SHOW
    except InvalidStarId as exc:
        return None, error_alert(str(exc), "Invalid id"), None, HIDE
    except WarehouseEmpty as exc:
        return None, error_alert(str(exc), "No data"), None, HIDE


def _text(value) -> str | None:
    """A browser-sent value as text (a number typed in a field arrives as a number)."""
    return value if value is None or isinstance(value, str) else str(value)[:200]


@callback(
    Output("star-current", "data"),
    Output("star-alert", "children"),
    Output("star-info", "children"),
    Output("star-result", "style"),
    Input("star-go", "n_clicks"),
    Input("star-input", "n_submit"),
    Input("star-go-parts", "n_clicks"),
    Input("star-random", "n_clicks"),
    State("star-input", "value"),
    State("star-plate", "value"),
    State("star-mjd", "value"),
    State("star-fiber", "value"),
    Input("star-initial", "data"),
)
def _on_lookup(go, submit, parts, rand, text, plate, mjd, fiber, initial):
    trigger = ctx.triggered_id
    if trigger == "star-initial":
        trigger = None
    return lookup(trigger, text, plate, mjd, fiber, initial)


@callback(
    Output("star-graph-box", "children"),
    Input("star-current", "data"),
    State("star-graph-box", "children"),
)
def spectrum_graph(star_id: str | None, present) -> object:
    """Mount the spectrum graph once, when the first star is shown."""
    if not star_id or present:
        return dash.no_update
    return dcc.Graph(
        id="star-spectrum", config={"displaylogo": False}, figure=figures.empty_figure("")
    )


# ----------------------------------------------------------------------------- star info
def _verdict(actual: str | None, predicted: str | None) -> dbc.Badge:
    if not actual:
        return dbc.Badge("no SDSS label", color="secondary", className="ms-1")
    if predicted == actual:
        return dbc.Badge("✓ right", color="success", className="ms-1 verdict-right")
    if within_one_subtype(actual, predicted):
        return dbc.Badge(
            "≈ within one subtype",
            color="warning",
            text_color="dark",
            className="ms-1 verdict-near",
        )
    return dbc.Badge("✗ wrong", color="danger", className="ms-1 verdict-wrong")


def _topk_bars(pairs: list[tuple[str, float]], actual: str | None) -> html.Div:
    rows = []
    for lab, p in pairs:
        color = "success" if lab == actual else "info"
        rows.append(
            dbc.Row(
                [
                    dbc.Col(html.Span(lab, className="small fw-semibold"), width=3),
                    dbc.Col(
                        dbc.Progress(
                            value=100 * p, color=color, style={"height": "0.8rem"}, className="mt-1"
                        ),
                        width=6,
                    ),
                    dbc.Col(html.Span(f"{100 * p:.1f}%", className="small"), width=3),
                ],
                className="g-1",
            )
        )
    return html.Div(rows)


def _continuous_type(row) -> html.Div | None:
    """The model's continuous MK type with its spread, e.g. 'type 52.3 ± 1.0 (K2.3)'."""
    value, err = row.get("spectral_type"), row.get("spectral_type_err")
    if value is None or not np.isfinite(value):
        return None
    letter = "OBAFGKM"[min(6, int(value // 10))]
    text = f"type {value:.1f} ± {err:.1f} ({letter}{value - 10 * 'OBAFGKM'.index(letter):.1f})"
    return html.Div(text, className="small text-muted pred-type")


FLAG_TEXT = {
    "low_snr": "low S/N",
    "heavy_masking": "heavily masked",
    "branches_disagree": "branches disagree",
    "low_confidence": "low confidence",
    "out_of_distribution": "unlike any training star",
}


def quality_flags(preds) -> html.Div | None:
    """Badges for the star's quality flags (the same on every branch's row)."""
    if not hasattr(preds, "columns") or "flags" not in preds.columns or preds.empty:
        return None
    raw = preds["flags"].iloc[0]
    flags = [str(f) for f in raw] if raw is not None and not isinstance(raw, str) else []
    if not flags:
        return html.Div(
            dbc.Badge("no quality warnings", color="success", className="me-1"),
            id="star-flags",
            className="mb-2",
        )
    return html.Div(
        [html.Span("Do not trust blindly: ", className="small me-1")]
        + [
            dbc.Badge(FLAG_TEXT.get(f, f), color="warning", text_color="dark", className="me-1")
            for f in flags
        ],
        id="star-flags",
        className="mb-2",
    )


#: Why a branch gives no answer for a star that was scored.
NO_INPUT = {
    "lstm": "no spectrum",
    "dense": "no colour: fewer than two neighbouring bands of photometry",
    "fusion": "no spectrum and no colour",
}


def prediction_cards(preds, actual: str | None, title_suffix: str = "") -> dbc.Row:
    """One card per branch: label, probability, top-k, right/wrong against SDSS."""
    cols = []
    by_branch = (
        {row["branch"]: row for _, row in preds.iterrows()} if hasattr(preds, "iterrows") else preds
    )
    for branch, title in BRANCH_TITLES.items():
        row = by_branch.get(branch)
        if row is None:
            # a scored star lacks a branch's answer when it lacks that branch's input
            missing = "no prediction (" + NO_INPUT[branch] + ")"
            body = html.P(
                missing if branch == "lstm" or by_branch else "not scored yet",
                className="text-muted small mb-0",
            )
        else:
            body = [
                html.Div(
                    [
                        html.Span(row["label"], className="fs-4 fw-bold pred-label"),
                        html.Span(f" {100 * float(row['prob']):.1f}%", className="text-muted ms-1"),
                        _verdict(actual, row["label"]),
                    ],
                ),
                _continuous_type(row),
                _topk_bars(data.topk_pairs(row.get("topk")), actual),
            ]
        cols.append(
            dbc.Col(
                card(title + title_suffix, body, id=f"pred-card-{branch}"),
                xs=12,
                md=4,
                className="mb-2",
            )
        )
    return dbc.Row(cols, className="g-2")


def _kv(rows: list[tuple[str, object]]) -> dbc.Table:
    return dbc.Table(
        html.Tbody(
            [
                html.Tr(
                    [
                        html.Th(k, className="small text-muted fw-normal"),
                        html.Td(fmt(v, 6) if isinstance(v, float) else fmt(v)),
                    ]
                )
                for k, v in rows
            ]
        ),
        size="sm",
        borderless=True,
        className="mb-0",
    )


def star_info(snap, star_id: str, rec: dict) -> list:
    """Classification, predictions, photometry and metadata of one star."""
    preds = data.star_predictions(snap, star_id)
    actual = rec.get("label")
    classification = _kv(
        [
            ("class", rec.get("class")),
            ("subclass (raw SDSS)", rec.get("subclass")),
            ("label (normalized)", actual),
            ("family", rec.get("label_family")),
            ("spectral type (O0=0 … M9=69)", rec.get("spectral_type")),
            ("luminosity class", rec.get("luminosity_class")),
            ("ELODIE type", rec.get("elodie_sptype") or "—"),
        ]
    )
    bands = BANDS
    phot = dbc.Table(
        [
            html.Thead(html.Tr([html.Th("")] + [html.Th(b) for b in bands])),
            html.Tbody(
                [
                    html.Tr(
                        [html.Th("mag", className="fw-normal")]
                        + [html.Td(fmt(rec.get(f"mag_{b}"), 4)) for b in bands]
                    ),
                    html.Tr(
                        [html.Th("± err", className="fw-normal")]
                        + [html.Td(fmt(rec.get(f"magerr_{b}"), 2)) for b in bands]
                    ),
                ]
            ),
        ],
        size="sm",
        className="mb-2",
    )
    colors = []
    for a, b in itertools.pairwise(bands):
        ma, mb = rec.get(f"mag_{a}"), rec.get(f"mag_{b}")
        colors.append((f"{a} − {b}", None if ma is None or mb is None else ma - mb))
    z = rec.get("z")
    meta = _kv(
        [
            ("RA, Dec [deg]", f"{fmt(rec.get('ra'), 7)}, {fmt(rec.get('dec'), 7)}"),
            ("z", f"{fmt(z, 3)} ± {fmt(rec.get('zerr'), 2)}"),
            ("radial velocity [km/s]", None if z is None else float(z) * 299_792.458),
            ("S/N (median per pixel)", rec.get("snr")),
            ("specobjid", rec.get("specobjid")),
            ("has spectrum", rec.get("has_spectrum")),
            ("source / ingest run", f"{rec.get('source')} / {rec.get('ingest_run')}"),
        ]
    )
    model = preds["model_version"].iloc[0] if not preds.empty else None
    links = star_links(rec["plate"], rec["mjd"], rec["fiberid"], rec.get("specobjid"))
    sdss = [  # the same URLs `startrack fetch` downloads from
        html.A(text, href=links[key], id=f"star-{key}", target="_blank", className="small me-3")
        for key, text in (("skyserver", "SkyServer"), ("sas", "SAS spec-lite"))
    ]
    header = html.Div(
        [
            html.H4(
                ["Star ", html.Span(star_id, id="star-title-id")], className="mb-0 d-inline me-3"
            ),
            dcc.Link("permalink", href=f"/star/{star_id}", className="small me-3"),
            html.A("JSON", href=f"/api/star/{star_id}", className="small me-3", target="_blank"),
            *sdss,
            html.Span(
                f"snapshot {snap.id}" + (f" · model {model}" if model else ""),
                className="small text-muted",
            ),
        ],
        className="mb-2",
    )
    return [
        header,
        dbc.Row(
            [
                dbc.Col(
                    card("SDSS classification", classification), xs=12, md=6, xl=3, className="mb-2"
                ),
                dbc.Col(
                    [quality_flags(preds), prediction_cards(preds, actual)],
                    xs=12,
                    xl=9,
                    className="mb-2",
                ),
            ],
            className="g-2",
        ),
        dbc.Row(
            [
                dbc.Col(
                    card("Photometry (SDSS ugriz, AB)", [phot, _kv(colors)]),
                    xs=12,
                    md=6,
                    className="mb-2",
                ),
                dbc.Col(card("Metadata", meta), xs=12, md=6, className="mb-2"),
            ],
            className="g-2",
        ),
    ]


# ----------------------------------------------------------------------------- spectrum
@callback(
    Output("star-spectrum", "figure"),
    Input("star-current", "data"),
    Input("star-lines", "value"),
    Input("star-smooth", "value"),
    Input("star-templates", "value"),
    Input("star-frame", "value"),
    Input("star-fit-label", "data"),
)
def spectrum_view(
    star_id: str | None,
    groups: list[str] | None,
    smooth: float | None,
    overlays: list[str] | None,
    frame: str | None = "observed",
    fit_label: str | None = None,
):
    """The spectrum figure of the current star (or a figure saying why there is none).

    The arguments come from the browser: anything may arrive (a hand-made request), so each is
    checked and a bad one gets a figure that says so.
    """
    if not star_id:
        return figures.empty_figure("")
    try:
        star_id = parse_star_id(star_id if isinstance(star_id, str) else None).star_id
        groups = [g for g in _strings(groups) if g in GROUPS]
        smooth = min(max(float(smooth or 0), 0.0), max(SMOOTH_MARKS))
        overlays = _strings(overlays)
        snap = data.current_snapshot()
    except InvalidStarId as exc:
        return figures.empty_figure(str(exc))
    except (TypeError, ValueError, OverflowError):
        return figures.empty_figure("invalid spectrum options: reload the page")
    except WarehouseEmpty as exc:
        return figures.empty_figure(str(exc))
    if smooth != smooth:  # NaN
        smooth = 0.0
    spec = data.spectrum(snap, star_id)
    if spec is None:
        return figures.empty_figure(f"{star_id} has photometry only: no spectrum in the warehouse")
    s, e = spec.pix_start, spec.pix_end
    wave = data.wavelength()[s:e]
    flux, ivar, mask = spec.flux[s:e], spec.ivar[s:e], spec.mask[s:e]
    templates = {}
    rec = data.star_record(snap, star_id) or {}
    preds = data.star_predictions(snap, star_id)
    wanted = []
    if "predicted" in (overlays or []) and not preds.empty:
        fusion = preds[preds["branch"] == "fusion"]
        label = (fusion if not fusion.empty else preds)["label"].iloc[0]
        wanted.append((f"template {label} (predicted)", label))
    if "actual" in (overlays or []) and rec.get("label"):
        wanted.append((f"template {rec['label']} (SDSS)", rec["label"]))
    if fit_label:
        wanted.append((f"template {fit_label} (best χ² fit)", fit_label))
    path = data.templates_path()
    for name, label in wanted:
        tmpl = overlay.template_on_grid(label, path)
        if tmpl is None:
            continue
        scaled = overlay.scale_template(flux.astype(np.float64), ivar, mask, tmpl[s:e])
        if scaled is not None:
            templates[name] = scaled
    wave, note, line_z = star_extras.wavelength_frame(wave, rec.get("z"), frame or "observed")
    return figures.spectrum_figure(
        wave,
        flux,
        ivar,
        mask,
        line_groups=groups or [],
        smooth_px=float(smooth or 0),
        templates=templates,
        frame_note=note,
        line_redshift=line_z,
    )


def _strings(value) -> list[str]:
    """The strings of a list a browser sent (anything else: none)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@callback(Output("star-previous-box", "children"), Input("star-current", "data"))
def _on_star_previous(star_id: str | None):
    return star_extras.previous_prediction_view(star_id)


@callback(
    Output("star-fit-out", "children"),
    Output("star-fit-label", "data"),
    Input("star-fit", "n_clicks"),
    Input("star-current", "data"),
    prevent_initial_call=True,
)
def _on_fit(n_clicks: int | None, star_id: str | None):
    """Run the template fit on a click; a new star clears the previous star's answer."""
    if ctx.triggered_id == "star-current" or not n_clicks:
        return None, None
    return star_extras.template_fit_view(star_id)


@callback(Output("star-spectrum-downloads", "children"), Input("star-current", "data"))
def _on_star_downloads(star_id: str | None):
    return star_extras.spectrum_download_links(star_id)


# ----------------------------------------------------------------------------- re-run
def rerun(n_clicks: int | None, star_id: str | None):
    """Run the current model on the star now and compare with the stored prediction."""
    if not n_clicks or not star_id:
        return None
    try:
        star_id = parse_star_id(star_id if isinstance(star_id, str) else None).star_id
    except InvalidStarId as exc:
        return error_alert(str(exc), "Invalid id")
    from startrack.dashboard.rerun import InferenceUnavailable, rerun_inference

    try:
        snap = data.current_snapshot()
        result = rerun_inference(snap, star_id)
    except (InferenceUnavailable, data.StarNotFound, WarehouseEmpty) as exc:
        return error_alert(str(exc), "Cannot run the model")
    except Exception as exc:  # the model code is another part's; never show a traceback
        log.exception("re-run inference failed for %s", star_id)
        return error_alert(f"{type(exc).__name__}: {exc}", "Inference failed")
    actual = (data.star_record(snap, star_id) or {}).get("label")
    rows = {}
    for branch, pred in result["branches"].items():
        if pred is not None:
            rows[branch] = {
                "branch": branch,
                "label": pred["label"],
                "prob": pred["prob"],
                "topk": pred["topk"],
            }
    matches = result.get("matches", {})
    same = [b for b, m in matches.items() if m]
    differ = [b for b, m in matches.items() if m is False]
    summary = [
        html.Span(
            f"model {result.get('model_version')} · {result['latency_ms']:.0f} ms · ",
            id="star-rerun-latency",
        ),
        dbc.Badge(f"matches stored: {', '.join(same)}", color="success", className="me-1")
        if same
        else None,
        dbc.Badge(f"differs from stored: {', '.join(differ)}", color="danger") if differ else None,
    ]
    return html.Div(
        [html.P(summary, className="small mb-2"), prediction_cards(rows, actual, " · now")],
        id="star-rerun-result",
    )


@callback(
    Output("star-rerun-out", "children"),
    Input("star-rerun", "n_clicks"),
    Input("star-current", "data"),
    prevent_initial_call=True,
)
def _on_rerun(n_clicks: int | None, star_id: str | None):
    if ctx.triggered_id == "star-current":  # a new star: clear the previous star's answer
        return None
    return rerun(n_clicks, star_id)


dash.register_page(
    __name__,
    path="/",
    path_template="/star/<star_id>",
    name="Star",
    title="StarTrack · star",
    order=0,
    layout=layout,
)
