"""``startrack train``: train the fusion model and the baselines offline; register the model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from startrack.argtypes import count, positive_float, positive_int

if TYPE_CHECKING:  # torch is imported only when a command trains
    from startrack.ml.train_config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from startrack.ml.train_config import TrainConfig

    d = TrainConfig()
    parser.add_argument(
        "--epochs", type=positive_int, default=d.epochs, help=f"max epochs ({d.epochs})"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=d.batch_size,
        help=f"spectra per batch ({d.batch_size})",
    )
    parser.add_argument("--lr", type=positive_float, default=d.lr, help=f"learning rate ({d.lr})")
    parser.add_argument(
        "--patience",
        type=positive_int,
        default=d.patience,
        help=f"early stopping: epochs without a better validation loss, counted once the "
        f"learning rate anneals (second half of the run) ({d.patience})",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed ({d.seed})")
    parser.add_argument(
        "--dense-hidden", type=positive_int, default=d.dense_hidden, help="dense width"
    )
    parser.add_argument(
        "--lstm-hidden", type=positive_int, default=d.lstm_hidden, help="LSTM hidden size"
    )
    parser.add_argument(
        "--d-model", type=positive_int, default=d.d_model, help="fusion token width"
    )
    parser.add_argument(
        "--line-indices",
        type=count,
        default=None,
        metavar="N",
        help="learned line indices in the fusion (a linear projection of the line spectrum), "
        "e.g. 32; 0 = none, the default: on a survey from a few templates they memorize "
        "their line depths (README, The model)",
    )
    parser.add_argument(
        "--label-types-only",
        action="store_true",
        help="target every star at its subclass's type; by default a star with an ELODIE "
        "type (ELODIE_SPTYPE) is targeted at its own type between the subclasses, so the "
        "continuous type learns where between them a star sits (README, The model)",
    )
    parser.add_argument(
        "--balance",
        choices=("types", "labels"),
        default="types",
        help="draw spectrum stars balanced over their own types (3-subtype bins; the "
        "default) or over their labels, as before stop 23: a survey with SDSS's label "
        "frequencies has 30 A0 or M stars for every G5-K0 one (README, The model)",
    )
    parser.add_argument(
        "--min-class-count",
        type=positive_int,
        default=d.min_class_count,
        help=f"labels with fewer training stars are not learned ({d.min_class_count})",
    )
    parser.add_argument(
        "--time-budget",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop after the epoch that crosses this many seconds",
    )
    parser.add_argument(
        "--min-epochs",
        type=count,
        default=0,
        metavar="N",
        help="train at least N epochs even past --time-budget (a slow machine takes longer "
        "instead of giving an under-trained model)",
    )
    parser.add_argument("--max-stars", type=positive_int, default=None, help="cap on stars loaded")
    parser.add_argument("--max-spectra", type=count, default=60_000, help="cap on spectra loaded")
    parser.add_argument(
        "--templates",
        type=Path,
        default=None,
        help="template file for the template-fit baseline (default: built-in templates)",
    )
    parser.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    parser.add_argument("--wait", type=float, default=60.0, help="wait for another writer (60 s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the command line asks for."""
    from startrack.ml.train_config import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        seed=args.seed,
        dense_hidden=args.dense_hidden,
        lstm_hidden=args.lstm_hidden,
        d_model=args.d_model,
        min_class_count=args.min_class_count,
        time_budget_s=args.time_budget,
        min_epochs=max(0, args.min_epochs),
        model_options={} if args.line_indices is None else {"line_indices": args.line_indices},
        own_types=not args.label_types_only,
        sample_type_bin=TrainConfig().sample_type_bin if args.balance == "types" else 0.0,
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from startrack.config import warehouse_dir
    from startrack.ml.publish import train_and_publish
    from startrack.warehouse.store import Warehouse

    torch.set_num_threads(max(1, torch.get_num_threads()))
    config = train_config(args)
    t0 = time.perf_counter()
    meta = train_and_publish(
        Warehouse(warehouse_dir(args.warehouse)),
        config,
        max_stars=args.max_stars,
        max_spectra=args.max_spectra,
        progress=not args.no_progress and sys.stderr.isatty(),
        wait=args.wait,
        baselines=not args.no_baselines,
        templates=args.templates,
    )
    val = meta["metrics"].get("validation", {})
    print(
        f"model {meta['version']}: {len(meta['labels'])} classes, validation accuracy "
        + ", ".join(
            f"{k.removesuffix('_accuracy')} {v:.3f}"
            for k, v in val.items()
            if k.endswith("_accuracy") and v is not None
        )
        + f"; {time.perf_counter() - t0:.0f} s. It is now the current model: run `startrack score`."
    )
    return 0
