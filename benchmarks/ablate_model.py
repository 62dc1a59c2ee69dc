"""Architecture ablation: train model variants on one survey, compare them on the same split.

Each variant is a set of ``ModelConfig`` options (e.g. ``no_indices='{"line_indices": 0}'``),
plus ``AugmentConfig`` fields under an "augment" key (``'{"augment": {"p_lines": 0.5}}'``);
every variant trains with the same seed and settings on the warehouse that
``benchmarks/bench_ml.py`` simulated from the SDSS templates, then its fusion and lstm heads are
evaluated on the held-out test stars with a spectrum -- accuracy and within one subtype, overall,
at S/N >= 10 and by S/N bin -- and, with --generalization, on a survey simulated from the
built-in templates (different spectra, same labels). One run on 2 cores: ~10-15 min per variant.

Usage:
    python benchmarks/ablate_model.py --warehouse bench-ml/sdss-60000-6000-7/warehouse \\
        --generalization bench-ml/builtin-3000-1500-8/warehouse \\
        --variant no_indices='{"line_indices": 0}' --variant default='{}' --out ablate.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np
from bench_ml import summarize
from machine import describe_machine

log = logging.getLogger("ablate_model")
HEADS = ("fusion", "lstm")


def _variant(text: str) -> tuple[str, dict]:
    name, _, options = text.partition("=")
    try:
        parsed = json.loads(options or "{}")
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: options are not JSON ({exc})") from None
    if not name or not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME='{{JSON object}}'")
    return name, parsed


def evaluate_heads(model, meta: dict, data, rows: np.ndarray) -> dict:
    """Per head: accuracy / within one overall, at S/N >= 10 and by S/N bin; misses at S/N>=10."""
    from startrack.labels import within_one_array
    from startrack.ml.inference import predict_arrays
    from startrack.ml.metrics import evaluate
    from startrack.ml.train import _subset

    stars = data.stars.iloc[rows].reset_index(drop=True)
    preds = predict_arrays(model, meta, stars, _subset(data.spectra(), rows))
    truth = stars["label"].to_numpy(str)
    snr = stars["snr"].to_numpy(float)
    out = {}
    for head in HEADS:
        label = preds[head].label.astype(str)
        ev = evaluate(truth, label, snr=snr)
        row = summarize(ev.to_tables("x", head, "s")["metrics"])["s"][head]
        hi = (snr >= 10) & ~within_one_array(truth, label)
        pairs = zip(truth[hi], label[hi], strict=True)
        row["misses_snr_ge_10"] = dict(Counter(f"{a}>{b}" for a, b in pairs))
        out[head] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warehouse", type=Path, required=True, help="survey to train and test on")
    ap.add_argument("--generalization", type=Path, help="a survey from other templates")
    ap.add_argument(
        "--variant",
        type=_variant,
        action="append",
        required=True,
        help="NAME='{ModelConfig options as JSON}' (repeatable)",
    )
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="JSON results")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from startrack.ml.dataset import load_training_data
    from startrack.ml.train import train_model
    from startrack.ml.train_config import TrainConfig
    from startrack.warehouse.store import Warehouse

    data = load_training_data(Warehouse(args.warehouse).current())
    other = None
    if args.generalization:
        other = load_training_data(Warehouse(args.generalization).current())
    results = {"machine": describe_machine(), "warehouse": str(args.warehouse), "variants": {}}
    for name, options in args.variant:
        model_options = {k: v for k, v in options.items() if k != "augment"}
        cfg = TrainConfig(
            epochs=args.epochs, seed=args.seed, threads=args.threads, model_options=model_options
        )
        for key, value in options.get("augment", {}).items():
            if not hasattr(cfg.augment, key):
                ap.error(f"variant {name}: AugmentConfig has no field {key!r}")
            setattr(cfg.augment, key, value)
        t0 = time.perf_counter()
        res = train_model(data, cfg, progress=False)
        known = data.stars["label"].isin(res.meta["labels"]).to_numpy()
        test = np.flatnonzero((data.split == "test") & (data.spec_row >= 0) & known)
        entry = {
            "options": options,
            "train_s": round(time.perf_counter() - t0),
            "epochs": res.meta["metrics"]["epochs_run"],
            "test_spectra": evaluate_heads(res.model, res.meta, data, test),
        }
        if other is not None:
            known = other.stars["label"].isin(res.meta["labels"]).to_numpy()
            rows = np.flatnonzero((other.spec_row >= 0) & known)
            entry["generalization"] = evaluate_heads(res.model, res.meta, other, rows)
        results["variants"][name] = entry
        args.out.write_text(json.dumps(results, indent=1))  # after each variant: nothing lost
        for head, row in entry["test_spectra"].items():
            log.info("%s %s: %s", name, head, {k: row[k] for k in ("accuracy", "within_one")})
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
