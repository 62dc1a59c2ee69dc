"""Many stars at once: paste ids or upload a CSV, get one row per star, download CSV/Parquet.

Same reading rules and the same single join as ``POST /api/stars``
(:mod:`startrack.dashboard.many_stars`). The downloads re-run the lookup from the inputs
(one query, fast) instead of holding 100,000 rows in the browser.
"""

from __future__ import annotations

import base64

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html

from startrack.dashboard import data, many_stars
from startrack.dashboard.components import card, error_alert, frame_table, info_alert
from startrack.dashboard.id_lists import MAX_IDS, BadIdList, IdList, from_csv, from_text
from startrack.warehouse.store import WarehouseEmpty

SHOWN_ROWS = 500
PLACEHOLDER = "2942-54521-0124\nspec-0266-51630-0003.fits\n266 51630 4\n…"


def layout(**_query) -> html.Div:
    inputs = dbc.Row(
        [
            dbc.Col(
                [
                    html.Label(
                        "Star ids, one per line (or comma separated): any id form",
                        htmlFor="many-text",
                        className="form-label small text-muted",
                    ),
                    dbc.Textarea(
                        id="many-text",
                        rows=6,
                        placeholder=PLACEHOLDER,
                        spellCheck=False,
                        className="font-monospace mb-2",
                    ),
                    dbc.Button("Look up", id="many-go", color="primary", n_clicks=0),
                ],
                xs=12,
                lg=7,
            ),
            dbc.Col(
                [
                    html.Div(
                        "…or a CSV file: plate, mjd, fiberid columns (CasJobs names) or a "
                        "star_id column",
                        className="small text-muted mb-1",
                    ),
                    dcc.Upload(
                        id="many-upload",
                        children=html.Div(["Drop a CSV here or ", html.A("choose a file")]),
                        className="many-upload border border-secondary rounded text-center p-4",
                        multiple=False,
                    ),
                    html.Div(id="many-upload-name", className="small text-muted mt-1"),
                ],
                xs=12,
                lg=5,
            ),
        ],
        className="g-3 mb-3",
    )
    downloads = html.Div(
        [
            dbc.Button(
                "Download CSV",
                id="many-dl-csv",
                size="sm",
                color="secondary",
                outline=True,
                n_clicks=0,
                className="me-2",
            ),
            dbc.Button(
                "Download Parquet",
                id="many-dl-parquet",
                size="sm",
                color="secondary",
                outline=True,
                n_clicks=0,
            ),
            dcc.Download(id="many-download"),
        ],
        id="many-downloads",
        className="mb-2",
    )
    return html.Div(
        [
            html.H4("Many stars"),
            html.P(
                f"Up to {MAX_IDS:,} stars in one go: SDSS label, the three predictions with "
                "their probabilities, S/N; ids the warehouse lacks are listed, not dropped. "
                "Scripts: POST the same list to /api/stars (JSON, CSV or Parquet).",
                className="small text-muted",
            ),
            inputs,
            dcc.Store(id="many-source"),
            html.Div(downloads, id="many-download-box", style={"display": "none"}),
            dcc.Loading(html.Div(id="many-result"), type="default"),
        ]
    )


def _upload_bytes(contents: str) -> bytes:
    """dcc.Upload's data URL ('data:text/csv;base64,....') -> the file's bytes."""
    try:
        return base64.b64decode(contents.split(",", 1)[1], validate=False)
    except (IndexError, ValueError):
        raise BadIdList("the upload could not be read: send a CSV file") from None


def read_ids(source: str | None, text: str | None, contents: str | None) -> IdList | None:
    if source == "upload" and contents:
        return from_csv(_upload_bytes(contents))
    if text and text.strip():
        return from_text(text)
    return None


def _counts_line(s: dict) -> str:
    parts = [f"{s['found']:,} of {s['requested']:,} found"]
    if s["unknown"]:
        parts.append(f"{s['unknown']:,} not in the warehouse")
    if s["invalid"]:
        parts.append(f"{s['invalid']:,} unreadable")
    if s["duplicates"]:
        parts.append(f"{s['duplicates']:,} duplicates merged")
    return " · ".join(parts)


def many_view(source: str | None, text: str | None, contents: str | None):
    """-> (result children, download box style)."""
    hidden = {"display": "none"}
    try:
        ids = read_ids(source, text, contents)
        if ids is None:
            return info_alert("Paste star ids or upload a CSV, then Look up."), hidden
        if not ids.ids and not ids.invalid:
            return error_alert("no star ids found in the input", "Nothing to look up"), hidden
        snap = data.current_snapshot()
        df = many_stars.lookup_many(snap, ids)
    except BadIdList as exc:
        return error_alert(str(exc), "Cannot read the list"), hidden
    except WarehouseEmpty as exc:
        return error_alert(str(exc), "No data"), hidden
    s = many_stars.summary(ids, df)
    found = df["found"].astype(bool)
    shown = df[found].drop(columns=["found"])
    for col in ("ra", "dec"):  # degrees to ~0.04 arcsec, not 3 significant digits
        shown[col] = shown[col].map(lambda v: f"{v:.5f}" if v == v else None)
    children = [
        html.P(_counts_line(s), id="many-summary", className="fw-semibold mb-2"),
        card(
            f"Stars ({s['found']:,})",
            html.Div(frame_table(shown, max_rows=SHOWN_ROWS), className="text-nowrap"),
        ),
    ]
    if s["unknown"]:
        unknown = df.loc[~found, ["star_id", "input"]]
        children.append(
            html.Div(
                card(
                    f"Not in the warehouse ({s['unknown']:,})",
                    frame_table(unknown, max_rows=SHOWN_ROWS, link_column=None),
                ),
                id="many-unknown",
                className="mt-3",
            )
        )
    if s["invalid"]:
        children.append(
            html.Div(
                card(
                    f"Could not read ({s['invalid']:,})",
                    frame_table(
                        many_stars.invalid_frame(ids), max_rows=SHOWN_ROWS, link_column=None
                    ),
                ),
                id="many-invalid",
                className="mt-3",
            )
        )
    return html.Div(children, className="mb-3"), {}


@callback(
    Output("many-result", "children"),
    Output("many-download-box", "style"),
    Output("many-source", "data"),
    Output("many-upload-name", "children"),
    Input("many-go", "n_clicks"),
    Input("many-upload", "contents"),
    State("many-upload", "filename"),
    State("many-text", "value"),
    prevent_initial_call=True,
)
def _on_lookup(_go, contents, filename, text):
    source = "upload" if ctx.triggered_id == "many-upload" and contents else "text"
    name = f"uploaded: {filename}" if source == "upload" and filename else dash.no_update
    result, style = many_view(source, text, contents)
    return result, style, source, name


def download(kind: str, source: str | None, text: str | None, contents: str | None):
    """The whole result (found, unknown and unreadable entries) as a CSV or Parquet file."""
    try:
        ids = read_ids(source, text, contents)
        if ids is None:
            return dash.no_update
        df = many_stars.full_table(ids, many_stars.lookup_many(data.current_snapshot(), ids))
    except (BadIdList, WarehouseEmpty):
        return dash.no_update
    if kind == "parquet":
        return dcc.send_bytes(many_stars.to_parquet_bytes(df), "stars.parquet")
    return dcc.send_bytes(many_stars.to_csv_bytes(df), "stars.csv")


@callback(
    Output("many-download", "data"),
    Input("many-dl-csv", "n_clicks"),
    Input("many-dl-parquet", "n_clicks"),
    State("many-source", "data"),
    State("many-text", "value"),
    State("many-upload", "contents"),
    prevent_initial_call=True,
)
def _on_download(_csv, _pq, source, text, contents):
    kind = "parquet" if ctx.triggered_id == "many-dl-parquet" else "csv"
    return download(kind, source, text, contents)


dash.register_page(
    __name__, path="/stars", name="Many stars", title="StarTrack · many stars", order=5,
    layout=layout,
)  # fmt: skip
