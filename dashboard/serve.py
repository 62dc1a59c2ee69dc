"""``startrack serve``: run the dashboard (Flask's server; gunicorn for production).

Production: ``STARTRACK_WAREHOUSE=/data/wh gunicorn -w 2 -b 0.0.0.0:8050
'startrack.dashboard.wsgi:server'``.
"""

from __future__ import annotations

import argparse
import logging

from startrack.config import warehouse_dir

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument(
        "--debug", action="store_true", help="Dash debug mode (dev only: reloads, tracebacks)"
    )
    parser.add_argument(
        "--templates",
        metavar="FITS",
        default=None,
        help="SDSS spEigenStar template file for overlays (default: built-in)",
    )


def create_app(warehouse_path, templates_path: str | None = None):
    """Build (once per process) the Dash app over a warehouse directory."""
    from startrack.dashboard.app import create_app as _create

    return _create(warehouse_path, templates_path)


def run(args: argparse.Namespace) -> int:
    from startrack.warehouse.store import Warehouse

    root = warehouse_dir(getattr(args, "warehouse", None))
    if Warehouse(root).current() is None:
        log.warning(
            "the warehouse %s is empty: pages will say so until something is published", root
        )
    app = create_app(root, getattr(args, "templates", None))
    print(
        f"StarTrack dashboard on http://{args.host}:{args.port}/ (warehouse {root}); Ctrl-C stops"
    )
    app.run(host=args.host, port=args.port, debug=bool(args.debug))
    return 0
