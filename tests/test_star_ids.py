"""Star id parsing: every form users paste maps to the warehouse's canonical id."""

from __future__ import annotations

import pytest

from startrack.star_id import InvalidStarId, from_parts, parse_star_id


@pytest.mark.parametrize(
    "text",
    [
        "2942-54521-124",
        "2942-54521-0124",
        "spec-2942-54521-0124",
        "spec-2942-54521-0124.fits",
        "SPEC-2942-54521-0124.FITS",
        "  2942-54521-0124  ",
        "/data/sdss/spec-2942-54521-0124.fits.gz",
        "2942 54521 124",
    ],
)
def test_accepted_forms_give_the_canonical_id(text: str) -> None:
    sid = parse_star_id(text)
    assert (sid.plate, sid.mjd, sid.fiber) == (2942, 54521, 124)
    assert sid.star_id == "2942-54521-0124"


def test_short_plate_is_zero_padded() -> None:
    assert parse_star_id("266-51602-3").star_id == "0266-51602-0003"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "enter a star id"),
        (None, "enter a star id"),
        ("hello", "not a star id"),
        ("2942-54521", "not a star id"),
        ("2942-54521-0124-7", "not a star id"),
        ("2942-545-0124", "not a star id"),
        ("2942-54521-0", "fiber 0 is out of range"),
        ("0-54521-12", "plate 0 is out of range"),
        ("2942-54521-12.3", "not a star id"),
        ("x" * 500, "..."),
    ],
)
def test_bad_ids_get_a_clear_message(text, needle: str) -> None:
    with pytest.raises(InvalidStarId) as err:
        parse_star_id(text)
    assert needle in str(err.value)
    assert len(str(err.value)) < 200


def test_three_fields() -> None:
    assert from_parts("2942", 54521, " 124 ").star_id == "2942-54521-0124"
    with pytest.raises(InvalidStarId, match="MJD is empty"):
        from_parts("2942", "", "124")
    with pytest.raises(InvalidStarId, match="fiber must be a whole number"):
        from_parts("2942", "54521", "12a")
    with pytest.raises(InvalidStarId, match="MJD 123 is out of range"):
        from_parts("2942", "123", "5")


def test_one_fiber_limit_for_the_etl_and_the_dashboard():
    """BOSS plates have 1000 fibers: fiber 1000 is a star everywhere, 1001 nowhere."""
    from startrack.star_id import MAX_FIBER, invalid_id_reason, star_id_from_file_name

    assert MAX_FIBER == 1000
    assert parse_star_id("3586-55181-1000").star_id == "3586-55181-1000"
    assert invalid_id_reason(3586, 55181, 1000) is None
    with pytest.raises(InvalidStarId, match="fiber 1001 is out of range"):
        parse_star_id("3586-55181-1001")
    assert invalid_id_reason(3586, 55181, 1001) == "fiberid 1001 is outside 1..1000"
    assert star_id_from_file_name("spec-266-51630-3.fits.gz") == "0266-51630-0003"
    assert star_id_from_file_name("notes.txt") is None
