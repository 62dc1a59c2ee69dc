"""Immutable warehouse snapshots: one writer builds a new one, readers never wait.

DuckDB lets a single process open a database file for writing and then refuses read-only opens
from other processes, so readers and the writer must never share a file. Every write therefore
builds a complete new snapshot directory (Parquet per table plus a DuckDB file over them) in
``.staging``, renames it into ``snapshots/`` and swaps the ``CURRENT`` pointer with
``os.replace`` — atomic on POSIX. A published snapshot is never modified, so any number of
read-only DuckDB connections can open it while the next snapshot is being built, and a writer
killed at any moment leaves the previous snapshot published.

Spectra are large and append-only, so they live once in ``spectra/`` part files that every
snapshot's manifest lists; unchanged tables are hard-linked from the previous snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from startrack.errors import NotReady, UsageError, storage_error
from startrack.warehouse.contract import SPECTRA, STORED_TABLES, check_file_schema, conform
from startrack.warehouse.contract import schema as declared_schema
from startrack.warehouse.lock import WarehouseBusy, WriterLock

__all__ = ["Snapshot", "Warehouse", "WarehouseBusy", "WarehouseEmpty", "Writer"]

log = logging.getLogger(__name__)

DB_NAME = "startrack.duckdb"
MANIFEST = "manifest.json"
KEEP_SNAPSHOTS = 3  #: published snapshots kept for readers that still have an old one open
MIN_AGE_S = 120.0  #: never delete a snapshot younger than this (a reader may have just opened it)


class WarehouseEmpty(NotReady):
    """Nothing has been published to the warehouse yet (exit 3)."""


@dataclass(frozen=True)
class Snapshot:
    """One published, immutable state of the warehouse."""

    root: Path
    id: str

    @property
    def dir(self) -> Path:
        return self.root / "snapshots" / self.id

    @property
    def db_path(self) -> Path:
        return self.dir / DB_NAME

    @cached_property
    def manifest(self) -> dict:
        return json.loads((self.dir / MANIFEST).read_text())

    @property
    def tables(self) -> list[str]:
        return list(self.manifest["tables"])

    @property
    def spectra_files(self) -> list[Path]:
        """Absolute paths of the spectrum part files this snapshot includes."""
        return [self.root / rel for rel in self.manifest["spectra_files"]]

    def table_path(self, name: str) -> Path:
        return self.dir / f"{name}.parquet"

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """A table as Arrow (empty with its schema when this snapshot lacks it)."""
        path = self.table_path(name)
        if path.exists():
            return pq.read_table(path, columns=columns)
        table = declared_schema(name).empty_table()
        return table.select(columns) if columns else table

    def connect(
        self, sandbox: bool = False, memory_limit: str = "1GB"
    ) -> duckdb.DuckDBPyConnection:
        """A read-only DuckDB connection; ``sandbox`` also fences off the file system.

        A sandboxed connection gets its own in-memory DuckDB instance with the snapshot
        attached: DuckDB shares one instance per database file within a process, and locking
        the configuration of that shared instance would leak into every other connection.
        Its only file access is reading the spectrum parts the ``spectra`` view lists: DuckDB's
        allow-list does not tell reads from writes, so no directory is allowed (a directory
        would let a write create or replace files in it), and nothing spills to disk.
        """
        if not sandbox:
            return duckdb.connect(str(self.db_path), read_only=True)
        con = duckdb.connect(":memory:")
        con.execute("ATTACH $1 AS warehouse (READ_ONLY)", [str(self.db_path)])
        con.execute("USE warehouse")
        con.execute("SET allowed_directories = $1", [[]])
        con.execute("SET allowed_paths = $1", [[str(p) for p in self.spectra_files]])
        con.execute("SET memory_limit = $1", [memory_limit])
        con.execute("SET temp_directory = ''")
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
        return con


class Warehouse:
    """A warehouse directory: snapshots, spectrum parts, models and the writer lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(
                f"the warehouse path {self.root} is a file, not a directory: pass --warehouse DIR "
                "(a new or existing warehouse directory)"
            )

    def __repr__(self) -> str:
        return f"Warehouse({str(self.root)!r})"

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    def current_id(self) -> str | None:
        try:
            return self.current_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def current(self) -> Snapshot | None:
        """The published snapshot, or None when nothing was published yet."""
        snap_id = self.current_id()
        return Snapshot(self.root, snap_id) if snap_id else None

    def require_current(self) -> Snapshot:
        snap = self.current()
        if snap is None:
            raise WarehouseEmpty(
                f"the warehouse {self.root} is empty: run `startrack ingest` (or `startrack demo`) "
                "first, or point --warehouse / STARTRACK_WAREHOUSE at an existing one"
            )
        return snap

    def snapshots(self) -> list[str]:
        base = self.root / "snapshots"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / MANIFEST).exists())

    @contextmanager
    def writer(self, command: str, wait: float = 0.0) -> Iterator[Writer]:
        """Hold the writer lock; publish a new snapshot when the block ends without error."""
        lock = WriterLock(self.root / "LOCK", wait=wait)
        try:
            lock.acquire()
        except OSError as exc:
            error = storage_error(exc, f"locking the warehouse {self.root}")
            if error is None:
                raise
            raise error from exc
        try:
            self._sweep_staging()
            self._sweep_orphan_parts()
            self.repair_link()
            w = Writer(self, command)
            try:
                yield w
                if not w.discarded:
                    w.publish()
            except BaseException as exc:
                if not w.published:
                    w.discard()
                error = storage_error(exc, f"writing snapshot {w.id}")
                if error is not None and error is not exc:
                    raise error from exc
                raise
            self._collect_garbage()
        finally:
            lock.release()

    def repair_link(self) -> None:
        """Point ``startrack.duckdb`` at the snapshot CURRENT names (CURRENT is the truth).

        A writer killed between replacing CURRENT and swapping the link leaves them apart;
        every reader goes by CURRENT, and the next writer (holding the lock) fixes the link.
        """
        snap_id = self.current_id()
        if snap_id is None or not (self.root / "snapshots" / snap_id / DB_NAME).exists():
            return
        link = self.root / DB_NAME
        target = Path("snapshots") / snap_id / DB_NAME
        try:
            if link.is_symlink() and Path(os.readlink(link)) == target:
                return
        except OSError:
            pass
        log.warning("startrack.duckdb did not point at CURRENT (%s): repaired", snap_id)
        _atomic_symlink(link, target)

    def _sweep_orphan_parts(self) -> None:
        """Spectrum parts of writers that died before publishing: delete them now.

        Called with the lock held, so the writer of any part is gone. A part is an orphan when
        no published manifest lists it and no listed part comes from the same writer (a
        published writer's parts are carried into every later manifest, so a part of a
        published run is never unlisted while its snapshot's successors exist).
        """
        spectra_dir = self.root / "spectra"
        if not spectra_dir.is_dir():
            return
        referenced = self._referenced_parts()
        writers = {_part_writer(Path(rel).name) for rel in referenced}
        orphans = [
            p
            for p in spectra_dir.iterdir()
            if f"spectra/{p.name}" not in referenced and _part_writer(p.name) not in writers
        ]
        if orphans:
            size = sum(p.stat().st_size for p in orphans if p.exists()) / 1e6
            log.info(
                "removing %d spectrum part(s) (%.1f MB) left by an interrupted writer",
                len(orphans),
                size,
            )
            for part in orphans:
                part.unlink(missing_ok=True)

    def _referenced_parts(self) -> set[str]:
        referenced: set[str] = set()
        for snap_id in self.snapshots():
            try:
                manifest = json.loads((self.root / "snapshots" / snap_id / MANIFEST).read_text())
            except (OSError, ValueError):
                continue
            referenced.update(manifest.get("spectra_files", []))
        return referenced

    def _sweep_staging(self) -> None:
        """Leftovers of writers that died: nobody else can own them while we hold the lock."""
        staging = self.root / ".staging"
        if staging.is_dir():
            for leftover in staging.iterdir():
                log.info("removing unfinished snapshot %s left by an interrupted writer", leftover)
                shutil.rmtree(leftover, ignore_errors=True)

    def _collect_garbage(self) -> None:
        ids = self.snapshots()
        current = self.current_id()
        keep = set(ids[-KEEP_SNAPSHOTS:]) | {current}
        now = time.time()
        for snap_id in ids:
            path = self.root / "snapshots" / snap_id
            if snap_id not in keep and now - path.stat().st_mtime > MIN_AGE_S:
                shutil.rmtree(path, ignore_errors=True)
        referenced = self._referenced_parts()
        spectra_dir = self.root / "spectra"
        if spectra_dir.is_dir():
            for part in spectra_dir.iterdir():
                rel = f"spectra/{part.name}"
                if rel not in referenced and now - part.stat().st_mtime > MIN_AGE_S:
                    log.info("removing orphaned spectrum part %s", part)
                    part.unlink(missing_ok=True)

    def model_dir(self, version: str) -> Path:
        return self.root / "models" / version


def _part_writer(name: str) -> str:
    """The writer id of a spectrum part file name '<writer id>-<n>.parquet'."""
    return name.rsplit("-", 1)[0]


def new_id(prefix: str = "") -> str:
    """Sortable, unique: UTC time to the microsecond plus a random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}{stamp}-{secrets.token_hex(2)}"


@dataclass
class Writer:
    """Collects the tables of the next snapshot; the Warehouse publishes it."""

    warehouse: Warehouse
    command: str
    id: str = field(default_factory=new_id)
    base: Snapshot | None = None
    discarded: bool = False
    published: bool = False
    _tables: dict[str, Path] = field(default_factory=dict)
    _spectra_added: list[str] = field(default_factory=list)
    _spectra_files: list[str] | None = None

    def __post_init__(self) -> None:
        self.base = self.warehouse.current()
        self.staging.mkdir(parents=True, exist_ok=False)

    @property
    def staging(self) -> Path:
        return self.warehouse.root / ".staging" / self.id

    @property
    def root(self) -> Path:
        return self.warehouse.root

    def put_table(self, name: str, table: pa.Table | pd.DataFrame) -> None:
        """Replace ``name`` in the new snapshot (tables not put are carried over).

        The table is cast to its declared schema (startrack.warehouse.contract).
        """
        table = conform(name, table)
        path = self.staging / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd", row_group_size=122_880)
        self._tables[name] = path

    def put_parquet(self, name: str, path: Path) -> None:
        """Adopt a Parquet file already written (e.g. by DuckDB COPY) as table ``name``.

        Its schema must be the declared one (startrack.warehouse.contract).
        """
        check_file_schema(name, pq.read_schema(path))
        target = self.staging / f"{name}.parquet"
        if path.resolve() != target.resolve():
            os.replace(path, target)
        self._tables[name] = target

    def scratch(self, name: str) -> Path:
        """A path inside this writer's staging area for intermediate files."""
        path = self.staging / "scratch" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def new_spectra_part(self, n: int) -> Path:
        """Where to write a new spectrum part file (include it with add_spectra_part)."""
        path = self.root / "spectra" / f"{self.id}-{n:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add_spectra_part(self, path: Path) -> None:
        self._spectra_added.append(path.relative_to(self.root).as_posix())

    def drop_spectra_parts(self) -> None:
        """Forget and delete the spectrum parts this writer added (e.g. a --strict failure)."""
        for rel in self._spectra_added:
            (self.root / rel).unlink(missing_ok=True)
        self._spectra_added = []

    def set_spectra_files(self, rel_paths: list[str]) -> None:
        """Replace the whole list of spectrum parts (compaction); paths relative to the root."""
        self._spectra_files = list(rel_paths)

    def model_dir(self, version: str) -> Path:
        path = self.warehouse.model_dir(version)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def discard(self) -> None:
        """Drop everything this writer staged; the published snapshot stays as it was."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self.drop_spectra_parts()
        self.discarded = True

    def spectra_files(self) -> list[str]:
        if self._spectra_files is not None:
            return self._spectra_files + self._spectra_added
        base = self.base.manifest["spectra_files"] if self.base else []
        return [*base, *self._spectra_added]

    def publish(self) -> Snapshot:
        tables = self._carry_over()
        spectra = self.spectra_files()
        _build_duckdb(self.staging / DB_NAME, self.root, tables, spectra)
        manifest = {
            "id": self.id,
            "parent": self.base.id if self.base else None,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": self.command,
            "tables": sorted(tables),
            "spectra_files": spectra,
        }
        (self.staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        shutil.rmtree(self.staging / "scratch", ignore_errors=True)
        _fsync_tree(self.staging)
        _make_read_only([*self.staging.iterdir(), *(self.root / r for r in self._spectra_added)])
        final = self.root / "snapshots" / self.id
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.staging, final)
        try:
            _fsync_dir(final.parent)
            _atomic_write(self.warehouse.current_file, self.id + "\n")
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)  # never became CURRENT: not published
            raise
        self.published = True  # CURRENT names it: from here on it is the published state
        try:
            _atomic_symlink(self.root / DB_NAME, Path("snapshots") / self.id / DB_NAME)
        except OSError as exc:  # readers go by CURRENT; the next writer repairs the link
            log.warning("could not update the startrack.duckdb link: %s", exc)
        log.info("published snapshot %s (%s)", self.id, self.command)
        return Snapshot(self.root, self.id)

    def _carry_over(self) -> list[str]:
        names = set(self._tables)
        if self.base is not None:
            for name in self.base.tables:
                if name in names:
                    continue
                src = self.base.table_path(name)
                dst = self.staging / f"{name}.parquet"
                try:
                    os.link(src, dst)  # immutable files: a hard link is a free copy
                except OSError:
                    shutil.copy2(src, dst)
                names.add(name)
        for name in STORED_TABLES:  # every snapshot has every table
            if name not in names:
                pq.write_table(
                    declared_schema(name).empty_table(), self.staging / f"{name}.parquet"
                )
                names.add(name)
        return sorted(names)


def _build_duckdb(db_path: Path, root: Path, tables: list[str], spectra: list[str]) -> None:
    """Native tables (fast point lookups) plus a ``spectra`` view over the part files."""
    con = duckdb.connect(str(db_path))
    try:
        for name in tables:  # writers store big tables sorted by id (zone maps do the rest)
            src = str(db_path.parent / f"{name}.parquet")
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet($1)', [src])
        if spectra:
            files = [str(root / rel) for rel in spectra]
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE VIEW spectra AS SELECT * FROM read_parquet([{listing}])")
        else:  # a native empty table: a view may only point at files that never move
            con.register("_empty_spectra", SPECTRA.empty_table())
            con.execute("CREATE TABLE spectra AS SELECT * FROM _empty_spectra")
            con.unregister("_empty_spectra")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _make_read_only(paths: list[Path]) -> None:
    """Published files are never modified: say so to the OS, a fence for non-root readers."""
    for path in paths:
        if path.is_file():
            path.chmod(0o444)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover of a writer that died
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o444)  # replaced by rename, never rewritten in place
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the replace; a leftover after a failure
    _fsync_dir(path.parent)


def _atomic_symlink(path: Path, target: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(path)
