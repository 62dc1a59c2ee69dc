"""TrainingData, and loading it from a published warehouse snapshot within a memory budget.

Stars come from DuckDB; spectra are streamed from the Parquet part files with pyarrow (only the
columns and rows needed) straight into preallocated float32 arrays, so peak memory is the
arrays themselves plus one record batch. A spectrum costs ~42 kB in memory (flux + ivar
float32, mask bool over 4,671 pixels): ``max_spectra`` bounds the total.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from startrack.errors import NothingToTrain
from startrack.grid import NPIX
from startrack.ml.features import MAG_COLUMNS, MAGERR_COLUMNS, split_fraction, split_of
from startrack.ml.inference import Spectra

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """What training needs, as arrays.

    stars: one row per star with star_id, label (normalized), spectral_type, z, snr, mag_u..z,
    magerr_u..z. flux/ivar (n_spec, NPIX) float32, mask bool, norm (n_spec,). spec_row (n,)
    maps each star to its spectrum row, -1 when it has none. split: 'train'/'val'/'test' per
    star; computed with split_of(star_id) when None.
    """

    stars: pd.DataFrame
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    norm: np.ndarray
    spec_row: np.ndarray
    split: np.ndarray | None = None
    snapshot_id: str | None = None

    def __post_init__(self) -> None:
        n = len(self.stars)
        self.stars = self.stars.reset_index(drop=True)
        self.spec_row = np.asarray(self.spec_row, dtype=np.int64)
        if len(self.spec_row) != n:
            raise ValueError(f"spec_row has {len(self.spec_row)} entries for {n} stars")
        for col in ("star_id", "label"):
            if col not in self.stars.columns:
                raise ValueError(f"stars needs a {col!r} column")
        if self.split is None:
            self.split = np.array([split_of(s) for s in self.stars["star_id"]], dtype=object)
        self.split = np.asarray(self.split, dtype=object)

    def spectra(self) -> Spectra:
        return Spectra(self.flux, self.ivar, self.mask, self.norm, self.spec_row)

    def without_label(self, label: str) -> TrainingData:
        """The same data with ``label`` unknown (leave-one-subtype-out experiments)."""
        stars = self.stars.copy()
        stars.loc[stars["label"] == label, "label"] = None
        return dataclasses.replace(self, stars=stars)


#: Stars columns the model uses (plus ids for bookkeeping; never fed to the network).
STAR_COLUMNS = (
    "star_id",
    "plate",
    "mjd",
    "fiberid",
    "label",
    "spectral_type",
    "z",
    "snr",
    *MAG_COLUMNS,
    *MAGERR_COLUMNS,
    "has_spectrum",
    "elodie_sptype",  # the star's own MK type, for the training targets (ml.targets)
)
SPECTRUM_COLUMNS = ("star_id", "flux", "ivar", "mask", "norm")
DEFAULT_MAX_SPECTRA = 60_000  # ~2.5 GB


def load_stars(snapshot, where: str = "label IS NOT NULL") -> pd.DataFrame:
    """The stars table (model columns only) as a DataFrame, in star_id order."""
    con = snapshot.connect()
    try:
        have = {r[0] for r in con.execute("DESCRIBE stars").fetchall()}
        cols = [c for c in STAR_COLUMNS if c in have]
        sql = f"SELECT {', '.join(cols)} FROM stars WHERE {where} ORDER BY star_id"
        return con.execute(sql).df()
    finally:
        con.close()


def _fixed_list(column: pa.ChunkedArray | pa.Array, dtype) -> np.ndarray:
    """(rows, NPIX) numpy view of a list column (fixed-size or variable with NPIX each)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False)
    if values.size != len(column) * NPIX:
        raise ValueError(
            f"spectrum arrays must have {NPIX} pixels each (got {values.size} values for "
            f"{len(column)} spectra): was this warehouse written with another grid?"
        )
    return values.astype(dtype, copy=False).reshape(len(column), NPIX)


def iter_spectra(
    files: list[Path], wanted: set[str] | None = None, batch_rows: int = 512
) -> Iterator[tuple[list[str], pa.RecordBatch]]:
    """(star_ids, record batch) of spectrum rows, optionally only for ``wanted`` star ids."""
    for path in files:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=list(SPECTRUM_COLUMNS)):
            ids = batch.column("star_id").to_pylist()
            if wanted is not None:
                keep = [i for i, s in enumerate(ids) if s in wanted]
                if not keep:
                    continue
                if len(keep) < len(ids):
                    batch = batch.take(pa.array(keep))
                    ids = [ids[i] for i in keep]
            yield ids, batch


def read_spectra(files: list[Path], star_ids: list[str]) -> tuple[np.ndarray, ...]:
    """flux, ivar, mask, norm arrays for star_ids (row i = star_ids[i]); found (bool) per id."""
    n = len(star_ids)
    pos = {s: i for i, s in enumerate(star_ids)}
    flux = np.full((n, NPIX), np.nan, dtype=np.float32)
    ivar = np.zeros((n, NPIX), dtype=np.float32)
    mask = np.ones((n, NPIX), dtype=bool)
    norm = np.full(n, np.nan, dtype=np.float32)
    found = np.zeros(n, dtype=bool)
    for ids, batch in iter_spectra(files, set(pos)):
        rows = np.array([pos[s] for s in ids])
        flux[rows] = _fixed_list(batch.column("flux"), np.float32)
        ivar[rows] = _fixed_list(batch.column("ivar"), np.float32)
        mask[rows] = _fixed_list(batch.column("mask"), bool)
        norm[rows] = batch.column("norm").to_numpy(zero_copy_only=False)
        found[rows] = True
    return flux, ivar, mask, norm, found


def load_training_data(
    snapshot,
    max_stars: int | None = None,
    max_spectra: int | None = DEFAULT_MAX_SPECTRA,
) -> TrainingData:
    """Labelled stars + their spectra from a snapshot (Warehouse(path).current()).

    When limits apply, stars are kept in a stable pseudo-random order (hash of star_id, the
    same one the split uses), spectrum stars first, so a limited run is reproducible.
    """
    stars = load_stars(snapshot)
    if stars.empty:
        raise NothingToTrain(
            f"snapshot {snapshot.id} has no labelled stars: "
            "ingest a catalogue with subclasses first"
        )
    has = (
        stars["has_spectrum"].fillna(False).to_numpy(bool, copy=True)
        if "has_spectrum" in stars
        else None
    )
    if has is None:
        has = np.zeros(len(stars), dtype=bool)
    order_key = np.array([split_fraction(s) for s in stars["star_id"]])
    spec_ids = np.flatnonzero(has)[np.argsort(order_key[has], kind="stable")]
    if max_spectra is not None and len(spec_ids) > max_spectra:
        log.warning("using %d of %d spectra (max_spectra)", max_spectra, len(spec_ids))
        has[spec_ids[max_spectra:]] = False  # they still train the photometry branch
        spec_ids = spec_ids[:max_spectra]
    if max_stars is not None and len(stars) > max_stars:
        phot_ids = np.flatnonzero(~has)[np.argsort(order_key[~has], kind="stable")]
        keep = np.concatenate([spec_ids, phot_ids])[:max_stars]
        stars = stars.iloc[np.sort(keep)].reset_index(drop=True)
        has = has[np.sort(keep)]
    ids_with = stars.loc[has, "star_id"].tolist()
    flux, ivar, mask, norm, found = read_spectra(snapshot.spectra_files, ids_with)
    if not found.all():
        log.warning(
            "%d stars flagged has_spectrum have no spectrum row; using photometry only",
            int((~found).sum()),
        )
    spec_row = np.full(len(stars), -1, dtype=np.int64)
    spec_row[np.flatnonzero(has)[found]] = np.arange(int(found.sum()))
    if not found.all():
        flux, ivar, mask, norm = flux[found], ivar[found], mask[found], norm[found]
    log.info(
        "loaded %d labelled stars, %d with spectra, from snapshot %s",
        len(stars),
        len(norm),
        snapshot.id,
    )
    return TrainingData(stars, flux, ivar, mask, norm, spec_row, snapshot_id=snapshot.id)
