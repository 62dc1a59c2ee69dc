"""``/api/version-changes``: the stars whose prediction changed between two model versions.

``GET /api/version-changes?a=V1&b=V2[&branch=fusion][&split=all][&outcome=all][&limit=N]``
answers JSON (the counts and the stars); ``/api/version-changes.csv`` the same stars as a CSV
file (every changed star up to downloads.MAX_ROWS). 400 for a malformed or unknown parameter,
404 when a version has no per-star predictions stored, 503 before anything is published.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from flask import Flask, Response, request

from startrack.dashboard import data, downloads, version_changes
from startrack.dashboard.downloads import BadParameter, _attachment, _error, _param
from startrack.warehouse.store import WarehouseEmpty


def changes_url(a: str, b: str, branch: str, split: str, outcome: str, kind: str = "csv") -> str:
    query = {"a": a, "b": b, "branch": branch, "split": split, "outcome": outcome}
    suffix = ".csv" if kind == "csv" else ""
    return f"/api/version-changes{suffix}?" + urlencode(query)


def _limit(default: int) -> int:
    raw = request.args.get("limit", str(default))
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= downloads.MAX_ROWS:
        raise BadParameter(f"limit must be a whole number from 1 to {downloads.MAX_ROWS}")
    return limit


def _changes(default_limit: int):
    """Parse and answer one request -> (VersionChanges, None) or (None, error response)."""
    try:
        snap = data.current_snapshot()
        known = tuple(dict.fromkeys((*data.model_versions(snap),
                                     *version_changes.history_versions(snap))))  # fmt: skip
        a, b = _param("a", known), _param("b", known)
        branch = _param("branch", version_changes.BRANCHES, "fusion")
        split = _param("split", version_changes.SPLITS, "all")
        outcome = _param("outcome", ("all", *version_changes.OUTCOMES), "all")
        limit = _limit(default_limit)
    except BadParameter as exc:
        return None, _error(str(exc), 400)
    except WarehouseEmpty as exc:
        return None, _error(str(exc), 503)
    ch = version_changes.changed_stars(snap, a, b, branch, split, outcome, limit)
    if ch.missing:
        return None, _error(
            f"no per-star predictions stored for version {', '.join(ch.missing)} (scored "
            "before StarTrack kept every version's predictions)",
            404,
        )
    return ch, None


def register_version_changes_api(server: Flask) -> None:
    @server.route("/api/version-changes")
    def api_version_changes():
        ch, error = _changes(version_changes.DEFAULT_LIMIT)
        if error is not None:
            return error
        head = {"old": ch.old, "new": ch.new, "branch": ch.branch, "split": ch.split,
                "outcome": ch.outcome, "compared": ch.compared, "changed": ch.changed,
                "counts": ch.counts, "listed": ch.listed, "returned": len(ch.stars)}  # fmt: skip
        stars = ch.stars.to_json(orient="records")
        return Response(
            json.dumps(head)[:-1] + f', "stars": {stars}}}', mimetype="application/json"
        )

    @server.route("/api/version-changes.csv")
    def api_version_changes_csv():
        ch, error = _changes(downloads.MAX_ROWS)
        if error is not None:
            return error
        name = f"changed-{ch.branch}-{ch.old}-to-{ch.new}-{ch.split}.csv".replace("/", "_")
        return _attachment(ch.stars.to_csv(index=False).encode(), "text/csv", name)
