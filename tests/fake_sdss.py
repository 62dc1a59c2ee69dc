"""A fake SkyServer and a fake SAS on 127.0.0.1, with the faults public servers have.

- ``FakeSkyServer`` answers ``/drNN/SkyServerWS/SearchTools/SqlSearch?cmd=...&format=csv`` in
  SkyServer's CSV shape (``#Table1`` first line), honours ``TOP n`` and ``specObjID > x`` and
  caps every answer at ``row_cap`` rows, as SkyServer does; unknown tables get SkyServer's
  error page.
- ``FakeSAS`` serves files under the real SAS layout (``/sas/dr17/sdss/spectro/redux/26/
  spectra/lite/PLATE4/spec-...fits``); ``faults[name]`` is a list of faults used up one per
  request: ``503``, ``truncate`` (half the body, then the connection drops), ``slow`` (no
  answer for ``slow_seconds``), ``html`` (an error page with status 200), ``drop``; and
  ``dribble_seconds`` slows every body down (for kill -9 tests).
"""

from __future__ import annotations

import http.server
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

SKYSERVER_TABLES = {"specobj", "photoobj", "specobjall", "photoobjall", "specphoto", "star"}
SKYSERVER_COLUMNS = [
    *("specObjID", "plate", "mjd", "fiberID", "run2d", "ra", "dec", "class", "subClass"),
    *("z", "zErr", "zWarning", "snMedian", "elodieSpType"),
    *(f"psfMag_{b}" for b in "ugriz"),
    *(f"psfMagErr_{b}" for b in "ugriz"),
]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (timeout, kill -9) breaks the pipe: that is the point here."""


class _Base:
    handler: type[http.server.BaseHTTPRequestHandler]

    def __enter__(self):
        self.server = _Server(("127.0.0.1", 0), self.handler)
        self.server.app = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# ----------------------------------------------------------------------------- SkyServer
def skyserver_error_page(message: str) -> bytes:
    """The shape of SkyServer's error answer."""
    return (
        "<html><head>\n<title>Skyserver Error</title>\n</head><body bgcolor=white>\n"
        "<h2>An error occured</h2><H3 BGCOLOR=pink><font color=red><br>"
        f"{message}</font></H3></BODY></HTML>"
    ).encode()


class _SkyHandler(_Handler):
    def do_GET(self) -> None:
        app: FakeSkyServer = self.server.app  # type: ignore[attr-defined]
        url = urllib.parse.urlparse(self.path)
        if not re.fullmatch(r"/dr\d+/SkyServerWS/SearchTools/SqlSearch", url.path):
            return self._send(404, b"not found")
        params = urllib.parse.parse_qs(url.query)
        cmd = params.get("cmd", [""])[0]
        with app.lock:
            app.queries.append(cmd)
            fault = app.faults.pop(0) if app.faults else None
        if fault is not None:
            return self._send(fault, skyserver_error_page("Server too busy"), "text/html")
        if params.get("format", [""])[0] != "csv":
            return self._send(400, b"format=csv expected")
        for table in re.findall(r"(?i)\b(?:from|join)\s+([A-Za-z_]\w*)", cmd):
            if table.lower() not in SKYSERVER_TABLES:
                msg = f"Invalid object name '{table}'."
                return self._send(400, skyserver_error_page(msg), "text/html")
        top = re.search(r"(?i)\bselect\s+top\s+(\d+)", cmd)
        after = re.search(r"(?i)specObjID\s*>\s*(\d+)", cmd)
        n = min(int(top.group(1)) if top else app.row_cap, app.row_cap)
        rows = [r for r in app.rows if not after or r["specObjID"] > int(after.group(1))]
        rows.sort(key=lambda r: r["specObjID"])
        lines = ["#Table1", ",".join(SKYSERVER_COLUMNS)]
        for r in rows[:n]:
            lines.append(",".join("" if r.get(c) is None else str(r[c]) for c in SKYSERVER_COLUMNS))
        self._send(200, ("\n".join(lines) + "\n").encode(), "text/plain")


class FakeSkyServer(_Base):
    handler = _SkyHandler

    def __init__(self, rows: list[dict], row_cap: int = 1000) -> None:
        self.rows = rows
        self.row_cap = row_cap
        self.queries: list[str] = []
        self.faults: list[int | None] = []  # HTTP statuses for the next requests (None: ok)
        self.lock = threading.Lock()


# ----------------------------------------------------------------------------- SAS
class _SasHandler(_Handler):
    def do_GET(self) -> None:
        app: FakeSAS = self.server.app  # type: ignore[attr-defined]
        path = urllib.parse.urlparse(self.path).path
        name = path.rsplit("/", 1)[-1]
        with app.lock:
            app.requests[name] += 1
            app.times.append(time.monotonic())
            faults = app.faults.get(name)
            fault = faults.pop(0) if faults else None
        body = app.files.get(path)
        if fault == "slow":
            time.sleep(app.slow_seconds)
            fault = None
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if fault == "503":
            return self._send(503, b"<html><body><h1>503 Service Unavailable</h1></body></html>")
        if fault == "html":
            page = b"<!DOCTYPE html><html><head><title>SAS maintenance</title></head></html>"
            return self._send(200, page, "text/html")
        if body is None:
            return self._send(404, b"<html><body>404 Not Found</body></html>", "text/html")
        data = body.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/fits")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if fault == "truncate":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if app.dribble_seconds:
            step = max(1, len(data) // 20)
            for i in range(0, len(data), step):
                self.wfile.write(data[i : i + step])
                self.wfile.flush()
                time.sleep(app.dribble_seconds / 20)
            return None
        self.wfile.write(data)
        return None


class FakeSAS(_Base):
    handler = _SasHandler

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}  # URL path -> file served
        self.faults: dict[str, list[str]] = {}
        self.requests: Counter[str] = Counter()
        self.times: list[float] = []  # when each request arrived
        self.slow_seconds = 3.0
        self.dribble_seconds = 0.0
        self.lock = threading.Lock()

    def serve(self, sas_path: str, file: Path) -> None:
        """Serve ``file`` at /sas/<sas_path> (sas_path as built by startrack.sdss_urls)."""
        self.files[f"/sas/{sas_path}"] = file

    @property
    def url(self) -> str:
        return f"{super().url}/sas"
