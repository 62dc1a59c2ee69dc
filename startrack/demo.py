"""``startrack demo``: the whole pipeline on the embedded demo survey, one command.

simulate (skipped when the survey folder already holds one made with the same settings)
-> ingest -> train -> score -> serve. Every step is the same code path a user runs on real data.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from startrack.argtypes import count, folder, port, positive_float, positive_int
from startrack.config import DEFAULT_SURVEY
from startrack.errors import NothingIngested
from startrack.simulator.targeting import TARGETING

log = logging.getLogger(__name__)

STEPS = ("simulate", "ingest", "train", "score", "serve")


#: Epochs the demo model trains at least, whatever the budget: fewer make wild misses, and
#: behind dust a 6-epoch model typed 0.62-0.70 of the other template family within 2.5
#: subtypes where a 15-epoch one typed 0.69-0.71 (bench_transfer, README). A busy machine
#: takes longer rather than stop short of this.
DEMO_MIN_EPOCHS = 10

#: Which demo stars get a spectrum. With SDSS's own label mix the demo's 4,000 spectra hold 8
#: O, 7 B6 and 18 B9 stars (240, 288 and 118 spread over the types): trained on so few, the
#: demo's model answered OB for three O3-O5 stars in four. Spread over the types
#: (simulator/targeting.py), it types O3-O5 stars 0.65-0.73 within 2.5 subtypes (was 0.16)
#: and every survey that weighs the types alike 0.03-0.05 better; SDSS's label mix of A0,
#: F5 and M stars 0.02 worse (README, Generalization, stop 33).
DEMO_TARGETING = "types"

#: The demo survey's spectra, a fifth of them real stars (``REAL_STARS_SHARE``). Real stars
#: help beside enough simulated ones, not instead of them: with 4,000 spectra (3,200
#: simulated) the demo's model typed MILES real stars 0.55 within 2.5 subtypes, with 5,000
#: (4,000 simulated) 0.61-0.66 (README, Benchmarks, stop 40).
DEMO_SPECTRA = 5_000

#: Training seconds: 5,000 spectra train at about 17 s an epoch on an idle 2-core machine,
#: so 260 s is 14-15 epochs; in 150 s the demo stopped at its 10-epoch floor and typed real
#: stars 0.61 within 2.5 where 14 epochs typed 0.65 (stop 40).
DEMO_TRAIN_BUDGET_S = 260.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--survey", type=folder, default=Path(DEFAULT_SURVEY), help="where the demo survey files go"
    )
    parser.add_argument("--stars", type=positive_int, default=20_000, help="catalog stars (20000)")
    parser.add_argument(
        "--spectra",
        type=count,
        default=DEMO_SPECTRA,
        help="stars with spectra (5000: 4000 simulated and, by default, 1000 real stars)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (42)")
    parser.add_argument(
        "--targeting",
        choices=TARGETING,
        default=DEMO_TARGETING,
        help="which stars get the spectra: 'types' (default) spreads them evenly over the MK "
        "types, as SEGUE's colour-selected targets do; 'random' keeps SDSS's label mix, "
        "where 4000 spectra hold about 8 O stars",
    )
    parser.add_argument(
        "--templates",
        default=None,
        metavar="SET[,SET...]",
        help="template families for the survey: 'builtin' (default) and/or SDSS template files, "
        "comma-separated (see startrack simulate --help)",
    )
    parser.add_argument("--workers", type=positive_int, default=2, help="processes (2)")
    parser.add_argument(
        "--until",
        choices=STEPS,
        default="serve",
        help="stop after this step (default: serve, which runs until Ctrl-C)",
    )
    parser.add_argument(
        "--train-budget",
        type=positive_float,
        default=DEMO_TRAIN_BUDGET_S,
        metavar="SECONDS",
        help=f"training time budget in seconds (default {DEMO_TRAIN_BUDGET_S:g})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="dashboard host (127.0.0.1)")
    parser.add_argument("--port", type=port, default=8050, help="dashboard port (8050)")


def run(args: argparse.Namespace) -> int:
    from startrack.config import warehouse_dir
    from startrack.etl.ingest import ingest
    from startrack.simulator.simulate import SIMULATOR_VERSION, simulate_survey
    from startrack.warehouse.store import Warehouse

    wh = Warehouse(warehouse_dir(args.warehouse))
    wanted = {
        "stars": args.stars,
        "spectra": args.spectra,
        "seed": args.seed,
        "templates": str(args.templates) if args.templates else None,
        "targeting": args.targeting,
        "simulator": SIMULATOR_VERSION,  # a survey from an older simulator is made anew
    }
    stamp = args.survey / "demo-settings.json"
    t0 = time.perf_counter()
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        log.info("demo survey in %s already made with these settings; reusing it", args.survey)
    else:
        summary = simulate_survey(
            args.survey,
            n_stars=args.stars,
            n_spectra=args.spectra,
            seed=args.seed,
            templates=args.templates,
            labels_from=None,
            workers=args.workers,
            targeting=args.targeting,
        )
        stamp.write_text(json.dumps(wanted))
        log.info("simulated %s", summary)
    if args.until == "simulate":
        return 0
    report = ingest(
        wh,
        catalogs=[args.survey / "catalog.csv"],
        spectra=[args.survey / "spectra"],
        workers=args.workers,
        command="demo: ingest",
        progress=False,
        wait=60.0,
    )
    print(report.summary())
    if report.status.startswith("failed"):
        raise NothingIngested(report.status.removeprefix("failed: "))
    if args.until == "ingest":
        return _done(wh, t0)
    from startrack.ml.publish import train_and_publish
    from startrack.ml.score import score_warehouse
    from startrack.ml.train_config import TrainConfig

    meta = train_and_publish(
        wh,
        TrainConfig(seed=args.seed, time_budget_s=args.train_budget, min_epochs=DEMO_MIN_EPOCHS),
        progress=False,
        wait=60.0,
        templates=_template_file(args.templates),
    )
    print(f"trained model {meta['version']} ({len(meta['labels'])} classes)")
    if args.until == "train":
        return _done(wh, t0)
    run = score_warehouse(wh, progress=False, wait=60.0)
    print(f"scored {run['stars_scored']:,} stars ({run['spectra_scored']:,} with spectra)")
    if args.until == "score":
        return _done(wh, t0)
    _done(wh, t0)
    from startrack.dashboard.serve import create_app

    print(f"dashboard: http://{args.host}:{args.port}/  (Ctrl-C stops it)")
    create_app(wh.root).run(host=args.host, port=args.port, debug=False)
    return 0


def _template_file(templates: str | None) -> Path | None:
    """The template file the template-fit baseline uses: the survey's file, if it has one."""
    files = [t for t in str(templates or "").split(",") if t.strip() not in ("", "builtin")]
    return Path(files[0]) if files else None


def _done(wh, t0: float) -> int:
    print(f"demo ready in {time.perf_counter() - t0:.0f} s; warehouse: {wh.root}")
    print('try: startrack sql "select label, count(*) n from stars group by 1 order by 2 desc"')
    return 0
