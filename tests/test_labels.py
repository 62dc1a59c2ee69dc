"""Label normalization across the two SDSS vocabularies, and the numeric spectral type."""

from __future__ import annotations

import csv

import pytest

from startrack.labels import normalize_subclass, parse_mk, sort_key, within_one_subtype


@pytest.mark.parametrize(
    ("raw", "label", "family", "sptype"),
    [
        ("A0", "A0", "MK", 20.0),  # SDSS-I/II plain subclasses
        ("K3", "K3", "MK", 53.0),
        ("M2V", "M2", "MK", 62.0),
        ("A0p", "A0", "MK", 20.0),
        ("F9", "F9", "MK", 39.0),
        ("O", "O", "MK", 5.0),
        ("OB", "OB", "MK", 9.5),
        ("K3V (32147)", "K3", "MK", 53.0),  # BOSS archetype names
        ("B5 (338529)", "B5", "MK", 15.0),
        ("G8III (82108)", "G8", "MK", 48.0),
        ("M9", "M9", "MK", 69.0),
        ("WD", "WD", "WD", None),  # outside the MK sequence: explicit families, no number
        ("WDmagnetic", "WD", "WD", None),
        ("CarbonWD", "WD", "WD", None),
        ("Carbon", "Carbon", "Carbon", None),
        ("Carbon_lines", "Carbon", "Carbon", None),
        ("CV", "CV", "CV", None),
        ("L5.5", "L5.5", "L", None),
        ("T2", "T2", "T", None),
    ],
)
def test_both_vocabularies(raw, label, family, sptype):
    info = normalize_subclass(raw)
    assert (info.raw, info.label, info.family, info.spectral_type) == (raw, label, family, sptype)


@pytest.mark.parametrize(
    ("raw", "luminosity_class"),
    [
        ("G8III (82108)", "III"),  # a BOSS giant archetype: not class I with a peculiar 'II'
        ("K1IV", "IV"),
        ("K0.5IIIb", "IIIb"),
        ("B1Iab", "Iab"),
        ("A0Ia", "Ia"),
        ("K1II", "II"),
        ("M2V", "V"),
        ("F5VI", "VI"),
        ("K3", None),
    ],
)
def test_luminosity_classes_are_read_whole(raw, luminosity_class):
    label = normalize_subclass(raw)
    assert label.luminosity_class == luminosity_class
    assert not label.peculiar, "a luminosity class is not a peculiarity"


@pytest.mark.parametrize("empty", [None, "", "  ", "nan", "NULL"])
def test_missing_labels_stay_missing(empty):
    assert normalize_subclass(empty).label is None


def test_within_one_subtype_uses_the_numeric_type():
    assert within_one_subtype("G2", "G3") and within_one_subtype("K7", "K8")
    assert within_one_subtype("K7", "M0") is False  # K7=57, M0=60
    assert within_one_subtype("A0", "B9")  # the sequence runs across letters: B9=19, A0=20
    assert not within_one_subtype("K1", "K3")
    assert within_one_subtype("WD", "WD") and not within_one_subtype("WD", "A0")
    assert not within_one_subtype(None, "A0")


def test_sort_key_orders_the_mk_sequence_first():
    labels = ["WD", "M5", "A0", "L3", "O", "G2", "Carbon", "T2"]
    assert sorted(labels, key=sort_key) == ["O", "A0", "G2", "M5", "L3", "T2", "Carbon", "WD"]


def test_every_real_sdss_subclass_is_understood(real_labels):
    with open(real_labels) as fh:
        raws = {row["subClass"] for row in csv.DictReader(fh)}
    parsed = {raw: normalize_subclass(raw) for raw in raws}
    assert all(p.family in {"MK", "WD", "Carbon", "CV", "L", "T"} for p in parsed.values())
    mk = [p for p in parsed.values() if p.family == "MK"]
    assert all(0 <= p.spectral_type <= 69 for p in mk)


@pytest.mark.parametrize(
    ("sptype", "expected"),
    [
        ("G6V", (46.0, "V")),
        ("K0.5IIIb", (50.5, "III")),  # a half subtype and a sub-class
        ("B9.5V", (19.5, "V")),
        ("M2-3III", (62.0, "III")),  # a range: its first type
        ("F8IV-V", (38.0, "IV")),
        ("A0Ib", (20.0, "I")),  # Ia, Iab and Ib are all supergiants
        ("07Ia", (7.0, "I")),  # the parameter file writes a few O types with a zero
        ("F3", (33.0, "")),  # no class given
        ("sd:F", (None, "")),  # no subtype: not counted
        ("KIIvw", (None, "")),
        ("", (None, "")),
        ("G8/K0III", (48.0, "")),  # a range across letters: its first type, no class read
    ],
)
def test_literature_types_are_read_on_the_mk_scale(sptype, expected):
    """Library types (MILES, STELIB) as the real-star benchmark and the surveys read them."""
    assert parse_mk(sptype) == expected
