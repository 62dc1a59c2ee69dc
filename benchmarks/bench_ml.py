"""ML benchmark (issue 3): accuracy vs baselines, generalization, scoring speed, latency.

1. Accuracy: simulate (into --workdir, reused when present) a survey from the real SDSS
   templates with the real SDSS label frequencies, ingest it, ``train_and_publish`` (with the
   baselines: HistGradientBoosting on photometry, PCA + logistic regression on spectra, and the
   template fit with the SDSS templates, i.e. the SDSS pipeline's method, near-oracle on data
   made from those templates), ``score_warehouse``, then read the ``metrics`` table: fusion,
   dense, lstm and each baseline on ``test`` and ``test_spectra`` -- accuracy, macro-F1, within
   one subtype, and accuracy / within-one by S/N bin. The template fit with the *built-in*
   templates (a template set that differs from the data) is reported too.
2. Generalization: the model trained on the SDSS-template survey scores a small survey
   simulated from the built-in templates (different spectra, same label vocabulary).
3. Speed: fusion-model scoring throughput (spectra/s) vs a BiLSTM over raw pixels without the
   conv front end; photometry-only stars/s vs a per-star Python loop; single-star on-demand
   latency p50/p95 through ``Predictor.predict_star`` vs reloading the model for every call.

Every figure is printed with os.getloadavg() at the time (the machine is shared).

Usage: python benchmarks/bench_ml.py [--stars 60000] [--spectra 6000] [--workdir bench-ml]
       [--time-budget 300] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe_machine

from startrack.vocabulary import BASELINES

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "sdss"
TEMPLATES = SHARED / "templates" / "spEigenStar-53724.fits"
LABELS = SHARED / "catalog" / "star_subclass_labels.csv"
HEAD_BRANCHES = ("fusion", "dense", "lstm")  #: table order of startrack.vocabulary.BRANCHES
PREVIOUS_FRONT_END = [[32, 7, 2], [48, 5, 2], [64, 5, 2], [64, 5, 2], [64, 3, 2]]
BASELINE_BRANCHES = BASELINES

log = logging.getLogger("bench_ml")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----------------------------------------------------------------------------- data
def survey_warehouse(
    workdir: Path,
    name: str,
    n_stars: int,
    n_spectra: int,
    seed: int,
    templates: Path | str | None,
    variety: bool = True,
    targeting: str = "random",
    real_stars: float | None = None,
):
    """Simulate + ingest once; a later run with the same sizes reuses the warehouse.
    ``real_stars``: the share of real library stars (None: the simulator's default)."""
    from startrack.etl.ingest import ingest
    from startrack.simulator.simulate import SIMULATOR_VERSION, simulate_survey
    from startrack.simulator.targeting import REAL_STARS_SHARE
    from startrack.warehouse.store import Warehouse

    real_stars = REAL_STARS_SHARE if real_stars is None else real_stars
    share = "" if real_stars == REAL_STARS_SHARE else f"-real{real_stars:g}"
    tag = f"{name}-{n_stars}-{n_spectra}-{seed}-v{SIMULATOR_VERSION}{share}"
    root = workdir / tag
    wh = Warehouse(root / "warehouse")
    if (root / "READY").exists() and wh.current() is not None:
        return wh, {"reused": True}
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    simulate_survey(
        root / "survey",
        n_stars=n_stars,
        n_spectra=n_spectra,
        seed=seed,
        templates=templates,
        labels_from=LABELS if templates is not None else None,
        workers=os.cpu_count() or 2,
        variety=variety,
        targeting=targeting,
        real_stars=real_stars,
    )
    t1 = time.perf_counter()
    ingest(
        wh,
        [root / "survey" / "catalog.csv"],
        [root / "survey" / "spectra"],
        workers=os.cpu_count() or 2,
        progress=False,
    )
    t2 = time.perf_counter()
    shutil.rmtree(root / "survey" / "spectra")  # the warehouse holds them now
    (root / "READY").write_text("ok\n")
    return wh, {"simulate_s": round(t1 - t0, 1), "ingest_s": round(t2 - t1, 1), "load": load()}


# ----------------------------------------------------------------------------- 1. accuracy
def metrics_table(warehouse, version: str) -> pd.DataFrame:
    con = warehouse.current().connect()
    try:
        return con.execute(
            "SELECT branch, split, metric, snr_bin, value, n FROM metrics WHERE model_version = ?",
            [version],
        ).df()
    finally:
        con.close()


def summarize(metrics: pd.DataFrame) -> dict:
    """{split: {branch: {accuracy, macro_f1, within_one, n, by_snr: {bin: {acc, w1, n}}}}}."""
    out: dict = {}
    for (split, branch), g in metrics.groupby(["split", "branch"]):
        overall = g[g["snr_bin"].isna()]
        row = {m: float(v) for m, v in zip(overall["metric"], overall["value"], strict=True)}
        row = {
            k: round(v, 4)
            for k, v in row.items()
            if k in ("accuracy", "macro_f1", "within_one", "ece")
        }
        n = overall.loc[overall["metric"] == "accuracy", "n"]
        row["n"] = int(n.iloc[0]) if len(n) else None
        by = {}
        for b, gb in g[g["snr_bin"].notna()].groupby("snr_bin"):
            vals = dict(zip(gb["metric"], gb["value"], strict=True))
            nn = gb.loc[gb["metric"] == "accuracy", "n"]
            by[b] = {
                "accuracy": round(float(vals.get("accuracy", np.nan)), 3),
                "within_one": round(float(vals.get("within_one", np.nan)), 3),
                "n": int(nn.iloc[0]) if len(nn) else None,
            }
        row["by_snr"] = by
        hi = [v for b, v in by.items() if _bin_key(b) >= 10 and v["n"]]
        if hi:
            n_hi = sum(v["n"] for v in hi)
            row["snr_ge_10"] = {
                m: round(sum(v[m] * v["n"] for v in hi) / n_hi, 3)
                for m in ("accuracy", "within_one")
            } | {"n": n_hi}
        out.setdefault(split, {})[branch] = row
    return out


def builtin_template_fit(data, version: str) -> dict:
    """Template fit with the built-in templates (they differ from the data) on test spectra."""
    from startrack.ml.metrics import evaluate
    from startrack.ml.template_fit import TemplateFitter
    from startrack.simulator.templates import load_templates

    test = np.flatnonzero((data.split == "test") & (data.spec_row >= 0))
    rows = data.spec_row[test]
    t0 = time.perf_counter()
    fit = TemplateFitter(load_templates(None)).fit(data.flux[rows], data.ivar[rows])
    seconds = time.perf_counter() - t0
    pred = np.array([lab if lab is not None else "unfit" for lab in fit.labels], dtype=object)
    ev = evaluate(
        data.stars["label"].to_numpy(object)[test],
        pred,
        None,
        None,
        data.stars["snr"].to_numpy(float)[test],
    )
    tables = ev.to_tables(version, "template_builtin", "test_spectra")
    summary = summarize(tables["metrics"])["test_spectra"]["template_builtin"]
    summary["seconds"] = round(seconds, 1)
    return summary


# ----------------------------------------------------------------------------- 2. generalization
def generalization(model_dir: Path, warehouse) -> dict:
    """Score a built-in-template survey with the SDSS-template model: accuracy by S/N."""
    from startrack.ml.artifact import load_artifact
    from startrack.ml.dataset import load_training_data
    from startrack.ml.inference import predict_arrays
    from startrack.ml.metrics import evaluate

    model, meta = load_artifact(model_dir)
    data = load_training_data(warehouse.current())
    has = data.spec_row >= 0
    known = data.stars["label"].isin(meta["labels"]).to_numpy()
    preds = predict_arrays(model, meta, data.stars, data.spectra())
    truth = data.stars["label"].to_numpy(object)
    snr = data.stars["snr"].to_numpy(float)
    out = {
        "stars": len(truth),
        "spectra": int(has.sum()),
        "label_in_model_vocabulary": round(float(known.mean()), 3),
    }
    for branch in HEAD_BRANCHES:
        for name, rows in (("spectra", has & known), ("all", known)):
            if branch == "lstm" and name == "all":
                continue
            ev = evaluate(truth[rows], preds[branch].label[rows].astype(str), snr=snr[rows])
            summary = summarize(ev.to_tables("x", branch, name)["metrics"])[name][branch]
            out[f"{branch}_{name}"] = summary
    return out


# ----------------------------------------------------------------------------- 3. speed
def _timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def speed(model_dir: Path, data, n_spectra: int, n_phot: int, n_single: int) -> dict:
    import torch

    from startrack.ml.artifact import load_artifact
    from startrack.ml.inference import Predictor, Spectra, predict_arrays, predict_batch
    from startrack.ml.model import ModelConfig, StarClassifier

    torch.set_num_threads(os.cpu_count() or 2)
    model, meta = load_artifact(model_dir)
    out: dict = {}
    spec_idx = np.flatnonzero(data.spec_row >= 0)
    take = np.resize(spec_idx, n_spectra)
    stars = data.stars.iloc[take].reset_index(drop=True)
    spectra = Spectra(data.flux, data.ivar, data.mask, data.norm, data.spec_row[take])
    predict_arrays(model, meta, stars.iloc[:32], _sub(spectra, 32))  # warm-up
    s = _timed(lambda: predict_arrays(model, meta, stars, spectra), repeat=2)
    out["fusion_spectra_per_s"] = {"value": round(n_spectra / s, 1), "load": load()}

    # the previous front end (five conv layers, the first at stride 2 with 32 channels)
    cfg = ModelConfig.from_dict({**model.cfg.to_dict(), "conv_layers": PREVIOUS_FRONT_END})
    previous = StarClassifier(cfg).eval()
    predict_arrays(previous, meta, stars.iloc[:32], _sub(spectra, 32))
    s = _timed(lambda: predict_arrays(previous, meta, stars, spectra), repeat=2)
    out["previous_front_end_spectra_per_s"] = {"value": round(n_spectra / s, 1), "load": load()}

    # naive: the same network without the conv front end, BiLSTM over all 4,671 pixels
    cfg = ModelConfig.from_dict({**model.cfg.to_dict(), "conv_layers": []})
    naive = StarClassifier(cfg).eval()
    n_naive = 32
    s = _timed(lambda: predict_arrays(naive, meta, stars.iloc[:n_naive], _sub(spectra, n_naive)), 1)
    out["naive_raw_pixel_bilstm_spectra_per_s"] = {"value": round(n_naive / s, 1), "load": load()}

    phot_idx = np.flatnonzero(data.spec_row < 0)
    phot = data.stars.iloc[np.resize(phot_idx, n_phot)].reset_index(drop=True)
    predict_arrays(model, meta, phot.iloc[:1000])
    s = _timed(lambda: predict_arrays(model, meta, phot), repeat=2)
    out["photometry_stars_per_s"] = {"value": round(n_phot / s, 0), "load": load()}
    n_loop = 300
    t0 = time.perf_counter()
    for i in range(n_loop):
        predict_batch(model, meta, phot.iloc[i : i + 1])
    s = time.perf_counter() - t0
    out["naive_per_star_loop_stars_per_s"] = {"value": round(n_loop / s, 1), "load": load()}

    predictor = Predictor.from_directory(model_dir)
    records = [_record(data, int(i)) for i in np.resize(spec_idx, n_single)]
    predictor.predict_star(*records[0])  # loads the model once
    lat = []
    for star, spec in records:
        t0 = time.perf_counter()
        predictor.predict_star(star, spec)
        lat.append((time.perf_counter() - t0) * 1e3)
    out["single_star_ms"] = {
        "p50": round(float(np.percentile(lat, 50)), 2),
        "p95": round(float(np.percentile(lat, 95)), 2),
        "n": len(lat),
        "load": load(),
    }
    lat = []
    for star, spec in records[:10]:
        t0 = time.perf_counter()
        Predictor.from_directory(model_dir).predict_star(star, spec)  # reload every call
        lat.append((time.perf_counter() - t0) * 1e3)
    out["naive_reload_per_call_ms"] = {
        "p50": round(float(np.percentile(lat, 50)), 2),
        "p95": round(float(np.percentile(lat, 95)), 2),
        "n": len(lat),
        "load": load(),
    }
    return out


def _sub(spectra, n: int):
    from startrack.ml.inference import Spectra

    return Spectra(spectra.flux, spectra.ivar, spectra.mask, spectra.norm, spectra.row[:n])


def _record(data, i: int) -> tuple[dict, dict]:
    star = data.stars.iloc[i].to_dict()
    r = data.spec_row[i]
    spec = {
        "flux": data.flux[r],
        "ivar": data.ivar[r],
        "mask": data.mask[r],
        "norm": float(data.norm[r]),
    }
    return star, spec


# ----------------------------------------------------------------------------- report
def markdown(result: dict) -> str:
    lines = [f"# ML benchmark ({result['machine']})", ""]
    acc = result["accuracy"]
    lines += [
        f"Survey: {acc['survey']}; training {acc['train_seconds']} s "
        f"(load {acc['train_load']}); baselines + publish {acc['publish_seconds']} s; "
        f"scoring {acc['score_seconds']} s.",
        "",
    ]
    for split in ("test", "test_spectra"):
        table = acc["table"].get(split, {})
        if not table:
            continue
        bins = sorted({b for r in table.values() for b in r["by_snr"]}, key=_bin_key)
        lines += [
            f"## {split}",
            "",
            "| branch | n | accuracy | macro-F1 | within one | ECE | S/N>=10 acc / w1 | "
            + " | ".join(f"S/N {b} acc / w1" for b in bins)
            + " |",
            "|---" * (7 + len(bins)) + "|",
        ]
        order = [*HEAD_BRANCHES, *BASELINE_BRANCHES, "template_builtin"]
        for branch in sorted(table, key=lambda b: order.index(b) if b in order else 99):
            r = table[branch]
            cells = [
                f"{r['by_snr'][b]['accuracy']:.3f} / {r['by_snr'][b]['within_one']:.3f}"
                if b in r["by_snr"]
                else "-"
                for b in bins
            ]
            lines.append(
                f"| {branch} | {r.get('n')} | {r.get('accuracy', float('nan')):.3f} | "
                f"{r.get('macro_f1', float('nan')):.3f} | {r.get('within_one', float('nan')):.3f}"
                f" | {_num(r.get('ece'))} | {_pair(r.get('snr_ge_10'))} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    if "generalization" in result:
        g = result["generalization"]
        lines += [
            "## Generalization: SDSS-template model on a built-in-template survey",
            "",
            f"{g['stars']} stars, {g['spectra']} spectra; "
            f"{g['label_in_model_vocabulary']:.0%} have a label the model knows (scored on those).",
            "",
            "| branch | accuracy | within one | by S/N (acc / w1) |",
            "|---|---|---|---|",
        ]
        for k, r in g.items():
            if isinstance(r, dict):
                by = ", ".join(
                    f"{b}: {v['accuracy']:.2f} / {v['within_one']:.2f}"
                    for b, v in sorted(r["by_snr"].items(), key=lambda kv: _bin_key(kv[0]))
                )
                lines.append(f"| {k} | {r['accuracy']:.3f} | {r['within_one']:.3f} | {by} |")
        lines.append("")
    if "speed" in result:
        lines += ["## Speed", "", "| figure | value | load |", "|---|---|---|"]
        for k, r in result["speed"].items():
            v = r["value"] if "value" in r else f"p50 {r['p50']} ms, p95 {r['p95']} ms"
            lines.append(f"| {k} | {v} | {r['load']} |")
        lines.append("")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _pair(r: dict | None) -> str:
    return f"{r['accuracy']:.3f} / {r['within_one']:.3f}" if r else "-"


def _bin_key(b: str) -> float:
    try:
        return float(b.split("-")[0].rstrip("+"))
    except ValueError:
        return 1e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stars", type=int, default=60_000, help="survey stars (60000)")
    p.add_argument("--spectra", type=int, default=6_000, help="of which with spectra (6000)")
    p.add_argument("--gen-stars", type=int, default=3_000, help="generalization survey stars")
    p.add_argument("--gen-spectra", type=int, default=1_500, help="... of which with spectra")
    p.add_argument("--seed", type=int, default=7, help="simulation seed (7)")
    p.add_argument("--workdir", type=Path, default=Path("bench-ml"), help="work dir (reused)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: train's)")
    p.add_argument("--time-budget", type=float, default=None, help="training budget, seconds")
    p.add_argument("--skip", nargs="*", default=[], choices=["generalization", "speed"])
    p.add_argument("--out", type=Path, default=None, help="write JSON here (+ .md beside it)")
    p.add_argument(
        "--speed-only",
        type=Path,
        metavar="WAREHOUSE",
        help="only the speed section, with that warehouse's current model and spectra",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.speed_only:
        from startrack.ml.dataset import load_training_data
        from startrack.ml.registry import current_model_dir
        from startrack.warehouse.store import Warehouse

        wh = Warehouse(args.speed_only)
        data = load_training_data(wh.require_current())
        out = {"machine": describe_machine(), "started_load": load(), "warehouse": str(wh.root)}
        out["speed"] = speed(current_model_dir(wh), data, 2048, 200_000, 200)
        print(json.dumps(out, indent=1, default=str))
        if args.out:
            args.out.write_text(json.dumps(out, indent=2, default=str))
        return 0
    if not TEMPLATES.exists() or not LABELS.exists():
        p.error(f"real SDSS files not found under {SHARED}")

    import torch

    from startrack.ml.dataset import load_training_data
    from startrack.ml.publish import train_and_publish
    from startrack.ml.registry import current_model_dir
    from startrack.ml.score import score_warehouse
    from startrack.ml.train_config import TrainConfig

    torch.set_num_threads(os.cpu_count() or 2)
    args.workdir.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": describe_machine(), "started_load": load()}
    wh, sim = survey_warehouse(args.workdir, "sdss", args.stars, args.spectra, args.seed, TEMPLATES)
    cfg = TrainConfig(time_budget_s=args.time_budget)
    if args.epochs:
        cfg.epochs = args.epochs
    t0 = time.perf_counter()
    meta = train_and_publish(wh, cfg, progress=False, templates=TEMPLATES)
    publish_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    run = score_warehouse(wh, full=True, progress=False)
    score_s = time.perf_counter() - t1
    table = summarize(metrics_table(wh, meta["version"]))
    data = load_training_data(wh.current())
    table.setdefault("test_spectra", {})["template_builtin"] = builtin_template_fit(
        data, meta["version"]
    )
    result["accuracy"] = {
        "survey": f"{args.stars} stars, {args.spectra} spectra, SDSS templates + real label "
        f"frequencies, seed {args.seed}",
        "simulation": sim,
        "model_version": meta["version"],
        "train_seconds": meta["training"]["seconds"],
        "train_load": load(),
        "epochs_run": meta["metrics"]["epochs_run"],
        "best_epoch": meta["metrics"]["best_epoch"],
        "publish_seconds": round(publish_s, 1),
        "score_seconds": round(score_s, 1),
        "scoring_run": {k: run[k] for k in ("stars_scored", "spectra_scored", "seconds")},
        "table": table,
    }
    print(markdown(result), flush=True)
    model_dir = current_model_dir(wh)
    if "generalization" not in args.skip:
        gwh, _ = survey_warehouse(
            args.workdir, "builtin", args.gen_stars, args.gen_spectra, args.seed + 1, None
        )
        result["generalization"] = generalization(model_dir, gwh)
    if "speed" not in args.skip:
        result["speed"] = speed(model_dir, data, n_spectra=2048, n_phot=200_000, n_single=200)
    text = markdown(result)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str))
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
