"""Read SDSS catalog exports (CasJobs / SkyServer CSV or Parquet) into ``stars`` rows.

Files can be huge, so they stream in chunks (bounded memory) and every step is a vectorized
Arrow/NumPy operation; labels are normalized once per distinct subclass, not once per row.

Column matching is case-insensitive and accepts the usual SDSS spellings (:data:`ALIASES`).
Magnitudes: per band the first family present wins, in :data:`MAG_FAMILIES` order: ``psfMag``
first (the right photometry for point sources such as stars), then plain ``u..z`` (SkyServer's
PhotoObj alias of modelMag), ``modelMag``, ``cModelMag``, ``fiberMag``, ``petroMag``, and
extinction-corrected ``dered`` last. The error comes from the same family when it has one.

The ``z`` rule: in SDSS exports a plain ``z`` is the redshift when a SpecObj table is joined (the
z-band magnitude then comes as ``psfMag_z`` etc.). So a plain ``z`` is the redshift unless
(a) a ``redshift`` column exists, or (b) plain ``u, g, r, i`` columns exist too and the ``z``
values look like magnitudes (median > 5; no star has a redshift near 5). In both cases plain
``z`` is the z-band magnitude. The decision is made once per file, on its first chunk.

Ids come from plate/mjd/fiberid columns or, when those are absent, from a spectrum URL column
('.../spec-0267-51608-0128.fits' or the DR7 'spSpec-51608-0267-128.fit'). Rows are numbered
from 1 = the first data row. A row with a missing or garbled id is rejected ("row N"); a
repeated id keeps its first row and rejects the later ones.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from startrack.etl.csv_rows import RowBlock, iter_row_blocks
from startrack.etl.errors import CatalogError
from startrack.labels import normalize_subclass
from startrack.star_id import FILE_NAME_IN_URL, ID_RANGES, format_star_id
from startrack.vocabulary import BANDS
from startrack.warehouse.contract import STARS

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 250_000

#: stars column -> accepted source names (lower case), first match wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "plate": ("plate", "plateid", "plate_id"),
    "mjd": ("mjd",),
    "fiberid": ("fiberid", "fiber", "fiber_id"),
    "specobjid": ("specobjid", "specobj_id"),
    "ra": ("ra", "plug_ra"),
    "dec": ("dec", "plug_dec"),
    "class": ("class",),
    "subclass": ("subclass", "sub_class"),
    "z": ("redshift",),  # plain "z" is decided by the z rule (module docstring)
    "zerr": ("zerr", "z_err", "redshift_err", "redshifterr"),
    "snr": ("snr", "snmedian", "sn_median_all", "sn_median", "snmedian_all"),
    "elodie_sptype": ("elodie_sptype", "elodie", "elodiesptype"),
}
URL_ALIASES = ("spectrum", "url", "spectrum_url", "specurl", "spec_url", "fits_url")

#: (magnitude, error) name patterns per family, in priority order.
MAG_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("psfmag_{b}", ("psfmagerr_{b}",)),
    ("{b}", ("err_{b}", "{b}_err", "magerr_{b}")),
    ("modelmag_{b}", ("modelmagerr_{b}",)),
    ("cmodelmag_{b}", ("cmodelmagerr_{b}",)),
    ("fibermag_{b}", ("fibermagerr_{b}",)),
    ("petromag_{b}", ("petromagerr_{b}",)),
    ("dered_{b}", ("err_{b}",)),
    ("mag_{b}", ("magerr_{b}",)),
)
SENTINEL_ABS = 999.0  #: |value| at or above this is a "no measurement" sentinel (-9999, 9999)
MAGNITUDE_LIKE = 5.0  #: a plain z whose median exceeds this is a magnitude, not a redshift

_INT_COLUMNS = ("plate", "mjd", "fiberid")
_FLOAT_COLUMNS = ("ra", "dec", "z", "zerr", "snr")
_TEXT_COLUMNS = ("specobjid", "class", "subclass", "elodie_sptype")
_FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|NaN|NAN|inf|Inf|INF)$"


@dataclass
class CatalogChunk:
    """Standardized rows (exactly the ``stars`` schema) and the rows rejected."""

    stars: pa.Table
    rejects: list[dict[str, str]] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # 1-based file rows


@dataclass(frozen=True)
class ColumnMap:
    """Which source column feeds which ``stars`` column (decided once per file)."""

    targets: dict[str, str]  # stars column -> source column
    url: str | None  # spectrum URL column used for ids when plate/mjd/fiberid are absent
    ignored: tuple[str, ...]

    @property
    def sources(self) -> list[str]:
        used = [*self.targets.values(), *([self.url] if self.url else [])]
        return list(dict.fromkeys(used))


# --------------------------------------------------------------------------- columns


def resolve_columns(names: list[str], sample: pa.Table | None = None) -> ColumnMap:
    """Map a file's column names to ``stars`` columns; raise :class:`CatalogError` without ids.

    ``sample`` (the first rows) decides whether a plain ``z`` is a magnitude.
    """
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.strip().lower(), name)
    targets: dict[str, str] = {}
    for target, aliases in ALIASES.items():
        for alias in aliases:
            if alias in by_lower:
                targets[target] = by_lower[alias]
                break
    plain_z_is_mag = False
    if "z" in by_lower:
        if "z" in targets:  # an explicit redshift column exists
            plain_z_is_mag = True
        elif all(b in by_lower for b in "ugri"):
            plain_z_is_mag = _looks_like_magnitude(sample, by_lower["z"])
        if not plain_z_is_mag:
            targets["z"] = by_lower["z"]
    for band in BANDS:
        for mag_pattern, err_patterns in MAG_FAMILIES:
            mag = mag_pattern.format(b=band)
            if mag == "z" and not plain_z_is_mag:
                continue
            if mag in by_lower:
                targets[f"mag_{band}"] = by_lower[mag]
                for err in err_patterns:
                    if err.format(b=band) in by_lower:
                        targets[f"magerr_{band}"] = by_lower[err.format(b=band)]
                        break
                break
    url = next((by_lower[a] for a in URL_ALIASES if a in by_lower), None)
    has_ids = all(k in targets for k in _INT_COLUMNS)
    if not has_ids:
        for k in _INT_COLUMNS:
            targets.pop(k, None)
        if url is None:
            raise CatalogError(
                "catalog has no id columns: need plate (or plateID), mjd and fiberID (or fiber), "
                f"or a spectrum URL column; the columns are: {', '.join(names)}"
            )
    else:
        url = None
    used = set(targets.values()) | ({url} if url else set())
    ignored = tuple(n for n in names if n not in used)
    return ColumnMap(targets, url, ignored)


def _looks_like_magnitude(sample: pa.Table | None, column: str) -> bool:
    if sample is None or column not in sample.column_names:
        return True  # with u, g, r, i beside it and nothing to go on, z is the fifth band
    values = _to_float(sample[column])
    values = values[np.isfinite(values) & (np.abs(values) < SENTINEL_ABS)]
    return bool(values.size) and float(np.median(values)) > MAGNITUDE_LIKE


# --------------------------------------------------------------------------- conversions


def _chunked(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _to_float(col) -> np.ndarray:
    """float64 NumPy array; NaN where empty or not a number (never raises)."""
    arr = _chunked(col)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:
            arr = pc.cast(arr, pa.float64())
        except pa.ArrowInvalid:
            text = pc.utf8_trim_whitespace(arr)
            ok = pc.fill_null(pc.match_substring_regex(text, _FLOAT_RE), False)
            arr = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
    elif not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        try:
            arr = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.full(len(arr), np.nan)
    filled = pc.fill_null(pc.cast(arr, pa.float64()), np.nan)
    return np.array(filled.to_numpy(zero_copy_only=False), dtype=np.float64)  # writable copy


def _to_text(col) -> pa.Array:
    arr = _chunked(col)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _parse_ids(
    table: pa.Table, cmap: ColumnMap
) -> tuple[dict[str, np.ndarray], dict[str, pa.Array]]:
    """float64 ids (NaN when missing/garbled) and the raw text of each (for messages)."""
    if cmap.url is None:
        raw = {k: _chunked(table[cmap.targets[k]]) for k in _INT_COLUMNS}
        return {k: _to_float(v) for k, v in raw.items()}, raw
    url = _to_text(table[cmap.url])
    new = pc.extract_regex(url, FILE_NAME_IN_URL)
    old = pc.extract_regex(url, r"spSpec-(?P<mjd>\d+)-(?P<plate>\d+)-(?P<fiberid>\d+)\.fit")
    raw = {}
    for k in _INT_COLUMNS:
        raw[k] = pc.coalesce(pc.struct_field(new, k), pc.struct_field(old, k))
    return {k: _to_float(v) for k, v in raw.items()}, raw


def _magnitudes(table: pa.Table, source: str) -> np.ndarray:
    values = _to_float(table[source])
    values[np.abs(values) >= SENTINEL_ABS] = np.nan
    return values


# --------------------------------------------------------------------------- standardize


def standardize_chunk(
    table: pa.Table | pa.RecordBatch | object,
    source: str,
    row_offset: int = 0,
    columns: ColumnMap | None = None,
    row_numbers: np.ndarray | None = None,
) -> CatalogChunk:
    """Turn one chunk (Arrow table/batch or pandas DataFrame) into ``stars`` rows + rejects.

    Pure: depends only on its arguments. ``row_offset`` is the number of data rows before this
    chunk (for "row N" messages), or ``row_numbers`` the file row of each row (when rows were
    dropped before, e.g. malformed CSV lines); ``columns`` the file's :class:`ColumnMap`
    (resolved from this chunk when None). Duplicates are detected within the chunk;
    :func:`iter_catalog` also detects them across chunks.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    elif not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    cmap = columns or resolve_columns(table.column_names, table)
    n = table.num_rows
    rownum = (
        np.asarray(row_numbers, dtype=np.int64)
        if row_numbers is not None
        else np.arange(row_offset + 1, row_offset + 1 + n, dtype=np.int64)
    )
    ids, raw_ids = _parse_ids(table, cmap)
    rejects: list[dict[str, str]] = []
    bad = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}
    for k in _INT_COLUMNS:
        v = ids[k]
        lo, hi = ID_RANGES[k]
        is_int = np.isfinite(v) & (v == np.floor(v))
        positive = is_int & (v > 0)
        out_of_range = positive & ((v < lo) | (v > hi))
        for i in np.flatnonzero(~(positive & ~out_of_range) & ~bad):
            text = raw_ids[k][int(i)].as_py()
            if text is None or str(text).strip() == "":
                reasons[i] = f"{k} is missing"
            elif not is_int[i]:
                shown = str(text).strip()
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                reasons[i] = f"{k} {shown!r} is not an integer"
            elif out_of_range[i]:
                reasons[i] = f"{k} {int(v[i])} is outside {lo}..{hi}"
            else:
                reasons[i] = f"{k} must be positive (got {int(v[i])})"
        bad |= ~(positive & ~out_of_range)
    plate = np.where(bad, 0, ids["plate"]).astype(np.int64)
    mjd = np.where(bad, 0, ids["mjd"]).astype(np.int64)
    fiber = np.where(bad, 0, ids["fiberid"]).astype(np.int64)
    if cmap.url is not None:
        for i in np.flatnonzero(bad):
            if all(raw_ids[k][int(i)].as_py() is None for k in _INT_COLUMNS):
                reasons[i] = (
                    f"no plate/mjd/fiber in {cmap.url} value {table[cmap.url][int(i)].as_py()!r}"
                )
    key = id_keys(plate, mjd, fiber)
    dup_of = first_occurrence(key, bad)
    for i in np.flatnonzero(dup_of >= 0):
        sid = format_star_id(plate[i], mjd[i], fiber[i])
        reasons[i] = f"duplicate id {sid}: also at row {rownum[dup_of[i]]}"
    for i in sorted(reasons):
        rejects.append({"source": source, "item": f"row {rownum[i]}", "reason": reasons[i]})
    keep = ~bad & (dup_of < 0)
    stars = _build_stars(table, cmap, keep, plate, mjd, fiber, source)
    return CatalogChunk(stars, rejects, rownum[keep])


def id_keys(plate: np.ndarray, mjd: np.ndarray, fiber: np.ndarray) -> np.ndarray:
    """One int64 per (plate, mjd, fiberid): cheap to sort and compare."""
    return (plate.astype(np.int64) * 100_000 + mjd) * 1024 + fiber


def first_occurrence(key: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """Per row: index of an earlier row with the same key, or -1 (rows in ``skip`` ignored)."""
    out = np.full(key.size, -1, dtype=np.int64)
    idx = np.flatnonzero(~skip)
    if idx.size == 0:
        return out
    order = idx[np.argsort(key[idx], kind="stable")]
    k = key[order]
    new_group = np.r_[True, k[1:] != k[:-1]]
    first = order[np.maximum.accumulate(np.where(new_group, np.arange(k.size), 0))]
    repeated = ~new_group
    out[order[repeated]] = first[repeated]
    return out


def _build_stars(
    table: pa.Table,
    cmap: ColumnMap,
    keep: np.ndarray,
    plate: np.ndarray,
    mjd: np.ndarray,
    fiber: np.ndarray,
    source: str,
) -> pa.Table:
    mask = pa.array(keep)
    kept = table.filter(mask)
    n = kept.num_rows
    plate, mjd, fiber = plate[keep], mjd[keep], fiber[keep]
    cols: dict[str, pa.Array] = {
        "plate": pa.array(plate, pa.int32()),
        "mjd": pa.array(mjd, pa.int32()),
        "fiberid": pa.array(fiber, pa.int32()),
        "star_id": _star_ids(plate, mjd, fiber),
    }
    t = cmap.targets
    for name in _TEXT_COLUMNS:
        cols[name] = _to_text(kept[t[name]]) if name in t else pa.nulls(n, pa.string())
    for name in _FLOAT_COLUMNS:
        if name in t:
            cols[name] = pa.array(_to_float(kept[t[name]]), pa.float64(), from_pandas=True)
    for band in BANDS:
        for prefix in ("mag", "magerr"):
            name = f"{prefix}_{band}"
            if name in t:
                cols[name] = pa.array(_magnitudes(kept, t[name]), pa.float64(), from_pandas=True)
    cols.update(_labels(cols["subclass"]))
    cols["has_spectrum"] = pa.array(np.zeros(n, dtype=bool))
    cols["source"] = pa.array([source] * n, pa.string()) if n else pa.nulls(0, pa.string())
    arrays = [cols.get(f.name, pa.nulls(n, f.type)) for f in STARS]
    return pa.Table.from_arrays(
        [a.cast(f.type) for a, f in zip(arrays, STARS, strict=True)], schema=STARS
    )


def _star_ids(plate: np.ndarray, mjd: np.ndarray, fiber: np.ndarray) -> pa.Array:
    """'PPPP-MMMMM-FFFF' built with Arrow string kernels (no Python loop)."""

    def padded(values: np.ndarray, width: int) -> pa.Array:
        return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0")

    return pc.binary_join_element_wise(padded(plate, 4), padded(mjd, 5), padded(fiber, 4), "-")


def _labels(subclass: pa.Array) -> dict[str, pa.Array]:
    """Normalize each distinct subclass once and broadcast the result."""
    encoded = pc.dictionary_encode(subclass)
    labels = [normalize_subclass(s) for s in encoded.dictionary.to_pylist()]
    indices = encoded.indices

    def spread(values: list, typ: pa.DataType) -> pa.Array:
        return pc.take(pa.array(values, typ), indices) if labels else pa.nulls(len(subclass), typ)

    return {
        "label": spread([x.label for x in labels], pa.string()),
        "label_family": spread([x.family for x in labels], pa.string()),
        "spectral_type": spread([x.spectral_type for x in labels], pa.float64()),
        "luminosity_class": spread([x.luminosity_class for x in labels], pa.string()),
    }


# --------------------------------------------------------------------------- files


def iter_catalog(path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[CatalogChunk]:
    """Stream a CSV (optionally .gz) or Parquet catalog as standardized chunks.

    Raises :class:`CatalogError` when the file cannot be used at all (unreadable, no ids).
    """
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"no such catalog file: {path}")
    if path.stat().st_size == 0:
        raise CatalogError("empty catalog file (0 bytes)")
    source = str(path)
    parquet = _is_parquet(path)
    if parquet:
        names, sample = _parquet_head(path)
        cmap = resolve_columns(names, sample)
        batches = _parquet_batches(path, cmap, chunk_rows)
    else:
        names, skip = _csv_header(path)
        cmap = resolve_columns(names, _csv_sample(path, names, skip))
        batches = _csv_batches(path, names, skip, cmap, chunk_rows)
    if cmap.ignored:
        log.info("%s: ignoring columns %s", source, ", ".join(cmap.ignored))
    seen_keys = np.empty(0, dtype=np.int64)
    seen_rows = np.empty(0, dtype=np.int64)
    for block in batches:
        table, rows, rejects = block.table, block.rows, []
        if parquet:  # (Arrow's CSV reader checked UTF-8 already)
            table, rows, rejects = _valid_text(table, rows, source)
        if table.num_columns == 0:  # an unreadable Parquet row group: only its reject
            yield CatalogChunk(STARS.empty_table(), [*block.rejects])
            continue
        chunk = standardize_chunk(table, source, columns=cmap, row_numbers=rows)
        chunk, seen_keys, seen_rows = _drop_seen(chunk, seen_keys, seen_rows)
        chunk.rejects[:0] = [*block.rejects, *rejects]
        yield chunk


def _drop_seen(
    chunk: CatalogChunk, seen_keys: np.ndarray, seen_rows: np.ndarray
) -> tuple[CatalogChunk, np.ndarray, np.ndarray]:
    """Reject ids already given in an earlier chunk of the same file; remember the new ones."""
    stars, rows = chunk.stars, chunk.rows
    if stars.num_rows == 0:
        return chunk, seen_keys, seen_rows
    keys = id_keys(*(stars[c].to_numpy().astype(np.int64) for c in _INT_COLUMNS))
    pos = np.searchsorted(seen_keys, keys)
    hit = np.zeros(keys.size, dtype=bool)
    if seen_keys.size:
        hit = seen_keys[np.minimum(pos, seen_keys.size - 1)] == keys
    rejects = list(chunk.rejects)
    if hit.any():
        ids = stars["star_id"].to_pylist()
        source = stars["source"][0].as_py()
        for i in np.flatnonzero(hit):
            reason = f"duplicate id {ids[i]}: also at row {seen_rows[pos[i]]}"
            rejects.append({"source": source, "item": f"row {rows[i]}", "reason": reason})
        stars, keys, rows = stars.filter(pa.array(~hit)), keys[~hit], rows[~hit]
    all_keys = np.concatenate([seen_keys, keys])
    all_rows = np.concatenate([seen_rows, rows])
    order = np.argsort(all_keys, kind="stable")
    return CatalogChunk(stars, rejects, rows), all_keys[order], all_rows[order]


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _parquet_head(path: Path) -> tuple[list[str], pa.Table | None]:
    try:
        pf = pq.ParquetFile(path)
        first = next(pf.iter_batches(batch_size=1000), None)
    except (pa.ArrowException, OSError) as exc:
        raise CatalogError(f"unreadable Parquet file: {exc}") from exc
    return pf.schema_arrow.names, pa.Table.from_batches([first]) if first is not None else None


def _parquet_batches(path: Path, cmap: ColumnMap, chunk_rows: int) -> Iterator[RowBlock]:
    """Row groups in batches; an unreadable row group costs its rows (one reject), not the file."""
    pf = pq.ParquetFile(path)
    first = 1
    for group in range(pf.num_row_groups):
        n = pf.metadata.row_group(group).num_rows
        done = 0
        try:
            for batch in pf.iter_batches(
                batch_size=chunk_rows, row_groups=[group], columns=cmap.sources
            ):
                rows = np.arange(first + done, first + done + batch.num_rows, dtype=np.int64)
                done += batch.num_rows
                yield RowBlock(pa.Table.from_batches([batch]), rows)
        except (pa.ArrowException, OSError) as exc:
            lo, hi = first + done, first + n - 1
            item = f"rows {lo}-{hi}" if hi > lo else f"row {lo}"
            reason = f"unreadable Parquet row group {group}: {exc}"
            rejects = [{"source": str(path), "item": item, "reason": reason}]
            yield RowBlock(pa.table({}), np.empty(0, np.int64), rejects)
        first += n


def _valid_text(
    table: pa.Table, rows: np.ndarray, source: str
) -> tuple[pa.Table, np.ndarray, list[dict[str, str]]]:
    """Drop rows whose text is not valid UTF-8 (Parquet does not check); reject each one.

    Valid columns pass one vectorized check; only a failing column is looked at row by row.
    """
    bad = np.zeros(table.num_rows, dtype=bool)
    reasons: dict[int, str] = {}
    for name in table.column_names:
        col = table[name]
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        try:
            col.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        binary = pa.binary() if pa.types.is_string(col.type) else pa.large_binary()
        for i, value in enumerate(col.combine_chunks().view(binary).to_pylist()):
            if value is None or bad[i]:
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad[i] = True
                byte = value[exc.start : exc.start + 1].hex().upper()
                reasons[i] = f"{name} is not UTF-8 text (byte 0x{byte})"
    if not bad.any():
        return table, rows, []
    rejects = [
        {"source": source, "item": f"row {rows[i]}", "reason": reasons[i]} for i in sorted(reasons)
    ]
    return table.filter(pa.array(~bad)), rows[~bad], rejects


def _csv_header(path: Path) -> tuple[list[str], int]:
    """Unique column names and the lines before the data (SkyServer prepends '#Table1')."""
    try:
        with pa.input_stream(str(path), compression="detect") as raw:
            # errors="replace": a Latin-1 byte in a data row is that row's problem, later
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            for skipped, line in enumerate(text):
                if line.strip() and not line.lstrip().startswith("#"):
                    if "\ufffd" in line:
                        raise CatalogError("the header line is not UTF-8 text")
                    names = [n.strip() for n in next(csv.reader([line]))]
                    return _unique_names(names), skipped + 1
    except (UnicodeDecodeError, OSError, pa.ArrowException) as exc:
        raise CatalogError(f"unreadable CSV file (not UTF-8 text?): {exc}") from exc
    raise CatalogError("catalog has no header line")


def _csv_sample(path: Path, names: list[str], skip: int) -> pa.Table | None:
    """The first good rows as text: only used to resolve columns (the z rule)."""
    for block in iter_row_blocks(path, names, skip, names, block_bytes=1 << 16):
        return block.table
    return None


def _csv_batches(
    path: Path, names: list[str], skip: int, cmap: ColumnMap, chunk_rows: int
) -> Iterator[RowBlock]:
    """Blocks of the used columns as text, regrouped into chunks of about ``chunk_rows``.

    A garbled value late in a huge file must cost one row, not abort Arrow's type inference
    or a whole block: see :mod:`startrack.etl.csv_rows`.
    """
    pending: list[RowBlock] = []
    count = 0
    for block in iter_row_blocks(path, names, skip, cmap.sources):
        pending.append(block)
        count += block.table.num_rows
        if count >= chunk_rows:
            yield _concat(pending)
            pending, count = [], 0
    if pending:
        yield _concat(pending)


def _concat(blocks: list[RowBlock]) -> RowBlock:
    return RowBlock(
        pa.concat_tables([b.table for b in blocks]),
        np.concatenate([b.rows for b in blocks]),
        [r for b in blocks for r in b.rejects],
    )


def _unique_names(names: list[str]) -> list[str]:
    """Make duplicate header names distinct ('z', 'z_2'): SkyServer joins repeat names."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        low = name.lower()
        seen[low] = seen.get(low, 0) + 1
        out.append(name if seen[low] == 1 else f"{name}_{seen[low]}")
    return out
