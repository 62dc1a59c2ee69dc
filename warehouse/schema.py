"""Arrow schemas of the warehouse tables the ETL owns (units in the README's schema section).

Declaring them once keeps every writer and every empty table identical, so SQL written
against an empty warehouse keeps working once data arrives.
"""

from __future__ import annotations

import pyarrow as pa

from startrack import grid

BANDS = ("u", "g", "r", "i", "z")

STARS = pa.schema(
    [
        ("plate", pa.int32()),
        ("mjd", pa.int32()),
        ("fiberid", pa.int32()),
        ("star_id", pa.string()),
        ("specobjid", pa.string()),
        ("ra", pa.float64()),
        ("dec", pa.float64()),
        ("class", pa.string()),
        ("subclass", pa.string()),
        ("label", pa.string()),
        ("label_family", pa.string()),
        ("spectral_type", pa.float64()),
        ("luminosity_class", pa.string()),
        ("z", pa.float64()),
        ("zerr", pa.float64()),
        ("snr", pa.float64()),
        *[(f"mag_{b}", pa.float64()) for b in BANDS],
        *[(f"magerr_{b}", pa.float64()) for b in BANDS],
        ("elodie_sptype", pa.string()),
        ("has_spectrum", pa.bool_()),
        ("source", pa.string()),
        ("ingest_run", pa.string()),
    ]
)

#: Spectrum part files: one row per spectrum, arrays on the common grid (startrack.grid).
SPECTRA = pa.schema(
    [
        ("plate", pa.int32()),
        ("mjd", pa.int32()),
        ("fiberid", pa.int32()),
        ("star_id", pa.string()),
        ("flux", pa.list_(pa.float32(), grid.NPIX)),
        ("ivar", pa.list_(pa.float32(), grid.NPIX)),
        ("mask", pa.list_(pa.bool_(), grid.NPIX)),
        ("norm", pa.float32()),
        ("norm_method", pa.string()),
        ("pix_start", pa.int32()),
        ("pix_end", pa.int32()),
        ("exact_shift", pa.bool_()),
        ("snr_median", pa.float32()),
        ("source", pa.string()),
        ("ingest_run", pa.string()),
    ]
)

SPECTRA_INDEX = pa.schema(
    [
        ("plate", pa.int32()),
        ("mjd", pa.int32()),
        ("fiberid", pa.int32()),
        ("star_id", pa.string()),
        ("file", pa.string()),
        ("row_group", pa.int32()),
        ("row", pa.int32()),
    ]
)

INGEST_RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("command", pa.string()),
        ("inputs", pa.string()),
        ("catalog_rows", pa.int64()),
        ("spectra_files", pa.int64()),
        ("spectra_added", pa.int64()),
        ("spectra_skipped", pa.int64()),
        ("stars_added", pa.int64()),
        ("stars_updated", pa.int64()),
        ("stars_total", pa.int64()),
        ("rejects", pa.int64()),
        ("seconds", pa.float64()),
        ("status", pa.string()),
    ]
)

REJECTS = pa.schema(
    [
        ("run_id", pa.string()),
        ("source", pa.string()),
        ("item", pa.string()),
        ("reason", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)

#: Tables every snapshot has (created empty when nothing wrote them yet).
EMPTY_SCHEMAS: dict[str, pa.Schema] = {
    "stars": STARS,
    "spectra_index": SPECTRA_INDEX,
    "ingest_runs": INGEST_RUNS,
    "rejects": REJECTS,
}
