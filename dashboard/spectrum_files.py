"""One star's gridded spectrum as files: CSV for a spreadsheet, FITS for astropy/IRAF/TOPCAT.

Only the covered pixels ``[pix_start, pix_end)`` are written, on the warehouse's common grid
(vacuum wavelengths, log10 λ = 3.55 + 1e-4 k). The FITS file is a binary table whose columns
carry FITS units and whose header says what each column is, where the star comes from and
which snapshot wrote it, so the file explains itself without this project.
"""

from __future__ import annotations

import io

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.io import fits

from startrack import grid
from startrack.warehouse.read import Spectrum

FLUX_UNIT = u.Unit(1e-17 * u.erg / u.s / u.cm**2 / u.AA)
IVAR_UNIT = FLUX_UNIT**-2
CSV_COLUMNS = {
    "wavelength": "wavelength_vacuum_angstrom",
    "flux": "flux_1e-17_erg_s-1_cm-2_angstrom-1",
    "ivar": "ivar_of_flux",
    "mask": "masked",
}


def spectrum_frame(spec: Spectrum) -> pd.DataFrame:
    """Covered pixels: vacuum wavelength [Å], flux, ivar (0 where masked), mask (True = bad)."""
    s, e = spec.pix_start, spec.pix_end
    return pd.DataFrame(
        {
            "wavelength": grid.wavelength()[s:e],
            "loglam": grid.loglam()[s:e],
            "flux": spec.flux[s:e].astype(np.float64),
            "ivar": spec.ivar[s:e].astype(np.float64),
            "mask": spec.mask[s:e].astype(bool),
        }
    )


def to_csv(spec: Spectrum) -> bytes:
    """CSV with the units in the column names (a '#' preamble would trip most readers)."""
    df = spectrum_frame(spec).drop(columns="loglam").rename(columns=CSV_COLUMNS)
    return df.to_csv(index=False, float_format="%.7g").encode()


def to_fits(spec: Spectrum, star: dict, snapshot_id: str) -> bytes:
    """A primary HDU with the star's identity, and a SPECTRUM binary table with units."""
    df = spectrum_frame(spec)
    cols = [
        fits.Column("WAVELENGTH", "D", unit=u.AA.to_string("fits"), array=df["wavelength"]),
        fits.Column("LOGLAM", "D", unit="", array=df["loglam"]),
        fits.Column("FLUX", "E", unit=FLUX_UNIT.to_string("fits"), array=df["flux"]),
        fits.Column("IVAR", "E", unit=IVAR_UNIT.to_string("fits"), array=df["ivar"]),
        fits.Column("MASK", "L", array=df["mask"]),
    ]
    table = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    h = table.header
    for i, what in enumerate(
        (
            "vacuum wavelength of the pixel centre",
            "log10(wavelength / Angstrom)",
            "flux density, 1e-17 erg/s/cm^2/Angstrom",
            "inverse variance of FLUX; 0 where masked",
            "T = unusable: ivar 0, SDSS bad bit, no data",
        ),
        start=1,
    ):
        h.comments[f"TTYPE{i}"] = what
    h["GRID"] = ("log10(lam) = 3.55 + 1e-4 k", "StarTrack common grid")
    h["VACUUM"] = (True, "wavelengths are in vacuum")
    h["PIXSTART"] = (spec.pix_start, "first grid pixel k in this table")
    h["NORM"] = (float(spec.norm), "median unmasked flux; normalized = FLUX/NORM")
    primary = fits.PrimaryHDU()
    p = primary.header
    p["ORIGIN"] = "StarTrack"
    p["STAR_ID"] = (spec.star_id, "PLATE-MJD-FIBER")
    for key, name in (("PLATE", "plate"), ("MJD", "mjd"), ("FIBERID", "fiberid")):
        if star.get(name) is not None:
            p[key] = int(star[name])
    for key, name, comment in (
        ("RA", "ra", "[deg] J2000"),
        ("DEC", "dec", "[deg] J2000"),
        ("Z", "z", "redshift"),
        ("SN_MED", "snr", "median S/N per pixel (SDSS snMedian)"),
    ):
        value = star.get(name)
        if value is not None and np.isfinite(value):
            p[key] = (float(value), comment)
    for key, name in (("CLASS", "class"), ("SUBCLASS", "subclass"), ("LABEL", "label")):
        if star.get(name):
            p[key] = str(star[name])[:68]
    p["SNAPSHOT"] = (snapshot_id, "warehouse snapshot")
    p["COMMENT"] = "SPECTRUM HDU: SDSS spectrum resampled to the StarTrack common grid."
    p["COMMENT"] = "On the SDSS 1e-4 dex lattice the values are the original pixels."
    buf = io.BytesIO()
    fits.HDUList([primary, table]).writeto(buf)
    return buf.getvalue()
