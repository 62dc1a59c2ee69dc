"""The accuracy page's "stars whose prediction changed" section (controls and content).

Data comes from dashboard.version_changes; this module only lays it out: the counts of fixed,
broken and both-wrong changes, the CSV download, and the changed stars linking to their page.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from startrack.dashboard import data, version_changes
from startrack.dashboard.components import error_alert, frame_table, info_alert
from startrack.dashboard.version_changes_api import changes_url
from startrack.warehouse.store import WarehouseEmpty

SHOWN = 200  #: rows on the page; the CSV has them all
BADGES = (("fixed", "success", "new version matches the SDSS label"),
          ("broken", "danger", "old version matched it"),
          ("both wrong", "secondary", "neither matches"),
          ("no SDSS label", "light", "nothing to judge by"))  # fmt: skip
MATCHES = {"fixed": "new", "broken": "old", "both wrong": "neither", "no SDSS label": "—"}


def changes_controls() -> html.Div:
    """Branch and outcome filters of the changed-stars list."""
    return html.Div(
        [
            html.H6("Stars whose prediction changed", className="mt-3 mb-1"),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.RadioItems(
                            id="acc-changes-branch",
                            value="fusion",
                            inline=True,
                            options=[{"label": b, "value": b} for b in version_changes.BRANCHES],
                        ),
                        xs=12,
                        md=4,
                    ),
                    dbc.Col(
                        dbc.RadioItems(
                            id="acc-changes-outcome",
                            value="all",
                            inline=True,
                            options=[{"label": "all changes", "value": "all"}]
                            + [{"label": o, "value": o} for o in version_changes.OUTCOMES],
                        ),
                        xs=12,
                        md=8,
                    ),
                ],
                className="g-2 mb-1 small",
            ),
            html.Div(id="acc-changes"),
        ]
    )


def _table(stars: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "star_id": stars["star_id"],
            "SDSS label": stars["sdss_label"],
            "old": stars["old_prediction"],
            "p old": stars["old_prob"],
            "new": stars["new_prediction"],
            "p new": stars["new_prob"],
            "matches label": stars["outcome"].map(MATCHES),
            "S/N": stars["snr"],
            "split": stars["split"],
        }
    )


def changes_view(
    version: str | None,
    other: str | None,
    split: str | None,
    branch: str | None,
    outcome: str | None,
):
    """The changed stars between the page's version and the compared one, or why there are none."""
    if not version or not other:
        return None
    if version == other:
        return html.P("pick two different versions", className="small text-muted")
    split, branch, outcome = split or "all", branch or "fusion", outcome or "all"
    try:
        snap = data.current_snapshot()
        ch = version_changes.changed_stars(snap, version, other, branch, split, outcome, SHOWN)
    except WarehouseEmpty as exc:
        return error_alert(str(exc), "No data")
    except ValueError as exc:
        return error_alert(str(exc), "Bad choice")
    if ch.missing:
        return info_alert(
            f"No per-star predictions are stored for {' and '.join(ch.missing)}: it was scored "
            "before StarTrack kept every version's predictions, so the stars whose prediction "
            "changed cannot be listed. The metrics and confusion difference above still compare "
            "the versions; versions scored from now on keep their per-star answers.",
        )
    share = f" ({ch.changed / ch.compared:.1%})" if ch.compared else ""
    note = html.P(
        f"{ch.old} → {ch.new} (by training time) · {branch} · split '{split}': "
        f"{ch.compared:,} stars answered by both, {ch.changed:,} changed{share}.",
        className="small mb-1",
        id="acc-changes-note",
    )
    badges = html.Div(
        [
            dbc.Badge(f"{name}: {ch.counts.get(name, 0):,}", color=color, title=tip,
                      text_color="dark" if color == "light" else None, className="me-1",
                      id=f"acc-changes-{name.replace(' ', '-').lower()}")
            for name, color, tip in BADGES
        ],
        className="mb-1",
    )  # fmt: skip
    link = html.A(
        f"Download all {ch.listed:,} listed stars (CSV)",
        href=changes_url(ch.old, ch.new, branch, split, outcome),
        id="acc-changes-download",
        className="small d-block mb-1",
    )
    if ch.stars.empty:
        return [note, badges, html.P("no star changed here", className="small text-muted")]
    more = (
        html.P(f"showing the {len(ch.stars):,} most confident of {ch.listed:,}",
               className="small text-muted mb-0")
        if ch.listed > len(ch.stars)
        else None
    )  # fmt: skip
    return [note, badges, link, html.Div(frame_table(_table(ch.stars), max_rows=SHOWN),
                                         id="acc-changes-table"), more]  # fmt: skip
