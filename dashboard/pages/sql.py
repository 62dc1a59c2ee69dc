"""Read-only SQL console: warehouse.sql.run_query with a row limit and a time limit.

Anything but one SELECT/EXPLAIN statement is refused by ``check_statement``; the sandboxed
read-only connection refuses file access, ATTACH, INSTALL and LOAD even inside a SELECT.
"""

from __future__ import annotations

import time

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from startrack.dashboard import data
from startrack.dashboard.components import error_alert, frame_table
from startrack.warehouse.sql import QueryFailed, QueryRefused, run_query
from startrack.warehouse.store import WarehouseEmpty

ROW_LIMIT = 1000
SHOWN_ROWS = 200
TIME_LIMIT_S = 10.0
DEFAULT_SQL = "SELECT label, count(*) AS stars, avg(snr) AS mean_snr\nFROM stars\nGROUP BY label\nORDER BY stars DESC"  # noqa: E501
EXAMPLES = (
    ("labels", DEFAULT_SQL),
    (
        "wrong fusion predictions",
        "SELECT star_id, actual, label, prob FROM predictions\n"
        "WHERE branch = 'fusion' AND NOT correct ORDER BY prob DESC LIMIT 50",
    ),
    (
        "accuracy per branch",
        "SELECT branch, split, value FROM metrics\n"
        "WHERE metric = 'accuracy' AND snr_bin IS NULL ORDER BY branch, split",
    ),
    ("tables", "SELECT table_name, table_type FROM information_schema.tables ORDER BY 1"),
)


def layout(**_query) -> html.Div:
    try:
        tables = ", ".join(data.table_names(data.current_snapshot()))
    except WarehouseEmpty:
        tables = "(warehouse empty)"
    examples = [
        dbc.Button(
            name,
            id={"type": "sql-example", "index": i},
            size="sm",
            color="link",
            className="p-0 me-3",
        )
        for i, (name, _) in enumerate(EXAMPLES)
    ]
    return html.Div(
        [
            html.H4("SQL (read-only)"),
            html.P(
                f"One SELECT (or WITH/DESCRIBE/SHOW/SUMMARIZE/EXPLAIN) over the current snapshot; "
                f"at most {ROW_LIMIT:,} rows, stopped after {TIME_LIMIT_S:g} s. Tables: {tables}.",
                className="small text-muted",
            ),
            html.Div(
                [html.Span("Examples: ", className="small text-muted me-2"), *examples],
                className="mb-2",
            ),
            dbc.Textarea(
                id="sql-query",
                value=DEFAULT_SQL,
                rows=6,
                spellCheck=False,
                className="font-monospace mb-2",
            ),
            dbc.Button("Run", id="sql-run", color="primary", n_clicks=0, className="mb-3 me-2"),
            dbc.Button(
                "Download CSV",
                id="sql-download-csv",
                color="secondary",
                outline=True,
                n_clicks=0,
                className="mb-3",
            ),
            dcc.Download(id="sql-download"),
            html.Div(id="sql-result"),
        ]
    )


def run_sql(sql: str | None) -> list:
    """Result table, or a clear refusal / error message."""
    try:
        snap = data.current_snapshot()
        t0 = time.perf_counter()
        result = run_query(snap, sql or "", limit=ROW_LIMIT, timeout_s=TIME_LIMIT_S)
        ms = (time.perf_counter() - t0) * 1e3
    except QueryRefused as exc:
        return [error_alert(str(exc), "Refused")]
    except (QueryFailed, WarehouseEmpty) as exc:
        return [error_alert(str(exc), "Query failed")]
    note = f"{len(result.frame):,} rows" + (
        f" (stopped at the {ROW_LIMIT:,}-row limit: the CSV download holds these "
        f"{ROW_LIMIT:,} rows too)"
        if result.truncated
        else ""
    )
    return [
        html.P(
            f"{note} · {ms:.0f} ms · snapshot {result.snapshot}",
            className="small text-muted",
            id="sql-summary",
        ),
        frame_table(result.frame, max_rows=SHOWN_ROWS),
    ]


@callback(
    Output("sql-result", "children"),
    Input("sql-run", "n_clicks"),
    State("sql-query", "value"),
    prevent_initial_call=True,
)
def _on_run(_n_clicks: int | None, sql: str | None):
    return run_sql(sql)


def download_csv(sql: str | None):
    """The query's result as CSV, with the console's row limit; a cut result says so in the
    file name (``...-first-1000-rows.csv``). Refusals and errors download nothing."""
    try:
        result = run_query(data.current_snapshot(), sql or "", limit=ROW_LIMIT,
                           timeout_s=TIME_LIMIT_S)  # fmt: skip
    except (QueryRefused, QueryFailed, WarehouseEmpty):
        return dash.no_update
    name = f"query-first-{ROW_LIMIT}-rows.csv" if result.truncated else "query.csv"
    return dcc.send_bytes(result.frame.to_csv(index=False).encode(), name)


@callback(
    Output("sql-download", "data"),
    Input("sql-download-csv", "n_clicks"),
    State("sql-query", "value"),
    prevent_initial_call=True,
)
def _on_download(_n_clicks: int | None, sql: str | None):
    return download_csv(sql)


@callback(
    Output("sql-query", "value"),
    Input({"type": "sql-example", "index": dash.ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def _example(n_clicks):
    trig = dash.ctx.triggered_id
    if not trig or not any(n_clicks):
        return dash.no_update
    return EXAMPLES[trig["index"]][1]


dash.register_page(
    __name__, path="/sql", name="SQL", title="StarTrack · SQL", order=4, layout=layout
)
