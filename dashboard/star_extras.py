"""Pieces of the star page added for day-to-day use (kept apart from the page's core layout).

Download links for the star's spectrum; more per-star tools live here as they come.
"""

from __future__ import annotations

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
