"""``POST /api/stars``: many stars in one request, as JSON, CSV or Parquet.

The body is a JSON list of ids (or ``{"ids": [...]}``; entries may also be
``[plate, mjd, fiber]`` or ``{"plate", "mjd", "fiberid"}``), a CSV upload (multipart field
``file``, or a ``text/csv`` body) with plate/mjd/fiberid columns or one id column, or plain
text with one id per line. ``?format=json`` (default), ``csv`` or ``parquet``.

Every entry comes back: found stars, ``unknown`` ids, ``invalid`` entries with the reason.
A request that cannot be read is a 400 with a one-line message, a too large one a 413.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from flask import Flask, Response, jsonify, request

from startrack.dashboard import data, many_stars
from startrack.dashboard.id_lists import MAX_IDS, BadIdList, IdList, from_csv, from_text
from startrack.dashboard.id_lists import from_values as ids_from_values
from startrack.warehouse.store import WarehouseEmpty

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024  #: 100,000 ids as CSV are ~2 MB
FORMATS = ("json", "csv", "parquet")
USAGE = (
    'POST a JSON list of star ids (["2942-54521-0124", ...] or {"ids": [...]}), '
    "a CSV file (field 'file') with plate, mjd, fiberid or star_id columns, or text/csv"
)


class BadRequest(ValueError):
    """The request cannot be read; the message says what was expected."""


def _error(message: str, status: int = 400):
    return jsonify({"error": message, "status": status}), status


def read_request_ids() -> IdList:
    """The ids of the current Flask request, whatever form they came in."""
    ctype = (request.mimetype or "").lower()
    if ctype == "multipart/form-data":
        upload = request.files.get("file") or next(iter(request.files.values()), None)
        if upload is not None:
            return from_csv(upload.read())
        text = request.form.get("ids")
        if text is None:
            raise BadRequest(f"no 'file' or 'ids' field in the form: {USAGE}")
        return from_text(text)
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise BadRequest(f"empty request: {USAGE}")
    if ctype in ("text/csv", "application/csv"):
        return from_csv(raw)
    text = _text(raw)
    if ctype == "application/x-www-form-urlencoded" and text.startswith("ids="):
        return from_text(parse_qs(text).get("ids", [""])[0])
    if ctype != "application/json" and not text.lstrip().startswith(("[", "{")):
        return from_text(text)  # plain text (curl -d sends it as a form): one id per line
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON ({exc.msg}, line {exc.lineno}): {USAGE}"
        ) from None
    if isinstance(body, dict):
        if "ids" not in body:
            raise BadRequest(f'the JSON object has no "ids" list: {USAGE}')
        body = body["ids"]
    if not isinstance(body, list):
        raise BadRequest(f"expected a JSON list of ids, got {type(body).__name__}: {USAGE}")
    if len(body) > MAX_IDS:
        raise BadIdList(f"too many ids: at most {MAX_IDS:,} per request")
    return ids_from_values(body)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None


def register_stars_api(server: Flask) -> None:
    @server.route("/api/stars", methods=["GET", "PUT", "DELETE", "PATCH"])
    def api_stars_usage():
        return _error(f"use POST: {USAGE}", 405)

    @server.route("/api/stars", methods=["POST"])
    def api_stars():
        fmt = request.args.get("format", "json").lower()
        if fmt not in FORMATS:
            return _error(f"unknown format {fmt[:20]!r}: use one of {', '.join(FORMATS)}")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _error(f"request too large: at most {MAX_BODY_BYTES // 2**20} MB", 413)
        try:
            ids = read_request_ids()
        except BadIdList as exc:
            status = 413 if str(exc).startswith("too many") else 400
            return _error(str(exc), status)
        except BadRequest as exc:
            return _error(str(exc))
        if not ids.ids and not ids.invalid:
            return _error(f"no star ids in the request: {USAGE}")
        try:
            snap = data.current_snapshot()
        except WarehouseEmpty as exc:
            return _error(str(exc), 503)
        df = many_stars.lookup_many(snap, ids)
        if fmt == "csv":
            body = many_stars.to_csv_bytes(many_stars.full_table(ids, df))
            return _file(body, "text/csv", "stars.csv")
        if fmt == "parquet":
            body = many_stars.to_parquet_bytes(many_stars.full_table(ids, df))
            return _file(body, "application/vnd.apache.parquet", "stars.parquet")
        found = df["found"].astype(bool)
        head = {
            "snapshot": snap.id,
            **many_stars.summary(ids, df),
            "unknown_ids": df.loc[~found, "star_id"].tolist(),
            "invalid": [{"input": raw, "reason": why} for raw, why in ids.invalid],
        }
        stars = df[found].to_json(orient="records", date_format="iso")
        text = json.dumps(head)[:-1] + f', "stars": {stars}}}'
        return Response(text, mimetype="application/json")


def _file(body: bytes, mimetype: str, name: str) -> Response:
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
