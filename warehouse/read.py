"""Point reads from a published snapshot: one star, one spectrum.

Shared by on-demand inference (ml) and the dashboard, so both read a star the same way: the
``stars`` row through DuckDB (zone maps make it ~1 ms), the spectrum through ``spectra_index``
(file, row group, row) and a single Parquet row-group read with pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb
import numpy as np
import pyarrow.parquet as pq

from startrack.star_id import star_key
from startrack.warehouse.store import Snapshot

SPECTRUM_COLUMNS = ["flux", "ivar", "mask", "norm", "pix_start", "pix_end", "snr_median"]


@dataclass(frozen=True)
class Spectrum:
    """One gridded spectrum (arrays over the whole common grid, see startrack.grid)."""

    star_id: str
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    norm: float
    pix_start: int
    pix_end: int
    snr_median: float

    def as_record(self) -> dict:
        """The form ml.inference takes."""
        return {"flux": self.flux, "ivar": self.ivar, "mask": self.mask, "norm": self.norm}


@lru_cache(maxsize=64)
def _parquet_file(path: str) -> pq.ParquetFile:
    return pq.ParquetFile(path, memory_map=True)


def read_star(con: duckdb.DuckDBPyConnection, star_id: str) -> dict | None:
    """The ``stars`` row of a canonical star id as a dict (NaN -> None), or None."""
    cur = con.execute(
        "SELECT * FROM stars WHERE plate = ? AND mjd = ? AND fiberid = ?", star_key(star_id)
    )
    row = cur.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cur.description]
    return {
        k: (None if isinstance(v, float) and np.isnan(v) else v)
        for k, v in zip(names, row, strict=True)
    }


def read_spectrum(snap: Snapshot, con: duckdb.DuckDBPyConnection, star_id: str) -> Spectrum | None:
    """One spectrum via spectra_index, or None when the star has none."""
    loc = con.execute(
        "SELECT file, row_group, row FROM spectra_index "
        "WHERE plate = ? AND mjd = ? AND fiberid = ?",
        star_key(star_id),
    ).fetchone()
    if loc is None:
        return None
    file, row_group, row = loc
    table = _parquet_file(str(snap.root / file)).read_row_group(
        int(row_group), columns=SPECTRUM_COLUMNS
    )
    rec = table.slice(int(row), 1)

    def arr(name: str, dtype: type) -> np.ndarray:
        return (
            rec.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(dtype)
        )

    def scalar(name: str) -> Any:
        return rec.column(name)[0].as_py()

    return Spectrum(
        star_id=star_id,
        flux=arr("flux", np.float32),
        ivar=arr("ivar", np.float32),
        mask=arr("mask", bool),
        norm=float(scalar("norm") or np.nan),
        pix_start=int(scalar("pix_start")),
        pix_end=int(scalar("pix_end")),
        snr_median=float(scalar("snr_median") or np.nan),
    )
