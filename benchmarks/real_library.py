"""Real stars typed by saved models: the MILES library observed as SDSS spec-lite files.

Every other type figure in this project is measured on simulated spectra: a survey made from
one template family, typed by a model trained on another. This benchmark types *real* stars:
the 985 stars of the MILES library (Sanchez-Blazquez et al. 2006, MNRAS 371, 703; Cenarro et
al. 2007; v9.1), dwarfs to supergiants, O to M, each with its literature MK type
(``paramsMILES_v9.1.txt``). MILES is public (miles.iac.es) and is shipped, with its parameter
file, inside the SDSS MaNGA DAP's wheel on PyPI (``sdss-mangadap``, 121 MB): ``make miles``
fetches that wheel into ``data/external``; nothing of it enters the repository.

Each star is observed the way the issue's real set is: written as a spec-lite file on the SDSS
log-lambda lattice (air wavelengths to vacuum), over MILES's coverage (3540-7410 A, FWHM 2.5 A:
about SDSS's resolution), at an S/N drawn log-uniform over 4-60 with SDSS's sky and
throughput, a radial velocity (sigma 40 km/s), sky-like reddening on top of the star's own
(exponential, mean 0.04) and a flux-calibration tilt (Legendre, sigma 0.04). SPECTROFLUX
carries g and r, the bands the spectrum covers. The files go through the real ETL
(``startrack ingest``) and the models type them.

The surveys the models train on hold real stars of another library (STELIB,
``simulator/library_stars.py``) with every star that is also in MILES left out: this set stays
unseen.

Truth is the MILES type: a star counts when its type has a letter and a subtype (``K3III``,
``B9.5V``; not ``sd:F`` or ``KIIvw``). Figures: median |continuous type - MK type| and the
shares within 2.5 and 5 subtypes, every 3-subtype bin weighted alike (``type_uniform_weights``,
as the issue's set is "O to M"); by luminosity class, and over the stars that have one (a
literature type without a class is often an old HD type, and many of those are MILES's
metal-poor stars); the signed error of F9-K5 stars by gravity and [Fe/H] (MILES's own log g
and [Fe/H]: ``late_type_bias``); and the limit set by the class grid (the model's class
nearest each star's type).

``--twins`` types each star's built-in twin instead (its type, class, coverage and
observation, the simulator's spectrum): what the models lose to real spectra, apart from what
they lose to the observation. The simulator's physics was compared with the stars of even
MILES id (tests/test_templates.py quotes those measurements); ``*_held_out`` figures are over
the odd ones.

Caveats, said where the figures are read: MILES ends at 7410 A, so the TiO and VO bands of M
stars beyond it, and the i and z bands, are missing; its OB supergiants carry their own
reddening; literature types are good to about a subtype.

Usage: python benchmarks/real_library.py (--models DIR [DIR ...] | --warehouse DIR)
       [--miles WHEEL_OR_DIR] [--copies 3] [--seed 0] [--snr 4 60] [--twins]
       [--workdir bench-real-library] [--out real_library.json]
(``make real-stars`` types them with data/warehouse's current model, the demo's.)
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from bench_transfer import by_type_bin, type_metrics, type_uniform_weights
from machine import describe_machine

from startrack.grid import C_KMS, DLOGLAM, air_to_vacuum
from startrack.labels import LUMINOSITY_CLASSES as LUMINOSITY
from startrack.labels import parse_mk, spectral_types
from startrack.simulator.fits_writer import COADD_DTYPE, SpecObj, write_spec_lite
from startrack.simulator.photometry import weights_for_loglam
from startrack.simulator.simulate import (
    BIT_NODATA,
    CALIBRATION_SIGMA,
    _context,
    calibration_tilt,
    noise_sigma,
)
from startrack.star_id import spec_file_name

log = logging.getLogger("real_library")

MILES_DIR_IN_WHEEL = "mangadap/data/spectral_templates/miles/"
MILES_PARAMS = "paramsMILES_v9.1.txt"
PLATE, MJD = 9000, 60000  #: identifiers of the written files (no real plate has them)
FIBERS_PER_PLATE = 1000  #: the ETL, as SDSS, knows fibers 1-1000
SNR_RANGE = (4.0, 60.0)
RV_SIGMA_KMS = 40.0
EBV_MEAN = 0.04


@dataclass(frozen=True)
class LibraryStar:
    miles_id: str
    name: str
    sptype: str
    wavelength_vac: np.ndarray
    flux: np.ndarray
    #: the library's own Teff (K), log g and [Fe/H] (NaN where it has none)
    parameters: tuple[float, float, float] = (math.nan, math.nan, math.nan)


def _param_rows(text: str) -> dict[str, tuple[str, str, tuple[float, float, float]]]:
    """MILES id ('0266') -> (star name, SpT, (Teff, log g, [Fe/H])) from paramsMILES_v9.1.txt
    (fixed columns, found from the header line); NaN for a number it lacks."""
    lines = text.splitlines()
    header = lines[0]
    at_id, at_cat, at_sp = header.index("MILES"), header.index("CaT"), header.index("SpT")
    at_teff = header.index("Teff")
    out = {}
    for line in lines[3:]:
        if len(line) <= at_sp:
            continue
        fields = line[at_sp:].split()
        sptype = fields[0] if fields and line[at_sp] != " " else ""
        numbers = line[at_teff:].split()[:3]
        values = []
        for k in range(3):
            try:
                values.append(float(numbers[k]))
            except (IndexError, ValueError):
                values.append(math.nan)
        out[line[at_id:at_cat].strip()] = (line[:at_id].strip(), sptype, tuple(values))
    return out


def _read(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    with fits.open(io.BytesIO(blob)) as hdul:
        h, flux = hdul[0].header, np.asarray(hdul[0].data, dtype=np.float64)
    air = h["CRVAL1"] + h["CDELT1"] * (np.arange(flux.size) + 1 - h.get("CRPIX1", 1))
    return np.asarray(air_to_vacuum(air)), flux


def load_miles(source: Path) -> Iterator[LibraryStar]:
    """MILES stars from the sdss-mangadap wheel (read inside the zip) or an unpacked folder."""
    if source.suffix == ".whl":
        z = zipfile.ZipFile(source)
        names = [n for n in z.namelist() if n.startswith(MILES_DIR_IN_WHEEL)]
        read = z.read
    else:
        names = [str(p) for p in sorted(source.glob("*"))]

        def read(n: str) -> bytes:
            return Path(n).read_bytes()

    params_name = next((n for n in names if n.endswith(MILES_PARAMS)), None)
    if params_name is None:
        raise SystemExit(f"{source}: no {MILES_PARAMS} (is it the MILES library?)")
    params = _param_rows(read(params_name).decode("latin-1"))
    for n in sorted(names):
        m = re.search(r"star_m(\d{4})V\.fits$", n)
        if m is None or m.group(1) not in params:
            continue
        name, sptype, parameters = params[m.group(1)]
        wave, flux = _read(read(n))
        yield LibraryStar(m.group(1), name, sptype, wave, flux, parameters)


#: log g of each luminosity class for the built-in twins (a type with no class: a dwarf).
CLASS_LOGG = {"V": 4.5, "IV": 3.8, "III": 2.5, "II": 1.8, "I": 1.2, "": 4.5}


def builtin_twin(star: LibraryStar) -> LibraryStar:
    """The same star as the built-in physics draws it (the Teff at which a star of its class's
    log g shows its MK type, solar [Fe/H]) over the same wavelengths: a control that tells
    what the models lose to real spectra from what they lose to the observation and coverage."""
    from startrack.labels import normalize_subclass
    from startrack.simulator.templates import (
        BUILTIN_NAMES,
        luminosity_teff,
        star_flux,
        teff_at_type,
    )

    mk, lum = parse_mk(star.sptype)
    mk_names = [n for n in BUILTIN_NAMES if normalize_subclass(n).spectral_type is not None]
    types = np.array([normalize_subclass(n).spectral_type for n in mk_names])
    name = mk_names[int(np.abs(types - mk).argmin())]
    logg = CLASS_LOGG[lum]
    teff = luminosity_teff(teff_at_type(mk, BUILTIN_NAMES), mk, logg)
    flux = star_flux(name, star.wavelength_vac, teff, logg)
    own = (teff, logg, 0.0)  # the twin's own parameters, not its real star's
    return LibraryStar(star.miles_id, star.name, star.sptype, star.wavelength_vac, flux, own)


def observe(
    star: LibraryStar,
    rng: np.random.Generator,
    plate: int,
    fiber: int,
    snr_range: tuple[float, float],
) -> tuple[np.ndarray, SpecObj, dict]:
    """One spec-lite observation of a library star (COADD rows, SPECOBJ, what was drawn)."""
    ctx = _context(None)
    wide = ctx.templates.loglam
    z = rng.normal(0.0, RV_SIGMA_KMS) / C_KMS
    ebv = float(rng.exponential(EBV_MEAN))
    snr = float(10 ** rng.uniform(*np.log10(snr_range)))
    lo = math.log10(star.wavelength_vac[0] * (1 + z)) + DLOGLAM
    hi = math.log10(star.wavelength_vac[-1] * (1 + z)) - DLOGLAM
    window = np.flatnonzero((wide >= max(lo, math.log10(3801.0))) & (wide <= hi))
    rest = np.interp(wide - math.log10(1 + z), np.log10(star.wavelength_vac), star.flux)
    covered = (wide >= lo) & (wide <= hi)
    reddened = np.where(covered, rest, 0.0) * 10.0 ** (-0.4 * ebv * ctx.ext_per_ebv)
    maggies = reddened @ ctx.weights
    scale = 10.0 ** (-0.4 * 17.5) / maggies[2]  # r = 17.5: a typical SDSS star
    model = reddened[window] * scale * calibration_tilt(rng, window.size, CALIBRATION_SIGMA)
    sky = ctx.sky_continuum[window] + ctx.sky_lines[window]
    sigma = noise_sigma(model, sky, ctx.throughput[window], snr)
    flux = model + sigma * rng.normal(0.0, 1.0, window.size)
    coadd = np.zeros(window.size, dtype=COADD_DTYPE)
    coadd["flux"], coadd["loglam"], coadd["ivar"] = flux, wide[window], 1.0 / sigma**2
    bad = ~np.isfinite(flux) | (model <= 0)
    coadd["and_mask"] = np.where(bad, BIT_NODATA, 0)
    coadd["ivar"][bad] = 0.0
    coadd["wdisp"], coadd["sky"], coadd["model"] = 1.0, sky, model
    photometry = 1e9 * (reddened * scale) @ weights_for_loglam(wide)
    spectroflux = (0.0, float(photometry[1]), float(photometry[2]), 0.0, 0.0)  # g, r covered
    mk, _ = parse_mk(star.sptype)
    subclass = "" if mk is None else f"{'OBAFGKM'[int(mk) // 10]}{int(mk) % 10}"  # ETL wants one
    obj = SpecObj(
        plate=plate, mjd=MJD, fiber=fiber, specobjid=f"{plate}{fiber:04d}",
        ra=0.0, dec=0.0, subclass=subclass, z=z, z_err=1e-5, sn_median_all=snr,
        sn_median=(0.0, snr, snr, 0.0, 0.0), spectroflux=spectroflux,
        elodie_sptype=star.sptype[:10], wavemin=float(10 ** wide[window[0]]),
        wavemax=float(10 ** wide[window[-1]]),
    )  # fmt: skip
    return coadd, obj, {"z": z, "ebv_added": ebv, "snr": snr}


def write_library(
    stars: list[LibraryStar],
    copies: int,
    seed: int,
    spectra_dir: Path,
    snr_range: tuple[float, float] = SNR_RANGE,
) -> pd.DataFrame:
    """Write ``copies`` observations of every typed star; the truth table, one row per file."""
    spectra_dir.mkdir(parents=True, exist_ok=True)
    rows, n = [], 0
    for star in stars:
        mk, lum = parse_mk(star.sptype)
        if mk is None:
            continue
        for c in range(copies):
            plate, fiber = PLATE + n // FIBERS_PER_PLATE, n % FIBERS_PER_PLATE + 1
            n += 1
            rng = np.random.default_rng([seed, int(star.miles_id), c])
            coadd, obj, drawn = observe(star, rng, plate, fiber, snr_range)
            write_spec_lite(spectra_dir / spec_file_name(plate, MJD, fiber), obj, coadd, seed)
            rows.append(
                {"plate": plate, "fiberid": fiber, "miles_id": star.miles_id, "name": star.name,
                 "sptype": star.sptype, "mk_type": mk, "luminosity": lum,
                 "teff": star.parameters[0], "logg": star.parameters[1],
                 "feh": star.parameters[2], **drawn}
            )  # fmt: skip
    return pd.DataFrame(rows)


def score(models: list[Path], warehouse: Path, truth: pd.DataFrame) -> dict:
    """Every model's fusion, lstm and dense types against the MILES types."""
    import torch

    from startrack.ml.artifact import load_artifact
    from startrack.ml.dataset import load_training_data
    from startrack.ml.inference import predict_arrays
    from startrack.ml.train import _subset
    from startrack.warehouse.store import Warehouse

    torch.set_num_threads(1)
    d = load_training_data(Warehouse(warehouse).current())
    rows = np.flatnonzero(d.spec_row >= 0)
    stars = d.stars.iloc[rows].reset_index(drop=True)
    spectra = _subset(d.spectra(), rows)
    keys = pd.MultiIndex.from_arrays([stars["plate"].to_numpy(), stars["fiberid"].to_numpy()])
    t = truth.set_index(["plate", "fiberid"]).loc[keys]
    own = t["mk_type"].to_numpy(float)
    w = type_uniform_weights(own, np.ones(own.size))
    held = t["miles_id"].astype(int).to_numpy() % 2 == 1
    w_held = type_uniform_weights(np.where(held, own, np.nan), held.astype(float))
    lum = t["luminosity"].to_numpy(str)
    has_class = np.isin(lum, LUMINOSITY)
    w_class = type_uniform_weights(np.where(has_class, own, np.nan), has_class.astype(float))
    result = {"n_spectra": int(own.size), "n_stars": int(t["miles_id"].nunique())}
    for m in models:
        model, meta = load_artifact(m)
        pred = predict_arrays(model, meta, stars, spectra)
        grid = spectral_types(list(meta["labels"]) if "labels" in meta else [])
        entry = {}
        for head in ("fusion", "lstm", "dense"):
            p = np.asarray(pred[head].spectral_type, dtype=float)
            entry[head] = type_metrics(own, p, w)
            entry[f"{head}_held_out"] = type_metrics(own, p, w_held)
        fusion = np.asarray(pred["fusion"].spectral_type, dtype=float)
        entry["fusion_by_luminosity"] = {
            c: type_metrics(np.where(lum == c, own, np.nan), fusion, w) for c in LUMINOSITY
        }
        entry["fusion_by_bin"] = by_type_bin(own, fusion, w)
        entry["fusion_with_class"] = type_metrics(own, fusion, w_class)
        if "logg" in t:
            entry["fusion_late_type_bias"] = late_type_bias(own, fusion, t)
        if np.isfinite(grid).any():
            g = np.unique(grid[np.isfinite(grid)])
            nearest = g[np.abs(own[:, None] - g[None, :]).argmin(axis=1)]
            entry["class_grid_limit"] = type_metrics(own, nearest, w)
        result[str(m)] = entry
    return result


#: F9-K5 (MK 39-55): where a dwarf and a giant of one Teff differ by several subtypes, and
#: [Fe/H] changes the lines most; log g above DWARF_LOGG counts as a dwarf (MILES's own log g;
#: at or below it: giants, supergiants and most subgiants).
LATE_TYPES = (39.0, 55.0)
DWARF_LOGG = 3.8
FEH_BANDS = ((-5.0, -1.0), (-1.0, -0.5), (-0.5, 1.0))


def late_type_bias(own: np.ndarray, pred: np.ndarray, params: pd.DataFrame) -> dict:
    """Signed median error (model - MK type) and share beyond 5 subtypes of F9-K5 stars, by
    gravity (MILES log g) and [Fe/H]: a model that cannot tell a dwarf from a giant of one
    Teff types dwarfs early and giants late; one that reads weak lines as heat types metal-poor
    stars early."""
    logg, feh = params["logg"].to_numpy(float), params["feh"].to_numpy(float)
    late = (own >= LATE_TYPES[0]) & (own <= LATE_TYPES[1]) & np.isfinite(logg) & np.isfinite(feh)
    out = {}
    for group, is_group in (("dwarfs", logg > DWARF_LOGG), ("giants", logg <= DWARF_LOGG)):
        for lo, hi in FEH_BANDS:
            pick = late & is_group & (feh > lo) & (feh <= hi)
            err = pred[pick] - own[pick]
            out[f"{group} [Fe/H] {lo:g}..{hi:g}"] = {
                "n": int(pick.sum()),
                "signed_median": round(float(np.median(err)), 2) if err.size else None,
                "beyond_5": round(float(np.mean(np.abs(err) > 5)), 3) if err.size else None,
            }
    return out


def _default_source() -> Path | None:
    found = sorted(Path("data/external").glob("sdss_mangadap-*.whl"))
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--models", nargs="+", type=Path,
                       help="model artifact directories (each holds a trained model)")  # fmt: skip
    which.add_argument("--warehouse", type=Path,
                       help="type with this warehouse's current model")  # fmt: skip
    ap.add_argument("--miles", type=Path, default=None,
                    help="the sdss-mangadap wheel or a folder of MILES files "
                    "(default: data/external/sdss_mangadap-*.whl, from `make miles`)")  # fmt: skip
    ap.add_argument("--copies", type=int, default=3,
                    help="observations per star (3: the README's figures)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, nargs=2, default=SNR_RANGE, metavar=("LO", "HI"),
                    help="S/N range, drawn log-uniform (default: the real set's 4 60)")  # fmt: skip
    ap.add_argument("--twins", action="store_true",
                    help="control: type each star's built-in twin instead (same type, class, "
                    "coverage and observation; simulated spectrum)")  # fmt: skip
    ap.add_argument("--workdir", type=Path, default=Path("bench-real-library"))
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.warehouse is not None:
        from startrack.ml.registry import current_model_dir
        from startrack.warehouse.store import Warehouse

        found = current_model_dir(Warehouse(args.warehouse))
        if found is None:
            raise SystemExit(f"{args.warehouse}: no trained model (run `make demo` first)")
        args.models = [found]
    source = args.miles or _default_source()
    if source is None or not source.exists():
        raise SystemExit("no MILES library: run `make miles` or pass --miles WHEEL_OR_DIR")
    t0 = time.perf_counter()
    library = [s for s in load_miles(source) if parse_mk(s.sptype)[0] is not None]
    if args.twins:
        library = [builtin_twin(s) for s in library]
    log.info("read %d MILES stars from %s", len(library), source)
    spectra_dir, warehouse = args.workdir / "spectra", args.workdir / "warehouse"
    marker = args.workdir / ".real-library-workdir"
    if args.workdir.exists() and any(args.workdir.iterdir()):
        if not marker.exists():  # not ours: never delete a user's files
            raise SystemExit(f"{args.workdir} is not empty and not a real_library workdir")
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    marker.touch()
    truth = write_library(library, args.copies, args.seed, spectra_dir, tuple(args.snr))
    truth.to_csv(args.workdir / "truth.csv", index=False)
    log.info("wrote %d spec-lite files of %d typed stars", len(truth), truth["miles_id"].nunique())
    startrack = Path(sys.executable).with_name("startrack")
    ingest = subprocess.run(
        [str(startrack), "ingest", "--warehouse", str(warehouse), str(spectra_dir)],
        capture_output=True, text=True,
    )  # fmt: skip
    if ingest.returncode != 0:  # say why, not just that it failed
        raise SystemExit(f"startrack ingest failed ({ingest.returncode}):\n{ingest.stderr[-2000:]}")
    result = {
        "machine": describe_machine(),
        "source": str(source),
        **score(args.models, warehouse, truth),
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for m in args.models:
        e = result[str(m)]
        line = "  ".join(
            f"{h} {e[h]['median_error']:.2f}/{e[h]['within_2_5']:.3f}/{e[h]['within_5']:.3f}"
            for h in ("fusion", "lstm", "dense")
        )
        lum = " ".join(
            f"{c}:{v['within_2_5']:.2f}(n{v['n']})" for c, v in e["fusion_by_luminosity"].items()
        )
        held = "/".join(
            f"{e['fusion_held_out'][k]:.3f}" for k in ("median_error", "within_2_5", "within_5")
        )
        print(f"{m}: {line} | held-out half: fusion {held} | {lum}")
        c = e["fusion_with_class"]
        print(f"  stars with a luminosity class: fusion {c['median_error']:.2f}/"
              f"{c['within_2_5']:.3f}/{c['within_5']:.3f}")  # fmt: skip
        for band, v in e.get("fusion_late_type_bias", {}).items():
            if v["n"]:
                print(f"  F9-K5 {band}: signed median {v['signed_median']:+.1f}, "
                      f"beyond 5 {v['beyond_5']:.2f} (n {v['n']})")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
