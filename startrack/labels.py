"""SDSS stellar subclass vocabulary: raw strings -> normalized label + numeric spectral type.

SDSS-I/II plates carry plain subclasses ('A0', 'K3', 'M2V', 'A0p', 'Carbon_lines',
'WDmagnetic'); BOSS plates carry archetype names with an id ('K3V (32147)', 'B5 (338529)').
The raw string is always kept next to what we derive, so nothing is lost.

Numeric spectral type: O0=0, B0=10, A0=20, F0=30, G0=40, K0=50, M0=60 ... M9=69, so
"within one subtype" is ``abs(a - b) <= 1``. Classes outside the MK sequence (white dwarfs,
carbon stars, cataclysmic variables, L and T dwarfs) get a family and no number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

MK_LETTERS = "OBAFGKM"
MK_OFFSET = {letter: 10 * i for i, letter in enumerate(MK_LETTERS)}

#: Families of labels; only ``MK`` labels have a numeric spectral type.
FAMILIES = ("MK", "WD", "Carbon", "CV", "L", "T", "other")

_ARCHETYPE_ID = re.compile(r"\s*\(\s*\d+\s*\)\s*$")
_MK = re.compile(
    r"^(?P<letter>[OBAFGKM])(?P<sub>\d(?:\.\d+)?)?"
    # longest first: the first alternative that matches wins ('III' is not 'I' + 'II');
    # a/ab/b subdivide a class (Iab, IIIb)
    r"(?P<lum>(?:III|II|IV|VI|V|I)(?:ab|a|b)?)?(?P<rest>.*)$"
)
_LT = re.compile(r"^(?P<letter>[LT])(?P<sub>\d(?:\.\d+)?)?(?P<rest>.*)$")


@dataclass(frozen=True)
class Label:
    """What we derive from one raw SDSS subclass string."""

    raw: str | None
    label: str | None  # normalized: 'K3', 'M2', 'OB', 'WD', 'Carbon', 'L5', ...
    family: str | None  # one of FAMILIES, None when the input is empty
    spectral_type: float | None  # O0=0 ... M9=69; None outside the MK sequence
    luminosity_class: str | None  # 'V', 'III', ... when the raw string carries one
    peculiar: bool  # 'A0p', 'Carbon_lines', 'WDmagnetic': a qualifier was dropped


def _clean(raw: str) -> str:
    return _ARCHETYPE_ID.sub("", raw.strip())


@lru_cache(maxsize=4096)
def normalize_subclass(raw: str | None) -> Label:
    """Map a raw SDSS subclass (either vocabulary) to a :class:`Label`."""
    if raw is None or not str(raw).strip() or str(raw).strip().lower() in {"nan", "none", "null"}:
        return Label(raw, None, None, None, None, False)
    text = _clean(str(raw))
    low = text.lower()
    if low.startswith("carbonwd") or low in {"dq", "dqp"}:
        return Label(raw, "WD", "WD", None, None, True)
    if low.startswith("carbon") or low in {"c", "cstar"}:
        return Label(raw, "Carbon", "Carbon", None, None, low != "carbon")
    if low.startswith("wd") or re.fullmatch(r"d[aboqzc][a-z0-9.]*", low):
        return Label(raw, "WD", "WD", None, None, low not in {"wd"})
    if low.startswith("cv"):
        return Label(raw, "CV", "CV", None, None, low != "cv")
    if text == "OB":
        return Label(raw, "OB", "MK", 9.5, None, False)
    if text.startswith("sd"):  # subdwarfs (BOSS 'sdF3'): keep the MK type, note the class
        inner = normalize_subclass(text[2:])
        if inner.family == "MK":
            return Label(raw, inner.label, "MK", inner.spectral_type, "VI", True)
    m = _MK.match(text)
    if m:
        letter, sub = m["letter"], m["sub"]
        if sub is None:
            # A bare letter ('O', 'B') means the middle of the class.
            return Label(raw, letter, "MK", MK_OFFSET[letter] + 5.0, m["lum"], bool(m["rest"]))
        num = float(sub)
        label = f"{letter}{sub.rstrip('0').rstrip('.') if '.' in sub else sub}"
        return Label(raw, label, "MK", MK_OFFSET[letter] + num, m["lum"], bool(m["rest"]))
    m = _LT.match(text)
    if m:
        sub = m["sub"]
        return Label(raw, f"{m['letter']}{sub or ''}", m["letter"], None, None, bool(m["rest"]))
    return Label(raw, text, "other", None, None, False)


def spectral_type_of(label: str | None) -> float | None:
    """Numeric spectral type of a *normalized* label (None outside the MK sequence)."""
    return normalize_subclass(label).spectral_type if label else None


#: The within-one rule: a prediction is "close" when both labels are MK types at most this
#: many subtypes apart (K3 vs K4), or the labels are equal.
WITHIN_ONE_SUBTYPES = 1.0


def within_one_subtype(actual: str | None, predicted: str | None) -> bool:
    """True when both are MK types at most one subtype apart, or the labels are equal."""
    if actual is None or predicted is None:
        return False
    if actual == predicted:
        return True
    a, p = spectral_type_of(actual), spectral_type_of(predicted)
    return a is not None and p is not None and abs(a - p) <= WITHIN_ONE_SUBTYPES


def spectral_types(labels) -> np.ndarray:
    """Numeric MK type per label (NaN outside the MK sequence, for None and for NaN), raw
    ('G8III', an ELODIE type) or normalized. Each distinct value is parsed once: a survey's
    hundreds of thousands of rows hold a few dozen."""
    codes, uniques = pd.factorize(pd.Series(list(labels), dtype=object))
    known = [spectral_type_of(u) if isinstance(u, str) else None for u in uniques]
    table = np.array([np.nan if t is None else t for t in known] + [np.nan], dtype=np.float64)
    return table[codes]  # code -1 (missing) reads the trailing NaN


#: A literature MK type with a subtype: letter, number (a range's first), luminosity class.
_LITERATURE_MK = re.compile(r"^([OBAFGKM])(\d+(?:\.\d+)?)(?:[-/]\d+(?:\.\d+)?)?:?\s*([IV]*)")
#: Luminosity classes as literature types are grouped here (Ia/Iab/Ib are all "I").
LUMINOSITY_CLASSES = ("V", "IV", "III", "II", "I")


def parse_mk(sptype: str) -> tuple[float | None, str]:
    """(MK number O0=0 ... M9=69, luminosity class 'V'...'I' or '') of a stellar library's
    literature type ('K3III', 'B9.5V', 'M2-3III': a range's first type); (None, '') when it
    has no subtype. A range across letters ('G8/K0III') gives its first type and no class."""
    sptype = sptype.strip()
    if re.match(r"^0\d", sptype):  # MILES writes a few O types with a zero: 07Ia
        sptype = "O" + sptype[1:]
    m = _LITERATURE_MK.match(sptype)
    if m is None:
        return None, ""
    t = float(spectral_types([f"{m.group(1)}{m.group(2)}"])[0])
    lum = m.group(3)
    lum = "I" if lum == "I" else lum if lum in LUMINOSITY_CLASSES else ""
    return (t if np.isfinite(t) else None), lum


def within_one_array(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """:func:`within_one_subtype` over two label arrays; each distinct label is parsed once."""
    a = np.asarray(actual, dtype=object)
    p = np.asarray(predicted, dtype=object)
    uniques, inverse = np.unique(np.concatenate([a, p]).astype(str), return_inverse=True)
    types = spectral_types([None if u == "None" else u for u in uniques])
    ia, ip = inverse[: len(a)], inverse[len(a) :]
    with np.errstate(invalid="ignore"):
        close = np.abs(types[ia] - types[ip]) <= WITHIN_ONE_SUBTYPES  # NaN compares False
    known = np.array([x is not None for x in a]) & np.array([x is not None for x in p])
    return known & ((ia == ip) | close)


def sort_key(label: str) -> tuple[int, float, str]:
    """Order labels along the MK sequence first (O..M), then L, T, then the rest."""
    info = normalize_subclass(label)
    order = {"MK": 0, "L": 1, "T": 2, "Carbon": 3, "WD": 4, "CV": 5, "other": 6}
    return (order.get(info.family or "other", 7), info.spectral_type or 0.0, label)
