"""Explore: sky map and color-color diagram by label or correctness, candidate mislabels."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from startrack.dashboard import data, downloads, figures
from startrack.dashboard.components import card, control, error_alert, frame_table
from startrack.warehouse.store import WarehouseEmpty

MAX_POINTS = 20_000
SNR_MAX = 100


def layout(**_query) -> html.Div:
    try:
        labels = list(data.label_options(data.current_snapshot()))
    except WarehouseEmpty as exc:
        return error_alert(str(exc), "No data")
    controls = dbc.Row(
        [
            control(
                "Color by",
                dbc.RadioItems(
                    id="exp-color",
                    value="label",
                    inline=True,
                    options=[
                        {"label": "SDSS label", "value": "label"},
                        {"label": "right / wrong", "value": "correctness"},
                    ],
                ),
                xs=12,
                md=6,
                lg=3,
            ),
            control(
                "SDSS label",
                dcc.Dropdown(id="exp-labels", options=labels, multi=True, placeholder="all labels"),
                xs=12,
                md=6,
                lg=3,
            ),
            control(
                "S/N range",
                dcc.RangeSlider(
                    id="exp-snr",
                    min=0,
                    max=SNR_MAX,
                    value=[0, SNR_MAX],
                    marks={0: "0", 10: "10", 20: "20", 50: "50", SNR_MAX: f"{SNR_MAX}+"},
                    allowCross=False,
                ),
                xs=12,
                md=6,
                lg=3,
            ),
            control(
                "Fusion prediction",
                dbc.RadioItems(
                    id="exp-correct",
                    value="all",
                    inline=True,
                    options=[{"label": x, "value": x} for x in ("all", "right", "wrong")],
                ),
                xs=12,
                md=6,
                lg=3,
            ),
        ],
        className="g-2 mb-2",
    )
    return html.Div(
        [
            dcc.Location(id="exp-nav", refresh="callback-nav"),
            html.H4("Explore"),
            controls,
            html.P(id="exp-count", className="small text-muted"),
            dbc.Row(
                [
                    dbc.Col(
                        card(
                            "Sky (RA/Dec) — click a star to open it",
                            dcc.Loading(dcc.Graph(id="exp-sky", config={"displaylogo": False})),
                        ),
                        xs=12,
                        lg=6,
                        className="mb-3",
                    ),
                    dbc.Col(
                        card(
                            "Color-color (g−r, u−g)",
                            dcc.Loading(dcc.Graph(id="exp-cc", config={"displaylogo": False})),
                        ),
                        xs=12,
                        lg=6,
                        className="mb-3",
                    ),
                ],
                className="g-2",
            ),
            card(
                "Most confident disagreements with SDSS (candidate mislabels)",
                html.Div(id="exp-disagree"),
            ),
        ]
    )


@callback(
    Output("exp-count", "children"),
    Output("exp-sky", "figure"),
    Output("exp-cc", "figure"),
    Output("exp-disagree", "children"),
    Input("exp-color", "value"),
    Input("exp-labels", "value"),
    Input("exp-snr", "value"),
    Input("exp-correct", "value"),
)
def explore_view(
    color_by: str | None, labels: list[str] | None, snr: list[float] | None, correctness: str | None
):
    """-> (count text, sky figure, color-color figure, disagreements table)."""
    try:
        snap = data.current_snapshot()
    except WarehouseEmpty as exc:
        empty = figures.empty_figure(str(exc))
        return str(exc), empty, empty, None
    lo, hi = (snr or [0, SNR_MAX])[:2]
    pts = data.explore_points(
        snap,
        tuple(labels or ()),
        float(lo) if lo > 0 else None,
        float(hi) if hi < SNR_MAX else None,
        correctness or "all",
        "fusion",
        MAX_POINTS,
    )
    color = color_by or "label"
    count = f"{len(pts):,} stars shown" + (
        f" (a deterministic sample of at most {MAX_POINTS:,})" if len(pts) >= MAX_POINTS else ""
    )
    disagree = data.disagreements(snap, "fusion", tuple(labels or ()), 50)
    return (
        count,
        figures.sky_map_figure(pts, color),
        figures.color_color_figure(pts, color),
        [
            html.A(
                "Download the ranking (CSV, up to 100,000 stars)",
                href=downloads.mislabels_url("fusion", tuple(labels or ())),
                id="exp-disagree-download",
                className="small d-block mb-1",
            ),
            frame_table(disagree.rename(columns={"actual": "SDSS", "label": "predicted"})),
        ],
    )


def open_clicked_star(click: dict | None):
    """A click on a point of the sky map (or the color-color diagram) opens that star."""
    points = (click or {}).get("points") or []
    star_id = points[0].get("customdata") if points else None
    if isinstance(star_id, list):
        star_id = star_id[0] if star_id else None
    return f"/star/{star_id}" if isinstance(star_id, str) and star_id else dash.no_update


@callback(
    Output("exp-nav", "href"),
    Input("exp-sky", "clickData"),
    Input("exp-cc", "clickData"),
    prevent_initial_call=True,
)
def _on_click(sky_click: dict | None, cc_click: dict | None):
    return open_clicked_star(sky_click if dash.ctx.triggered_id == "exp-sky" else cc_click)


dash.register_page(
    __name__, path="/explore", name="Explore", title="StarTrack · explore", order=2, layout=layout
)
