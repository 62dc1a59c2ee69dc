"""The ingest driver: a thin loop around the pure per-file readers.

Per-file work (``process_spec_file``) and per-chunk work (``iter_catalog``) are pure functions;
this module only schedules them over a process pool, streams their output into Parquet parts
(bounded memory: at most ``PART_ROWS`` spectra are held at once) and publishes one snapshot.
A later issue can hand the same pure functions to a Dask cluster instead of the pool.
"""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from startrack import grid
from startrack.errors import UsageError
from startrack.etl.catalog import iter_catalog
from startrack.etl.errors import reject
from startrack.etl.merge import merge_stars
from startrack.etl.spectra import process_spec_file
from startrack.star_id import star_id_from_file_name
from startrack.warehouse.contract import INGEST_RUNS, REJECTS, SPECTRA, SPECTRA_INDEX, STARS
from startrack.warehouse.store import Warehouse, Writer

log = logging.getLogger(__name__)

PART_ROWS = 1024  #: spectra per Parquet part file (and the most held in memory)
ROW_GROUP = 32  #: spectra per row group: a single-star read decodes at most this many
_FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts")


class NoInput(UsageError, ValueError):
    """The command was given nothing to ingest, or an input that does not exist (exit 2)."""


@dataclass
class IngestReport:
    """What one run did, for the summary line and the ``ingest_runs`` table."""

    run_id: str
    status: str = "running"
    catalog_rows: int = 0
    spectra_files: int = 0
    spectra_added: int = 0
    spectra_skipped: int = 0
    stars_added: int = 0
    stars_updated: int = 0
    stars_total: int = 0
    rejects: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def usable(self) -> bool:
        return self.spectra_added + self.stars_added + self.stars_updated > 0 or (
            not self.rejects and (self.spectra_skipped > 0 or self.catalog_rows > 0)
        )

    def summary(self) -> str:
        return (
            f"ingest {self.run_id}: {self.status}; catalog rows {self.catalog_rows:,}, "
            f"spectrum files {self.spectra_files:,} (added {self.spectra_added:,}, already in "
            f"warehouse {self.spectra_skipped:,}); stars added {self.stars_added:,}, updated "
            f"{self.stars_updated:,}, total {self.stars_total:,}; rejected {len(self.rejects):,}; "
            f"{self.seconds:.1f} s"
        )


def find_spectrum_files(paths: Iterable[Path]) -> tuple[list[Path], list[dict]]:
    """Files as given; directories searched recursively for FITS files. Sorted, no repeats.

    Returns the files and the rejects of what looks like a spectrum but cannot be one: a
    dangling symlink, a symlink loop, a directory named like a spectrum file, a folder that
    cannot be listed. Symlinked folders are not followed (no cycles, no escaping the tree).
    """
    found: list[Path] = []
    rejects: list[dict] = []
    for path in paths:
        if path.is_dir():
            _walk_for_spectra(path, found, rejects)
        elif path.exists():
            found.append(path)
        elif path.is_symlink():
            rejects.append(reject(path, "file", _broken_link_reason(path)))
        else:
            raise NoInput(f"no such file or directory: {path}")
    return sorted(set(found)), rejects


def _walk_for_spectra(top: Path, found: list[Path], rejects: list[dict]) -> None:
    def unreadable(exc: OSError) -> None:
        reason = f"cannot list folder: {exc.strerror or exc}; its files were not ingested"
        rejects.append(reject(Path(exc.filename or top), "folder", reason))

    for folder, dirs, files in os.walk(top, onerror=unreadable):
        base = Path(folder)
        for name in dirs:  # os.walk lists symlinks to folders (and loops) here, unfollowed
            entry = base / name
            if not name.lower().endswith(_FITS_SUFFIXES):
                continue
            if not entry.is_symlink():
                reason = "a directory named like a spectrum file, not a file"
            elif entry.exists():
                reason = "a symlink to a directory named like a spectrum file, not a file"
            else:
                reason = _broken_link_reason(entry)
            rejects.append(reject(entry, "file", reason))
        for name in files:
            if not name.lower().endswith(_FITS_SUFFIXES):
                continue
            entry = base / name
            if entry.is_file():
                found.append(entry)
            elif entry.is_symlink():
                rejects.append(reject(entry, "file", _broken_link_reason(entry)))
            else:
                reason = "not a regular file (a device, FIFO or socket)"
                rejects.append(reject(entry, "file", reason))


def _broken_link_reason(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop: the link never reaches a file"
        return f"dangling symlink: its target {os.readlink(path)!r} does not exist"
    return "symlink that cannot be read"


def ingest(
    warehouse: Warehouse,
    catalogs: list[Path] = (),
    spectra: list[Path] = (),
    *,
    workers: int = 2,
    strict: bool = False,
    wait: float = 0.0,
    progress: bool = True,
    command: str = "ingest",
    scheduler: str | None = None,
) -> IngestReport:
    """Ingest catalogs and spectra into a new snapshot; see the module docstring.

    ``scheduler``: a Dask scheduler address or local[:N] (startrack.executors); None = the pool.
    """
    catalogs = [Path(c) for c in catalogs]
    for cat in catalogs:
        if not cat.exists():
            raise NoInput(f"no such catalog file: {cat}")
    spec_files, found_rejects = find_spectrum_files(Path(s) for s in spectra)
    if not catalogs and not spec_files and not found_rejects:
        raise NoInput("nothing to ingest: give catalog files and/or spectrum files or folders")
    t0 = time.perf_counter()
    started = datetime.now(UTC)
    with warehouse.writer(command=command, wait=wait) as w:
        report = IngestReport(run_id=w.id, spectra_files=len(spec_files))
        report.rejects.extend(found_rejects)
        if scheduler is None:
            index = _ingest_spectra(w, spec_files, report, workers, progress)
        else:  # workers write the spectrum parts themselves (etl/ingest_cluster.py)
            from startrack.etl.ingest_cluster import ingest_spectra_on_cluster

            index = ingest_spectra_on_cluster(w, spec_files, report, scheduler, progress)
        cat_parts = _ingest_catalogs(w, catalogs, report)
        spec_stars = w.scratch("spectrum_stars.parquet")
        pq.write_table(index.pop("stars"), spec_stars)
        all_index = pa.concat_tables(
            [w.base.table("spectra_index") if w.base else SPECTRA_INDEX.empty_table(), index["new"]]
        )
        if strict and report.rejects:
            report.status = "failed: --strict and some inputs were rejected; nothing published"
            w.drop_spectra_parts()
        else:
            _publish_stars(w, cat_parts, spec_stars, all_index, report)
            w.put_table("spectra_index", all_index)
            if not report.usable:
                report.status = "failed: nothing usable was ingested"
            else:
                report.status = "ok" if not report.rejects else "ok with rejects"
        report.seconds = time.perf_counter() - t0
        _record_run(w, report, started, command, catalogs, spectra)
    log.info(report.summary())
    return report


def files_to_read(
    w: Writer, files: list[Path], report: IngestReport
) -> tuple[list[Path], set[str], dict[str, Path]]:
    """The spectrum files this ingest must read: a star the warehouse already holds is skipped
    (counted), a second file for one star id is a reject naming the first. By file name only,
    so also (known ids, ids seen so far -> file): the header checks after reading go on with
    them. The local and the cluster ingest share it."""
    known = (
        set(w.base.table("spectra_index", ["star_id"])["star_id"].to_pylist()) if w.base else set()
    )
    todo: list[Path] = []
    seen: dict[str, Path] = {}
    for path in files:
        sid = star_id_from_file_name(path.name)
        if sid is not None and sid in known:
            report.spectra_skipped += 1
        elif sid is not None and sid in seen:
            report.rejects.append(reject(path, "file", f"duplicate id {sid}: also in {seen[sid]}"))
        else:
            if sid is not None:
                seen[sid] = path
            todo.append(path)
    return todo, known, seen


def _ingest_spectra(
    w: Writer, files: list[Path], report: IngestReport, workers: int, progress: bool
) -> dict[str, pa.Table]:
    """Read spectrum files in parallel, stream them into part files; return index rows."""
    todo, known, seen = files_to_read(w, files, report)
    buffer: list[dict] = []
    stars: list[dict] = []
    index: list[pa.Table] = []
    part_no = 0
    bar = tqdm(total=len(todo), desc="spectra", unit="file", disable=not progress, leave=False)
    for result in _map(process_spec_file, todo, workers):
        bar.update(1)
        report.rejects.extend(result.rejects)
        spectrum = result.spectrum
        if spectrum is None:
            continue
        sid = spectrum["star_id"]
        if sid in known:  # the name did not tell; the header did
            report.spectra_skipped += 1
            continue
        if sid in seen and seen[sid] != Path(spectrum["source"]):
            report.rejects.append(
                reject(Path(spectrum["source"]), "file", f"duplicate id {sid}: also in {seen[sid]}")
            )
            continue
        seen[sid] = Path(spectrum["source"])
        buffer.append(spectrum)
        if result.star is not None:
            stars.append(result.star)
        if len(buffer) >= PART_ROWS:
            index.append(_write_part(w, buffer, part_no))
            part_no += 1
            buffer = []
    bar.close()
    if buffer:
        index.append(_write_part(w, buffer, part_no))
    report.spectra_added = sum(len(t) for t in index)
    new_index = pa.concat_tables(index) if index else SPECTRA_INDEX.empty_table()
    return {"new": new_index, "stars": pa.Table.from_pylist(stars, schema=STARS)}


def _map(func, items: list[Path], workers: int) -> Iterator:
    """Ordered, lazy parallel map; inline for small inputs where a pool costs more than it saves."""
    if workers <= 1 or len(items) < 64:
        yield from map(func, items)
        return
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["startrack.etl.spectra"])
    with ctx.Pool(workers) as pool:
        yield from pool.imap(func, items, chunksize=16)


def _write_part(w: Writer, rows: list[dict], part_no: int) -> pa.Table:
    """One immutable spectrum part file; returns its ``spectra_index`` rows."""
    n = len(rows)

    def fixed(key: str, dtype, arrow_type) -> pa.FixedSizeListArray:
        flat = np.concatenate([np.asarray(r[key], dtype=dtype) for r in rows])
        return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=arrow_type), grid.NPIX)

    columns = {}
    for name in SPECTRA.names:
        if name in ("flux", "ivar"):
            columns[name] = fixed(name, np.float32, pa.float32())
        elif name == "mask":
            columns[name] = fixed(name, np.bool_, pa.bool_())
        elif name == "ingest_run":
            columns[name] = pa.array([w.id] * n, pa.string())
        else:
            columns[name] = pa.array([r.get(name) for r in rows], SPECTRA.field(name).type)
    table = pa.table(columns, schema=SPECTRA)
    path = w.new_spectra_part(part_no)
    pq.write_table(table, path, compression="zstd", compression_level=1, row_group_size=ROW_GROUP)
    w.add_spectra_part(path)
    return index_rows(table, path.relative_to(w.root).as_posix())


def index_rows(table: pa.Table, rel: str) -> pa.Table:
    """``spectra_index`` rows of a part file: where each spectrum of ``table`` lives."""
    n = table.num_rows
    rows = np.arange(n, dtype=np.int32)
    return pa.table(
        {
            "plate": table["plate"],
            "mjd": table["mjd"],
            "fiberid": table["fiberid"],
            "star_id": table["star_id"],
            "file": pa.array([rel] * n, pa.string()),
            "row_group": pa.array(rows // ROW_GROUP, pa.int32()),
            "row": pa.array(rows % ROW_GROUP, pa.int32()),
        },
        schema=SPECTRA_INDEX,
    )


def _ingest_catalogs(w: Writer, catalogs: list[Path], report: IngestReport) -> list[Path]:
    parts: list[Path] = []
    for path in catalogs:
        try:
            for chunk in iter_catalog(path):
                report.rejects.extend(chunk.rejects)
                report.catalog_rows += chunk.stars.num_rows
                part = w.scratch(f"catalog-{len(parts):05d}.parquet")
                pq.write_table(chunk.stars.cast(STARS), part, compression="none")
                parts.append(part)
        except Exception as exc:  # a broken catalog must not stop the other inputs
            log.warning("catalog %s rejected: %s", path, exc)
            report.rejects.append(reject(path, "file", str(exc)))
    return parts


def _publish_stars(
    w: Writer, cat_parts: list[Path], spec_stars: Path, index: pa.Table, report: IngestReport
) -> None:
    con = duckdb.connect()
    try:
        con.execute("SET temp_directory = $1", [str(w.scratch("duckdb_tmp"))])
        con.execute("SET preserve_insertion_order = false")
        base = w.base.table_path("stars") if w.base else None
        out = w.scratch("stars.parquet")
        result = merge_stars(con, base, cat_parts, spec_stars, index, w.id, out)
    finally:
        con.close()
    for row in result.duplicates.to_pylist():
        report.rejects.append({**row})
    report.catalog_rows -= result.duplicates.num_rows
    report.stars_added, report.stars_updated = result.added, result.updated
    report.stars_total = result.total
    w.put_parquet("stars", out)


def _record_run(
    w: Writer,
    report: IngestReport,
    started: datetime,
    command: str,
    catalogs: list[Path],
    spectra: list[Path],
) -> None:
    now = datetime.now(UTC)
    rejects = pa.Table.from_pylist(
        [{**r, "run_id": w.id, "at": now} for r in report.rejects], schema=REJECTS
    )
    old_rejects = w.base.table("rejects") if w.base else REJECTS.empty_table()
    w.put_table("rejects", pa.concat_tables([old_rejects, rejects]))
    run = {
        "run_id": w.id,
        "started_at": started,
        "finished_at": now,
        "command": command,
        "inputs": json.dumps(
            {"catalogs": [str(c) for c in catalogs], "spectra": [str(s) for s in spectra]}
        ),
        "catalog_rows": report.catalog_rows,
        "spectra_files": report.spectra_files,
        "spectra_added": report.spectra_added,
        "spectra_skipped": report.spectra_skipped,
        "stars_added": report.stars_added,
        "stars_updated": report.stars_updated,
        "stars_total": report.stars_total,
        "rejects": len(report.rejects),
        "seconds": round(report.seconds, 3),
        "status": report.status,
    }
    old_runs = w.base.table("ingest_runs") if w.base else INGEST_RUNS.empty_table()
    w.put_table(
        "ingest_runs", pa.concat_tables([old_runs, pa.Table.from_pylist([run], INGEST_RUNS)])
    )
