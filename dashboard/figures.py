"""Plotly figure builders: pure functions of arrays and DataFrames, no warehouse access.

The spectrum is binned for display (inverse-variance weighted means of ``k`` adjacent pixels,
``k`` chosen so at most ``max_points`` points are drawn): a 4671-pixel spectrum with an error
band, two template overlays and line markers then stays a few tens of kB of JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from scipy.ndimage import gaussian_filter1d

from startrack.labels import sort_key
from startrack.lines import DEFAULT_GROUPS, GROUPS, lines_in

FLUX_TITLE = "Flux [10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹]"
WAVE_TITLE = "Wavelength [Å, vacuum]"
MAX_POINTS = 1200  #: about one point per screen pixel of a wide figure
GROUP_COLORS = dict(zip(GROUPS, qualitative.Dark2 + qualitative.Set1, strict=False))
TEMPLATE_COLORS = ("#d62728", "#2ca02c", "#9467bd")
MAX_MASK_RUNS = 80
LABEL_COLORS = qualitative.Dark24 + qualitative.Light24


def empty_figure(message: str) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.update_layout(
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[{"text": message, "showarrow": False, "font": {"size": 14}}],
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        height=260,
    )
    return fig


# ----------------------------------------------------------------------------- spectrum
def smooth_flux(flux: np.ndarray, good: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian smoothing that ignores masked pixels (normalized convolution)."""
    if sigma_px <= 0:
        return np.where(good, flux, np.nan)
    w = good.astype(np.float64)
    num = gaussian_filter1d(np.where(good, flux, 0.0).astype(np.float64), sigma_px, mode="nearest")
    den = gaussian_filter1d(w, sigma_px, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den < 0.05] = np.nan
    return out


def bin_spectrum(
    wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray, good: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-variance weighted means of k adjacent pixels; sigma is that of the mean.

    Bins without a good pixel are NaN (drawn as gaps). Returns (wave, flux, sigma).
    """
    n = len(wave)
    k = max(1, math.ceil(n / max_points))
    nb = math.ceil(n / k)
    pad = nb * k - n

    def shaped(a: np.ndarray, fill: float) -> np.ndarray:
        return np.concatenate([a.astype(np.float64), np.full(pad, fill)]).reshape(nb, k)

    w = np.where(good & np.isfinite(flux), ivar, 0.0)
    ws = shaped(w, 0.0)
    fs = shaped(np.where(w > 0, flux, 0.0), 0.0)
    wsum = ws.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fb = (fs * ws).sum(axis=1) / wsum
        sb = 1.0 / np.sqrt(wsum)
    fb[wsum <= 0] = np.nan
    sb[wsum <= 0] = np.nan
    wb = shaped(wave, np.nan)
    wave_b = np.nanmean(wb, axis=1)
    return wave_b, fb, sb


def _bin_curve(curve: np.ndarray, k: int) -> np.ndarray:
    n = len(curve)
    nb = math.ceil(n / k)
    padded = np.concatenate([curve.astype(np.float64), np.full(nb * k - n, np.nan)])
    with np.errstate(invalid="ignore"):
        return np.nanmean(padded.reshape(nb, k), axis=1) if k > 1 else padded


def masked_runs(mask: np.ndarray, merge_gap: int = 3) -> list[tuple[int, int]]:
    """[start, end) pixel runs of True, runs closer than merge_gap merged."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
    merged: list[tuple[int, int]] = []
    for s, e in runs:
        if merged and s - merged[-1][1] < merge_gap:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _f32(a: np.ndarray) -> np.ndarray:
    """float32 rounds the JSON payload (plotly encodes numpy arrays compactly)."""
    return np.asarray(a, dtype=np.float32)


def spectrum_figure(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    mask: np.ndarray,
    *,
    line_groups: Iterable[str] = DEFAULT_GROUPS,
    smooth_px: float = 0.0,
    templates: Mapping[str, np.ndarray] | None = None,
    max_points: int = MAX_POINTS,
    title: str | None = None,
    frame_note: str | None = None,
    line_redshift: float = 0.0,
) -> go.Figure:
    """Flux vs wavelength with a 1-sigma band, masked regions, line markers, templates.

    Arrays cover only the spectrum's pixels [pix_start, pix_end). ``templates`` maps a legend
    name to a model flux on the same pixels (already scaled). ``frame_note`` says in the axis
    title which frame the wavelengths are in; ``line_redshift`` moves the rest-frame line
    markers to where the star's redshift puts them (0 for a rest-frame plot).
    """
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    good = ~mask & (ivar > 0) & np.isfinite(flux)
    shown = smooth_flux(flux, good, smooth_px)
    k = max(1, math.ceil(len(wave) / max_points))
    wb, fb, sb = bin_spectrum(
        wave, np.nan_to_num(shown), ivar, good & np.isfinite(shown), max_points
    )
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=_f32(wb), y=_f32(fb + sb), mode="lines", line={"width": 0}, showlegend=False,
            legendgroup="band", hoverinfo="skip",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=_f32(wb), y=_f32(fb - sb), mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor="rgba(31,119,180,0.25)", name="±1σ (ivar)", legendgroup="band",
            hoverinfo="skip",
        )
    )  # fmt: skip
    label = "flux" + (f" (smoothed σ={smooth_px:g} px)" if smooth_px > 0 else "")
    fig.add_trace(
        go.Scatter(
            x=_f32(wb), y=_f32(fb), mode="lines", name=label, line={"color": "#1f77b4", "width": 1},
            hovertemplate="%{x:.1f} Å<br>%{y:.3g}<extra></extra>",
        )
    )  # fmt: skip
    for i, (name, model) in enumerate((templates or {}).items()):
        fig.add_trace(
            go.Scatter(
                x=_f32(wb), y=_f32(_bin_curve(np.asarray(model), k)), mode="lines", name=name,
                line={"color": TEMPLATE_COLORS[i % 3], "width": 1.2, "dash": "dot"},
                hovertemplate="%{x:.1f} Å<br>%{y:.3g}<extra>" + name + "</extra>",
            )
        )  # fmt: skip
    _add_mask_trace(fig, wave, mask)
    _add_line_traces(fig, wave, set(line_groups), 1.0 + line_redshift)
    lo, hi = _robust_range(np.concatenate([fb[np.isfinite(fb)], (fb + sb)[np.isfinite(sb)]]))
    fig.update_layout(
        title={"text": title, "font": {"size": 14}} if title else None,
        xaxis={
            "title": WAVE_TITLE if not frame_note else f"{WAVE_TITLE[:-1]}, {frame_note}]",
            "range": [float(wave[0]), float(wave[-1])],
        },
        yaxis={"title": FLUX_TITLE, "range": [lo, hi]},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        legend={"orientation": "h", "y": -0.22, "x": 0, "font": {"size": 11}},
        margin={"l": 60, "r": 10, "t": 40 if title else 10, "b": 40},
        height=430,
        hovermode="closest",
        uirevision="spectrum",
        template="plotly_white",
    )
    return fig


def _robust_range(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [0.5, 99.5])
    pad = 0.08 * (hi - lo or abs(hi) or 1.0)
    return float(min(lo - pad, 0.0 if lo > 0 and lo < 0.2 * hi else lo - pad)), float(hi + pad)


def _add_mask_trace(fig: go.Figure, wave: np.ndarray, mask: np.ndarray) -> None:
    runs = masked_runs(mask)
    if not runs:
        return
    runs = sorted(sorted(runs, key=lambda r: r[0] - r[1])[:MAX_MASK_RUNS])
    xs: list[float | None] = []
    ys: list[float | None] = []
    half = 0.5 * (wave[1] - wave[0]) if len(wave) > 1 else 0.5
    for s, e in runs:
        a, b = float(wave[s] - half), float(wave[e - 1] + half)
        xs += [a, a, b, b, None]
        ys += [0, 1, 1, 0, None]
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, yaxis="y2", fill="toself", mode="none", fillcolor="rgba(120,120,120,0.22)",
            name=f"masked pixels ({int(mask.sum())})", hoverinfo="skip",
        )
    )  # fmt: skip


#: Line-label layout: the plot is ~1,000 px wide at its smallest desktop size; a 9-px label
#: character is ~5.5 px wide. Rows of labels step down from the top of the plot.
LABEL_PLOT_PX = 1000.0
LABEL_CHAR_PX = 5.5
LABEL_PAD_PX = 6.0
LABEL_ROW_Y = (0.97, 0.925, 0.88, 0.835, 0.79)


def label_rows(
    positions: list[float], names: list[str], lo: float, hi: float, n_rows: int = len(LABEL_ROW_Y)
) -> list[int]:
    """A row per label so that no two labels in a row overlap at the full view.

    Labels are centred on their line; greedily, each goes to the first row whose last label
    ends before this one starts (in Å at the full view's scale). Zooming in only spreads
    them apart, since the font keeps its pixel size. With more collisions than rows the
    label goes to the row whose last label ends earliest (least overlap).
    """
    per_px = (hi - lo) / LABEL_PLOT_PX
    ends = [-math.inf] * n_rows
    rows = [0] * len(positions)
    for i in sorted(range(len(positions)), key=lambda j: positions[j]):
        half = 0.5 * (len(names[i]) * LABEL_CHAR_PX + LABEL_PAD_PX) * per_px
        start = positions[i] - half
        row = next((r for r in range(n_rows) if ends[r] <= start), None)
        if row is None:
            row = min(range(n_rows), key=lambda r: ends[r])
        rows[i] = row
        ends[row] = positions[i] + half
    return rows


def _add_line_traces(
    fig: go.Figure, wave: np.ndarray, visible_groups: set[str], stretch: float = 1.0
) -> None:
    lo, hi = float(wave[0]), float(wave[-1])
    shown = [ln for ln in lines_in(list(visible_groups)) if lo <= ln.wavelength * stretch <= hi]
    rows = label_rows([ln.wavelength * stretch for ln in shown], [ln.name for ln in shown], lo, hi)
    row_of = {ln.name: r for ln, r in zip(shown, rows, strict=True)}
    for group in GROUPS:
        lines = [ln for ln in lines_in([group]) if lo <= ln.wavelength * stretch <= hi]
        if not lines:
            continue
        color = GROUP_COLORS.get(group, "#444")
        visible = True if group in visible_groups else "legendonly"
        xs: list[float | None] = []
        ys: list[float | None] = []
        bands = [ln for ln in lines if ln.width > 0]
        for ln in lines:
            if ln.width > 0:
                a, b = ln.wavelength * stretch, (ln.wavelength + ln.width) * stretch
                xs += [a, a, b, b, None]
                ys += [0, 1, 1, 0, None]
            else:
                xs += [ln.wavelength * stretch, ln.wavelength * stretch, None]
                ys += [0, LABEL_ROW_Y[-1] - 0.03, None]
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, yaxis="y2", mode="lines" if not bands else "none",
                fill="toself" if bands else None, line={"color": color, "width": 1, "dash": "dash"},
                fillcolor=_rgba(color, 0.12), name=group, legendgroup=group, visible=visible,
                hoverinfo="skip",
            )
        )  # fmt: skip
        # hidden groups take the row they would have alone (they come back from the legend)
        solo = label_rows(
            [ln.wavelength * stretch for ln in lines], [ln.name for ln in lines], lo, hi
        )
        label_y = [LABEL_ROW_Y[row_of.get(ln.name, r)] for ln, r in zip(lines, solo, strict=True)]
        fig.add_trace(
            go.Scatter(
                x=[ln.wavelength * stretch for ln in lines], y=label_y, yaxis="y2",
                mode="text", text=[ln.name for ln in lines], textfont={"size": 9, "color": color},
                legendgroup=group, showlegend=False, visible=visible,
                hovertemplate="%{text}: %{x:.2f} Å<extra></extra>",
            )
        )  # fmt: skip


def _rgba(color: str, alpha: float) -> str:
    if color.startswith("#") and len(color) == 7:
        r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        return f"rgba({r},{g},{b},{alpha})"
    if color.startswith("rgb("):
        return color.replace("rgb(", "rgba(").replace(")", f",{alpha})")
    return color


def figure_bytes(fig: go.Figure) -> int:
    """Size of the JSON the browser receives for this figure."""
    return len(fig.to_json().encode())


# ----------------------------------------------------------------------------- accuracy
def confusion_figure(matrix: pd.DataFrame, normalize: bool = False) -> go.Figure:
    """Heatmap of actual (rows) x predicted (columns); row-normalized shows recall per cell."""
    if matrix.empty:
        return empty_figure("no confusion matrix for this choice")
    counts = matrix.to_numpy()
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(rows > 0, counts / rows, 0.0)
        text = np.where(counts > 0, np.char.mod("%.2f", z), "")
        colorbar = {"title": "fraction of row"}
    else:
        z = counts
        text = np.where(counts > 0, counts.astype(str), "")
        colorbar = {"title": "stars"}
    n = len(matrix)
    fig = go.Figure(
        go.Heatmap(
            z=z, x=list(matrix.columns), y=list(matrix.index), text=text,
            texttemplate="%{text}" if n <= 30 else None, textfont={"size": 9},
            customdata=counts, colorscale="Blues", colorbar=colorbar,
            hovertemplate="actual %{y}<br>predicted %{x}<br>%{customdata} stars<extra></extra>",
            xgap=1, ygap=1,
        )
    )  # fmt: skip
    size = max(360, min(900, 22 * n + 140))
    fig.update_layout(
        xaxis={"title": "predicted", "type": "category", "tickangle": -60},
        yaxis={"title": "actual (SDSS)", "type": "category", "autorange": "reversed"},
        height=size,
        margin={"l": 70, "r": 10, "t": 10, "b": 70},
        template="plotly_white",
    )
    return fig


def accuracy_snr_figure(df: pd.DataFrame) -> go.Figure:
    """Accuracy against S/N bin, one line per branch."""
    if df.empty:
        return empty_figure("no accuracy-by-S/N metrics for this model")
    fig = go.Figure()
    order = list(dict.fromkeys(df["snr_bin"]))
    for branch, sub in df.groupby("branch", sort=False):
        fig.add_trace(
            go.Scatter(
                x=sub["snr_bin"], y=sub["value"], mode="lines+markers", name=branch,
                customdata=sub["n"], hovertemplate="S/N %{x}: %{y:.3f} (n=%{customdata})",
            )
        )  # fmt: skip
    fig.update_layout(
        xaxis={"title": "median S/N per pixel", "categoryorder": "array", "categoryarray": order},
        yaxis={"title": "accuracy", "range": [0, 1.02]},
        height=320,
        margin={"l": 60, "r": 10, "t": 10, "b": 50},
        legend={"orientation": "h", "y": -0.3},
        template="plotly_white",
    )
    return fig


# ----------------------------------------------------------------------------- explore
def _color_groups(df: pd.DataFrame, color_by: str) -> list[tuple[str, pd.DataFrame, str]]:
    if color_by == "correctness":
        state = np.where(df["correct"].isna(), "no prediction", np.where(
            df["correct"].fillna(False).astype(bool), "right", "wrong"))  # fmt: skip
        colors = {"right": "#2ca02c", "wrong": "#d62728", "no prediction": "#aaaaaa"}
        return [(k, df[state == k], colors[k]) for k in colors if (state == k).any()]
    labels = df["label"].fillna("unknown")
    names = sorted(labels.unique(), key=lambda s: sort_key(s) if s != "unknown" else (9, 0, s))
    return [
        (name, df[labels == name], LABEL_COLORS[i % len(LABEL_COLORS)])
        for i, name in enumerate(names)
    ]


def _scatter(df: pd.DataFrame, x: str, y: str, color_by: str) -> go.Figure:
    fig = go.Figure()
    for name, sub, color in _color_groups(df, color_by):
        fig.add_trace(
            go.Scattergl(
                x=_f32(sub[x]), y=_f32(sub[y]), mode="markers", name=str(name),
                marker={"size": 4, "color": color, "opacity": 0.7}, customdata=sub["star_id"],
                hovertemplate="%{customdata}<br>" + f"{x}=%{{x:.3f}} {y}=%{{y:.3f}}<extra>{name}</extra>",  # noqa: E501
            )
        )  # fmt: skip
    fig.update_layout(
        height=420, margin={"l": 60, "r": 10, "t": 10, "b": 50}, template="plotly_white",
        legend={"font": {"size": 10}}, uirevision=f"{x}-{y}",
    )  # fmt: skip
    return fig


def sky_map_figure(df: pd.DataFrame, color_by: str = "label") -> go.Figure:
    """RA/Dec positions (RA increasing to the left, as on the sky)."""
    if df.empty:
        return empty_figure("no stars match the filters")
    fig = _scatter(df, "ra", "dec", color_by)
    fig.update_layout(
        xaxis={"title": "RA [deg]", "autorange": "reversed"}, yaxis={"title": "Dec [deg]"}
    )
    return fig


def color_color_figure(df: pd.DataFrame, color_by: str = "label") -> go.Figure:
    """g-r against u-g: the stellar locus."""
    if df.empty:
        return empty_figure("no stars match the filters")
    fig = _scatter(df.dropna(subset=["u_g", "g_r"]), "g_r", "u_g", color_by)
    fig.update_layout(
        xaxis={"title": "g − r [mag]"}, yaxis={"title": "u − g [mag]", "autorange": "reversed"}
    )
    return fig
