"""Spectrum readability: line labels in rows that do not overlap; the wavelength frame shown."""

from __future__ import annotations

import itertools

import numpy as np

from startrack import grid
from startrack.dashboard import figures, star_extras
from startrack.lines import GROUPS, LINES


def _extent(pos: float, name: str, lo: float, hi: float) -> tuple[float, float]:
    half = 0.5 * len(name) * figures.LABEL_CHAR_PX * (hi - lo) / figures.LABEL_PLOT_PX
    return pos - half, pos + half


def test_every_label_gets_a_row_without_overlap_at_full_view() -> None:
    wave = grid.wavelength()[300:4400]
    lo, hi = float(wave[0]), float(wave[-1])
    lines = [ln for ln in LINES if lo <= ln.wavelength <= hi]
    rows = figures.label_rows([ln.wavelength for ln in lines], [ln.name for ln in lines], lo, hi)
    by_row: dict[int, list[tuple[float, float]]] = {}
    for ln, row in zip(lines, rows, strict=True):
        by_row.setdefault(row, []).append(_extent(ln.wavelength, ln.name, lo, hi))
    for spans in by_row.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, spans
    blue = {ln.name: r for ln, r in zip(lines, rows, strict=True) if ln.wavelength < 4000}
    assert blue["Ca II H"] != blue["Hε"] and blue["Ca II K"] != blue["Hε"]
    assert len(set(blue.values())) >= 2


def test_figure_puts_colliding_labels_on_different_heights() -> None:
    s, e = 300, 4400
    wave = grid.wavelength()[s:e]
    flux = np.ones(e - s)
    fig = figures.spectrum_figure(wave, flux, np.ones(e - s), np.zeros(e - s, bool),
                                  line_groups=GROUPS)  # fmt: skip
    heights = {}
    for trace in fig.data:
        if trace.mode == "text":
            heights.update(dict(zip(trace.text, trace.y, strict=True)))
    assert heights["Ca II H"] != heights["Hε"]
    assert heights["Ca II K"] != heights["Hε"] and heights["H8"] != heights["Hε"]


def test_frame_is_named_and_rest_frame_divides_by_one_plus_z() -> None:
    wave = grid.wavelength()[:10]
    out, note, line_z = star_extras.wavelength_frame(wave, 1e-3, "rest")
    np.testing.assert_allclose(out, wave / 1.001)
    assert note.startswith("rest frame") and "+300 km/s" in note and line_z == 0.0
    out, note, line_z = star_extras.wavelength_frame(wave, 1e-3, "observed")
    assert out is wave and note.startswith("observed frame") and line_z == 1e-3
    _, note, _ = star_extras.wavelength_frame(wave, None, "rest")
    assert "no redshift known" in note
    fig = figures.spectrum_figure(wave, np.ones(10), np.ones(10), np.zeros(10, bool),
                                  frame_note="rest frame, z = 1.00e-03 removed")  # fmt: skip
    assert "rest frame" in fig.layout.xaxis.title.text
