"""CSV catalog rows in blocks where a bad row costs only that row.

Arrow's CSV reader is fast but all-or-nothing per block: one row with an extra field, an
unterminated quote or a Latin-1 byte fails (or silently swallows) everything near it. So the
file is cut into blocks at line ends; each block is parsed by Arrow (the fast path, all
vectorized) and the result is trusted only when it has exactly one row per line. Otherwise
that block alone is re-read line by line with Python's ``csv`` module, so every bad line
becomes a reject naming its row (1 = the first data row; blank lines are not counted) and
every good line is kept.
"""

from __future__ import annotations

import csv
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from startrack.etl.errors import CatalogError

BLOCK_BYTES = 8 << 20  #: bytes per parsed block (~50,000 rows of a wide SDSS export)
NULL_VALUES = ["", "NULL", "null", "NaN", "nan", "None"]


@dataclass
class RowBlock:
    """Text columns of the good rows, their 1-based data-row numbers, and the rejects."""

    table: pa.Table
    rows: np.ndarray
    rejects: list[dict[str, str]] = field(default_factory=list)
    next_row: int = 1  #: number of the first row of the next block


class _BadBlock(Exception):
    """The fast path could not vouch for this block; re-read it line by line."""


def iter_row_blocks(
    path: Path, names: list[str], skip: int, columns: list[str], block_bytes: int | None = None
) -> Iterator[RowBlock]:
    """Blocks of rows (``columns`` only, all as text) after the ``skip`` header lines."""
    block_bytes = block_bytes or BLOCK_BYTES
    source = str(path)
    first_row = 1

    for block, table in _parsed_ahead(path, skip, block_bytes, names, columns):
        if table is None:
            out = _slow(block, names, columns, first_row, source)
        else:
            out = _numbered(table, first_row)
        first_row = out.next_row
        yield out


def _parsed_ahead(
    path: Path, skip: int, block_bytes: int, names: list[str], columns: list[str]
) -> Iterator[tuple[bytes, pa.Table | None]]:
    """(block, Arrow's table or None) pairs, read and parsed by a thread up to 2 blocks ahead.

    Reading and Arrow's parsing release the GIL, so they overlap the caller's work on the
    previous block, as Arrow's own streaming reader would. The thread stops when the caller
    does (even midway, e.g. after a sample), and its errors are raised here.
    """
    out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for block in _raw_blocks(path, skip, block_bytes):
                try:
                    table = _fast(block, names, columns)
                except _BadBlock:
                    table = None
                if not put((block, table)):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=produce, name="csv-read", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _numbered(table: pa.Table, first_row: int) -> RowBlock:
    rows = np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
    return RowBlock(table, rows, [], first_row + table.num_rows)


def _raw_blocks(path: Path, skip: int, block_bytes: int) -> Iterator[bytes]:
    """The data bytes after ``skip`` lines, in blocks that end at a line end."""
    try:
        stream = pa.input_stream(str(path), compression="detect")
    except (OSError, pa.ArrowException) as exc:
        raise CatalogError(f"unreadable CSV file: {exc}") from exc
    with stream:
        carry = b""
        skipped = 0
        while True:
            try:
                chunk = stream.read(block_bytes)
            except (OSError, pa.ArrowException) as exc:
                raise CatalogError(f"corrupt or truncated compressed CSV: {exc}") from exc
            data = carry + chunk
            while skipped < skip and data:
                end = data.find(b"\n")
                if end < 0:
                    break
                data, skipped = data[end + 1 :], skipped + 1
            if not chunk:
                if data.strip() and skipped >= skip:
                    yield data
                return
            if skipped < skip:
                carry = data
                continue
            end = data.rfind(b"\n")
            if end < 0:
                carry = data
                continue
            carry = data[end + 1 :]
            yield data[: end + 1]  # (a block of blank lines becomes an empty block)


def _may_hide_lines(block: bytes) -> bool:
    """Whether Arrow could return fewer rows than lines: a quote (which may swallow line
    ends) or a blank line (skipped). Cheap memchr/memmem scans; without either, one row per
    line is guaranteed and the line count is not needed."""
    return (
        b'"' in block
        or b"\n\n" in block
        or b"\n\r\n" in block
        or block.startswith((b"\n", b"\r\n"))
    )


def _lines(block: bytes) -> int:
    return block.count(b"\n") + (0 if block.endswith(b"\n") else 1)


def _fast(block: bytes, names: list[str], columns: list[str]) -> pa.Table:
    """Arrow's parse of a block, or _BadBlock when it cannot vouch for one row per line.

    No ``invalid_row_handler``: with one, Arrow parses about twice as slowly; a row with the
    wrong number of fields makes it raise instead, and the block goes the slow way.
    """
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:  # Arrow would fail the block anyway
            raise _BadBlock from None
    try:
        table = pacsv.read_csv(
            pa.BufferReader(block),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()),
                include_columns=columns,
                null_values=NULL_VALUES,
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:  # bad row, invalid UTF-8
        raise _BadBlock from exc
    if _may_hide_lines(block) and table.num_rows != _lines(block):
        raise _BadBlock
    return table


def _slow(
    block: bytes, names: list[str], columns: list[str], first_row: int, source: str
) -> RowBlock:
    """Line by line: each bad line is one reject, each good one a row."""
    wanted = [names.index(c) for c in columns]
    values: list[list[str | None]] = [[] for _ in columns]
    rows: list[int] = []
    rejects: list[dict[str, str]] = []
    row = first_row - 1
    nulls = set(NULL_VALUES)
    for raw in block.split(b"\n"):
        if not raw.strip():
            continue
        row += 1
        reason = None
        try:
            text = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            byte = raw[exc.start : exc.start + 1].hex().upper()
            reason = f"not UTF-8 text (byte 0x{byte} at column {exc.start + 1} of the line)"
        else:
            if text.count('"') % 2:
                reason = "unterminated quote"
            else:
                try:
                    fields = next(csv.reader([text]))
                except csv.Error as exc:
                    reason = f"malformed CSV line: {exc}"
                else:
                    if len(fields) != len(names):
                        reason = f"expected {len(names)} fields, found {len(fields)}"
        if reason is not None:
            rejects.append({"source": source, "item": f"row {row}", "reason": reason})
            continue
        rows.append(row)
        for out, i in zip(values, wanted, strict=True):
            out.append(None if fields[i] in nulls else fields[i])
    table = pa.table({c: pa.array(v, pa.string()) for c, v in zip(columns, values, strict=True)})
    return RowBlock(table, np.asarray(rows, dtype=np.int64), rejects, row + 1)
