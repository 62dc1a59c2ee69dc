"""How a model's spectral type moves with dust it cannot see (issue 11).

A star's continuum says its temperature only if one knows its reddening; the network does not,
so it answers with the reddening it saw in training. This reddens every spectrum of a survey
(and its photometry, along the same O'Donnell law) by a set of E(B-V) and prints, per class
range, the median error of the continuous type against each star's own type and the share
within 2.5 subtypes, for stars at S/N >= 15 (where the lines alone would type them).

A model whose answers are unbiased at E(B-V) ~ 0 but move by subtypes per 0.1 of dust reads
its type from the continuum; one biased at 0 and unbiased at the training mean carries the
training's dust as a prior. Compare models trained with different `AugmentConfig` dust
(`p_redden`, `max_ebv`, `spec_ebv_mean`, `spec_ebv_tail`, `hot_dust_below`) on the same
survey.

Usage: python benchmarks/dust_prior.py SURVEY_DIR MODEL_DIR [MODEL_DIR ...]
       [--ebv -0.1 0 0.1 0.2 0.4] [--min-snr 15] [--out dust.json]
(SURVEY_DIR holds a `warehouse/`, as bench_transfer.py's work folders do.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_transfer import observed_as

from startrack.labels import spectral_types

#: (first, last + 1) MK numbers of the class ranges reported.
RANGES = {"A0-A9": (20, 30), "F0-F8": (30, 39), "F9-K0": (39, 50), "K1-K9": (50, 60)}


def dust_table(data, model, meta, ebvs: list[float], min_snr: float) -> dict:
    """{E(B-V): {head: {range: {median_error, within_2_5, n}}}} for one model."""
    from startrack.ml.inference import predict_arrays

    rows = np.flatnonzero(data.spec_row >= 0)
    out: dict = {}
    for ebv in ebvs:
        if ebv == 0:
            stars, spectra = observed_as(data, rows, "native")
        else:
            stars, spectra = observed_as(data, rows, "reddened", ebv=ebv)
        t_label = spectral_types(stars["label"].to_numpy(object))
        own = np.where(np.isfinite(t_label), spectral_types(stars["elodie_sptype"]), np.nan)
        bright = stars["snr"].to_numpy(float) >= min_snr
        preds = predict_arrays(model, meta, stars, spectra)
        out[ebv] = {}
        for head in ("fusion", "lstm"):
            out[ebv][head] = {}
            for name, (lo, hi) in RANGES.items():
                s = bright & (own >= lo) & (own < hi)
                err = preds[head].spectral_type[s] - own[s]
                out[ebv][head][name] = {
                    "median_error": float(np.median(err)) if s.any() else None,
                    "within_2_5": float(np.mean(np.abs(err) <= 2.5)) if s.any() else None,
                    "n": int(s.sum()),
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("survey", type=Path, help="folder holding warehouse/")
    parser.add_argument("models", type=Path, nargs="+", help="saved model artifact folders")
    parser.add_argument("--ebv", type=float, nargs="+", default=[-0.1, 0.0, 0.1, 0.2, 0.4])
    parser.add_argument("--min-snr", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()

    from startrack.ml.artifact import load_artifact
    from startrack.ml.dataset import load_training_data
    from startrack.warehouse.store import Warehouse

    snapshot = Warehouse(args.survey / "warehouse").current()
    if snapshot is None:
        parser.error(f"no warehouse with data in {args.survey}")
    data = load_training_data(snapshot)
    results = {}
    for path in args.models:
        model, meta = load_artifact(path)
        table = dust_table(data, model, meta, args.ebv, args.min_snr)
        results[str(path)] = table
        print(f"{path}  (fusion: median error / within 2.5, S/N >= {args.min_snr:g})")
        for ebv, heads in table.items():
            cells = " ".join(
                f"{name} {c['median_error']:+5.1f}/{c['within_2_5']:.2f}" if c["n"] else f"{name} -"
                for name, c in heads["fusion"].items()
            )
            print(f"  E(B-V) {ebv:+.2f}: {cells}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
