"""WSGI entry point for gunicorn: ``gunicorn 'startrack.dashboard.wsgi:server'``.

The warehouse comes from ``STARTRACK_WAREHOUSE`` (else ./warehouse), templates from
``STARTRACK_TEMPLATES`` (else the built-in set).
"""

from __future__ import annotations

from startrack.config import warehouse_dir
from startrack.dashboard.app import create_app

app = create_app(warehouse_dir(None))
server = app.server
