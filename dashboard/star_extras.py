"""Pieces of the star page added for day-to-day use (kept apart from the page's core layout).

Download links for the star's spectrum, the observed/rest wavelength frame; more per-star
tools live here as they come.
"""

from __future__ import annotations

import math

import numpy as np
from dash import html

from startrack.dashboard import data, downloads
from startrack.warehouse.store import WarehouseEmpty


def spectrum_download_links(star_id: str | None) -> list | None:
    """'Download spectrum: CSV · FITS' for a star with a spectrum; nothing otherwise."""
    if not star_id:
        return None
    try:
        spec = data.spectrum(data.current_snapshot(), star_id)
    except WarehouseEmpty:
        return None
    if spec is None:
        return None
    return [
        html.Span("Download the gridded spectrum: ", className="text-muted"),
        html.A("CSV", href=downloads.spectrum_url(star_id, "csv"), id="star-dl-csv",
               download=f"spec-{star_id}.csv", className="me-2"),
        html.A("FITS", href=downloads.spectrum_url(star_id, "fits"), id="star-dl-fits",
               download=f"startrack-spec-{star_id}.fits", className="me-2"),
        html.Span("(flux, ivar, mask, vacuum wavelength; units in the header)",
                  className="text-muted"),
    ]  # fmt: skip


def wavelength_frame(
    wave: np.ndarray, z: float | None, frame: str
) -> tuple[np.ndarray, str, float]:
    """-> (wavelengths to plot, the axis note naming the frame, redshift of the line markers).

    Observed: the pixels as measured, with the rest-frame line markers moved by (1 + z) so
    they sit where the star's lines fall. Rest: wavelengths divided by (1 + z), markers at
    their laboratory wavelengths. Without a redshift the two are the same and say so.
    """
    has_z = z is not None and math.isfinite(float(z))
    zf = float(z) if has_z else 0.0
    kms = zf * 299_792.458
    if frame == "rest" and has_z:
        return wave / (1.0 + zf), f"rest frame, z = {zf:.2e} ({kms:+.0f} km/s) removed", 0.0
    if frame == "rest":
        return wave, "observed frame: no redshift known, so no rest frame", 0.0
    note = f"observed frame, z = {zf:.2e} ({kms:+.0f} km/s)" if has_z else "observed frame"
    return wave, note, zf
