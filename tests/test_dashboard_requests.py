"""What a browser (or anyone with curl) can post to Dash's callback endpoint never gives a 500.

Requests go through Flask's test client to ``/_dash-update-component`` exactly as the Dash
front end sends them, built from the app's own callback map, with hand-made values.
"""

from __future__ import annotations

import json

import pytest
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack.dashboard import data


def _body(app, output_key: str, values: dict[str, object], changed: str) -> dict:
    spec = app.callback_map[output_key]

    def dep(d):
        prop = f"{d['id']}.{d['property']}"
        return {"id": d["id"], "property": d["property"], "value": values.get(prop)}

    outputs = [
        {"id": o.split(".")[0], "property": o.split(".")[1]}
        for o in output_key.strip(".").split("...")
    ]
    return {
        "output": output_key,
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [dep(d) for d in spec["inputs"]],
        "state": [dep(d) for d in spec["state"]],
        "changedPropIds": [changed],
    }


def _key(app, first_output: str) -> str:
    return next(k for k in app.callback_map if k.strip(".").startswith(first_output))


@pytest.fixture
def client(dashboard_app, dashboard_warehouse):  # noqa: F811
    data.configure(dashboard_warehouse)
    client = dashboard_app.server.test_client()
    assert client.get("/").status_code == 200  # the first request registers the callbacks
    return client


def _post(client, body) -> tuple[int, str]:
    resp = client.post("/_dash-update-component", json=body)
    return resp.status_code, resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("plate", "mjd", "fiber", "message"),
    [
        ("266", "51630", "9" * 5000, "too long for an SDSS id"),
        ("266", "51630", "²", "must be a whole number"),
        ("٢٦٦", "51630", "1", "must be a whole number"),  # Arabic-Indic digits
        ("266", "51630", "-1", "must be a whole number"),
        (["266"], {"a": 1}, 3.5, "must be a whole number"),
        (None, None, None, "is empty"),
    ],
)
def test_three_field_lookup_answers_with_a_message(
    dashboard_app,  # noqa: F811
    client,
    plate,
    mjd,
    fiber,
    message,
) -> None:
    key = _key(dashboard_app, "star-current.data")
    values = {
        "star-go-parts.n_clicks": 1,
        "star-plate.value": plate,
        "star-mjd.value": mjd,
        "star-fiber.value": fiber,
    }
    status, text = _post(client, _body(dashboard_app, key, values, "star-go-parts.n_clicks"))
    assert status == 200, text[:500]
    assert message in text and "Invalid id" in text


@pytest.mark.parametrize(
    "values",
    [
        {"star-current.data": "../../etc/passwd"},
        {"star-current.data": {"star": 1}},
        {"star-current.data": "2942-54521-0124", "star-smooth.value": "lots"},
        {"star-current.data": "2942-54521-0124", "star-smooth.value": 1e308},
        {"star-current.data": "2942-54521-0124", "star-lines.value": "Balmer"},
        {"star-current.data": "2942-54521-0124", "star-templates.value": [{"x": 1}, 3]},
        {"star-current.data": "9" * 5000},
    ],
)
def test_spectrum_callback_survives_hand_made_values(dashboard_app, client, values) -> None:  # noqa: F811
    key = _key(dashboard_app, "star-spectrum.figure")
    status, text = _post(client, _body(dashboard_app, key, values, "star-current.data"))
    assert status in (200, 204), text[:500]
    if status == 200:
        assert "figure" in text


def test_spectrum_callback_still_draws_a_real_star(dashboard_app, client) -> None:  # noqa: F811
    snap = data.current_snapshot()
    star = snap.table("spectra_index")["star_id"][0].as_py()
    key = _key(dashboard_app, "star-spectrum.figure")
    values = {"star-current.data": star, "star-smooth.value": "2", "star-lines.value": ["Balmer"]}
    status, text = _post(client, _body(dashboard_app, key, values, "star-current.data"))
    assert status == 200
    fig = json.loads(text)["response"]["star-spectrum"]["figure"]
    assert len(fig["data"]) >= 1 and fig["data"][0]["x"]  # plotly sends x as packed floats


def test_rerun_with_a_hand_made_star_id(dashboard_app, client) -> None:  # noqa: F811
    key = _key(dashboard_app, "star-rerun-out.children")
    values = {"star-rerun.n_clicks": 1, "star-current.data": ["not", "an", "id"]}
    status, text = _post(client, _body(dashboard_app, key, values, "star-rerun.n_clicks"))
    assert status == 200 and "Invalid id" in text


def test_every_callback_survives_garbage_values(dashboard_app, client) -> None:  # noqa: F811
    """Each registered callback, every input and state set to odd values: never a 500."""
    odd = [{"$": [1, None]}, "x" * 10_000, -1e308, ["²", None, {}]]
    for key, spec in dashboard_app.callback_map.items():
        if not spec["inputs"] or "pages" in key or "_pages" in key:
            continue
        for value in odd:
            values = {f"{d['id']}.{d['property']}": value for d in spec["inputs"] + spec["state"]}
            first = spec["inputs"][0]
            body = _body(dashboard_app, key, values, f"{first['id']}.{first['property']}")
            status, text = _post(client, body)
            assert status in (200, 204), (key, value, status, text[:300])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"output": "nope.children", "inputs": [], "changedPropIds": []},
        {"output": 7, "inputs": "x"},
        [1, 2, 3],
    ],
)
def test_malformed_dispatch_requests_are_400(client, body) -> None:
    status, text = _post(client, body)
    assert status == 400 and "bad request" in text and "Traceback" not in text
