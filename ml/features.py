"""Model inputs: the tabular feature vector, spectrum channels, and the deterministic split.

Tabular features are computed in torch from a small "raw" matrix (z, ugriz, snr) so training can
augment raw magnitudes (jitter, reddening) first and derive colours afterwards, and inference uses
the very same code. Never a label or an identifier goes in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from startrack.grid import DLOGLAM
from startrack.vocabulary import BANDS

MAG_COLUMNS = tuple(f"mag_{b}" for b in BANDS)
MAGERR_COLUMNS = tuple(f"magerr_{b}" for b in BANDS)
#: Columns of the raw matrix, in order (what a star row must provide; NaN = missing).
RAW_COLUMNS = ("z", *MAG_COLUMNS, "snr")
COLOR_NAMES = ("u-g", "g-r", "r-i", "i-z")
_VALUES = ("z", *MAG_COLUMNS, *COLOR_NAMES, "log_snr")
#: Names of the model's tabular features: values, then one missingness flag per value.
FEATURE_NAMES = (*_VALUES, *(f"missing_{n}" for n in _VALUES))
N_FEATURES = len(FEATURE_NAMES)
#: Feature indices that say how bright a star looks (magnitudes, catalog S/N, their flags),
#: not what it is: a brightness-blind model (ModelConfig.brightness_blind) ignores them.
BRIGHTNESS_FEATURES = tuple(
    i
    for i, name in enumerate(FEATURE_NAMES)
    if name.removeprefix("missing_") in (*MAG_COLUMNS, "log_snr")
)

#: Normalized-flux channel clip: absorption/emission beyond this is noise or a bad pixel.
FLUX_CLIP = (-1.0, 5.0)
#: Spectrum channels fed to the conv front end.
SPECTRUM_CHANNELS = ("flux_norm", "mask", "log_pixel_snr")

SPLIT_TRAIN, SPLIT_VAL = 0.8, 0.9


def split_fraction(star_id: str) -> float:
    """Stable position of a star in [0, 1): blake2b of its id, independent of runs and data."""
    digest = hashlib.blake2b(str(star_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def split_of(star_id: str) -> str:
    """'train' (< 0.8), 'val' (< 0.9) or 'test': a star stays in its split across refreshes."""
    f = split_fraction(star_id)
    return "train" if f < SPLIT_TRAIN else "val" if f < SPLIT_VAL else "test"


def raw_matrix(stars: pd.DataFrame) -> np.ndarray:
    """(n, len(RAW_COLUMNS)) float32 from a stars frame; absent columns become NaN."""
    out = np.full((len(stars), len(RAW_COLUMNS)), np.nan, dtype=np.float32)
    for j, col in enumerate(RAW_COLUMNS):
        if col in stars.columns:
            out[:, j] = pd.to_numeric(stars[col], errors="coerce").to_numpy(np.float32)
    return out


def has_colour(raw: np.ndarray) -> np.ndarray:
    """(n,) bool: the star has at least one colour (two neighbouring bands with physical
    magnitudes). Without one the photometry branch knows nothing of the type: it never sees
    brightness (ModelConfig.brightness_blind), so all it could answer is its training prior."""
    mags = np.asarray(raw, dtype=np.float64)[:, 1:6]
    with np.errstate(invalid="ignore"):
        ok = (mags > 0) & (mags < 40)
    return (ok[:, :-1] & ok[:, 1:]).any(axis=1)


def magerr_matrix(stars: pd.DataFrame) -> np.ndarray:
    """(n, 5) float32 magnitude errors; missing errors become NaN (augment uses a default)."""
    out = np.full((len(stars), len(BANDS)), np.nan, dtype=np.float32)
    for j, col in enumerate(MAGERR_COLUMNS):
        if col in stars.columns:
            out[:, j] = pd.to_numeric(stars[col], errors="coerce").to_numpy(np.float32)
    return out


def tabular_features(raw: torch.Tensor) -> torch.Tensor:
    """Unstandardized features (n, N_FEATURES) from raw (n, 7); missing values become 0 + flag.

    Non-physical magnitudes (SDSS uses -9999 / 9999 sentinels) count as missing.
    """
    raw = raw.float()
    z = raw[:, 0:1]
    mags = raw[:, 1:6]
    mags = torch.where((mags > 0) & (mags < 40), mags, torch.full_like(mags, float("nan")))
    colors = mags[:, :-1] - mags[:, 1:]
    snr = raw[:, 6:7]
    log_snr = torch.log10(torch.clamp(torch.where(snr > 0, snr, torch.nan), min=0.1))
    values = torch.cat([z, mags, colors, log_snr], dim=1)
    missing = ~torch.isfinite(values)
    values = torch.where(missing, torch.zeros_like(values), values)
    return torch.cat([values, missing.float()], dim=1)


@dataclass
class Standardizer:
    """Feature mean/std computed on the training split and stored in the artifact."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> Standardizer:
        """Stats over present values only (a missing value is 0 with its flag set)."""
        n_val = len(_VALUES)
        mean = np.zeros(features.shape[1], dtype=np.float32)
        std = np.ones(features.shape[1], dtype=np.float32)
        for j in range(n_val):
            present = features[:, n_val + j] < 0.5
            col = features[present, j]
            if col.size:
                mean[j] = float(col.mean())
                std[j] = float(col.std()) if col.size > 1 and col.std() > 1e-6 else 1.0
        return cls(mean, std)

    def apply(self, features: torch.Tensor) -> torch.Tensor:
        """Standardize values; missing values stay exactly 0 (the mean), flags untouched."""
        n_val = len(_VALUES)
        mean = torch.as_tensor(self.mean, device=features.device)
        std = torch.as_tensor(self.std, device=features.device)
        out = (features - mean) / std
        present = features[:, n_val:] < 0.5
        values = torch.where(present, out[:, :n_val], torch.zeros_like(out[:, :n_val]))
        return torch.cat([values.clamp(-10, 10), features[:, n_val:]], dim=1)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Standardizer:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


def normalized_spectra(
    flux: np.ndarray | torch.Tensor,
    ivar: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor,
    norm: np.ndarray | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """flux/norm, ivar*norm^2 (same S/N), mask (bool); masked or bad pixels -> 0 flux, 0 ivar.

    A missing/zero/NaN norm falls back to the median of the unmasked flux.
    """
    flux = torch.as_tensor(flux, dtype=torch.float32)
    ivar = torch.as_tensor(ivar, dtype=torch.float32)
    mask = torch.as_tensor(mask, dtype=torch.bool)
    norm = torch.as_tensor(norm, dtype=torch.float32).reshape(-1, 1)
    bad = mask | ~torch.isfinite(flux) | ~torch.isfinite(ivar) | (ivar <= 0)
    if not bool(torch.isfinite(norm).all() and (norm > 0).all()):
        med = torch.nanmedian(torch.where(bad, torch.nan, flux), dim=1, keepdim=True).values
        norm = torch.where(torch.isfinite(norm) & (norm > 0), norm, med)
        norm = torch.where(torch.isfinite(norm) & (norm > 0), norm, torch.ones_like(norm))
    flux_n = torch.where(bad, torch.zeros_like(flux), flux / norm)
    ivar_n = torch.where(bad, torch.zeros_like(ivar), ivar * norm**2)
    return flux_n, ivar_n, bad


#: |z| above this is not a star's radial velocity (1,500 km/s): such spectra are not shifted.
MAX_STELLAR_Z = 0.005


def rest_frame_shift(z: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Whole grid pixels to move each spectrum by to bring it to its rest frame (0 for NaN z).

    One pixel is 69 km/s and the catalog z of a star is good to a few km/s, so a whole-pixel
    shift leaves at most half a pixel of velocity, which the training augmentation covers.
    """
    z = torch.as_tensor(z, dtype=torch.float64).reshape(-1)
    ok = torch.isfinite(z) & (z.abs() <= MAX_STELLAR_Z)
    pix = torch.round(torch.log10(1.0 + torch.where(ok, z, torch.zeros_like(z))) / DLOGLAM)
    return pix.long()


def to_rest_frame(
    flux_n: torch.Tensor, ivar_n: torch.Tensor, mask: torch.Tensor, z: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shift spectra on the log grid by -log10(1+z): pixels that enter from beyond the grid
    are masked. A gather, so a batch of any mix of shifts costs one pass."""
    shift = rest_frame_shift(z).to(flux_n.device)
    if not bool((shift != 0).any()):
        return flux_n, ivar_n, mask
    n = flux_n.shape[1]
    src = torch.arange(n, device=flux_n.device).unsqueeze(0) + shift.unsqueeze(1)
    outside = (src < 0) | (src >= n)
    src = src.clamp(0, n - 1)
    f = flux_n.gather(1, src)
    iv = ivar_n.gather(1, src)
    m = mask.gather(1, src) | outside
    zero = torch.zeros((), dtype=f.dtype, device=f.device)
    return torch.where(m, zero, f), torch.where(m, zero, iv), m


def spectrum_channels(
    flux_n: torch.Tensor, ivar_n: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """(B, 3, NPIX) model input: clipped normalized flux, mask, log10(1 + per-pixel S/N)."""
    keep = ~mask
    f = torch.where(keep, flux_n.clamp(*FLUX_CLIP), torch.zeros_like(flux_n))
    snr = torch.where(keep, torch.sqrt(ivar_n.clamp(min=0)), torch.zeros_like(ivar_n))
    return torch.stack([f, mask.float(), torch.log10(1 + snr)], dim=1)
