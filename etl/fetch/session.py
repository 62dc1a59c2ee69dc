"""One HTTP session for the public SDSS servers: retries with backoff, and a request-rate cap.

``urllib3.util.Retry`` retries what happens before a body starts (refused or dropped
connections, timeouts waiting for headers, 429/5xx, honouring Retry-After); a body that is
cut off or stalls half-way is retried by the caller (see ``download``), since no client library
re-reads a streamed body.
"""

from __future__ import annotations

import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from startrack import __version__

USER_AGENT = f"startrack/{__version__} (+SDSS fetch; python-requests)"
RETRY_STATUS = (429, 500, 502, 503, 504)


def make_session(retries: int = 5, backoff: float = 1.0, pool: int = 16) -> requests.Session:
    """A session whose every request retries transient failures with exponential backoff
    (backoff, 2*backoff, 4*backoff, ... capped at 60 s)."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=retries,
        backoff_factor=backoff,
        backoff_max=60,
        status_forcelist=RETRY_STATUS,
        allowed_methods=("GET", "HEAD"),
        respect_retry_after_header=True,
        raise_on_status=False,  # the last 5xx comes back as a response: we report its message
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


class RateLimiter:
    """At most ``rate`` request starts per second across all threads (0 = no cap).

    Evenly spaced rather than bursty: a public server sees a steady trickle."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        delay = start - now
        if delay > 0:
            time.sleep(delay)
