"""DIR/fetch.json: what a fetch asked for, got, skipped and failed, and why.

Written atomically (temp file + rename) as the fetch goes, so a killed fetch leaves the last
complete manifest; the files on disk remain the truth for resuming (a file under its final
name has been verified).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "fetch.json"
#: per-file statuses: got (downloaded now), present (already complete), missing (server 404),
#: failed (gave up after retries)
STATUSES = ("got", "present", "missing", "failed")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: permissions of a new file (mkstemp makes 0600; results are shared like any download)
FILE_MODE = 0o666 & ~_umask()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Manifest:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        path = out_dir / MANIFEST
        data: dict[str, Any] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}  # unreadable: start a new one; the files on disk still count
        data.setdefault("runs", [])
        data.setdefault("catalog", {})
        data.setdefault("spectra", {})
        data.setdefault("files", {})
        return cls(path, data)

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.data["files"]

    def record(self, name: str, status: str, url: str, reason: str = "", size: int = 0) -> None:
        entry: dict[str, Any] = {"status": status, "url": url}
        if reason:
            entry["reason"] = reason
        if size:
            entry["bytes"] = size
        self.files[name] = entry

    def counts(self, names: list[str]) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for n in names:
            status = self.files.get(n, {}).get("status")
            if status in out:
                out[status] += 1
        return out

    def save(self) -> None:
        self.data["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True).encode())
