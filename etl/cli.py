"""``startrack ingest``: catalogs and spectra into a new warehouse snapshot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from startrack.executors import add_scheduler_argument, resolve_scheduler


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalog",
        "-c",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="catalog export (CSV or Parquet) from CasJobs/SkyServer; repeat for several files",
    )
    parser.add_argument(
        "--spectra",
        "-s",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="a spec-PLATE-MJD-FIBER.fits[.gz] file or a folder searched recursively; repeatable",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        help="more inputs: .csv/.parquet files are catalogs, FITS files and folders are spectra",
    )
    parser.add_argument("--workers", type=int, default=2, help="reader processes (default 2)")
    add_scheduler_argument(parser)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="publish nothing and exit 1 if any input is rejected (default: keep going)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another writer to finish (default: fail at once)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--show-rejects", type=int, default=10, metavar="N", help="print up to N rejects (10)"
    )


def split_inputs(inputs: list[Path]) -> tuple[list[Path], list[Path]]:
    """Positional inputs: tables are catalogs, everything else is spectra."""
    catalogs = [
        p
        for p in inputs
        if p.suffix.lower() in (".csv", ".parquet", ".pq", ".gz")
        and not p.name.lower().endswith(".fits.gz")
    ]
    spectra = [p for p in inputs if p not in catalogs]
    for folder in (p for p in spectra if p.is_dir()):  # a `startrack fetch` folder
        catalogs += [
            folder / n for n in ("catalog.parquet", "catalog.csv") if (folder / n).exists()
        ]
    return catalogs, spectra


def run(args: argparse.Namespace) -> int:
    from startrack.config import warehouse_dir
    from startrack.errors import NothingIngested
    from startrack.etl.ingest import ingest
    from startrack.warehouse.store import Warehouse

    cats, specs = split_inputs(args.inputs)
    catalogs, spectra = [*args.catalog, *cats], [*args.spectra, *specs]
    wh = Warehouse(warehouse_dir(args.warehouse))
    report = ingest(
        wh,
        catalogs=catalogs,
        spectra=spectra,
        workers=args.workers,
        strict=args.strict,
        wait=args.wait,
        progress=not args.no_progress and sys.stderr.isatty(),
        command=" ".join(["ingest", *map(str, catalogs), *map(str, spectra)]),
        scheduler=resolve_scheduler(args.scheduler),
    )
    print(report.summary())
    for r in report.rejects[: args.show_rejects]:
        print(f"  rejected {r['source']} [{r['item']}]: {r['reason']}")
    if len(report.rejects) > args.show_rejects:
        print(
            f"  ... and {len(report.rejects) - args.show_rejects} more: "
            'startrack sql "select * from rejects"'
        )
    print(f"warehouse: {wh.root}")
    if report.status.startswith("failed"):
        raise NothingIngested(report.status.removeprefix("failed: "))
    return 0
