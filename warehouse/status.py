"""``startrack status``: what the warehouse holds, at a glance."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def describe(snapshot) -> dict:
    """Row counts per table plus the snapshot's identity."""
    con = snapshot.connect()
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()
    m = snapshot.manifest
    return {
        "snapshot": m["id"],
        "created_at": m["created_at"],
        "command": m["command"],
        "database": str(snapshot.root / "startrack.duckdb"),
        "tables": counts,
    }


def run(args: argparse.Namespace) -> int:
    import json

    from startrack.config import warehouse_dir
    from startrack.warehouse.store import Warehouse

    info = describe(Warehouse(warehouse_dir(args.warehouse)).require_current())
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"snapshot {info['snapshot']} ({info['created_at']}, by `{info['command']}`)")
    print(f"database {info['database']}")
    for name, n in info["tables"].items():
        print(f"  {name:<16} {n:>12,}")
    return 0
