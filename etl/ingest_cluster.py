"""Spectrum ingest on a Dask cluster: workers read files and write the part files themselves.

The local driver (``etl.ingest._ingest_spectra``) collects gridded spectra in the coordinator
and writes the parts there. On a cluster that would ship every array twice, so here each task
takes a batch of files (at most ``PART_ROWS``), runs the same pure ``process_spec_file`` on
each, writes one spectrum part straight into ``<warehouse>/spectra/`` (shared filesystem) and
returns only what the coordinator needs to decide: per file its id, rejects and ``stars`` row,
plus the part's ``spectra_index`` rows. The coordinator applies exactly the local rules, in
the same file order (already in the warehouse -> skipped; a second file for an id -> reject),
and rewrites a part without such rows in the rare case one had to be dropped. So the stars,
spectra arrays and rejects are the local path's; only the part boundaries differ.

A task that dies with its worker is rescheduled by Dask and rewrites the same part path, so a
killed worker costs a retry. Publishing stays on the coordinator, under the writer lock.
Memory: a worker holds one batch of gridded spectra (<= 1,024 x 42 kB, ~0.2 GB with Arrow's
copies); the coordinator only ids, paths, star rows and index rows (~0.9 kB per file).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from startrack.etl.errors import reject
from startrack.etl.ingest import (
    PART_ROWS,
    ROW_GROUP,
    IngestReport,
    files_to_read,
    index_rows,
)
from startrack.executors import Runner, open_executor
from startrack.warehouse.contract import SPECTRA_INDEX, STARS
from startrack.warehouse.store import Writer


@dataclass(frozen=True)
class FileOutcome:
    """One file's result as the coordinator needs it (no arrays)."""

    source: str  #: the path as the user gave it (what the local path reports)
    star_id: str | None  #: None when the file was rejected
    rejects: list[dict]
    star: dict[str, Any] | None


@dataclass(frozen=True)
class BatchResult:
    files: list[FileOutcome]
    part: str | None  #: absolute path of the part written, None when no file was usable
    index: pa.Table | None  #: its spectra_index rows


@dataclass
class _PartSink:
    """What ``etl.ingest._write_part`` needs from a Writer, on a worker: a fixed part path."""

    root: Path
    id: str
    path: Path

    def new_spectra_part(self, n: int) -> Path:
        return self.path

    def add_spectra_part(self, path: Path) -> None:
        """The coordinator adds the part when it accepts the batch."""


def ingest_batch(task: tuple[str, str, str, list[tuple[str, str]]]) -> BatchResult:
    """On a worker: read a batch of spectrum files, write their part file, return the rest."""
    from startrack.etl.ingest import _write_part
    from startrack.etl.spectra import process_spec_file

    root, run_id, part_path, files = task
    outcomes: list[FileOutcome] = []
    rows: list[dict] = []
    for given, absolute in files:
        result = process_spec_file(absolute)
        star, spectrum = result.star, result.spectrum
        rejects = [{**r, "source": given} if r["source"] == absolute else r for r in result.rejects]
        for row in (star, spectrum):
            if row is not None and row.get("source") == absolute:
                row["source"] = given
        outcomes.append(
            FileOutcome(given, spectrum["star_id"] if spectrum else None, rejects, star)
        )
        if spectrum is not None:
            rows.append(spectrum)
    if not rows:
        return BatchResult(outcomes, None, None)
    sink = _PartSink(Path(root), run_id, Path(part_path))
    index = _write_part(sink, rows, 0)
    return BatchResult(outcomes, part_path, index)


def files_per_task(n_files: int, workers: int) -> int:
    """Enough tasks to keep every worker busy (4 each), at most one full part per task."""
    return max(1, min(PART_ROWS, max(16, math.ceil(n_files / (4 * max(1, workers))))))


def ingest_spectra_on_cluster(
    w: Writer, files: list[Path], report: IngestReport, scheduler: str, progress: bool
) -> dict[str, pa.Table]:
    """The cluster twin of ``etl.ingest._ingest_spectra``: same rules, same return value."""
    with open_executor(scheduler, 1) as runner:
        runner.require_shared(w.new_spectra_part(0).parent)
        return _ingest(w, files, report, runner, progress)


def _ingest(
    w: Writer, files: list[Path], report: IngestReport, runner: Runner, progress: bool
) -> dict[str, pa.Table]:
    todo, known, seen = files_to_read(w, files, report)
    size = files_per_task(len(todo), runner.workers)
    tasks = [
        (
            str(w.root),
            w.id,
            str(w.new_spectra_part(n)),
            [(str(p), os.path.abspath(p)) for p in todo[i : i + size]],
        )
        for n, i in enumerate(range(0, len(todo), size))
    ]
    stars: list[pa.Table] = []  #: per batch, as Arrow (~0.3 kB a star, not a ~2 kB dict)
    index: list[pa.Table] = []
    bar = tqdm(total=len(todo), desc="spectra", unit="file", disable=not progress, leave=False)
    try:
        for result in runner.map(ingest_batch, tasks):
            bar.update(len(result.files))
            drop: list[int] = []
            batch_stars: list[dict] = []
            row = 0
            for outcome in result.files:
                report.rejects.extend(outcome.rejects)
                sid = outcome.star_id
                if sid is None:
                    continue
                here, row = row, row + 1
                if sid in known:  # the name did not tell; the header did
                    report.spectra_skipped += 1
                    drop.append(here)
                elif sid in seen and seen[sid] != Path(outcome.source):
                    reason = f"duplicate id {sid}: also in {seen[sid]}"
                    report.rejects.append(reject(Path(outcome.source), "file", reason))
                    drop.append(here)
                else:
                    seen[sid] = Path(outcome.source)
                    if outcome.star is not None:
                        batch_stars.append(outcome.star)
            stars.append(pa.Table.from_pylist(batch_stars, schema=STARS))
            if result.part is None:
                continue
            part_index = _drop_rows(w, Path(result.part), drop) if drop else result.index
            if part_index is not None:
                w.add_spectra_part(Path(result.part))
                index.append(part_index)
    except BaseException:
        for _, _, part, _ in tasks:  # parts of batches not accepted yet
            Path(part).unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    report.spectra_added = sum(len(t) for t in index)
    new_index = pa.concat_tables(index) if index else SPECTRA_INDEX.empty_table()
    all_stars = pa.concat_tables(stars) if stars else STARS.empty_table()
    return {"new": new_index, "stars": all_stars}


def _drop_rows(w: Writer, path: Path, drop: list[int]) -> pa.Table | None:
    """Rewrite one part without the rows the coordinator refused; its new index (None: empty)."""
    table = pq.read_table(path)
    keep = np.setdiff1d(np.arange(table.num_rows), np.asarray(drop))
    if not len(keep):
        path.unlink()
        return None
    table = table.take(pa.array(keep))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=1, row_group_size=ROW_GROUP)
    os.replace(tmp, path)
    return index_rows(table, path.relative_to(w.root).as_posix())
