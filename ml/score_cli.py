"""``startrack score``: batch-score stars with the current model, once or on a schedule."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time

from startrack.executors import add_scheduler_argument, resolve_scheduler

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true", help="rescore every star")
    parser.add_argument(
        "--every",
        type=parse_interval,
        default=None,
        metavar="INTERVAL",
        help="repeat in the foreground every INTERVAL (e.g. 30m, 6h, 1d) until stopped",
    )
    parser.add_argument("--wait", type=float, default=300.0, help="wait for another writer (300 s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_scheduler_argument(parser)


def parse_interval(text: str) -> float:
    """'90s', '30m', '6h', '1d' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m or float(m[1]) <= 0:
        raise argparse.ArgumentTypeError(f"not an interval: {text!r} (try 30m, 6h or 1d)")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]


def run(args: argparse.Namespace) -> int:
    from startrack.config import warehouse_dir
    from startrack.ml.score import score_warehouse
    from startrack.warehouse.store import Warehouse, WarehouseBusy

    wh = Warehouse(warehouse_dir(args.warehouse))
    progress = not args.no_progress and sys.stderr.isatty()
    while True:
        try:
            run = score_warehouse(
                wh,
                full=args.full,
                progress=progress,
                wait=args.wait,
                scheduler=resolve_scheduler(args.scheduler),
            )
            print(
                f"scoring {run['run_id']} ({run['mode']}): scored {run['stars_scored']:,} of "
                f"{run['stars_total']:,} stars ({run['spectra_scored']:,} with spectra) in "
                f"{run['seconds']:.1f} s with model {run['model_version']}"
            )
        except WarehouseBusy as exc:
            if args.every is None:
                raise
            log.warning("skipping this round: %s", exc)
        if args.every is None:
            return 0
        log.info("next scoring run in %.0f s (Ctrl-C stops)", args.every)
        time.sleep(args.every)
