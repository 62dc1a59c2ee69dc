"""Why does a model mistype another template family's star? Transplant one part at a time.

For each subclass, a noise-free template of the *probed* family is typed by a saved model
(``bench_transfer.py --save-models DIR``), then again with one part taken from the *donor*
family's template of the same subclass: its whole continuum (the smooth shape, lines kept),
its lines (continuum kept), or its lines in one of 12 stretches of the spectrum. The part that
moves the answer to the right type is where the two families disagree, and what the model
leans on: this is how the built-in 4000 A break (stop 19) and the line-index token's
template memory were found.

Usage: python benchmarks/transplant.py MODEL_DIR --probe builtin [--snr 30] [F2 G2 K1 ...]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from bench_ml import TEMPLATES

SUBCLASSES = ("F2", "F5", "G2", "K1", "K3", "M0", "M2")
#: Where both families have flux (the SDSS templates cover 3784-9270 A).
COVERED_A = (3810.0, 9200.0)
STRETCHES = 12


def on_grid(templates, name: str) -> np.ndarray:
    """A template on the warehouse grid, NaN outside COVERED_A, median 1."""
    from startrack.grid import values_on_grid, wavelength

    w = wavelength()
    flux = values_on_grid(templates.loglam, templates.flux[templates.index_of(name)])
    flux = np.where((w > COVERED_A[0]) & (w < COVERED_A[1]), flux, np.nan)
    return flux / np.nanmedian(flux)


def continuum(flux: np.ndarray) -> np.ndarray:
    """The smooth shape of a spectrum, as the network's continuum channel computes it
    (``ml.continuum.smooth_continuum``): dividing by it keeps the lines, drops the slope."""
    import torch

    from startrack.ml.continuum import smooth_continuum

    good = np.isfinite(flux)
    f = torch.as_tensor(np.where(good, flux, 0.0), dtype=torch.float32)[None]
    cont = smooth_continuum(f, torch.as_tensor(~good)[None])[0].numpy().astype(np.float64)
    return np.where(good, cont, np.nan)


def variants(probe: np.ndarray, donor: np.ndarray) -> dict[str, np.ndarray]:
    """The probed spectrum, the donor's, and each transplant."""
    from startrack.grid import wavelength

    w = wavelength()
    cp, cd = continuum(probe), continuum(donor)
    donor_lines = donor / cd * cp  # the donor's lines on the probe's continuum
    out = {
        "probed template": probe,
        "donor template": donor,
        "donor continuum": probe / cp * cd,
        "donor lines": donor_lines,
    }
    edges = np.geomspace(*COVERED_A, STRETCHES + 1)
    for lo, hi in itertools.pairwise(edges):
        part = (w >= lo) & (w < hi)
        out[f"donor lines {lo:.0f}-{hi:.0f} A"] = np.where(part, donor_lines, probe)
    return out


def type_spectra(model, meta: dict, fluxes: list[np.ndarray], snr: float):
    """Predictions for noise-free spectra whose inverse variance says S/N ``snr``; no
    photometry, z = 0."""
    import pandas as pd

    from startrack.ml.inference import Spectra, predict_arrays

    flux = np.array(fluxes, dtype=np.float32)
    mask = ~np.isfinite(flux)
    ivar = np.where(mask, 0.0, (snr / np.where(mask, 1.0, flux)) ** 2).astype(np.float32)
    flux = np.where(mask, 0.0, flux).astype(np.float32)
    n = len(flux)
    stars = pd.DataFrame({"z": np.zeros(n), "snr": np.full(n, snr)})
    for band in "ugriz":
        stars[f"mag_{band}"] = np.nan
        stars[f"magerr_{band}"] = np.nan
    spectra = Spectra(flux, ivar, mask, np.ones(n, np.float32), np.arange(n))
    return predict_arrays(model, meta, stars, spectra)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a saved model directory (model.pt, model.json)")
    ap.add_argument(
        "--probe",
        choices=["builtin", "sdss"],
        required=True,
        help="family whose templates are typed; the other one donates the parts",
    )
    ap.add_argument("--snr", type=float, default=30.0, help="S/N the inverse variance says")
    ap.add_argument("--templates", type=Path, default=TEMPLATES, help="spEigenStar file")
    ap.add_argument("subclasses", nargs="*", default=list(SUBCLASSES))
    args = ap.parse_intermixed_args()
    if not args.templates.is_file():
        ap.error(f"needs the SDSS templates at {args.templates} (../shared/sdss)")

    from startrack.ml.artifact import load_artifact
    from startrack.simulator.templates import builtin_templates, load_templates

    model, meta = load_artifact(args.model)
    builtin, sdss = builtin_templates(), load_templates(args.templates)
    probed, donor = (builtin, sdss) if args.probe == "builtin" else (sdss, builtin)
    for name in args.subclasses:
        if probed.index_of(name) is None or donor.index_of(name) is None:
            print(f"{name}: not in both families, skipped")
            continue
        spectra = variants(on_grid(probed, name), on_grid(donor, name))
        pred = type_spectra(model, meta, list(spectra.values()), args.snr)
        print(f"== {name} ({args.probe} template, S/N {args.snr:g})")
        for k, what in enumerate(spectra):
            cells = [f"{h} {pred[h].label[k]:>4s} {pred[h].spectral_type[k]:5.1f}" for h in pred]
            print(f"  {what:30s} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
