"""Real stars for the surveys: the STELIB library, shipped, observed like any simulated star.

Why: a model trained only on simulated spectra types real stars no better than the SDSS
template fit (issue 11): no physics we write has every line a real star has, at its real
strength, moving with type the way real lines do. An empirical library does: SDSS itself types
its stars against one (ELODIE, for ``ELODIE_SPTYPE``). Each survey therefore observes a share
of its spectra from real library stars (``simulate --real-stars``), labelled with the class the
SDSS fit would give their MK type (the nearest class the family has) and carrying their
literature MK type as their ELODIE type; the rest of the survey is simulated as before.

The library: STELIB v3.2 (Le Borgne et al. 2003, A&A 402, 433; 3200-9500 A at ~3 A FWHM,
SSO 2.3m / DBS and other telescopes), every star with a subtyped MK type in its FITS header
(``SPECTYPE``), dwarfs to supergiants, O to M. It is public and ships inside the SDSS MaNGA
DAP's wheel on PyPI (``sdss-mangadap``, ``mangadap/data/spectral_templates/stelib``).
**Stars that are also in the MILES library are left out**, so that MILES stays an
independent test of real stars (``benchmarks/real_library.py``): 131 of STELIB's 243 typed
stars remain.

The shipped file ``data/stelib_v3.2.npz`` is what :func:`build_library` makes from that wheel
(``python -m startrack.simulator.library_stars --from-wheel WHEEL``): each star's flux on
the SDSS log-lambda lattice (vacuum wavelengths, 1e-4 dex) over its own coverage, scaled to
median 1, float32, with its name, literature type and the list of MILES stars left out.
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import sys
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits

from startrack.grid import DLOGLAM, air_to_vacuum
from startrack.labels import normalize_subclass, parse_mk

from .templates import BUILTIN_NAMES, TemplateSet, extend_for_photometry

log = logging.getLogger(__name__)

LIBRARY_PATH = Path(__file__).with_name("data") / "stelib_v3.2.npz"
STELIB_IN_WHEEL = "mangadap/data/spectral_templates/stelib/"
MILES_PARAMS_IN_WHEEL = "mangadap/data/spectral_templates/miles/paramsMILES_v9.1.txt"
PROVENANCE = (
    "STELIB v3.2 (Le Borgne et al. 2003, A&A 402, 433), from the sdss-mangadap 4.5.0 wheel "
    "(mangadap/data/spectral_templates/stelib); stars also in MILES v9.1 left out"
)
#: The lattice the library is stored on (air A): all of STELIB's wavelengths.
LATTICE = (3195.0, 9860.0)
#: SDSS's spectra (vacuum A), and the least share of them a library star must cover: STELIB
#: observed some stars over 4440-6520 A only, others with gaps (flux 0 there: no data).
SDSS_WINDOW = (3800.0, 9200.0)
MIN_COVERED = 0.4


@dataclass(frozen=True)
class StellarLibrary:
    """Real stars on one log-lambda lattice (flux 0 outside each star's coverage)."""

    names: tuple[str, ...]
    sptypes: tuple[str, ...]  # literature MK type, as the library gives it ('K3III')
    spectral_types: np.ndarray  # MK number O0=0 ... M9=69
    luminosity: tuple[str, ...]  # 'V' ... 'I', or '' when the type has no class
    loglam: np.ndarray
    flux: np.ndarray  # (nstars, npix); 0 where the library has no data for a star
    provenance: str


def star_name_key(name: str) -> str:
    """One spelling per catalogue number ('HD 002857', 'HD2857' -> 'HD2857')."""
    name = re.sub(r"\s+", "", name.upper())
    m = re.match(r"^(HD|HR|BD|G|HIP|SAO)0*(\d.*)$", name)
    return f"{m.group(1)}{m.group(2)}" if m else name


def _miles_names(z: zipfile.ZipFile) -> set[str]:
    if MILES_PARAMS_IN_WHEEL not in z.namelist():
        raise SystemExit(f"the wheel has no {MILES_PARAMS_IN_WHEEL}: cannot leave MILES out")
    lines = z.read(MILES_PARAMS_IN_WHEEL).decode("latin-1").splitlines()
    at_id = lines[0].index("MILES")
    return {star_name_key(line[:at_id]) for line in lines[3:] if line[:at_id].strip()}


def build_library(wheel: Path, out: Path = LIBRARY_PATH) -> StellarLibrary:
    """Read STELIB (and MILES's star list) from the sdss-mangadap wheel; write ``out``."""
    z = zipfile.ZipFile(wheel)
    miles = _miles_names(z)
    lo, hi = (np.log10(air_to_vacuum(w)) for w in LATTICE)
    lattice = DLOGLAM * np.arange(np.ceil(lo / DLOGLAM), np.floor(hi / DLOGLAM) + 1)
    sdss = (lattice >= np.log10(SDSS_WINDOW[0])) & (lattice <= np.log10(SDSS_WINDOW[1]))
    rows, names, sptypes, left_out = [], [], [], []
    for member in sorted(z.namelist()):
        if not (member.startswith(STELIB_IN_WHEEL) and member.endswith(".fits")):
            continue
        with fits.open(io.BytesIO(z.read(member))) as hdul:
            header, flux = hdul[0].header, np.asarray(hdul[0].data, dtype=np.float64)
        name, sptype = str(header["OBJECT"]).strip(), str(header.get("SPECTYPE", "")).strip()
        if parse_mk(sptype)[0] is None:
            continue
        if star_name_key(name) in miles:
            left_out.append(name)
            continue
        air = header["CRVAL1"] + header["CDELT1"] * (np.arange(flux.size) + 1 - header["CRPIX1"])
        loglam = np.log10(air_to_vacuum(air))
        good = np.isfinite(flux) & (flux > 0)  # STELIB writes 0 where a star has no data
        on_lattice = np.interp(lattice, loglam, np.where(good, flux, 0.0))
        covered = np.interp(lattice, loglam, good.astype(float), left=0.0, right=0.0) > 0.999
        if covered[sdss].mean() < MIN_COVERED:
            log.info("%s (%s): covers %.0f %% of 3800-9200 A; left out",
                     name, sptype, 100 * covered[sdss].mean())  # fmt: skip
            continue
        on_lattice = np.where(covered, on_lattice, 0.0) / np.median(on_lattice[covered])
        rows.append(on_lattice.astype(np.float32))
        names.append(name)
        sptypes.append(sptype)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, loglam0=lattice[0], flux=np.vstack(rows), names=np.array(names),
        sptypes=np.array(sptypes), left_out_in_miles=np.array(sorted(left_out)),
        provenance=np.array(PROVENANCE),
    )  # fmt: skip
    log.info("wrote %d STELIB stars to %s (%d in MILES left out)", len(names), out, len(left_out))
    load_library.cache_clear()
    return load_library(out)


@lru_cache(maxsize=2)
def load_library(path: Path = LIBRARY_PATH) -> StellarLibrary:
    """The shipped library (or another file :func:`build_library` wrote)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"stellar library not found: {path}")
    with np.load(path) as f:
        flux = f["flux"].astype(np.float64)
        loglam = float(f["loglam0"]) + DLOGLAM * np.arange(flux.shape[1])
        names, sptypes = tuple(f["names"].tolist()), tuple(f["sptypes"].tolist())
        provenance = str(f["provenance"])
    parsed = [parse_mk(s) for s in sptypes]
    return StellarLibrary(
        names, sptypes, np.array([t for t, _ in parsed], dtype=float),
        tuple(lum for _, lum in parsed), loglam, flux, provenance,
    )  # fmt: skip


def nearest_classes(spectral_types: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """The class of ``class_names`` whose MK type is nearest each type (the label the SDSS
    fit gives a star of that type); peculiar names ('A0p') are not candidates."""
    labels = {n: normalize_subclass(n) for n in class_names}
    candidates = [
        n for n, lab in labels.items() if lab.spectral_type is not None and not lab.peculiar
    ]
    if not candidates:
        raise ValueError("the template family has no MK classes to label real stars with")
    types = np.array([labels[n].spectral_type for n in candidates])
    at = np.abs(np.asarray(spectral_types, float)[:, None] - types[None, :]).argmin(axis=1)
    return np.array(candidates, dtype=object)[at]


@dataclass(frozen=True)
class WideLibrary:
    """The library on the simulator's wide lattice: ``flux`` gap-filled and continued past
    each star's coverage (for photometry only); ``covered`` where the star has real data."""

    stars: StellarLibrary
    loglam: np.ndarray
    flux: np.ndarray
    covered: np.ndarray  # bool, (nstars, npix)


@lru_cache(maxsize=2)
def wide_library(path: Path = LIBRARY_PATH) -> WideLibrary:
    """Photometry needs u and z beyond STELIB's ends: each star is continued there, and across
    its gaps, with the built-in star of its class (``extend_for_photometry``). Spectra show
    only ``covered`` pixels; the rest are masked as SDSS masks pixels without data."""
    lib = load_library(path)
    filled = np.zeros_like(lib.flux)
    for k, flux in enumerate(lib.flux):
        good = np.flatnonzero(flux > 0)
        inner = slice(good[0], good[-1] + 1)
        filled[k, inner] = np.interp(lib.loglam[inner], lib.loglam[good], flux[good])
    shapes = tuple(nearest_classes(lib.spectral_types, BUILTIN_NAMES))
    wide = extend_for_photometry(TemplateSet(shapes, lib.loglam, filled))
    covered = np.stack(
        [np.interp(wide.loglam, lib.loglam, (f > 0).astype(float), 0, 0) > 0.999 for f in lib.flux]
    )
    return WideLibrary(lib, wide.loglam, wide.flux, covered)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m startrack.simulator.library_stars",
        description="Rebuild the shipped real-star library (STELIB, MILES stars left out) "
        "from the sdss-mangadap wheel (`make miles` downloads it).",
    )
    ap.add_argument("--from-wheel", type=Path, required=True, metavar="WHEEL",
                    help="sdss_mangadap-*.whl holding STELIB and MILES's star list")  # fmt: skip
    ap.add_argument("--out", type=Path, default=LIBRARY_PATH, help=f"(default {LIBRARY_PATH})")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.from_wheel.is_file():
        ap.error(f"no such wheel: {args.from_wheel}")
    try:
        lib = build_library(args.from_wheel, args.out)
    except zipfile.BadZipFile as exc:
        ap.error(f"{args.from_wheel} is not a wheel (zip): {exc}")
    types = np.bincount((lib.spectral_types // 10).astype(int), minlength=7)
    print(f"{len(lib.names)} stars; O..M: {' '.join(map(str, types))}; -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
