"""Cone search: astropy parsing of positions and radii, nearest stars checked against astropy."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from dashboard_fixtures import dashboard_app, dashboard_warehouse  # noqa: F401

from startrack.dashboard import data, sky_search


@pytest.mark.parametrize(
    ("text", "deg"),
    [("150.1166", 150.1166), ("10:00:28.0", 150.116667), ("10h00m28s", 150.116667),
     ("10 00 28", 150.116667), ("150d07m", 150.116667), ("0", 0.0)],
)  # fmt: skip
def test_ra_decimal_degrees_or_sexagesimal_hours(text: str, deg: float) -> None:
    assert sky_search.parse_ra(text) == pytest.approx(deg, abs=1e-5)


@pytest.mark.parametrize(
    ("text", "deg"), [("2.2058", 2.2058), ("+02:12:21", 2.205833), ("-2d12m", -2.2)]
)
def test_dec(text: str, deg: float) -> None:
    assert sky_search.parse_dec(text) == pytest.approx(deg, abs=1e-5)


@pytest.mark.parametrize(
    ("text", "deg"),
    [("30 arcsec", 30 / 3600), ("2 arcmin", 2 / 60), ("0.5 deg", 0.5), ("2'", 2 / 60),
     ('30"', 30 / 3600), ("3", 3 / 60)],
)  # fmt: skip
def test_radius_with_units(text: str, deg: float) -> None:
    assert sky_search.parse_radius(text) == pytest.approx(deg)


@pytest.mark.parametrize(
    ("ra", "dec", "radius", "needle"),
    [("abc", "1", "1", "RA 'abc' is not an angle"), ("400", "1", "1", "outside 0..360"),
     ("1", "95", "1", "outside -90..+90"), ("1", "", "1", "Dec is empty"),
     ("1", "1", "5 kg", "not an angle"), ("1", "1", "-1", "above 0"),
     ("1", "1", "10 deg", "at most 5 deg")],
)  # fmt: skip
def test_bad_positions_are_one_line_messages(ra, dec, radius, needle) -> None:
    with pytest.raises(sky_search.BadPosition, match=needle):
        sky_search.parse_cone(ra, dec, radius)


@pytest.fixture
def snap(dashboard_app, dashboard_warehouse):  # noqa: F811
    data.configure(dashboard_warehouse)
    return data.current_snapshot()


def test_cone_search_matches_astropy_separations(snap) -> None:
    stars = snap.table("stars").to_pandas()
    centre = stars.iloc[17]
    cone = sky_search.Cone(float(centre["ra"]), float(centre["dec"]), 3.0)
    found = sky_search.cone_search(snap, cone, limit=10_000)
    sep = SkyCoord(stars["ra"], stars["dec"], unit="deg").separation(
        SkyCoord(cone.ra, cone.dec, unit="deg")
    )
    inside = stars[sep < 3 * u.deg].assign(sep=sep[sep < 3 * u.deg].arcsec)
    assert set(found["star_id"]) == set(inside["star_id"]) and len(found) > 1
    assert found["star_id"].iloc[0] == centre["star_id"] and found["distance_arcsec"].iloc[0] < 0.01
    assert found["distance_arcsec"].is_monotonic_increasing
    expect = inside.set_index("star_id")["sep"].reindex(found["star_id"]).to_numpy()
    np.testing.assert_allclose(found["distance_arcsec"], expect, atol=0.01)
    assert (
        found["sdss_label"].tolist()
        == stars.set_index("star_id").loc[found["star_id"], "label"].tolist()
    )
    assert found["fusion_label"].notna().all()
    assert len(sky_search.cone_search(snap, cone, limit=3)) == 3


def test_cone_api_and_page(dashboard_app, snap) -> None:  # noqa: F811
    from startrack.dashboard.pages import cone

    centre = snap.table("stars").to_pandas().iloc[17]
    client = dashboard_app.server.test_client()
    resp = client.get(f"/api/cone?ra={centre['ra']}&dec={centre['dec']}&radius=2 deg")
    body = resp.get_json()
    assert resp.status_code == 200 and body["stars"][0]["star_id"] == centre["star_id"]
    assert body["radius_deg"] == 2.0 and body["n"] == len(body["stars"])
    resp = client.get("/api/cone?ra=xx&dec=1")
    assert resp.status_code == 400 and "not an angle" in resp.get_json()["error"]
    text = str(cone.cone_view(str(centre["ra"]), str(centre["dec"]), "2 deg"))
    assert centre["star_id"] in text and "radius 2 deg" in text
    assert "Cannot read the position" in str(cone.cone_view("1", "100", "1"))


def test_sky_map_click_opens_the_star(dashboard_app) -> None:  # noqa: F811
    """Pages register with the one app, so the page module is imported after it exists."""
    import dash

    from startrack.dashboard.pages import explore

    click = {"points": [{"x": 1.0, "y": 2.0, "customdata": "2942-54521-0124"}]}
    assert explore.open_clicked_star(click) == "/star/2942-54521-0124"
    assert explore.open_clicked_star(None) is dash.no_update
