"""``startrack serve``: run the dashboard (Flask's server; gunicorn for production).

Production: ``STARTRACK_WAREHOUSE=/data/wh gunicorn -w 2 -b 0.0.0.0:8050
'startrack.dashboard.wsgi:server'``.
"""

from __future__ import annotations

import argparse
import logging
import socket

from startrack.argtypes import port
from startrack.config import warehouse_dir
from startrack.errors import UsageError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=port, default=8050, help="port (default 8050)")
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
    _check_can_listen(args.host, args.port)
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


def _check_can_listen(host: str, port: int) -> None:
    """Fail with one line (exit 2) when the address is taken or unknown, before building the app.

    Werkzeug would otherwise print its own multi-line message and exit 1 ("nothing ingested").
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: unknown address ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror} (choose another --port)"
            ) from None
