"""JSON for scripts: ``GET /api/star/<plate>-<mjd>-<fiber>`` -> label, predictions, metadata.

Errors are JSON too: 400 for a malformed id, 404 for a star the warehouse lacks, 503 when
nothing has been published yet.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify

from startrack.dashboard import data
from startrack.star_id import InvalidStarId, parse_star_id
from startrack.warehouse.store import WarehouseEmpty

log = logging.getLogger(__name__)


def register_api(server: Flask) -> None:
    @server.route("/api/star/<path:star>")
    def api_star(star: str):
        try:
            star_id = parse_star_id(star).star_id
        except InvalidStarId as exc:
            return jsonify({"error": str(exc), "status": 400}), 400
        try:
            snap = data.current_snapshot()
            return jsonify(data.star_json(snap, star_id))
        except data.StarNotFound as exc:
            return jsonify({"error": str(exc), "status": 404, "star_id": star_id}), 404
        except WarehouseEmpty as exc:
            return jsonify({"error": str(exc), "status": 503}), 503
