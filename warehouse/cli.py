"""``startrack sql``: read-only SQL over the published warehouse snapshot."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help='one SELECT statement, e.g. "select count(*) from stars"')
    parser.add_argument(
        "--format",
        "-f",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default: table)",
    )
    parser.add_argument(
        "--limit", type=int, default=10_000, help="at most this many rows (default 10000; 0 = all)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="stop the query after SECONDS (default 60)"
    )
    parser.add_argument(
        "--memory-limit",
        default="4GB",
        metavar="SIZE",
        help="stop a query that needs more memory than SIZE (default 4GB; e.g. 500MB)",
    )


def run(args: argparse.Namespace) -> int:
    from startrack.config import warehouse_dir
    from startrack.warehouse.sql import run_query
    from startrack.warehouse.store import Warehouse

    snap = Warehouse(warehouse_dir(args.warehouse)).require_current()
    result = run_query(
        snap,
        args.query,
        limit=args.limit or None,
        timeout_s=args.timeout,
        memory_limit=args.memory_limit,
    )
    frame = result.frame
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", default_handler=str))
        sys.stdout.write("\n")
    else:
        with_all = {"display.max_rows": None, "display.max_columns": None, "display.width": 200}
        import pandas as pd

        with pd.option_context(*[x for kv in with_all.items() for x in kv]):
            print(frame.to_string(index=False) if len(frame.columns) else "(no columns)")
    if result.truncated:
        print(f"(showing the first {args.limit} rows; --limit N for more)", file=sys.stderr)
    return 0
