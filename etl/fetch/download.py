"""Spec-lite files from the SAS: concurrent, polite, retried, verified, resumable.

Every file is streamed to a hidden temporary name in the same folder, checked (the byte count
matches Content-Length; it opens as FITS with a non-empty COADD HDU), then renamed: a file under
its final name is always whole, whatever kills the process. A file already under its final
name is skipped, so re-running resumes. 404 is an answer (recorded, not retried); 5xx,
timeouts, dropped connections, truncated bodies and HTML error pages served as 200 are
retried with exponential backoff, then recorded as failed with the reason.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import requests
from astropy.io import fits

from startrack.etl.fetch.manifest import FILE_MODE
from startrack.etl.fetch.session import RateLimiter

log = logging.getLogger(__name__)

#: written as it arrives (a killed fetch shows how far it got in the .part file)
CHUNK = 16 * 1024

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class Job:
    name: str  # spec-PLATE-MJD-FIBER.fits
    url: str


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: str  # got | present | missing | failed
    reason: str = ""
    size: int = 0
    attempts: int = 0
    unreachable: bool = False  # failed because the server could not be reached at all


class Transient(Exception):
    """Worth another try: a cut-off body, an error page instead of FITS, a stall."""


class Unreachable(Transient):
    """No connection could be made (after the session's own retries)."""


def verify_spec_file(path: Path, expected_size: int | None = None) -> None:
    """Raise Transient unless ``path`` is a whole spec file: right size, FITS, COADD rows."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise Transient(f"got {size} of {expected_size} bytes")
    with open(path, "rb") as f:
        head = f.read(80)
    if not head.startswith(b"SIMPLE  ="):
        snippet = head.decode("latin-1").strip().replace("\n", " ")[:60]
        raise Transient(f"not a FITS file (starts {snippet!r})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # astropy only warns about a truncated file
            with fits.open(path, memmap=False) as hdul:
                if "COADD" not in hdul:
                    raise Transient("FITS file without a COADD HDU")
                if not hdul["COADD"].header.get("NAXIS2"):
                    raise Transient("COADD HDU is empty")
                if expected_size is None:  # no Content-Length: the HDUs must end in the file
                    hdul["COADD"].data  # noqa: B018 (astropy warns if the rows are cut off)
                    hdul.readall()
                    last = hdul.fileinfo(len(hdul) - 1)
                    if last["datLoc"] + last["datSpan"] > size:
                        raise Transient(f"FITS file cut off at {size} bytes")
    except Transient:
        raise
    except Exception as exc:  # astropy raises OSError/ValueError/warnings for damage
        raise Transient(f"damaged FITS file: {exc}") from None


def sweep_partials(folder: Path) -> int:
    """Remove temporary files a killed fetch left behind; they are never under final names."""
    n = 0
    for p in folder.glob(f".spec-*{PART_SUFFIX}"):
        p.unlink(missing_ok=True)
        n += 1
    return n


class Downloader:
    def __init__(
        self,
        session: requests.Session,
        dest: Path,
        *,
        rate: float = 5.0,
        timeout: float = 60.0,
        attempts: int = 5,
        backoff: float = 1.0,
        give_up_after: int = 20,
    ) -> None:
        self.session = session
        self.dest = dest
        self.limiter = RateLimiter(rate)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        #: this many unreachable outcomes in a row with nothing got: the network is down, stop
        self.give_up_after = give_up_after
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._unreachable_run = 0
        self.stopped_reason = ""

    # ------------------------------------------------------------------ one file
    def fetch_one(self, job: Job) -> Outcome:
        final = self.dest / job.name
        if final.exists():
            return Outcome(job, "present", size=final.stat().st_size)
        reason = ""
        unreachable = False
        for attempt in range(1, self.attempts + 1):
            if self._stop.is_set():
                return Outcome(job, "failed", f"not tried: {self.stopped_reason}", attempts=0)
            if attempt > 1:
                time.sleep(min(60.0, self.backoff * 2 ** (attempt - 2)))
            self.limiter.wait()
            try:
                size = self._download(job, final)
                return Outcome(job, "got", size=size, attempts=attempt)
            except FileNotFoundError as exc:
                return Outcome(job, "missing", str(exc), attempts=attempt)
            except Unreachable as exc:
                reason, unreachable = str(exc), True
            except Transient as exc:
                reason, unreachable = str(exc), False
            log.debug("%s: attempt %d failed: %s", job.name, attempt, reason)
        return Outcome(job, "failed", reason, attempts=self.attempts, unreachable=unreachable)

    def _download(self, job: Job, final: Path) -> int:
        try:
            r = self.session.get(job.url, stream=True, timeout=self.timeout)
        except requests.exceptions.ConnectionError as exc:  # incl. RetryError
            if isinstance(exc, requests.exceptions.RetryError):
                raise Transient(f"server kept failing: {_why(exc)}") from None
            if isinstance(exc.__context__, requests.exceptions.ReadTimeout) or "timed out" in str(
                exc
            ):
                raise Transient(f"timed out after {self.timeout:g} s") from None
            raise Unreachable(f"cannot connect: {_why(exc)}") from None
        except requests.exceptions.Timeout:
            raise Transient(f"timed out after {self.timeout:g} s") from None
        with r:
            if r.status_code == 404:
                raise FileNotFoundError("404 Not Found on the SAS")
            if r.status_code != 200:
                raise Transient(f"HTTP {r.status_code} {r.reason}")
            length = r.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            fd, tmp_name = tempfile.mkstemp(
                dir=self.dest, prefix=f".{job.name}.", suffix=PART_SUFFIX
            )
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as f:
                    try:
                        for chunk in r.iter_content(CHUNK):
                            f.write(chunk)
                    except (requests.exceptions.RequestException, OSError) as exc:
                        raise Transient(f"download cut off: {_why(exc)}") from None
                    f.flush()
                    os.fsync(f.fileno())
                verify_spec_file(tmp, expected)
                os.chmod(tmp, FILE_MODE)
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
        return final.stat().st_size

    # ------------------------------------------------------------------ many files
    def run(
        self,
        jobs: Iterable[Job],
        workers: int = 4,
        on_done: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Fetch every job with ``workers`` threads; ``on_done`` sees outcomes as they come."""
        self.dest.mkdir(parents=True, exist_ok=True)
        outcomes: list[Outcome] = []
        pool = ThreadPoolExecutor(max_workers=max(1, workers))
        try:
            futures = [pool.submit(self.fetch_one, j) for j in jobs]
            for fut in as_completed(futures):
                out = fut.result()
                self._note(out)
                outcomes.append(out)
                if on_done:
                    on_done(out)
        except BaseException:  # Ctrl-C: finish the files in flight, start no new ones
            self.stop("interrupted")
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return outcomes

    def _note(self, out: Outcome) -> None:
        with self._lock:
            if out.status == "failed" and out.unreachable:
                self._unreachable_run += 1
                if self._unreachable_run >= self.give_up_after and not self._stop.is_set():
                    self.stopped_reason = f"the SAS is unreachable ({out.reason})"
                    self._stop.set()
            elif out.status in ("got", "missing"):
                self._unreachable_run = 0

    def stop(self, reason: str) -> None:
        self.stopped_reason = reason
        self._stop.set()


_REASONS = re.compile(
    r"Connection refused|Name or service not known|Temporary failure in name resolution|"
    r"Network is unreachable|No route to host|IncompleteRead\([^)]*\)|Connection reset by peer|"
    r"Read timed out|Remote end closed connection without response|too many \d+ error responses"
)


def _why(exc: BaseException) -> str:
    """The phrase that says what went wrong, out of requests' nested exception text."""
    text = str(exc)
    m = _REASONS.search(text)
    return m.group(0) if m else text[:120]
