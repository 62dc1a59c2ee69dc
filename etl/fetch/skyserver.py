"""The catalog from SkyServer's SQL service, page by page, resumable.

SkyServer caps the rows one query returns (500,000 on DR17, fewer under load), so the query is
paged on its primary key: ``SELECT TOP n ... WHERE specObjID > last ORDER BY specObjID``, until
a page comes back empty (a page shorter than asked proves nothing: the server may have capped
it). Each page is written atomically to DIR/.catalog/page-NNNNN.parquet; an interrupted fetch
resumes after the last page written. When done, the pages become DIR/catalog.parquet (or .csv)
in one atomic rename.

``requests`` rather than ``astroquery.sdss.SDSS.query_sql``: astroquery sends the same GET, but
turns SkyServer's error pages (bad SQL, overload) into a FileNotFoundError or a one-column
table, losing the server's message; it has no retries; and it parses through astropy Table,
guessing column types page by page (run2d 26 becomes an int, v5_13_2 a string).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from startrack.errors import UserError
from startrack.etl.fetch.manifest import write_atomic
from startrack.sdss_urls import skyserver_sql_url

log = logging.getLogger(__name__)

PAGES_DIR = ".catalog"
#: SpecObj + PhotoObj columns the ETL understands (etl/catalog.py), stars only by default
DEFAULT_COLUMNS = (
    "s.specObjID, s.plate, s.mjd, s.fiberID, s.run2d, s.ra, s.dec, s.class, s.subClass, "
    "s.z, s.zErr, s.zWarning, s.snMedian, s.elodieSpType, "
    "p.psfMag_u, p.psfMag_g, p.psfMag_r, p.psfMag_i, p.psfMag_z, "
    "p.psfMagErr_u, p.psfMagErr_g, p.psfMagErr_r, p.psfMagErr_i, p.psfMagErr_z"
)
DEFAULT_FROM = "SpecObj AS s LEFT OUTER JOIN PhotoObj AS p ON s.bestObjID = p.objID"
DEFAULT_WHERE = "s.class = 'STAR'"
#: columns kept as text: ids past 2**63 (eBOSS plates > 8191) and labels
TEXT_COLUMNS = {"specobjid", "run2d", "class", "subclass", "elodiesptype", "objid", "bestobjid"}


class SqlError(UserError):
    """SkyServer refused the query; the message is the server's."""


@dataclass(frozen=True)
class CatalogQuery:
    """A query that can be paged: the user's own (``--sql``) or the default stars query."""

    release: int
    where: str | None = None
    user_sql: str | None = None

    def page_sql(self, top: int, after: int | None) -> str:
        if self.user_sql:
            inner = self.user_sql.strip().rstrip(";")
            conds = [f"q.specObjID > {after}"] if after is not None else []
            if self.where:
                conds.append(f"({self.where})")
            where = f" WHERE {' AND '.join(conds)}" if conds else ""
            return f"SELECT TOP {top} q.* FROM ({inner}) AS q{where} ORDER BY q.specObjID"
        conds = [DEFAULT_WHERE]
        if self.where:
            conds.append(f"({self.where})")
        if after is not None:
            conds.append(f"s.specObjID > {after}")
        return (
            f"SELECT TOP {top} {DEFAULT_COLUMNS} FROM {DEFAULT_FROM} "
            f"WHERE {' AND '.join(conds)} ORDER BY s.specObjID"
        )

    def key(self) -> str:
        """Identifies the query, so pages of another query are never mixed in."""
        text = json.dumps([self.release, self.where, self.user_sql])
        return hashlib.sha1(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- one page
def _server_message(text: str) -> str:
    """The human part of a SkyServer error body (HTML page, JSON or plain text), one line."""
    body = text.strip()
    try:
        obj = json.loads(body)
        if isinstance(obj, dict):
            for k in ("Message", "message", "error_message", "Error"):
                if obj.get(k):
                    body = str(obj[k])
                    break
    except ValueError:
        pass
    body = re.sub(r"(?is)<(script|style|title|head)\b.*?</\1>", " ", body)
    body = html.unescape(re.sub(r"(?s)<[^>]+>", " ", body))
    body = re.sub(r"\s+", " ", body).strip()
    body = re.sub(r"^(an error occur+ed\s*)", "", body, flags=re.I).strip()
    return body[:300] or "(empty response)"


def parse_csv(text: str) -> pd.DataFrame:
    """SkyServer CSV (first line ``#Table1``) -> DataFrame with ids and labels as text."""
    lines = text.lstrip("\ufeff").split("\n", 1)
    if lines[0].strip().startswith("#"):
        text = lines[1] if len(lines) > 1 else ""
    if not text.strip():
        return pd.DataFrame()
    header = pd.read_csv(io.StringIO(text), nrows=0).columns
    dtype = {c: str for c in header if c.lower() in TEXT_COLUMNS}
    return pd.read_csv(io.StringIO(text), dtype=dtype, keep_default_na=True)


def _looks_like_csv(text: str) -> bool:
    head = text.lstrip("\ufeff").lstrip()[:200].lower()
    return not (head.startswith("<") or "<html" in head or head.startswith("{"))


def run_sql(session: requests.Session, url: str, sql: str, timeout: float) -> pd.DataFrame:
    """One SQL query (the session retries 5xx, timeouts and dropped connections)."""
    try:
        r = session.get(url, params={"cmd": sql, "format": "csv"}, timeout=timeout)
    except requests.exceptions.RetryError as exc:
        raise UserError(f"SkyServer at {url} keeps failing: {exc}") from None
    except requests.exceptions.Timeout:
        raise UserError(f"SkyServer at {url} did not answer within {timeout:g} s") from None
    except requests.exceptions.ConnectionError as exc:
        raise UserError(f"cannot reach SkyServer at {url} ({_short(exc)})") from None
    if r.status_code >= 400:
        msg = _server_message(r.text)
        if r.status_code >= 500:
            raise UserError(f"SkyServer failed (HTTP {r.status_code}) after retries: {msg}")
        raise SqlError(f"SkyServer rejected the query (HTTP {r.status_code}): {msg}")
    if not _looks_like_csv(r.text):
        raise SqlError(f"SkyServer answered with an error page: {_server_message(r.text)}")
    try:
        return parse_csv(r.text)
    except (ValueError, pd.errors.ParserError) as exc:
        raise SqlError(f"SkyServer's answer is not a CSV table: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc)
    m = re.search(
        r"(Failed to establish a new connection: [^'\")]+|Connection refused|"
        r"Name or service not known|timed out)",
        text,
    )
    return m.group(1) if m else text[:200]


# ----------------------------------------------------------------------------- paging
def _id_column(df: pd.DataFrame) -> str:
    for c in df.columns:
        if c.lower() == "specobjid":
            return c
    raise SqlError("the query must return a specObjID column (the catalog is paged on it)")


def _page_files(pages: Path) -> list[Path]:
    return sorted(pages.glob("page-*.parquet"))


def fetch_catalog(
    session: requests.Session,
    out_dir: Path,
    query: CatalogQuery,
    *,
    skyserver_url: str,
    page_rows: int = 50_000,
    max_rows: int | None = None,
    timeout: float = 300.0,
    fmt: str = "parquet",
    on_page: Callable[[int, int], None] | None = None,
) -> dict:
    """Page the query into DIR/catalog.<fmt>; resumes from DIR/.catalog. Returns a summary."""
    url = skyserver_sql_url(query.release, skyserver_url)
    pages = out_dir / PAGES_DIR
    state_file = pages / "query.json"
    state = {"key": query.key(), "release": query.release, "max_rows": max_rows}
    if pages.exists():
        try:
            old = json.loads(state_file.read_text())
        except (OSError, ValueError):
            old = {}
        if old != state:
            log.info("catalog query changed since the last fetch: starting its pages afresh")
            shutil.rmtree(pages)
    pages.mkdir(parents=True, exist_ok=True)
    write_atomic(state_file, json.dumps(state).encode())

    files = _page_files(pages)
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    after: int | None = None
    done = (pages / "complete").exists()
    if files:
        last = pq.read_table(files[-1]).to_pandas()
        after = int(last[_id_column(last)].astype(object).map(int).max())
        if done:
            log.info("catalog already complete: %d rows in %d pages", rows, len(files))
        else:
            log.info("resuming the catalog after %d rows in %d pages", rows, len(files))
    resumed = len(files)
    while not done:
        want = page_rows if max_rows is None else min(page_rows, max_rows - rows)
        if want <= 0:
            break
        df = run_sql(session, url, query.page_sql(want, after), timeout)
        if df.empty:
            break
        idc = _id_column(df)
        ids = df[idc].astype(object).map(int)
        if after is not None and (ids <= after).any():
            raise SqlError("the query's specObjIDs do not increase: remove any ORDER BY / TOP")
        df = df.iloc[:want]
        n = len(files) + 1
        path = pages / f"page-{n:05d}.parquet"
        buf = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
        write_atomic(path, buf.getvalue().to_pybytes())
        files.append(path)
        rows += len(df)
        after = int(ids.iloc[: len(df)].max())
        if on_page:
            on_page(n, rows)
    (pages / "complete").touch()
    final = out_dir / f"catalog.{fmt}"
    tables = [pq.read_table(f) for f in files]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    if fmt == "csv":
        write_atomic(final, table.to_pandas().to_csv(index=False).encode())
    else:
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf)
        write_atomic(final, buf.getvalue().to_pybytes())
    return {
        "file": final.name,
        "rows": rows,
        "pages": len(files),
        "pages_resumed": resumed,
        "url": url,
        "query": query.page_sql(page_rows, None),
    }
