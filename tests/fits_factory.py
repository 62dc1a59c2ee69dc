"""Small spec-lite files for tests, in the real layout (COADD + SPECOBJ), written with astropy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits


def write_spec(
    path: Path,
    plate: int = 1000,
    mjd: int = 52000,
    fiber: int = 1,
    subclass: str = "G2",
    npix: int = 3800,
    loglam0: float = 3.5800,
    flux: np.ndarray | None = None,
    ivar: np.ndarray | None = None,
    and_mask: np.ndarray | None = None,
    specobj: bool = True,
    seed: int = 0,
) -> Path:
    """A plausible star spectrum (continuum + Balmer lines + noise) as spec-PLATE-MJD-FIBER."""
    rng = np.random.default_rng(seed)
    loglam = (loglam0 + 1e-4 * np.arange(npix)).astype(np.float32)
    wave = 10.0 ** loglam.astype(np.float64)
    if flux is None:
        flux = 50.0 * (wave / 5000.0) ** -1.5
        for line in (6564.6, 4862.7, 4341.7):
            flux *= 1 - 0.4 * np.exp(-0.5 * ((wave - line) / 8.0) ** 2)
        flux = flux + rng.normal(0, 1.0, npix)
    if ivar is None:
        ivar = np.ones(npix)
    if and_mask is None:
        and_mask = np.zeros(npix, dtype=np.int32)
    coadd = fits.BinTableHDU.from_columns(
        [
            fits.Column("flux", "E", array=np.asarray(flux, np.float32)),
            fits.Column("loglam", "E", array=loglam),
            fits.Column("ivar", "E", array=np.asarray(ivar, np.float32)),
            fits.Column("and_mask", "J", array=np.asarray(and_mask, np.int32)),
        ],
        name="COADD",
    )
    hdus = [fits.PrimaryHDU(), coadd]
    if specobj:
        hdus.append(
            fits.BinTableHDU.from_columns(
                [
                    fits.Column("PLATE", "J", array=[plate]),
                    fits.Column("MJD", "J", array=[mjd]),
                    fits.Column("FIBERID", "J", array=[fiber]),
                    fits.Column("CLASS", "6A", array=["STAR"]),
                    fits.Column("SUBCLASS", "21A", array=[subclass]),
                    fits.Column("Z", "E", array=[1e-4]),
                    fits.Column("Z_ERR", "E", array=[1e-5]),
                    fits.Column("SN_MEDIAN_ALL", "E", array=[20.0]),
                    fits.Column("PLUG_RA", "D", array=[150.0]),
                    fits.Column("PLUG_DEC", "D", array=[2.0]),
                    fits.Column("SPECOBJID", "22A", array=[str(plate * 10**12 + fiber)]),
                    fits.Column("ELODIE_SPTYPE", "10A", array=["G0"]),
                    fits.Column("SPECTROFLUX", "5E", array=[[100.0, 300.0, 400.0, 450.0, 470.0]]),
                ],
                name="SPECOBJ",
            )
        )
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def spec_name(plate: int, mjd: int, fiber: int) -> str:
    return f"spec-{plate:04d}-{mjd:05d}-{fiber:04d}.fits"
