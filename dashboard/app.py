"""The Dash application: navbar, page container, the JSON API, local Bootstrap CSS.

Dash Pages keep one page registry and one global callback list per process, so there is one
app per process: :func:`create_app` builds it once and later calls only re-point the data layer.
All assets (Bootstrap 5.3.3 CSS, MIT, in ``assets/``) are served locally: no CDN at run time.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import html

from startrack.dashboard import data, overlay
from startrack.dashboard.api import register_api
from startrack.dashboard.api_stars import register_stars_api
from startrack.dashboard.downloads import register_downloads
from startrack.dashboard.version_changes_api import register_version_changes_api

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
#: Page modules (startrack.dashboard.pages.*); each registers itself with dash.register_page,
#: whose ``order`` sets its place in the navbar.
PAGES = ("star", "accuracy", "explore", "runs", "sql", "many", "cone")

_app: dash.Dash | None = None


def nav_pages() -> list[tuple[str, str]]:
    """(name, path) of every registered page, in their ``order``: the navbar's links."""
    pages = sorted(dash.page_registry.values(), key=lambda page: page["order"])
    return [(page["name"], page["relative_path"]) for page in pages]


def navbar() -> dbc.Navbar:
    links = [
        dbc.NavItem(dbc.NavLink(name, href=href, active="exact")) for name, href in nav_pages()
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("★ StarTrack", href="/", className="fw-bold"),
                dbc.NavbarToggler(id="nav-toggler", n_clicks=0),
                dbc.Collapse(
                    dbc.Nav(links, navbar=True, className="ms-auto"),
                    id="nav-collapse",
                    navbar=True,
                    is_open=False,
                ),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        className="mb-3",
    )


def shell() -> html.Div:
    return html.Div(
        [
            navbar(),
            dbc.Container(
                [html.Div(id=ERROR_BOX), dash.page_container], fluid=True, className="pb-4"
            ),
        ]
    )


ERROR_BOX = "callback-error"  #: where a callback that failed says so (see _callback_failed)


def _callback_failed(exc: Exception) -> None:
    """Last line of defence for every callback: a message in the page, never an HTTP 500.

    The callbacks check what the browser sends; whatever still slips through is logged with
    its traceback (for us) and shown as one line (for the user); the outputs stay as they were.
    """
    log.exception("callback %s failed", dash.callback_context.triggered_id, exc_info=exc)
    dash.set_props(
        ERROR_BOX,
        {
            "children": dbc.Alert(
                [
                    html.B("That request could not be handled. "),
                    f"{type(exc).__name__}: {exc}"[:300],
                ],
                color="danger",
                dismissable=True,
                className="small",
            )
        },
    )


def _bad_request(exc: Exception):
    """A request Dash could not even dispatch (hand-made JSON): 400 with one line, not 500."""
    from werkzeug.exceptions import HTTPException

    if isinstance(exc, HTTPException):
        return exc
    log.warning("bad dashboard request: %s: %s", type(exc).__name__, exc)
    return {"error": f"bad request: {type(exc).__name__}"}, 400


@dash.callback(
    dash.Output("nav-collapse", "is_open"),
    dash.Input("nav-toggler", "n_clicks"),
    dash.State("nav-collapse", "is_open"),
)
def _toggle_nav(n_clicks: int | None, is_open: bool) -> bool:
    return (not is_open) if n_clicks else is_open


def create_app(
    warehouse_path: str | os.PathLike[str], templates_path: str | None = None
) -> dash.Dash:
    """The dashboard over ``warehouse_path`` (read-only)."""
    global _app
    data.configure(warehouse_path, templates_path)
    if _app is not None:
        return _app
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        title="StarTrack",
        update_title=None,
        suppress_callback_exceptions=True,
        on_error=_callback_failed,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    for page in PAGES:
        importlib.import_module(f"startrack.dashboard.pages.{page}")
    app.layout = shell
    register_api(app.server)
    register_stars_api(app.server)
    register_downloads(app.server)
    register_version_changes_api(app.server)
    app.server.register_error_handler(Exception, _bad_request)
    overlay.warm_up(data.templates_path())
    _app = app
    log.info("dashboard over %s", data.warehouse().root)
    return app
