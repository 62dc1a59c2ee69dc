"""The ``startrack`` command: one entry point, one subcommand per job.

Subcommand modules are listed in ``COMMANDS``; each provides ``add_arguments(parser)`` and
``run(args) -> int`` and keeps its heavy imports inside ``run``, so ``--help`` stays quick and
ingesting a file does not load torch or the dashboard.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from startrack import __version__
from startrack.config import ENV_WAREHOUSE
from startrack.errors import EXIT_CODES, UserError, storage_error

#: name -> (module, one-line help). Modules expose add_arguments(parser) and run(args).
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": (
        "startrack.simulator.cli",
        "write a realistic demo survey in SDSS file formats",
    ),
    "fetch": ("startrack.etl.fetch.cli", "download the SDSS catalog and spectra, resumably"),
    "ingest": ("startrack.etl.cli", "ingest SDSS catalog and spectrum files into the warehouse"),
    "sql": ("startrack.warehouse.cli", "run a read-only SQL query against the warehouse"),
    "status": ("startrack.warehouse.status", "show what the warehouse holds"),
    "train": ("startrack.ml.train_cli", "train the model + baselines; make it the current model"),
    "score": ("startrack.ml.score_cli", "score stars with the current model (once or --every 6h)"),
    "serve": ("startrack.dashboard.serve", "serve the dashboard (read-only)"),
    "demo": ("startrack.demo", "simulate + ingest + train + score, then serve the dashboard"),
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--warehouse",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help=f"warehouse directory (default: ${ENV_WAREHOUSE}, else ./data/warehouse)",
    )
    common.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings only"
    )
    parser = argparse.ArgumentParser(
        prog="startrack",
        description="StarTrack: classify SDSS stars — ETL, warehouse, model, dashboard.",
        parents=[common],
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"startrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        sp.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(sp)
    return parser


def exit_codes_epilog() -> str:
    """The documented exit codes (startrack.errors.EXIT_CODES), for ``startrack --help``."""
    lines = [f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items()]
    return "exit codes:\n" + "\n".join(lines)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 0 else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("warehouse", None), ("verbose", 0), ("quiet", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    setup_logging(args.verbose, args.quiet)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; the published warehouse is unchanged", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"startrack {args.command}: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except OSError as exc:  # a full disk or a read-only warehouse raised below any writer
        error = storage_error(exc, f"startrack {args.command}")
        if error is None:
            raise
        print(f"startrack {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
