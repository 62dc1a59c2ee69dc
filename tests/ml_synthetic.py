"""Tiny synthetic stars for model tests: class-dependent absorption lines, slopes and colours."""

from __future__ import annotations

import numpy as np
import pandas as pd

from startrack.grid import NPIX, wavelength
from startrack.ml.dataset import TrainingData

LABELS = ("B6", "A0", "F5", "G2", "K3", "M2")
SPTYPE = {"B6": 16.0, "A0": 20.0, "F5": 35.0, "G2": 42.0, "K3": 53.0, "M2": 62.0}
#: one absorption line per class (Angstrom) + a shared one whose depth changes with class
LINES = (4102.0, 4341.0, 5175.0, 5890.0, 6563.0, 7100.0)


def synthetic_data(
    n_stars: int = 600, spec_fraction: float = 0.5, seed: int = 0, phot_noise: float = 0.4
) -> TrainingData:
    rng = np.random.default_rng(seed)
    wave = wavelength().astype(np.float32)
    k = rng.integers(0, len(LABELS), n_stars)
    labels = np.array(LABELS)[k]
    star_ids = [f"{1000 + i // 640}-{52000 + i % 7}-{i % 640:04d}" for i in range(n_stars)]
    base_colors = np.array(
        [
            [0.8, -0.1, -0.1, 0.0],
            [1.0, 0.0, 0.0, 0.0],
            [1.1, 0.3, 0.1, 0.0],
            [1.3, 0.45, 0.15, 0.05],
            [1.8, 0.7, 0.3, 0.15],
            [2.5, 1.4, 0.9, 0.5],
        ]
    )
    r = rng.uniform(15, 19, n_stars)
    colors = base_colors[k] + rng.normal(0, phot_noise, (n_stars, 4))
    g = r + colors[:, 1]
    u = g + colors[:, 0]
    i = r - colors[:, 2]
    z = i - colors[:, 3]
    has = rng.random(n_stars) < spec_fraction
    n_spec = int(has.sum())
    spec_row = np.full(n_stars, -1, dtype=np.int64)
    spec_row[has] = np.arange(n_spec)
    flux = np.empty((n_spec, NPIX), dtype=np.float32)
    snr = rng.uniform(8, 40, n_spec).astype(np.float32)
    x = (wave - 6000.0) / 3000.0
    for row, cls in enumerate(k[has]):
        slope = (2.5 - cls) * 0.25
        cont = np.exp(slope * x)
        prof = np.ones(NPIX, dtype=np.float32)
        prof -= 0.6 * np.exp(-0.5 * ((wave - LINES[cls]) / 6.0) ** 2)
        prof -= 0.1 * cls * np.exp(-0.5 * ((wave - 8542.0) / 5.0) ** 2)
        flux[row] = 30 * cont * prof
    sigma = flux.mean(1, keepdims=True) / snr[:, None]
    flux += rng.normal(0, 1, flux.shape).astype(np.float32) * sigma
    ivar = np.broadcast_to(1.0 / sigma**2, flux.shape).astype(np.float32).copy()
    mask = np.zeros_like(flux, dtype=bool)
    mask[:, :150] = True  # uncovered blue end
    ivar[mask] = 0
    flux[mask] = np.nan
    norm = np.nanmedian(np.where(mask, np.nan, flux), axis=1).astype(np.float32)
    snr_star = np.full(n_stars, np.nan)
    snr_star[has] = snr
    stars = pd.DataFrame(
        {
            "star_id": star_ids,
            "label": labels,
            "spectral_type": [SPTYPE[s] for s in labels],
            "z": rng.normal(0, 1e-4, n_stars),
            "snr": snr_star,
            "mag_u": u,
            "mag_g": g,
            "mag_r": r,
            "mag_i": i,
            "mag_z": z,
            **{f"magerr_{b}": np.full(n_stars, 0.03) for b in "ugriz"},
        }
    )
    return TrainingData(stars, flux, ivar, mask, norm, spec_row)
