"""Runs: ingest and scoring runs, model versions, rejected inputs (read at page load)."""

from __future__ import annotations

import dash
from dash import html

from startrack.dashboard import data
from startrack.dashboard.components import card, error_alert, frame_table
from startrack.warehouse.store import WarehouseEmpty

SECTIONS = (
    ("models", "Model versions"),
    ("scoring_runs", "Scoring runs"),
    ("ingest_runs", "Ingest runs"),
    ("rejects", "Rejected inputs (newest 200)"),
)


def layout(**_query) -> html.Div:
    try:
        snap = data.current_snapshot()
    except WarehouseEmpty as exc:
        return error_alert(str(exc), "No data")
    tables = data.runs_tables(snap)
    manifest = snap.manifest
    header = html.P(
        f"snapshot {snap.id} · published {manifest.get('created_at')} "
        f"by `{manifest.get('command')}`"
        f" · {len(data.warehouse().snapshots())} snapshots kept",
        className="small text-muted",
        id="runs-snapshot",
    )
    cards = [
        html.Div(
            card(title, frame_table(tables[name], max_rows=100, link_column=None)),
            className="mb-3",
            id=f"runs-{name}",
        )
        for name, title in SECTIONS
    ]
    return html.Div([html.H4("Runs"), header, *cards])


dash.register_page(
    __name__, path="/runs", name="Runs", title="StarTrack · runs", order=3, layout=layout
)
