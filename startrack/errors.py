"""Errors a user can fix: the CLI prints them as one clear line and exits with their code.

Every user-caused failure is a :class:`UserError` subclass raised where it happens; ``startrack``
catches the family once (``startrack/cli.py``), prints ``startrack CMD: error: MESSAGE`` and
exits with the subclass's ``exit_code``. The codes are documented in the README and in
``startrack --help``. Subclasses also derive from the matching built-in exception (LookupError,
OSError, ...) so code that catches those keeps working.
"""

from __future__ import annotations

import errno
import os

#: exit code -> what it means (rendered into ``startrack --help`` and the README).
EXIT_CODES: dict[int, str] = {
    0: "success (an ingest may still have rejected some items: see the rejects table)",
    1: "nothing usable was ingested (or --strict and something was rejected)",
    2: "usage: bad arguments, missing input files, a warehouse path that is not a directory",
    3: "not ready: nothing published yet, too few labelled stars to train, no trained model, "
    "or the model artifact is unusable",
    4: "storage: disk full, read-only or unwritable warehouse; nothing was published",
    5: "busy: another writer holds the warehouse lock (try --wait SECONDS)",
    130: "interrupted (Ctrl-C); the published warehouse is unchanged",
}


class UserError(Exception):
    """Bad input, missing data or a busy warehouse: say what to do, don't crash."""

    exit_code = 2


class UsageError(UserError):
    """Bad arguments or missing inputs (exit 2)."""

    exit_code = 2


class NothingIngested(UserError):
    """An ingest ran but nothing usable came out of it (exit 1)."""

    exit_code = 1


class NotReady(UserError, LookupError):
    """The warehouse has nothing published yet, or no usable model (exit 3)."""

    exit_code = 3


class NothingToTrain(NotReady, ValueError):
    """The warehouse has too few labelled stars to train on (exit 3)."""


class ModelUnusable(NotReady):
    """The model artifact is missing, tampered with or from another grid (exit 3)."""


class StorageError(UserError, OSError):
    """The warehouse cannot be written: disk full, read-only, no permission (exit 4)."""

    exit_code = 4


class Busy(UserError):
    """Another writer holds the warehouse lock (exit 5)."""

    exit_code = 5


#: OS errors that mean "the disk or the permissions", not a bug: become StorageError.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def storage_error(exc: BaseException, doing: str) -> StorageError | None:
    """A StorageError for an OS-level write failure (ENOSPC ...), None for anything else.

    pyarrow raises a plain OSError without ``errno`` whose message carries the C error text,
    so the message is checked too.
    """
    if isinstance(exc, StorageError):
        return exc
    if not isinstance(exc, OSError):
        return None
    code = exc.errno
    if code is None:
        text = str(exc)
        code = next((c for c in STORAGE_ERRNOS if _strerror(c) in text), None)
    if code not in STORAGE_ERRNOS:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    return StorageError(f"{doing} failed: {_strerror(code).lower()}{where}; nothing was published")


def _strerror(code: int) -> str:
    return os.strerror(code)
