"""``startrack fetch``: the real SDSS catalog and spec-lite files into a folder, resumably.

Then ``startrack ingest DIR`` (or ``fetch --ingest``) loads them like any other SDSS files.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import sys
import time
from pathlib import Path

from startrack.argtypes import positive_int
from startrack.errors import UserError

log = logging.getLogger(__name__)

ENV_SKYSERVER = "STARTRACK_SKYSERVER_URL"
ENV_SAS = "STARTRACK_SAS_URL"
SPECTRA_DIR = "spectra"


def _spectra_count(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from startrack.sdss_urls import DEFAULT_RELEASE, SAS_URL, SKYSERVER_URL

    parser.epilog = (
        "Writes DIR/catalog.parquet (paged SkyServer SQL), DIR/spectra/spec-*.fits (SAS "
        "spec-lite, verified) and DIR/fetch.json (what was asked, got, skipped, failed and "
        "why). Re-running resumes: complete files and catalog pages are kept. Exit 0 when "
        "everything asked for arrived or is a 404 on the server; 1 when files failed after "
        "retries; 2 for bad input, bad SQL (the server's message) or an unreachable server."
    )
    parser.add_argument(
        "--out",
        "-o",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for catalog.parquet, spectra/ and fetch.json (the same DIR resumes)",
    )
    parser.add_argument(
        "--release",
        type=int,
        default=DEFAULT_RELEASE,
        help=f"SDSS data release (default {DEFAULT_RELEASE})",
    )
    parser.add_argument(
        "--skyserver-url",
        default=os.environ.get(ENV_SKYSERVER) or SKYSERVER_URL,
        metavar="URL",
        help=f"SkyServer or a mirror (default: ${ENV_SKYSERVER}, else {SKYSERVER_URL})",
    )
    parser.add_argument(
        "--sas-url",
        default=os.environ.get(ENV_SAS) or SAS_URL,
        metavar="URL",
        help=f"Science Archive Server or a mirror (default: ${ENV_SAS}, else {SAS_URL})",
    )
    q = parser.add_argument_group("catalog")
    q.add_argument(
        "--sql",
        type=Path,
        metavar="FILE",
        help="your own query (must return specObjID, plate, mjd, fiberID; no ORDER BY): "
        "it is paged as SELECT TOP n q.* FROM (<yours>) q WHERE q.specObjID > last",
    )
    q.add_argument("--where", metavar="SQL", help='narrow the query, e.g. "s.snMedian > 10"')
    q.add_argument("--stars", type=positive_int, metavar="N", help="at most N catalog rows")
    q.add_argument(
        "--page-rows",
        type=positive_int,
        default=50_000,
        metavar="N",
        help="rows per SQL page (default 50000; SkyServer caps a query at 500000)",
    )
    q.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="catalog file")
    s = parser.add_argument_group("spectra")
    s.add_argument(
        "--spectra",
        type=_spectra_count,
        default=0,
        metavar="M|all",
        help="download M spec-lite files (or all) for catalog stars (default 0: catalog only)",
    )
    s.add_argument(
        "--seed",
        type=int,
        help="pick the M spectra at random with this seed (default: highest S/N first)",
    )
    s.add_argument("--workers", type=positive_int, default=4, help="parallel downloads (default 4)")
    s.add_argument(
        "--rate",
        type=float,
        default=5.0,
        metavar="PER_S",
        help="at most this many requests per second (default 5, polite to the public SAS; 0 = "
        "no cap)",
    )
    s.add_argument("--retry-missing", action="store_true", help="ask again for earlier 404s")
    net = parser.add_argument_group("network")
    net.add_argument("--timeout", type=float, default=60.0, metavar="S", help="per request (60)")
    net.add_argument("--retries", type=int, default=5, metavar="N", help="retries per request (5)")
    net.add_argument(
        "--backoff",
        type=float,
        default=1.0,
        metavar="S",
        help="first retry delay, doubled each time (default 1 s)",
    )
    parser.add_argument("--ingest", action="store_true", help="then ingest DIR into the warehouse")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


class _DirLock:
    """One fetch per folder at a time (an flock the kernel drops when its holder dies)."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".fetch.lock"

    def __enter__(self) -> _DirLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            os.close(self.fd)
            raise UserError(
                f"another fetch (pid {holder or '?'}) is writing {self.path.parent}"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    user_sql = None
    if args.sql:
        try:
            user_sql = args.sql.read_text()
        except OSError as exc:
            raise UserError(f"cannot read --sql {args.sql}: {exc.strerror}") from None
        if not user_sql.strip():
            raise UserError(f"--sql {args.sql} is empty")
    out.mkdir(parents=True, exist_ok=True)
    with _DirLock(out):
        return _fetch(args, out, user_sql)


def _fetch(args: argparse.Namespace, out: Path, user_sql: str | None) -> int:
    import pandas as pd

    from startrack.etl.fetch.download import Downloader, Outcome, sweep_partials
    from startrack.etl.fetch.manifest import Manifest
    from startrack.etl.fetch.select import choose_spectra, jobs_for
    from startrack.etl.fetch.session import make_session
    from startrack.etl.fetch.skyserver import CatalogQuery, fetch_catalog

    if not args.verbose:  # each retry is logged by urllib3 as a warning: keep the bar readable
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    t0 = time.monotonic()
    manifest = Manifest.load(out)
    run_rec = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv[1:],
        "release": args.release,
        "skyserver_url": args.skyserver_url,
        "sas_url": args.sas_url,
    }
    manifest.data["runs"].append(run_rec)
    session = make_session(retries=args.retries, backoff=args.backoff, pool=args.workers + 2)

    # ---------------------------------------------------------------- catalog
    query = CatalogQuery(release=args.release, where=args.where, user_sql=user_sql)

    def page_done(n: int, rows: int) -> None:
        log.info("catalog page %d: %d rows so far", n, rows)

    try:
        cat = fetch_catalog(
            session,
            out,
            query,
            skyserver_url=args.skyserver_url,
            page_rows=args.page_rows,
            max_rows=args.stars,
            timeout=max(args.timeout, 300.0),
            fmt=args.format,
            on_page=page_done,
        )
    except UserError as exc:
        run_rec["error"] = str(exc)
        manifest.save()
        raise
    manifest.data["catalog"] = cat
    manifest.save()
    print(f"catalog: {cat['rows']:,} rows in {cat['pages']} pages -> {out / cat['file']}")

    # ---------------------------------------------------------------- spectra
    counts = dict.fromkeys(("got", "present", "missing", "failed"), 0)
    failed: list[Outcome] = []
    nbytes = 0
    asked = 0
    stopped = ""
    if args.spectra != 0:
        path = out / cat["file"]
        catalog = (
            pd.read_parquet(path)
            if cat["file"].endswith(".parquet")
            else pd.read_csv(path, dtype=str)
        )
        try:
            rows = choose_spectra(catalog, args.spectra, args.seed)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        jobs = jobs_for(rows, args.release, args.sas_url)
        asked = len(jobs)
        dest = out / SPECTRA_DIR
        dest.mkdir(exist_ok=True)
        swept = sweep_partials(dest)
        if swept:
            log.info("removed %d partial downloads left by an interrupted fetch", swept)
        todo = []
        for j in jobs:
            prev = manifest.files.get(j.name, {})
            if (
                prev.get("status") == "missing"
                and not args.retry_missing
                and not (dest / j.name).exists()
            ):
                counts["missing"] += 1
                continue
            todo.append(j)
        manifest.data["spectra"] = {
            "asked": asked,
            "seed": args.seed,
            "selection": "random (seed)" if args.seed is not None else "highest snMedian first",
            "names": [j.name for j in jobs],
        }
        downloader = Downloader(
            session,
            dest,
            rate=args.rate,
            timeout=args.timeout,
            attempts=3,
            backoff=args.backoff,
        )
        from tqdm import tqdm

        bar = tqdm(
            total=asked,
            initial=counts["missing"],
            unit="file",
            desc="spectra",
            disable=args.no_progress or not sys.stderr.isatty(),
            file=sys.stderr,
            dynamic_ncols=True,
        )
        last_save = [time.monotonic()]

        def done(o: Outcome) -> None:
            nonlocal nbytes
            counts[o.status] += 1
            if o.status == "got":
                nbytes += o.size
            if o.status == "failed":
                failed.append(o)
            manifest.record(o.job.name, o.status, o.job.url, o.reason, o.size)
            bar.update(1)
            bar.set_postfix(got=counts["got"], missing=counts["missing"], failed=counts["failed"])
            if time.monotonic() - last_save[0] > 2.0:
                manifest.save()
                last_save[0] = time.monotonic()

        try:
            downloader.run(todo, workers=args.workers, on_done=done)
        finally:
            bar.close()
            stopped = downloader.stopped_reason
            manifest.data["spectra"].update(counts)
            run_rec["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            manifest.save()

    # ---------------------------------------------------------------- summary
    secs = time.monotonic() - t0
    run_rec.update(counts, seconds=round(secs, 2), bytes=nbytes)
    manifest.save()
    if args.spectra != 0:
        rate = counts["got"] / secs if secs > 0 else 0.0
        print(
            f"spectra: asked {asked:,}: got {counts['got']:,} ({nbytes / 1e6:.1f} MB), "
            f"already here {counts['present']:,}, not on the server (404) "
            f"{counts['missing']:,}, failed {counts['failed']:,} — {secs:.1f} s, "
            f"{rate:.1f} files/s -> {out / SPECTRA_DIR}"
        )
        for o in failed[:5]:
            print(f"  failed {o.job.name}: {o.reason}")
        if len(failed) > 5:
            print(f"  ... and {len(failed) - 5} more in {manifest.path}")
    print(f"manifest: {manifest.path}")
    if counts["failed"]:
        first = failed[0]
        why = stopped or f"first: {first.job.name}: {first.reason}"
        print(
            f"startrack fetch: {counts['failed']} of {asked} spectra failed ({why}); "
            "re-run the same command to resume",
            file=sys.stderr,
        )
        return 1
    if args.ingest:
        return _ingest(args, out, cat["file"])
    return 0


def _ingest(args: argparse.Namespace, out: Path, catalog_file: str) -> int:
    from startrack.config import warehouse_dir
    from startrack.etl.ingest import ingest
    from startrack.warehouse.store import Warehouse

    wh = Warehouse(warehouse_dir(args.warehouse))
    spectra = [out / SPECTRA_DIR] if (out / SPECTRA_DIR).is_dir() else []
    report = ingest(
        wh,
        catalogs=[out / catalog_file],
        spectra=spectra,
        workers=2,
        progress=not args.no_progress and sys.stderr.isatty(),
        command=f"fetch --ingest {out}",
    )
    print(report.summary())
    for r in report.rejects[:10]:
        print(f"  rejected {r['source']} [{r['item']}]: {r['reason']}")
    print(f"warehouse: {wh.root}")
    return 1 if report.status.startswith("failed") else 0
