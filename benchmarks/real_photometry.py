"""Real SDSS stars typed from their real photometry (issue 11): the one real, many-star,
many-class check this machine has.

``../shared/sdss/catalog``: 1,000 real stars with their ugriz (``star_photometry_sample``,
selected at u 19-20) and 30,000 real SDSS subclasses; 908 stars are in both. They have no
spectra and no catalog S/N here, so this scores what a model says from colours alone: the
dense head and the fusion without a spectrum. The labels are the SDSS pipeline's (its
template names, not MK types): a check that the photometric answers are sane, not the goal.

Also: how far answers move when only the star's brightness changes (all magnitudes 2 mag
fainter, the catalog S/N x5). A star's brightness says where it is, not what it is; a model
that reads its class from brightness has learned the simulator's magnitude-S/N relation.

Usage: python benchmarks/real_photometry.py MODEL_DIR [MODEL_DIR ...] [--out real.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "sdss" / "catalog"
PHOTOMETRY = SHARED / "star_photometry_sample.csv"
LABELS = SHARED / "star_subclass_labels.csv"
#: A typical catalog S/N for the stars, which the sample does not carry.
TYPICAL_SNR = 10.0


def available() -> bool:
    return PHOTOMETRY.is_file() and LABELS.is_file()


def real_stars() -> pd.DataFrame:
    """The 908 real stars with photometry and an SDSS label, as a stars frame."""
    phot = pd.read_csv(PHOTOMETRY)
    ids = phot["spectrum"].str.extract(r"spec-(\d+)-(\d+)-(\d+)").astype(int)
    phot["plate"], phot["mjd"], phot["fiberID"] = ids[0], ids[1], ids[2]
    both = phot.merge(pd.read_csv(LABELS), on=["plate", "mjd", "fiberID"])
    return pd.DataFrame(
        {
            "z": 0.0,
            "snr": TYPICAL_SNR,
            **{f"mag_{b}": both[b].to_numpy(float) for b in "ugriz"},
            "label": both["subClass"].to_numpy(object),
        }
    )


def evaluate(model, meta: dict) -> dict:
    """Dense and photometry-only fusion on the real stars, and their brightness sensitivity."""
    from startrack.labels import spectral_types
    from startrack.ml.inference import predict_arrays
    from startrack.ml.quality import type_metrics

    stars = real_stars()
    truth = stars["label"].to_numpy(object)
    preds = predict_arrays(model, meta, stars, None)
    shifted = stars.copy()
    for b in "ugriz":
        shifted[f"mag_{b}"] += 2.0
    shifted["snr"] *= 5.0
    moved = predict_arrays(model, meta, shifted, None)
    out: dict = {"n_stars": len(stars)}
    for head in ("dense", "fusion"):
        p, q = preds[head], moved[head]
        labels, counts = np.unique(p.label.astype(str), return_counts=True)
        out[head] = {
            "label": type_metrics(truth, spectral_types(p.label)),
            "continuous": type_metrics(truth, p.spectral_type),
            "answers": dict(zip(labels.tolist(), counts.tolist(), strict=True)),
            # share of stars whose answer changes with brightness alone
            "changed_by_brightness": round(float((p.label != q.label).mean()), 3),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="saved model artifact directories")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()
    if not available():
        ap.error(f"needs the real SDSS catalog files in {SHARED} (../shared beside the checkout)")
    from startrack.ml.artifact import load_artifact

    results = {}
    for path in args.models:
        model, meta = load_artifact(path)
        results[str(path)] = res = evaluate(model, meta)
        for head in ("dense", "fusion"):
            r = res[head]
            lab = r["label"]
            print(
                f"{path}: {head}: median {lab['type_median_error']:.1f}, within 2.5"
                f" {lab['type_within_2_5']:.3f}, within 5 {lab['type_within_5']:.3f};"
                f" changed by brightness alone: {r['changed_by_brightness']}"
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
