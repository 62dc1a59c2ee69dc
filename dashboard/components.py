"""Small layout helpers shared by the pages (tables with star links, alerts, number formats)."""

from __future__ import annotations

import math
from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html


def fmt(value: Any, digits: int = 3) -> str:
    """Human-readable cell text: blanks for missing, rounded floats, ISO times."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, tuple, dict)):
        text = str(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def star_link(star_id: str) -> dcc.Link:
    return dcc.Link(star_id, href=f"/star/{star_id}", className="star-link")


def frame_table(
    df: pd.DataFrame, max_rows: int = 500, link_column: str | None = "star_id", **kwargs
) -> dbc.Table | html.P:
    """A bootstrap table of a DataFrame; ``link_column`` cells link to the star's page."""
    if df is None or df.empty:
        return html.P("nothing to show", className="text-muted small")
    shown = df.head(max_rows)
    header = html.Thead(html.Tr([html.Th(str(c)) for c in shown.columns]))
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for col, value in zip(shown.columns, rec, strict=True):
            if col == link_column and isinstance(value, str):
                cells.append(html.Td(star_link(value)))
            else:
                cells.append(html.Td(fmt(value)))
        rows.append(html.Tr(cells))
    table = dbc.Table(
        [header, html.Tbody(rows)], striped=True, hover=True, size="sm", className="mb-1",
        **kwargs,
    )  # fmt: skip
    note = (
        html.P(f"first {max_rows:,} of {len(df):,} rows", className="text-muted small")
        if len(df) > max_rows
        else None
    )
    return html.Div([html.Div(table, className="table-responsive"), note])


def error_alert(message: str, title: str = "Error") -> dbc.Alert:
    return dbc.Alert([html.Strong(f"{title}: "), message], color="danger", className="my-2")


def info_alert(message: str) -> dbc.Alert:
    return dbc.Alert(message, color="info", className="my-2")


def card(title: str, body: Any, **kwargs) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(title), dbc.CardBody(body)], className="mb-3 h-100", **kwargs)


def control(title: str, component: Any, **widths: int) -> dbc.Col:
    """A labelled control column: a small muted title above the input, responsive widths."""
    return dbc.Col([html.Div(title, className="small text-muted"), component], **widths)
