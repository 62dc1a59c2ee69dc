"""Sky search: a cone search by RA/Dec (decimal or sexagesimal) and radius, nearest first.

``/cone?ra=...&dec=...&radius=...`` opens with the search done, so a position is a link
(the explore page's sky map and scripts use it). Parsing and the query live in
:mod:`startrack.dashboard.sky_search`.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from startrack.dashboard import data, sky_search
from startrack.dashboard.components import card, control, error_alert, frame_table, info_alert
from startrack.warehouse.store import WarehouseEmpty

SHOWN = sky_search.DEFAULT_LIMIT


def layout(ra: str | None = None, dec: str | None = None, radius: str | None = None, **_q):
    inputs = dbc.Row(
        [
            control(
                "RA (deg, or h:m:s)",
                dbc.Input(
                    id="cone-ra", value=ra or "", placeholder="150.1166 or 10:00:28.0", type="text"
                ),
                xs=12,
                md=4,
                lg=3,
            ),
            control(
                "Dec (deg, or ±d:m:s)",
                dbc.Input(
                    id="cone-dec", value=dec or "", placeholder="2.2058 or +02:12:21", type="text"
                ),
                xs=12,
                md=4,
                lg=3,
            ),
            control(
                "Radius (arcsec, arcmin, deg; bare number = arcmin)",
                dbc.Input(id="cone-radius", value=radius or "2 arcmin", type="text"),
                xs=8,
                md=3,
                lg=3,
            ),
            dbc.Col(
                dbc.Button(
                    "Search", id="cone-go", color="primary", n_clicks=0, className="mt-3 w-100"
                ),
                xs=4,
                md=1,
            ),
        ],
        className="g-2 mb-3 align-items-end",
    )
    return html.Div(
        [
            html.H4("Sky search"),
            html.P(
                f"The stars nearest a position, nearest first (at most {SHOWN}), with the SDSS "
                "label and the model's predictions. Script: /api/cone?ra=&dec=&radius=.",
                className="small text-muted",
            ),
            inputs,
            dcc.Store(id="cone-initial", data=bool(ra and dec)),
            dcc.Loading(html.Div(id="cone-result"), type="default"),
        ]
    )


def cone_view(ra: str | None, dec: str | None, radius: str | None):
    """The result card, or a one-line message."""
    try:
        cone = sky_search.parse_cone(ra, dec, radius)
        snap = data.current_snapshot()
    except sky_search.BadPosition as exc:
        return error_alert(str(exc), "Cannot read the position")
    except WarehouseEmpty as exc:
        return error_alert(str(exc), "No data")
    df = sky_search.cone_search(snap, cone, SHOWN)
    head = html.P(cone.describe(), id="cone-summary", className="small text-muted mb-1")
    if df.empty:
        return [head, info_alert("no stars within the radius: try a larger one")]
    for col in ("ra", "dec"):
        df[col] = df[col].map(lambda v: f"{v:.5f}")
    df["distance_arcsec"] = df["distance_arcsec"].map(lambda v: f"{v:,.1f}")
    title = f"{len(df)} star{'s' if len(df) != 1 else ''}" + (
        f" (the nearest {SHOWN})" if len(df) >= SHOWN else ""
    )
    return [head, card(title, html.Div(frame_table(df, max_rows=SHOWN), className="text-nowrap"))]


@callback(
    Output("cone-result", "children"),
    Input("cone-go", "n_clicks"),
    Input("cone-ra", "n_submit"),
    Input("cone-dec", "n_submit"),
    Input("cone-radius", "n_submit"),
    Input("cone-initial", "data"),
    State("cone-ra", "value"),
    State("cone-dec", "value"),
    State("cone-radius", "value"),
)
def _on_search(_n, _submit_ra, _submit_dec, _submit_r, initial, ra, dec, radius):
    if dash.ctx.triggered_id == "cone-initial" and not initial:
        return info_alert("Enter a position and a radius, then Search.")
    return cone_view(ra, dec, radius)


dash.register_page(
    __name__, path="/cone", name="Sky search", title="StarTrack · sky search", order=6,
    layout=layout,
)  # fmt: skip
