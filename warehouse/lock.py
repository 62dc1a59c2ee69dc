"""One writer at a time: an advisory ``flock`` on ``<warehouse>/LOCK``.

The kernel drops a flock when its holder dies (even by kill -9), so a crashed writer never
leaves a stale lock behind; the PID written into the file only serves the error message.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from startrack.errors import Busy


class WarehouseBusy(Busy, RuntimeError):
    """Another writer holds the warehouse lock (exit 5)."""


class WriterLock:
    """Exclusive writer lock; ``wait`` seconds to get it (0 = fail at once)."""

    def __init__(self, path: Path, wait: float = 0.0, poll: float = 0.2) -> None:
        self.path = path
        self.wait = wait
        self.poll = poll
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise WarehouseBusy(
                        f"another StarTrack writer ({holder}) is working on {self.path.parent}; "
                        f"waited {self.wait:g} s. Try again when it has finished, or pass "
                        "--wait SECONDS to wait longer."
                    ) from None
                time.sleep(self.poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "unknown process"
