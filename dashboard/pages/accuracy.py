"""Accuracy of a model version and branch: headline scores, confusion, per class, vs S/N.

Clicking a confusion cell lists the stars in it, each linking to its lookup page.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from startrack.dashboard import data, downloads, fair_metrics, figures, version_compare
from startrack.dashboard.components import card, control, error_alert, frame_table, info_alert
from startrack.dashboard.version_changes_view import changes_controls, changes_view
from startrack.warehouse.store import WarehouseEmpty

SPLITS = (
    ("test split", "test"),
    ("test stars with a spectrum", "test_spectra"),
    ("all stars (incl. training)", "all"),
)


def layout(**_query) -> html.Div:
    try:
        snap = data.current_snapshot()
        versions = list(data.model_versions(snap))
    except WarehouseEmpty as exc:
        return error_alert(str(exc), "No data")
    if not versions:
        return info_alert("No model metrics yet: run `startrack train` and `startrack score`.")
    controls = dbc.Row(
        [
            control(
                "Model version",
                dcc.Dropdown(
                    id="acc-version", options=versions, value=versions[0], clearable=False
                ),
                xs=12,
                md=6,
                lg=4,
            ),
            control(
                "Branch",
                dcc.Dropdown(id="acc-branch", clearable=False),
                xs=6,
                md=3,
                lg=2,
            ),
            control(
                "Split",
                dbc.RadioItems(
                    id="acc-split",
                    value="test",
                    inline=True,
                    options=[{"label": a, "value": b} for a, b in SPLITS],
                ),
                xs=6,
                md=3,
                lg=3,
            ),
            control(
                "Confusion matrix",
                dbc.RadioItems(
                    id="acc-normalize",
                    value="counts",
                    inline=True,
                    options=[
                        {"label": "counts", "value": "counts"},
                        {"label": "row-normalized", "value": "rows"},
                    ],
                ),
                xs=12,
                md=6,
                lg=3,
            ),
        ],
        className="g-2 mb-3",
    )
    return html.Div(
        [
            html.H4("Accuracy"),
            controls,
            html.Div(id="acc-cards", className="mb-2"),
            dbc.Row(
                [
                    dbc.Col(
                        card(
                            "Confusion matrix (click a cell for its stars)",
                            dcc.Loading(
                                dcc.Graph(id="acc-confusion", config={"displaylogo": False})
                            ),
                        ),
                        xs=12,
                        xl=7,
                        className="mb-3",
                    ),
                    dbc.Col(
                        [
                            card(
                                "Stars in the selected cell",
                                html.Div(
                                    id="acc-cell-stars",
                                    children=html.P(
                                        "click a cell of the confusion matrix",
                                        className="text-muted small",
                                    ),
                                ),
                            ),
                        ],
                        xs=12,
                        xl=5,
                        className="mb-3",
                    ),
                ],
                className="g-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        card("All branches and baselines", html.Div(id="acc-headline")),
                        xs=12,
                        lg=6,
                        className="mb-3",
                    ),
                    dbc.Col(
                        card(
                            "Accuracy against S/N",
                            dcc.Graph(id="acc-snr", config={"displaylogo": False}),
                        ),
                        xs=12,
                        lg=6,
                        className="mb-3",
                    ),
                ],
                className="g-2",
            ),
            html.Div(
                card(
                    "Continuous type (O0 = 0 … M9 = 69): error in subtypes",
                    html.Div(id="acc-types"),
                ),
                className="mb-3",
            ),
            html.Div(
                card("Like for like: every branch on the same stars", html.Div(id="acc-fair")),
                className="mb-3",
            ),
            html.Div(
                card(
                    "Compare with another model version",
                    [
                        dcc.Dropdown(
                            id="acc-compare",
                            options=versions[1:],
                            value=versions[1] if len(versions) > 1 else None,
                            placeholder="pick an earlier version"
                            if len(versions) > 1
                            else "only one model version has metrics",
                            className="mb-2",
                        ),
                        html.Div(id="acc-compare-out"),
                        changes_controls(),
                    ],
                ),
                className="mb-3",
            ),
            card("Per class", html.Div(id="acc-classes")),
        ]
    )


@callback(
    Output("acc-branch", "options"), Output("acc-branch", "value"), Input("acc-version", "value")
)
def branch_options(version: str | None) -> tuple[list[str], str | None]:
    if not version:
        return [], None
    found = list(data.branches(data.current_snapshot(), version))
    return found, ("fusion" if "fusion" in found else (found[0] if found else None))


def _metric_card(name: str, value: float | None, n: int | None) -> dbc.Col:
    text = "—" if value is None or pd.isna(value) else f"{100 * value:.1f}%"
    return dbc.Col(
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(name, className="small text-muted"),
                    html.Div(
                        text, className="fs-3 fw-bold", id=f"acc-value-{name.replace(' ', '-')}"
                    ),
                    html.Div(f"n = {n:,}" if n else "", className="small text-muted"),
                ]
            )
        ),
        xs=6,
        md=3,
    )


@callback(
    Output("acc-cards", "children"),
    Output("acc-headline", "children"),
    Output("acc-confusion", "figure"),
    Output("acc-classes", "children"),
    Output("acc-snr", "figure"),
    Input("acc-version", "value"),
    Input("acc-branch", "value"),
    Input("acc-split", "value"),
    Input("acc-normalize", "value"),
)
def accuracy_view(
    version: str | None, branch: str | None, split: str | None, normalize: str | None
):
    """-> (metric cards, headline table, confusion figure, per-class table, S/N figure)."""
    if not version or not branch:
        empty = figures.empty_figure("choose a model version and a branch")
        return None, None, empty, None, empty
    try:
        snap = data.current_snapshot()
    except WarehouseEmpty as exc:
        empty = figures.empty_figure(str(exc))
        return error_alert(str(exc), "No data"), None, empty, None, empty
    split = split or "test"
    head = data.headline_metrics(snap, version, split)
    row = head[head["branch"] == branch]
    get = (lambda c: row[c].iloc[0]) if not row.empty else (lambda c: None)
    n = get("n")
    cards = dbc.Row(
        [
            _metric_card("accuracy", get("accuracy"), None if n is None or pd.isna(n) else int(n)),
            _metric_card("macro F1", get("macro_f1"), None),
            _metric_card("within one subtype", get("within_one"), None),
            dbc.Col(
                html.Div(
                    [
                        html.Div("branch", className="small text-muted"),
                        html.Div(branch, className="fs-5 fw-semibold"),
                        html.Div(f"split: {split}", className="small text-muted"),
                    ]
                ),
                xs=6,
                md=3,
            ),
        ],
        className="g-2",
    )
    headline = head.rename(columns={"within_one": "within one"})
    matrix = data.confusion_matrix(data.confusion(snap, version, branch, split))
    conf = figures.confusion_figure(matrix, normalize=normalize == "rows")
    classes = data.class_metrics(snap, version, branch, split)
    snr = figures.accuracy_snr_figure(data.accuracy_by_snr(snap, version, split))
    return (
        cards,
        frame_table(headline, link_column=None),
        conf,
        frame_table(classes, link_column=None),
        snr,
    )


def _snapshot_or_alert():
    """(the current snapshot, None), or (None, the alert saying why there is none)."""
    try:
        return data.current_snapshot(), None
    except WarehouseEmpty as exc:
        return None, error_alert(str(exc), "No data")


@callback(
    Output("acc-types", "children"),
    Input("acc-version", "value"),
    Input("acc-split", "value"),
)
def type_view(version: str | None, split: str | None):
    """The continuous type against the SDSS label's type and against each star's own MK type
    (ELODIE_SPTYPE): the second is what a set of stars typed by hand judges a model by."""
    if not version:
        return None
    snap, alert = _snapshot_or_alert()
    if snap is None:
        return alert
    table = data.type_scores(snap, version, split or "test")
    if table.empty:
        return info_alert("no continuous-type scores for this version and split (scored "
                          "before they were kept: `startrack score` again)")  # fmt: skip
    note = html.P(
        "The posterior-mean MK type of each star against the type of its SDSS label and "
        "against its own MK type, where the warehouse has one (ELODIE_SPTYPE: SDSS's best "
        "ELODIE match, or a library's MK type). A star between two classes is a miss against "
        "its label and a hit against its own type; n counts the stars each row is scored on.",
        className="small text-muted mb-1",
        id="acc-types-note",
    )
    shown = table.round({"median error": 2, "within 2.5": 3, "within 5": 3})
    return [note, frame_table(shown, link_column=None)]


@callback(
    Output("acc-fair", "children"),
    Input("acc-version", "value"),
    Input("acc-split", "value"),
)
def fair_view(version: str | None, split: str | None):
    """Branches over identical stars; labels outside the model's classes and the frozen
    baselines shown apart, each with its own n."""
    if not version:
        return None
    snap, alert = _snapshot_or_alert()
    if snap is None:
        return alert
    split = split or "test"
    fair = fair_metrics.like_for_like(snap, version, split)
    if fair is None:
        return info_alert("no per-star predictions for this version: the predictions table "
                          "holds the current model's, and prediction_history keeps only each "
                          "version's top answers, so its like-for-like table is not available "
                          "(its changed stars are listed below)")  # fmt: skip
    classes = fair_metrics.model_classes(snap, version)
    parts = [
        html.P(
            f"{fair.n_common:,} stars of split '{split}' that every branch answered, with an "
            f"SDSS label among the model's {len(classes)} classes: the same stars in every row.",
            className="small text-muted mb-1",
            id="acc-fair-note",
        ),
        frame_table(fair.branches.rename(columns={"within_one": "within one"}), link_column=None),
    ]
    if not fair.outside.empty:
        listed = ", ".join(f"{r.label} ({r.stars})" for r in fair.outside.itertuples())
        parts.append(
            html.P(
                f"Not counted — SDSS labels the model was never trained on: {listed} "
                f"({int(fair.outside['stars'].sum()):,} stars). The stored metrics count them "
                "as wrong.",
                className="small mb-1",
                id="acc-fair-outside",
            )
        )
    frozen = data.headline_metrics(snap, version, "test_spectra")
    frozen = frozen[frozen["branch"].isin(data.BASELINES)]
    if not frozen.empty:
        parts += [
            html.P(
                "Baselines keep no per-star predictions: their figures are frozen at training "
                "time, on the test stars with a spectrum of that day (n below). Compare them "
                "with the rows above only when the n match.",
                className="small text-muted mb-1 mt-2",
            ),
            frame_table(frozen.rename(columns={"within_one": "within one"}), link_column=None),
        ]
    return parts


@callback(
    Output("acc-compare-out", "children"),
    Input("acc-version", "value"),
    Input("acc-compare", "value"),
    Input("acc-branch", "value"),
    Input("acc-split", "value"),
)
def compare_view(version: str | None, other: str | None, branch: str | None, split: str | None):
    """Version A (the page's) against B: headline metrics by branch, the moved confusion cells."""
    if not version or not other:
        return None
    try:
        snap = data.current_snapshot()
    except WarehouseEmpty as exc:
        return error_alert(str(exc), "No data")
    split = split or "test"
    head = version_compare.compare_headlines(snap, version, other, split)
    moved = version_compare.confusion_change(snap, version, other, branch or "fusion", split)
    return [
        html.P(
            f"A = {version} · B = {other} · split '{split}'. Each version is measured on the "
            "stars it was scored on: read the n columns.",
            className="small text-muted mb-1",
            id="acc-compare-note",
        ),
        html.Div(frame_table(head, link_column=None), className="text-nowrap"),
        html.P(f"Confusion cells that moved most ({branch}, B − A):", className="small mt-2 mb-1"),
        frame_table(moved, link_column=None),
    ]


@callback(
    Output("acc-changes", "children"),
    Input("acc-version", "value"),
    Input("acc-compare", "value"),
    Input("acc-split", "value"),
    Input("acc-changes-branch", "value"),
    Input("acc-changes-outcome", "value"),
)
def changed_stars(
    version: str | None,
    other: str | None,
    split: str | None,
    branch: str | None,
    outcome: str | None,
):
    """The stars whose prediction changed between the two versions (version_changes_view)."""
    return changes_view(version, other, split, branch, outcome)


@callback(
    Output("acc-cell-stars", "children"),
    Input("acc-confusion", "clickData"),
    State("acc-version", "value"),
    State("acc-branch", "value"),
    State("acc-split", "value"),
    prevent_initial_call=True,
)
def cell_stars(click: dict | None, version: str | None, branch: str | None, split: str | None):
    """The stars of the clicked confusion cell (actual = row, predicted = column)."""
    if not click or not click.get("points"):
        return html.P("click a cell of the confusion matrix", className="text-muted small")
    point = click["points"][0]
    actual, predicted = str(point.get("y")), str(point.get("x"))
    title = html.P(
        [html.Strong(f"actual {actual} → predicted {predicted}"), f" ({branch}, {split})"],
        className="small mb-1",
        id="acc-cell-title",
    )
    if branch not in data.MODEL_BRANCHES:
        return [title, info_alert("baselines keep no per-star predictions; pick a model branch")]
    stars = data.confusion_stars(
        data.current_snapshot(), version, branch, split or "test", actual, predicted
    )
    if stars.empty:
        return [title, html.P("no stars in this cell", className="text-muted small")]
    link = html.A(
        "Download all stars of this cell (CSV)",
        href=downloads.confusion_url(version, branch, split or "test", actual, predicted),
        id="acc-cell-download",
        className="small d-block mb-1",
    )
    return [title, link, frame_table(stars, max_rows=200)]


dash.register_page(
    __name__,
    path="/accuracy",
    name="Accuracy",
    title="StarTrack · accuracy",
    order=1,
    layout=layout,
)
