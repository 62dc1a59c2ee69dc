"""File downloads as plain URLs (links on the pages, usable from scripts and ``curl``):

- ``/api/spectrum/<star>.csv`` and ``.fits`` — the star's gridded spectrum;
- ``/api/confusion-stars.csv?version=&branch=&split=&actual=&predicted=`` — one confusion cell;
- ``/api/mislabels.csv?branch=fusion&labels=A0,F5`` — the candidate-mislabel ranking;
- ``/api/cone?ra=&dec=&radius=[&format=csv]`` — a cone search (JSON by default).

Errors are JSON with a one-line message: 400 for a malformed id or parameter, 404 for an
unknown star or a star without a spectrum, 503 when nothing is published yet.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request

from startrack.dashboard import data, sky_search, spectrum_files
from startrack.star_id import InvalidStarId, parse_star_id
from startrack.vocabulary import EVAL_SPLITS
from startrack.vocabulary import SPLITS as HASH_SPLITS
from startrack.warehouse.store import WarehouseEmpty

MAX_ROWS = 100_000  #: rows in a table download
#: Splits a download may ask for: the evaluation splits, then the rest of the hash split.
SPLITS = (*EVAL_SPLITS, *(s for s in HASH_SPLITS if s not in EVAL_SPLITS))


class BadParameter(ValueError):
    pass


def _error(message: str, status: int):
    return jsonify({"error": message, "status": status}), status


def _attachment(body: bytes, mimetype: str, name: str) -> Response:
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def spectrum_url(star_id: str, kind: str) -> str:
    return f"/api/spectrum/{star_id}.{kind}"


def confusion_url(version: str, branch: str, split: str, actual: str, predicted: str) -> str:
    query = {"version": version, "branch": branch, "split": split, "actual": actual,
             "predicted": predicted}  # fmt: skip
    return "/api/confusion-stars.csv?" + urlencode(query)


def mislabels_url(branch: str, labels: list[str] | tuple[str, ...] = ()) -> str:
    query = {"branch": branch} | ({"labels": ",".join(labels)} if labels else {})
    return "/api/mislabels.csv?" + urlencode(query)


def _param(name: str, choices: tuple[str, ...] | None = None, default: str | None = None) -> str:
    value = request.args.get(name, default)
    if value is None or not value.strip():
        raise BadParameter(f"missing parameter {name!r}")
    if choices is not None and value not in choices:
        raise BadParameter(f"{name} must be one of {', '.join(choices)}, got {value[:30]!r}")
    return value


def register_downloads(server: Flask) -> None:
    @server.route("/api/spectrum/<path:name>")
    def api_spectrum(name: str):
        stem, _, kind = name.rpartition(".")
        if kind not in ("csv", "fits"):
            return _error("ask for /api/spectrum/PLATE-MJD-FIBER.csv or .fits", 400)
        try:
            star_id = parse_star_id(stem).star_id
            snap = data.current_snapshot()
        except InvalidStarId as exc:
            return _error(str(exc), 400)
        except WarehouseEmpty as exc:
            return _error(str(exc), 503)
        star = data.star_record(snap, star_id)
        if star is None:
            return _error(f"star {star_id} is not in the warehouse (snapshot {snap.id})", 404)
        spec = data.spectrum(snap, star_id)
        if spec is None:
            return _error(f"star {star_id} has photometry only: no spectrum to download", 404)
        if kind == "csv":
            return _attachment(spectrum_files.to_csv(spec), "text/csv", f"spec-{star_id}.csv")
        body = spectrum_files.to_fits(spec, star, snap.id)
        return _attachment(body, "application/fits", f"startrack-spec-{star_id}.fits")

    @server.route("/api/confusion-stars.csv")
    def api_confusion_stars():
        try:
            snap = data.current_snapshot()
            version = _param("version", data.model_versions(snap))
            branch = _param("branch", data.MODEL_BRANCHES)
            split = _param("split", SPLITS, "test")
            actual, predicted = _param("actual"), _param("predicted")
        except BadParameter as exc:
            return _error(str(exc), 400)
        except WarehouseEmpty as exc:
            return _error(str(exc), 503)
        df = data.confusion_stars(snap, version, branch, split, actual, predicted, MAX_ROWS)
        name = f"confusion-{branch}-{split}-{actual}-as-{predicted}.csv".replace("/", "_")
        return _attachment(df.to_csv(index=False).encode(), "text/csv", name)

    @server.route("/api/mislabels.csv")
    def api_mislabels():
        try:
            snap = data.current_snapshot()
            branch = _param("branch", data.MODEL_BRANCHES, "fusion")
        except BadParameter as exc:
            return _error(str(exc), 400)
        except WarehouseEmpty as exc:
            return _error(str(exc), 503)
        labels = tuple(x for x in request.args.get("labels", "").split(",") if x.strip())
        df = data.disagreements(snap, branch, labels, MAX_ROWS)
        return _attachment(
            df.to_csv(index=False).encode(), "text/csv", f"candidate-mislabels-{branch}.csv"
        )

    @server.route("/api/cone")
    def api_cone():
        args = request.args
        try:
            cone = sky_search.parse_cone(args.get("ra"), args.get("dec"), args.get("radius", "2"))
            limit = int(args.get("limit", sky_search.DEFAULT_LIMIT))
            if not 1 <= limit <= 10_000:
                raise ValueError
        except sky_search.BadPosition as exc:
            return _error(str(exc), 400)
        except ValueError:
            return _error("limit must be a whole number from 1 to 10000", 400)
        try:
            snap = data.current_snapshot()
        except WarehouseEmpty as exc:
            return _error(str(exc), 503)
        df = sky_search.cone_search(snap, cone, limit)
        if args.get("format") == "csv":
            return _attachment(df.to_csv(index=False).encode(), "text/csv", "cone.csv")
        head = {"snapshot": snap.id, "ra": cone.ra, "dec": cone.dec, "radius_deg": cone.radius,
                "n": len(df)}  # fmt: skip
        stars = df.to_json(orient="records", date_format="iso")
        return Response(
            json.dumps(head)[:-1] + f', "stars": {stars}}}', mimetype="application/json"
        )
