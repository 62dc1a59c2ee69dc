"""Many stars at once: id lists, the one-query lookup, POST /api/stars, the page's callbacks."""

from __future__ import annotations

import base64
import io
import json
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack.dashboard import data, id_lists, many_stars
from startrack.warehouse.store import Warehouse


# ----------------------------------------------------------------------------- id lists
def test_pasted_text_takes_every_id_form_and_keeps_the_unreadable() -> None:
    ids = id_lists.from_text(
        "2942-54521-0124\nspec-0266-51630-0003.fits, 266 51630 4\n"
        "2942-54521-124\nbanana\n\n# a comment\n0267-51608-0001 0267-51608-0002"
    )
    assert ids.ids == ["2942-54521-0124", "0266-51630-0003", "0266-51630-0004",
                       "0267-51608-0001", "0267-51608-0002"]  # fmt: skip
    assert ids.duplicates == 1  # 2942-54521-124 is 2942-54521-0124
    assert [raw for raw, _ in ids.invalid] == ["banana"]
    assert "PLATE-MJD-FIBER" in ids.invalid[0][1]


def test_casjobs_csv_with_plate_mjd_fiberid_columns() -> None:
    raw = b"#Table1\nplate,mjd,fiberID,subClass\n266,51630,3,A0\n266,51630,x,F5\n\n"
    ids = id_lists.from_csv(raw)
    assert ids.ids == ["0266-51630-0003"]
    why = "fiber must be a whole number (digits 0-9), got 'x'"
    assert ids.invalid == [("row 3: 266-51630-x", why)]


def test_csv_with_an_id_column_or_no_header() -> None:
    assert id_lists.from_csv(b"ra,star_id\n1.0,spec-2942-54521-0124.fits\n").ids == [
        "2942-54521-0124"
    ]
    assert id_lists.from_csv(b"2942-54521-0124\n266-51630-3\n").ids == [
        "2942-54521-0124", "0266-51630-0003",
    ]  # fmt: skip
    pasted_csv = id_lists.from_text("plate,mjd,fiberid\n266,51630,3\n")
    assert pasted_csv.ids == ["0266-51630-0003"]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"ra,dec\n1,2\n", "no id column"),
        (b"plate,mjd\n266,51630\n", "only some of the plate, mjd, fiberid"),
        (b"", "empty"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_unreadable_csv_is_one_clear_message(raw: bytes, needle: str) -> None:
    with pytest.raises(id_lists.BadIdList, match=needle):
        id_lists.from_csv(raw)


def test_json_values_accept_strings_triples_and_objects() -> None:
    ids = id_lists.from_values(
        ["2942-54521-0124", [266, 51630, 3], {"plate": 266, "mjd": 51630, "fiberID": 4}, 7, None]
    )
    assert ids.ids == ["2942-54521-0124", "0266-51630-0003", "0266-51630-0004"]
    assert len(ids.invalid) == 2


def test_too_many_ids_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(id_lists, "MAX_IDS", 3)
    with pytest.raises(id_lists.BadIdList, match="too many ids"):
        id_lists.from_text("1-51608-1\n1-51608-2\n1-51608-3\n1-51608-4")


# ----------------------------------------------------------------------------- lookup
@pytest.fixture
def snap(dashboard_app, dashboard_warehouse):  # noqa: F811
    data.configure(dashboard_warehouse)
    return data.current_snapshot()


def _some_ids(snap, n: int) -> list[str]:
    return snap.table("stars").to_pandas()["star_id"].sample(n, random_state=3).tolist()


def test_lookup_many_one_row_per_id_in_order_with_unknowns(snap) -> None:
    known = _some_ids(snap, 30)
    spectrum_star = snap.table("spectra_index").to_pandas()["star_id"].iloc[0]
    asked = [known[0], "0001-51608-0001", *known[1:], spectrum_star]
    ids = id_lists.from_text("\n".join(asked))
    df = many_stars.lookup_many(snap, ids)
    assert df["star_id"].tolist() == ids.ids  # input order, nothing dropped
    assert df.loc[1, "star_id"] == "0001-51608-0001" and not df.loc[1, "found"]
    assert df["found"].sum() == len(ids.ids) - 1
    stars = snap.table("stars").to_pandas().set_index("star_id")
    preds = snap.table("predictions").to_pandas()
    for _, row in df[df["found"]].iterrows():
        assert row["sdss_label"] == stars.loc[row["star_id"], "label"]
        assert row["snr"] == pytest.approx(stars.loc[row["star_id"], "snr"])
        mine = preds[preds["star_id"] == row["star_id"]].set_index("branch")
        assert row["fusion_label"] == mine.loc["fusion", "label"]
        assert row["dense_prob"] == pytest.approx(mine.loc["dense", "prob"])
        if "lstm" in mine.index:
            assert row["lstm_label"] == mine.loc["lstm", "label"]
        else:
            assert pd.isna(row["lstm_label"])
        fusion = mine.loc["fusion"]  # the model's continuous type and the star's flags
        assert list(row["flags"]) == list(fusion["flags"]) or row["flags"] == ";".join(
            fusion["flags"]
        )
        if pd.notna(fusion["spectral_type"]):
            assert row["fusion_spectral_type"] == pytest.approx(fusion["spectral_type"])


def test_continuous_type_and_flags_appear_when_predictions_have_them(
    snap, dashboard_warehouse, tmp_path  # noqa: F811
) -> None:  # fmt: skip
    """The lead's model adds spectral_type, spectral_type_err, flags: shown when present."""
    copy = tmp_path / "wh"
    shutil.copytree(dashboard_warehouse, copy, symlinks=True)
    wh = Warehouse(copy)
    preds = wh.current().table("predictions").to_pandas()
    preds["spectral_type"] = 53.4
    preds["spectral_type_err"] = 0.8
    preds["flags"] = [["low_snr", "branches_disagree"] if i % 2 else [] for i in range(len(preds))]
    with wh.writer("test: predictions with the new columns") as w:
        w.put_table("predictions", preds)
    new = wh.current()
    assert data.optional_prediction_columns(new) == ("spectral_type", "spectral_type_err", "flags")
    ids = id_lists.from_values(_some_ids(new, 5))
    df = many_stars.lookup_many(new, ids)
    assert df["fusion_type"].tolist() == ["K3.4"] * 5
    assert df["fusion_spectral_type_err"].tolist() == [0.8] * 5
    text = many_stars.to_csv_bytes(df).decode()
    assert "fusion_spectral_type" in text.splitlines()[0]
    assert "low_snr;branches_disagree" in text or all(len(f) == 0 for f in df["flags"])


def test_type_name() -> None:
    assert many_stars.type_name(53.4) == "K3.4"
    assert many_stars.type_name(0.0) == "O0.0"
    assert many_stars.type_name(69.9) == "M9.9"
    assert many_stars.type_name(float("nan")) is None


# ----------------------------------------------------------------------------- API
@pytest.fixture
def client(dashboard_app, snap):  # noqa: F811
    return dashboard_app.server.test_client()


def test_api_json_lists_found_unknown_and_invalid(client, snap) -> None:
    known = _some_ids(snap, 4)
    resp = client.post("/api/stars", json={"ids": [*known, "1-51608-1", "nope"]})
    assert resp.status_code == 200
    body = resp.get_json()
    assert [s["star_id"] for s in body["stars"]] == known
    assert body["unknown_ids"] == ["0001-51608-0001"]
    assert body["invalid"][0]["input"] == "nope"
    assert (body["requested"], body["found"], body["unknown"], body["invalid"][0]["input"]) == (
        6, 4, 1, "nope"
    )  # fmt: skip
    assert body["snapshot"] == snap.id
    assert {"sdss_label", "fusion_label", "fusion_prob", "dense_prob", "snr"} <= set(
        body["stars"][0]
    )


def test_api_csv_upload_and_parquet_download(client, snap) -> None:
    known = _some_ids(snap, 3)
    rows = "\n".join(",".join(str(int(p)) for p in s.split("-")) for s in known)
    upload = io.BytesIO(f"plate,mjd,fiberID\n{rows}\n9999,51608,1\n".encode())
    resp = client.post(
        "/api/stars?format=parquet", data={"file": (upload, "mine.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert resp.status_code == 200
    assert "attachment" in resp.headers["Content-Disposition"]
    df = pq.read_table(io.BytesIO(resp.data)).to_pandas()
    assert df["star_id"].tolist() == [*known, "9999-51608-0001"]
    assert df["found"].tolist() == [True, True, True, False]
    assert df["note"].iloc[-1] == "not in the warehouse"

    resp = client.post("/api/stars?format=csv", data="\n".join(known) + "\nzzz",
                       content_type="text/plain")  # fmt: skip
    table = pd.read_csv(io.BytesIO(resp.data))
    assert resp.status_code == 200 and len(table) == 4
    assert table["input"].iloc[-1] == "zzz" and "not a star id" in table["note"].iloc[-1]


@pytest.mark.parametrize(
    ("body", "ctype", "needle"),
    [
        (b"[1, 2", "application/json", "not valid JSON"),
        (b'{"stars": []}', "application/json", 'no "ids" list'),
        (b'"2942-54521-0124"', "application/json", "expected a JSON list"),
        (b"", "application/json", "empty request"),
        (b"[]", "application/json", "no star ids"),
        (b"\xff\xfe\xfa", "text/plain", "not UTF-8"),
        (b"ra,dec\n1,2\n", "text/csv", "no id column"),
    ],
)
def test_api_malformed_requests_are_400_with_a_message(client, body, ctype, needle) -> None:
    resp = client.post("/api/stars", data=body, content_type=ctype)
    assert resp.status_code == 400
    assert needle in resp.get_json()["error"]


def test_api_unknown_format_and_method(client) -> None:
    resp = client.post("/api/stars?format=xml", json=["2942-54521-0124"])
    assert resp.status_code == 400 and "format" in resp.get_json()["error"]
    assert client.get("/api/stars").status_code == 405


# ----------------------------------------------------------------------------- page
def test_page_callbacks_text_upload_and_download(dashboard_app, snap) -> None:  # noqa: F811
    from startrack.dashboard.pages import many

    known = _some_ids(snap, 5)
    result, style = many.many_view("text", "\n".join([*known, "0001-51608-0001", "junk"]), None)
    text = json.dumps(result.to_plotly_json(), default=str)
    assert "5 of 7 found" in text and "1 not in the warehouse" in text and "1 unreadable" in text
    assert style == {}
    csv_bytes = f"plate,mjd,fiberid\n{known[0].replace('-', ',')}\n".encode()
    contents = "data:text/csv;base64," + base64.b64encode(csv_bytes).decode()
    result, _ = many.many_view("upload", "ignored", contents)
    assert "1 of 1 found" in json.dumps(result.to_plotly_json(), default=str)
    sent = many.download("csv", "upload", None, contents)
    table = pd.read_csv(io.BytesIO(base64.b64decode(sent["content"])))
    assert table["star_id"].tolist() == [known[0]] and sent["filename"] == "stars.csv"
    result, style = many.many_view("upload", None, "data:text/csv;base64,//79")
    assert "Cannot read the list" in json.dumps(result.to_plotly_json(), default=str)
    assert style == {"display": "none"}
