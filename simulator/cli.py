"""``startrack simulate``: write a realistic demo survey in SDSS file formats."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from startrack.argtypes import folder, share
from startrack.config import DEFAULT_SURVEY
from startrack.errors import UsageError
from startrack.executors import add_scheduler_argument, resolve_scheduler
from startrack.simulator.targeting import REAL_STARS_SHARE, TARGETING
from startrack.simulator.type_scale import TEMPLATE_TYPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `startrack simulate`."""
    parser.add_argument(
        "--out", type=folder, default=Path(DEFAULT_SURVEY),
        help="output folder: catalog.csv and spectra/spec-PPPP-MMMMM-FFFF.fits "
        "(spectra/ is replaced; default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--stars", type=int, default=20_000,
        help="catalog stars (real SDSS: ~800,000; default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--spectra", type=int, default=2_500,
        help="how many of them get a spectrum file (real: ~25,000; default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=42,
        help="random seed; the same seed gives identical files (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--templates", default=None, metavar="SET[,SET...]",
        help="template families: 'builtin' (default) and/or template files such as the real "
        "SDSS spEigenStar-53724.fits, comma-separated; each star is drawn from one family "
        "that has its subclass (e.g. builtin,spEigenStar-53724.fits)",
    )  # fmt: skip
    parser.add_argument(
        "--template-types", choices=TEMPLATE_TYPES, default="measured",
        help="what a template file's spectra stand for: 'measured' (default) renders each "
        "F-K subclass from the file's spectra at that subclass's MK type, placed by their "
        "g-r, H beta, G band, Mg b and 4000 A break (the SDSS file's 'F2' shows an F7, its "
        "'G5' a K2), and draws O and B stars from the built-in physics (the SDSS file's O-B9 "
        "rows are hot subdwarfs); 'names' takes the file's spectra and names as they are (the "
        "SDSS pipeline's scale)",
    )  # fmt: skip
    parser.add_argument(
        "--real-stars", type=share, default=REAL_STARS_SHARE, metavar="SHARE",
        help="share of the spectra that are real stars: observations of the shipped STELIB "
        "library (126 stars, O to M, dwarfs to supergiants; stars in MILES left out), each "
        "star about as often, labelled with its family's nearest class and its literature "
        "MK type as ELODIE type, listed with their provenance in real_stars.csv. Models "
        "trained without them type "
        "real stars far worse (README, Real stars). 0: all simulated (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--exact-templates", action="store_true",
        help="render every star from its subclass template exactly (no types between "
        "templates, luminosity classes, metallicity, rotation): an oracle's survey",
    )  # fmt: skip
    parser.add_argument(
        "--labels-from", type=Path, default=None, metavar="CSV",
        help="CSV with plate,mjd,fiberID,subClass: use its real identifiers and label "
        "frequencies (subclasses without a template are skipped)",
    )  # fmt: skip
    parser.add_argument(
        "--targeting", choices=TARGETING, default="random",
        help="which stars get a spectrum: 'random' (default) keeps the catalog's label mix "
        "(mostly A0, F5 and M), as SDSS's stellar spectra have it; 'types' spreads the spectra "
        "evenly over the MK types, as colour-selected target categories (SEGUE) do, so rare "
        "types are not a handful: a survey to measure a model on every type",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="processes rendering spectra (default: all cores, %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--with-bad-files", type=int, default=0, metavar="N",
        help="also write N corrupt spectrum files (truncated, not FITS, all-zero ivar) "
        "to demonstrate the ETL's rejects (default: none)",
    )  # fmt: skip
    add_scheduler_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point for `startrack simulate`; returns the exit code."""
    from startrack.simulator.simulate import simulate_survey  # pandas, scipy: not for --help

    try:
        summary = simulate_survey(
            out_dir=args.out,
            n_stars=args.stars,
            n_spectra=args.spectra,
            seed=args.seed,
            templates=args.templates,
            labels_from=args.labels_from,
            workers=args.workers,
            bad_files=args.with_bad_files,
            variety=not args.exact_templates,
            scheduler=resolve_scheduler(args.scheduler),
            template_types=args.template_types,
            targeting=args.targeting,
            real_stars=args.real_stars,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(
        f"Simulated {summary.n_stars:,} stars ({summary.n_spectra:,} with spectra"
        f"{f', {summary.n_bad_files} bad files' if summary.n_bad_files else ''}) "
        f"in {summary.seconds:.1f} s\n  catalog: {summary.catalog_path}\n"
        f"  spectra: {summary.spectra_dir}"
    )
    return 0
