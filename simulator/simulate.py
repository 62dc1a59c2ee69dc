"""`startrack simulate`: a demo survey written in the real SDSS formats.

Writes ``<out>/catalog.csv`` (CasJobs-like SpecObj x PhotoObj columns) and, for a minority of
the stars, ``<out>/spectra/spec-PPPP-MMMMM-FFFF.fits`` spec-lite files, so the demo runs the very
same ETL as real downloads. Everything is SIMULATED (the FITS headers say so).

How a star is made: a template for its subclass (built-in or the real SDSS file), a radial
velocity shift on the log-lambda lattice, dust reddening (O'Donnell 1994, R_V = 3.1) with
E(B-V) mostly small and the lines of its gas (Ca II, Na D, K I, diffuse bands; simulator.
interstellar), scaled to its r magnitude; ugriz from that noiseless reddened spectrum
through the SDSS filter curves. Spectra then get a smooth flux-calibration distortion, the SDSS
coverage (3800-9200 A with a few pixels of jitter), noise at an S/N set by the magnitude
(photon + sky noise, with the strong night-sky lines), masked pixel runs, and sky-line
residuals. Photometry-only stars get the same colours from a precomputed (template, E(B-V))
colour table, so an 800,000-star catalog is vectorized.

Determinism: the survey plan uses one generator seeded by --seed; each spectrum uses its own
generator seeded by (seed, star index), so any number of workers gives identical output.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy.ndimage import gaussian_filter1d, maximum_filter1d
from tqdm import tqdm

from startrack.executors import open_executor
from startrack.grid import C_KMS, DLOGLAM, air_to_vacuum
from startrack.labels import MK_LETTERS, normalize_subclass
from startrack.simulator.extinction import extinction_magnitudes
from startrack.simulator.fits_writer import (
    COADD_DTYPE,
    SpecObj,
    write_spec_lite,
)
from startrack.simulator.interstellar import sightline_strength
from startrack.simulator.interstellar import transmission as interstellar_transmission
from startrack.simulator.library_stars import load_library, nearest_classes, wide_library
from startrack.simulator.photometry import BANDS, observe_psf_mags, weights_for_loglam
from startrack.simulator.targeting import (
    REAL_STARS_SHARE,
    check_targeting,
    selection_weights,
    spectroscopic_shares,
    weighted_sample,
)
from startrack.simulator.templates import (
    TemplateSet,
    absorption_change,
    extend_for_photometry,
    load_templates,
    luminosity_teff,
    physics_change,
    spectral_type_at,
    star_flux,
    teff_range,
)
from startrack.simulator.type_scale import (
    TEMPLATE_TYPES,
    hot_rows_from_physics,
    reference_feh,
    resample_onto_names,
)
from startrack.star_id import spec_file_name

log = logging.getLogger(__name__)

#: Label frequencies per 30,000 stars: the 27 subclasses of the real SDSS table
#: (star_subclass_labels.csv), plus the rest of the SDSS template vocabulary at low rates.
DEFAULT_SUBCLASS_COUNTS: dict[str, int] = {
    "A0": 6049, "F5": 5110, "F9": 2514, "M6": 1506, "G2": 1500, "K5": 1278, "K7": 1164,
    "K3": 1058, "M3": 1011, "M5": 991, "M2": 907, "M0": 851, "F2": 850, "M4": 781, "K1": 730,
    "M7": 717, "G0": 679, "M1": 672, "M8": 517, "M9": 312, "OB": 213, "A0p": 177, "B9": 109,
    "M0V": 100, "M2V": 74, "B6": 68, "O": 62,
    "G5": 300, "WD": 250, "WDmagnetic": 30, "CarbonWD": 20, "Carbon": 60, "Carbon_lines": 30,
    "L0": 40, "L1": 35, "L2": 30, "L3": 25, "L4": 20, "L5": 20, "L5.5": 10, "L6": 10,
    "L7": 10, "L8": 8, "L9": 8, "T2": 6,
}  # fmt: skip

SPEC_R_RANGE = (14.0, 21.0)  #: r magnitudes of stars with spectra
PHOT_R_RANGE = (14.0, 22.5)  #: r magnitudes of photometry-only stars (fainter)
EBV_GRID = np.linspace(0.0, 0.5, 51)  #: E(B-V) grid of the colour table
PLATES = (266, 3000)
MJDS = (51600, 55000)
FIBERS_PER_PLATE = 640
SDSS_START_INDEX = 35_800  #: log10(3801 A) * 1e4, first pixel before jitter
SDSS_END_INDEX = 39_640  #: log10(9204 A) * 1e4, last pixel before jitter
CATALOG_NAME = "catalog.csv"
REAL_STARS_NAME = "real_stars.csv"  #: which spectra are real library stars, and which
SPECTRA_DIR = "spectra"

# SDSS SPPIXMASK bits used here.
BIT_FULLREJECT = 1 << 18
BIT_BRIGHTSKY = 1 << 23
BIT_NODATA = 1 << 24
BIT_COMBINEREJ = 1 << 25

#: Strong night-sky emission lines (air A, converted to vacuum below) with relative peak
#: strengths: [O I] 5577, Na D, [O I] 6300/6363, and the brightest OH Meinel lines
#: (Osterbrock et al. 1996) beyond 7200 A.
_SKY_LINES_AIR = (
    (5577.34, 300.0), (5889.95, 60.0), (5895.92, 50.0), (6300.30, 120.0), (6363.78, 40.0),
    (6863.96, 40.0), (7276.41, 60.0), (7316.28, 90.0), (7340.89, 90.0), (7369.25, 70.0),
    (7401.69, 70.0), (7750.64, 110.0), (7794.11, 110.0), (7821.50, 120.0), (7853.21, 90.0),
    (7913.71, 130.0), (7964.65, 140.0), (7993.33, 150.0), (8344.60, 200.0), (8399.17, 170.0),
    (8430.17, 160.0), (8465.21, 140.0), (8504.63, 120.0), (8827.10, 250.0), (8885.85, 260.0),
    (8919.64, 180.0), (8943.40, 200.0), (8958.09, 210.0), (8988.58, 220.0), (9001.37, 180.0),
    (9037.95, 150.0), (9062.89, 150.0),
)  # fmt: skip

CATALOG_COLUMNS = [
    "plate", "mjd", "fiberID", "specObjID", "ra", "dec", "class", "subClass", "z", "zErr",
    "snMedian", *(f"psfMag_{b}" for b in BANDS), *(f"psfMagErr_{b}" for b in BANDS),
    "elodie_sptype",
]  # fmt: skip


@dataclass(frozen=True)
class SimulationSummary:
    """What `simulate` wrote, for the CLI to report."""

    out_dir: Path
    catalog_path: Path
    spectra_dir: Path
    n_stars: int
    n_spectra: int
    n_bad_files: int
    n_skipped_labels: int
    seconds: float


# ----------------------------------------------------------------------------- helpers
def specobjid(plate: np.ndarray, mjd: np.ndarray, fiber: np.ndarray, run2d: int = 26) -> list[str]:
    """SDSS DR8+ specObjID bit packing (plate<<50 | fiber<<38 | (mjd-50000)<<24 | run2d<<10)."""
    p = np.asarray(plate, dtype=np.uint64)
    f = np.asarray(fiber, dtype=np.uint64)
    m = np.asarray(mjd, dtype=np.uint64) - np.uint64(50_000)
    ids = (p << np.uint64(50)) | (f << np.uint64(38)) | (m << np.uint64(24))
    ids |= np.uint64(run2d) << np.uint64(10)
    return [str(int(x)) for x in ids]


def _star_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def _faint_skewed_mags(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """Magnitudes with number counts rising as 10^(0.25 m) (more faint stars, like surveys)."""
    a = 0.25 * math.log(10.0)
    u = rng.random(n)
    return np.log(np.exp(a * lo) + u * (np.exp(a * hi) - np.exp(a * lo))) / a


def snr_for_mag(r: np.ndarray) -> np.ndarray:
    """Median S/N per pixel of an SDSS stellar spectrum: ~80 at r=14, ~3 at r=21."""
    return 5.0 * 10.0 ** (-0.2 * (np.asarray(r) - 20.0))


#: ELODIE_SPTYPE is the MK type of the best-matching ELODIE library star: good to about this
#: many subtypes (sigma), in whole subtypes.
ELODIE_SIGMA = 1.0


def elodie_name(spectral_type: float, logg: float) -> str:
    """An ELODIE-style MK type ('G8III') for a type number and log g."""
    value = int(np.clip(np.rint(spectral_type), 0, 69))
    lum = "V" if logg > 4.15 else "IV" if logg > 3.15 else "III" if logg > 1.85 else "Ib"
    return f"{MK_LETTERS[value // 10]}{value % 10}{lum}"


def _elodie_sptype(rng: np.random.Generator, subclasses: np.ndarray) -> np.ndarray:
    """A plausible ELODIE best-match type for a star at its subclass's type (photometry-only
    stars are rendered at it; a spectrum's own draw replaces this, ``render_spectrum``)."""
    names, inverse = np.unique(subclasses.astype(str), return_inverse=True)
    types = np.array([normalize_subclass(s).spectral_type or np.nan for s in names])[inverse]
    mk = np.isfinite(types)
    jitter = np.rint(rng.normal(0.0, ELODIE_SIGMA, types.size))
    value = np.clip(np.floor(np.nan_to_num(types)) + jitter, 0, 69).astype(int)
    lum = rng.choice(np.array(["V", "IV", "III", ""]), size=types.size, p=[0.55, 0.15, 0.1, 0.2])
    letters = np.array(list(MK_LETTERS))[value // 10]
    digits = (value % 10).astype(str)
    mk_names = np.char.add(np.char.add(letters, digits), lum)
    return np.where(mk, mk_names, "unknown").astype(object)


# ----------------------------------------------------------------------------- labels and ids
def _synthetic_ids(
    rng: np.random.Generator, n: int, exclude: set[tuple[int, int, int]] | None = None
) -> pd.DataFrame:
    """Unique (plate, mjd, fiberID): plates 266-3000, one MJD per plate rising with plate."""
    all_plates = np.arange(PLATES[0], PLATES[1] + 1)
    n_plates = int(min(all_plates.size, max(1, math.ceil(n / 120))))
    if n > n_plates * FIBERS_PER_PLATE:
        raise ValueError(f"cannot place {n} stars on {n_plates} plates of 640 fibers")
    plates = np.sort(rng.choice(all_plates, n_plates, replace=False))
    span = (MJDS[1] - MJDS[0] - 120) / (PLATES[1] - PLATES[0])
    mjds = (
        MJDS[0] + np.rint((plates - PLATES[0]) * span).astype(int) + rng.integers(0, 120, n_plates)
    )
    extra = 0 if not exclude else len(exclude)
    want = min(n + extra, n_plates * FIBERS_PER_PLATE)
    slots = np.sort(rng.choice(n_plates * FIBERS_PER_PLATE, want, replace=False))
    ids = pd.DataFrame(
        {
            "plate": plates[slots // FIBERS_PER_PLATE],
            "mjd": mjds[slots // FIBERS_PER_PLATE],
            "fiberID": slots % FIBERS_PER_PLATE + 1,
        }
    )
    if exclude:
        keys = list(zip(ids.plate, ids.mjd, ids.fiberID, strict=True))
        ids = ids[[k not in exclude for k in keys]]
    if len(ids) < n:
        raise ValueError("could not draw enough unique identifiers; ask for fewer stars")
    keep = np.sort(rng.choice(len(ids), n, replace=False))
    return ids.iloc[keep].reset_index(drop=True)


def _draw_by_share(rng: np.random.Generator, shares: dict[str, float], k: int) -> np.ndarray:
    """``k`` subclass names drawn with replacement in the given shares."""
    names = np.array(list(shares))
    q = np.array([shares[name] for name in names])
    return rng.choice(names, k, p=q / q.sum())


def _default_labels(
    rng: np.random.Generator, n: int, n_spectra: int, templates: TemplateSet, targeting: str
) -> tuple[pd.DataFrame, int]:
    """Synthetic identifiers with SDSS's label frequencies; the spectroscopic stars' labels
    follow the targeting (``targeting.spectroscopic_shares``)."""
    usable = {k: v for k, v in DEFAULT_SUBCLASS_COUNTS.items() if templates.index_of(k) is not None}
    dropped = sorted(set(DEFAULT_SUBCLASS_COUNTS) - set(usable))
    if dropped:
        log.info("no template for %s: these subclasses are not simulated", ", ".join(dropped))
    names = np.array(list(usable))
    p = np.array(list(usable.values()), dtype=float)
    ids = _synthetic_ids(rng, n)
    subclass = rng.choice(names, n, p=p / p.sum())
    spec = rng.choice(n, n_spectra, replace=False)
    subclass[spec] = _draw_by_share(rng, spectroscopic_shares(usable, targeting), n_spectra)
    ids["subClass"] = subclass
    ids["has_spectrum"] = np.isin(np.arange(n), spec)
    return ids, 0


def read_label_table(path: Path) -> pd.DataFrame:
    """A real label table (plate, mjd, fiberID, subClass), one row per identifier."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--labels-from: file not found: {path}")
    table = pd.read_csv(path, dtype={"subClass": str})
    needed = {"plate", "mjd", "fiberID", "subClass"}
    if missing := needed - set(table.columns):
        raise ValueError(
            f"--labels-from {path}: missing column(s) {', '.join(sorted(missing))}; "
            f"expected {', '.join(sorted(needed))}"
        )
    table = table.dropna(subset=list(needed))
    table = table.astype({"plate": int, "mjd": int, "fiberID": int})
    table["subClass"] = table["subClass"].str.strip()
    return table.drop_duplicates(["plate", "mjd", "fiberID"]).reset_index(drop=True)


def _labels_from_table(
    rng: np.random.Generator,
    n: int,
    n_spectra: int,
    templates: TemplateSet,
    path: Path,
    targeting: str,
) -> tuple[pd.DataFrame, int]:
    """Real identifiers and labels; the spectroscopic ones are drawn from the whole table by
    the targeting, the photometry-only ones at random from the rest."""
    table = read_label_table(path)
    has_template = table["subClass"].map(lambda s: templates.index_of(s) is not None)
    skipped = int((~has_template).sum())
    if skipped:
        counts = table.loc[~has_template, "subClass"].value_counts()
        log.warning(
            "skipped %d label rows whose subclass has no template: %s",
            skipped,
            ", ".join(f"{k} ({v})" for k, v in counts.items()),
        )
    table = table[has_template].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"--labels-from {path}: no row has a subclass with a template")
    take = min(n, len(table))
    labels = table["subClass"].to_numpy(str)
    shares = spectroscopic_shares(table["subClass"].value_counts().to_dict(), targeting)
    weights = selection_weights(labels, shares)
    n_real_spec = min(n_spectra, take)
    spec = weighted_sample(rng, weights, n_real_spec)
    rest = np.setdiff1d(np.arange(len(table)), spec)
    chosen = np.sort(np.concatenate([spec, rng.choice(rest, take - n_real_spec, replace=False)]))
    rows = table.iloc[chosen].reset_index(drop=True)
    rows["has_spectrum"] = np.isin(chosen, spec)
    if take < n:  # more stars than real rows: synthetic ids, real label frequencies
        log.info("%d real identifiers; %d more stars get synthetic ones", take, n - take)
        exclude = set(zip(table.plate, table.mjd, table.fiberID, strict=True))
        extra = _synthetic_ids(rng, n - take, exclude=exclude)
        extra["subClass"] = rng.choice(labels, n - take)
        extra_spec = rng.choice(n - take, n_spectra - n_real_spec, replace=False)
        extra["has_spectrum"] = np.isin(np.arange(n - take), extra_spec)
        n_extra_spec = int(extra["has_spectrum"].sum())
        extra.loc[extra["has_spectrum"], "subClass"] = _draw_by_share(rng, shares, n_extra_spec)
        rows = pd.concat([rows, extra], ignore_index=True)
    return rows[["plate", "mjd", "fiberID", "subClass", "has_spectrum"]], skipped


# ----------------------------------------------------------------------------- survey plan
BUILTIN = "builtin"
#: Bumped when the same settings would simulate a different survey (the demo re-simulates).
SIMULATOR_VERSION = 18
_LIBRARY_STREAM = 7  #: second seed word of the draw of which spectra are real stars


def template_families(templates: str | Path | list | None) -> list[str | None]:
    """``--templates``: 'builtin', a template file, or several joined by commas
    ('builtin,spEigenStar-53724.fits'); None stands for the built-in set."""
    if templates is None:
        return [None]
    items = templates if isinstance(templates, list) else str(templates).split(",")
    out: list[str | None] = []
    for item in items:
        if item is None or str(item).strip() in ("", BUILTIN):
            out.append(None)
            continue
        path = Path(str(item).strip()).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--templates: file not found: {path}")
        out.append(str(path.resolve()))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class _AnyFamily:
    """index_of over several template sets: a subclass is simulated if any set has it."""

    sets: tuple[TemplateSet, ...]

    def index_of(self, subclass: str) -> int | None:
        found = [ts.index_of(subclass) for ts in self.sets]
        return next((i for i in found if i is not None), None)


def check_template_types(template_types: str) -> str:
    """``template_types`` itself, or a ValueError naming the choices."""
    if template_types not in TEMPLATE_TYPES:
        raise ValueError(
            f"--template-types must be one of {', '.join(TEMPLATE_TYPES)}, got {template_types!r}"
        )
    return template_types


@lru_cache(maxsize=4)
def _wide_templates(templates_path: str | None, template_types: str = "measured") -> TemplateSet:
    """A family on the wide lattice; a file's F-K spectra at the MK types of their names and
    its O-B rows from the built-in physics (``type_scale``) unless ``template_types`` is
    'names'."""
    ts = extend_for_photometry(load_templates(Path(templates_path) if templates_path else None))
    if not _rendered_on_scale(templates_path, template_types):
        return ts
    flux = resample_onto_names(ts.loglam, ts.flux, ts.names)
    return TemplateSet(ts.names, ts.loglam, hot_rows_from_physics(ts.loglam, flux, ts.names))


def _rendered_on_scale(templates_path: str | None, template_types: str) -> bool:
    """Whether a family's F-K spectra are rendered on the MK scale: a file's, unless 'names'."""
    return templates_path is not None and check_template_types(template_types) == "measured"


@lru_cache(maxsize=4)
def colour_table(templates_path: str | None, template_types: str = "measured") -> np.ndarray:
    """AB mag minus r (ntemplates, len(EBV_GRID), 5) for each template and E(B-V)."""
    ts = _wide_templates(templates_path, template_types)
    ext = 10.0 ** (-0.4 * extinction_magnitudes(ts.wavelength, EBV_GRID))  # (nebv, npix)
    maggies = (ts.flux[:, None, :] * ext[None, :, :]) @ weights_for_loglam(ts.loglam)
    mags = -2.5 * np.log10(np.clip(maggies, 1e-300, None))
    return mags - mags[:, :, 2:3]


def plan_survey(
    n_stars: int,
    n_spectra: int,
    seed: int,
    templates: Path | None = None,
    labels_from: Path | None = None,
    template_types: str = "measured",
    targeting: str = "random",
    real_stars: float = REAL_STARS_SHARE,
) -> tuple[pd.DataFrame, int]:
    """Every star's parameters (vectorized), and how many label rows were skipped.

    Columns: the catalog identifiers plus family, template_types, template_row, r_true, ebv,
    z_true, snr_target, has_spectrum, library_row. Which stars have a spectrum: ``targeting``;
    which of those are real library stars: ``real_stars`` (``assign_real_stars``).
    """
    check_template_types(template_types)
    check_targeting(targeting)
    check_real_stars(real_stars)
    if n_stars < 1:
        raise ValueError("--stars must be at least 1")
    if not 0 <= n_spectra <= n_stars:
        raise ValueError(f"--spectra must be between 0 and --stars ({n_stars}), got {n_spectra}")
    families = template_families(templates)
    sets = [_wide_templates(key, template_types) for key in families]
    ts = _AnyFamily(tuple(sets))
    rng = np.random.default_rng(np.random.SeedSequence([seed]))
    if labels_from is not None:
        stars, skipped = _labels_from_table(
            rng, n_stars, n_spectra, ts, Path(labels_from), targeting
        )
    else:
        stars, skipped = _default_labels(rng, n_stars, n_spectra, ts, targeting)
    n = len(stars)
    # each star from one family (at random among those with a template for its subclass)
    fam = rng.integers(0, len(families), n)
    row = np.full(n, -1)
    for name in stars["subClass"].unique():
        at = np.flatnonzero(stars["subClass"].to_numpy() == name)
        has = [k for k, t in enumerate(sets) if t.index_of(name) is not None]
        fam[at] = np.where(np.isin(fam[at], has), fam[at], has[0])
        for k in has:
            row[at[fam[at] == k]] = sets[k].index_of(name)
    stars["family"] = [families[k] or BUILTIN for k in fam]
    stars["template_types"] = template_types
    stars["template_row"] = row
    stars["specObjID"] = specobjid(stars.plate, stars.mjd, stars.fiberID)

    # Sky positions: a centre per plate in the SDSS footprint, stars within 1.49 deg of it.
    plates, inverse = np.unique(stars.plate.to_numpy(), return_inverse=True)
    ra0 = rng.uniform(0.0, 360.0, plates.size)
    dec0 = np.degrees(
        np.arcsin(rng.uniform(np.sin(np.radians(-10)), np.sin(np.radians(70)), plates.size))
    )
    rad = 1.49 * np.sqrt(rng.random(n))
    ang = rng.uniform(0.0, 2 * np.pi, n)
    dec = np.clip(dec0[inverse] + rad * np.sin(ang), -89.9, 89.9)
    stars["ra"] = (ra0[inverse] + rad * np.cos(ang) / np.cos(np.radians(dec))) % 360.0
    stars["dec"] = dec

    has_spec = stars["has_spectrum"].to_numpy(bool)
    r = _faint_skewed_mags(rng, n, *PHOT_R_RANGE)
    r[has_spec] = _faint_skewed_mags(rng, int(has_spec.sum()), *SPEC_R_RANGE)
    stars["r_true"] = r
    stars["ebv"] = np.clip(rng.exponential(0.04, n), 0.0, 0.35)
    stars["z_true"] = rng.normal(0.0, 40.0, n) / C_KMS
    stars["snr_target"] = np.clip(snr_for_mag(r) * 10.0 ** rng.normal(0.0, 0.08, n), 0.8, 150.0)
    zerr_kms = (1.5 + 60.0 / stars["snr_target"]) * rng.lognormal(0.0, 0.2, n)
    stars["zErr"] = zerr_kms / C_KMS
    stars["z"] = stars["z_true"] + rng.normal(0.0, 1.0, n) * stars["zErr"]
    stars["elodie_sptype"] = _elodie_sptype(rng, stars["subClass"].to_numpy())
    stars["class"] = "STAR"
    assign_real_stars(stars, sets, families, real_stars, seed)
    return stars, skipped


def check_real_stars(share: float) -> float:
    """``share`` itself, or a ValueError saying what it must be."""
    if not (isinstance(share, int | float) and 0.0 <= share <= 1.0):
        raise ValueError(f"--real-stars must be a share of the spectra from 0 to 1, got {share!r}")
    return float(share)


def assign_real_stars(
    stars: pd.DataFrame,
    sets: list[TemplateSet],
    families: list[str | None],
    share: float,
    seed: int,
) -> None:
    """Make ``share`` of the spectra observations of real library stars, in place.

    A spectrum the plan gave subclass X becomes a library star the SDSS fit would call X (X
    is the nearest class its family has to the star's MK type), each library star about as
    often (``_each_star_alike``): labels, identifiers and the targeting's type mix stay as
    planned; a subclass no library star has (WD, L, the coolest M) stays simulated. Its
    ELODIE type is its literature MK type. Their own random stream: the rest of the survey is
    drawn as without them."""
    stars["library_row"] = -1
    spec = np.flatnonzero(stars["has_spectrum"].to_numpy(bool))
    if share == 0 or spec.size == 0:
        return
    lib = load_library()
    rng = np.random.default_rng(np.random.SeedSequence([seed, _LIBRARY_STREAM]))
    subclass, family = stars["subClass"].to_numpy(str), stars["family"].to_numpy(str)
    pools: dict[tuple[str, str], np.ndarray] = {}
    for key, ts in zip(families, sets, strict=True):
        classes = nearest_classes(lib.spectral_types, ts.names)
        for name in np.unique(classes):
            pools[(key or BUILTIN, name)] = np.flatnonzero(classes == name)
    eligible = spec[[(family[i], subclass[i]) in pools for i in spec]]
    want = min(round(share * spec.size), eligible.size)
    at, rows = _each_star_alike(rng, eligible, family, subclass, pools, want)
    types, lum = lib.spectral_types[rows], np.array(lib.luminosity, dtype=object)[rows]
    letters = np.array(list(MK_LETTERS))[(types // 10).astype(int)]
    elodie = [f"{a}{t % 10:g}{c}" for a, t, c in zip(letters, types, lum, strict=True)]
    stars.loc[stars.index[at], "library_row"] = rows
    stars.loc[stars.index[at], "elodie_sptype"] = elodie


def _each_star_alike(
    rng: np.random.Generator,
    eligible: np.ndarray,
    family: np.ndarray,
    subclass: np.ndarray,
    pools: dict[tuple[str, str], np.ndarray],
    want: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``want`` of the ``eligible`` spectra (sorted) and the library row each becomes.

    Round robin over the library stars in a random order, each taking a spectrum planned for
    its class while its class has one left: every star is observed about as often, where
    drawing stars by their class's share made one M6 giant every real M6 (34 of them) and left
    the classes STELIB fills densely (F-K) to a few of their stars each (README, stop 40)."""
    free: dict[tuple[str, str], list[int]] = {}
    for i in rng.permutation(eligible):
        free.setdefault((family[i], subclass[i]), []).append(int(i))
    owners = [(key, int(r)) for key, pool in pools.items() if key in free for r in pool]
    order = rng.permutation(len(owners))
    at: list[int] = []
    rows: list[int] = []
    while len(at) < want:
        before = len(at)
        for j in order:
            key, row = owners[j]
            if free[key] and len(at) < want:
                at.append(free[key].pop())
                rows.append(row)
        if len(at) == before:  # every class with a library star is used up
            break
    keep = np.argsort(at)
    return np.asarray(at, dtype=int)[keep], np.asarray(rows, dtype=int)[keep]


def _catalog_photometry(stars: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Vectorized ugriz for every star from the colour table (spectra overwrite theirs)."""
    x = np.clip(stars["ebv"].to_numpy() / (EBV_GRID[1] - EBV_GRID[0]), 0, EBV_GRID.size - 1.001)
    i0 = x.astype(int)
    w = (x - i0)[:, None]
    rows = stars["template_row"].to_numpy()
    colours = np.zeros((len(stars), 5))
    family = stars["family"].to_numpy()
    for key in np.unique(family):
        table = colour_table(None if key == BUILTIN else key, stars["template_types"].iat[0])
        at = family == key
        c0, c1 = table[rows[at], i0[at]], table[rows[at], i0[at] + 1]
        colours[at] = c0 * (1 - w[at]) + c1 * w[at]
    true = stars["r_true"].to_numpy()[:, None] + colours
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1 << 40]))
    mags, errs = observe_psf_mags(true, rng.normal(0.0, 1.0, true.shape))
    out = {f"psfMag_{b}": mags[:, j] for j, b in enumerate(BANDS)}
    out |= {f"psfMagErr_{b}": errs[:, j] for j, b in enumerate(BANDS)}
    return pd.DataFrame(out, index=stars.index)


# ----------------------------------------------------------------------------- one spectrum
@dataclass(frozen=True)
class _Context:
    """Per-process constants for rendering spectra."""

    templates: TemplateSet  # on the wide lattice
    ext_per_ebv: np.ndarray  # A_lambda / E(B-V) on the wide lattice
    weights: np.ndarray  # maggie weights on the wide lattice
    sky_continuum: np.ndarray
    sky_lines: np.ndarray
    throughput: np.ndarray
    builtin: bool  # parametric templates: each star gets its own Teff, log g, [Fe/H]
    reference_feh: np.ndarray  # per template row: the [Fe/H] its spectrum stands for


#: Flux-calibration distortion (Legendre coefficients' sigma) of simulated spectra: SDSS
#: spectrophotometry is good to a few per cent, but tilts of 5-10 % across the spectrum occur.
CALIBRATION_SIGMA = 0.04
#: Luminosity classes drawn for MK stars: log g and how often (dwarfs dominate SDSS spectra).
LOGG_CLASSES = ((4.5, 0.6), (3.8, 0.12), (2.5, 0.22), (1.2, 0.06))
#: [Fe/H] populations (share, mean, sigma): SDSS looks out of the disc, so a quarter of its
#: stars are halo stars (Ivezic et al. 2008: disc ~ -0.2 +- 0.3, halo ~ -1.5 +- 0.4). A metal-
#: poor G2 has the weak lines of an F5 dwarf; a model that never saw one calls it F5.
FEH_POPULATIONS = ((0.75, -0.2, 0.3), (0.25, -1.5, 0.4))


#: [Fe/H] a template file's mean spectra stand for: the mean of FEH_POPULATIONS (SDSS templates
#: are averages of SDSS stars), so a disc star gets stronger lines than its template, a halo
#: star weaker ones. Not the F-K spectra rendered on the MK scale: they stand for the scale's
#: dwarfs' (``type_scale.reference_feh``).
TEMPLATE_FILE_FEH = sum(share * mean for share, mean, _ in FEH_POPULATIONS)


def _gravity_metallicity(rng: np.random.Generator) -> tuple[float, float]:
    """One star's log g (a luminosity class of LOGG_CLASSES) and [Fe/H] (FEH_POPULATIONS)."""
    loggs, weights = zip(*LOGG_CLASSES, strict=True)
    logg = float(rng.choice(loggs, p=weights)) + rng.normal(0.0, 0.2)
    share, mean, sigma = zip(*FEH_POPULATIONS, strict=True)
    k = int(rng.choice(len(share), p=share))
    return logg, float(np.clip(rng.normal(mean[k], sigma[k]), -2.5, 0.5))


def _teff_within(name: str, names: tuple[str, ...], rng: np.random.Generator) -> float:
    """A Teff anywhere (log-uniform) in the interval the SDSS fit would call ``name``."""
    lo, hi = teff_range(name, names)
    return 10.0 ** rng.uniform(math.log10(lo), math.log10(hi))


@dataclass(frozen=True)
class StarDraw:
    """One star's own rest-frame spectrum, and the type and gravity it was drawn at."""

    flux: np.ndarray
    spectral_type: float | None  # MK number between the templates; None outside MK
    logg: float


def star_template(star: dict, rng: np.random.Generator, ctx: _Context) -> StarDraw:
    """This star's own rest-frame spectrum on the wide lattice: the sky is a continuum.

    Built-in family: a Teff anywhere in the interval the SDSS fit would call its subclass, a
    luminosity class (dwarf to supergiant) and [Fe/H] (``templates.star_flux``). A template
    file: the same Teff, luminosity class and [Fe/H] draws, applied to the file's spectrum as
    the built-in physics' change from a dwarf at the subclass's own Teff
    (``templates.physics_change``: continuum, Balmer lines and wings, Mg b, Na D, Sr II, CN,
    metal lines, blanketing), after line depths scaled by a smooth factor of wavelength;
    spectra off the MK sequence get only the luminosity and [Fe/H] change
    (``templates.absorption_change``). Before simulator version 9 a file's star was a log-flux
    blend with a neighbouring template: across the A0-F2 gap of the SDSS file that made A6
    stars with Balmer lines half-way to F2's, where real ones are near their A2 peak.
    Both: rotation and resolution blur, strongest for hot stars (they rotate fast). Also
    returns the MK type and log g the star was drawn at: what ELODIE's best match would say.
    """
    ts = ctx.templates
    row = int(star["template_row"])
    name = ts.names[row]
    sptype = normalize_subclass(name).spectral_type
    hot = sptype is not None and sptype < 30
    if ctx.builtin:
        teff = _teff_within(name, ts.names, rng)  # on the dwarfs' scale: it says the type
        logg, feh = _gravity_metallicity(rng)
        if sptype is not None:
            sptype = spectral_type_at(teff, ts.names)
        flux = star_flux(name, ts.wavelength, luminosity_teff(teff, sptype, logg), logg, feh)
    else:
        flux = np.clip(ts.flux[row], 1e-30, None)
        logg, feh = _gravity_metallicity(rng)
        continuum = gaussian_filter1d(maximum_filter1d(flux, 101), 40.0)
        depth_scale = np.exp(
            np.polynomial.legendre.legval(np.linspace(-1, 1, flux.size), rng.normal(0, 0.2, 3))
        )
        flux = continuum * np.clip(flux / continuum, 1e-3, None) ** depth_scale
        ref_feh = float(ctx.reference_feh[row])
        if sptype is None:
            flux = flux * absorption_change(name, ts.wavelength, logg, feh, ref_feh)
        else:
            teff = _teff_within(name, ts.names, rng)
            sptype = spectral_type_at(teff, ts.names)
            own_teff = luminosity_teff(teff, sptype, logg)
            flux = flux * physics_change(name, ts.wavelength, own_teff, logg, feh, ref_feh)
    blur = rng.uniform(0.0, 1.0) + (rng.uniform(0.0, 2.5) if hot else 0.0)
    return StarDraw(gaussian_filter1d(flux, blur) if blur > 0.05 else flux, sptype, logg)


@lru_cache(maxsize=4)
def _context(templates_path: str | None, template_types: str = "measured") -> _Context:
    ts = _wide_templates(templates_path, template_types)
    wave = ts.wavelength
    sky_lines = np.zeros_like(wave)
    for air, peak in _SKY_LINES_AIR:
        vac = float(air_to_vacuum(air))
        sigma = vac * DLOGLAM * math.log(10.0) * 1.1  # ~1.1 pixel, like SDSS wdisp
        sky_lines += peak * np.exp(-0.5 * ((wave - vac) / sigma) ** 2)
    sky_continuum = 6.0 + 5.0 * (wave / 9000.0) ** 3
    throughput = np.exp(-0.5 * ((wave - 6300.0) / 2200.0) ** 2)
    throughput *= 1.0 - 0.45 * np.exp(-0.5 * ((wave - 6000.0) / 60.0) ** 2)  # dichroic
    return _Context(
        templates=ts,
        ext_per_ebv=extinction_magnitudes(wave, 1.0),
        weights=weights_for_loglam(ts.loglam),
        sky_continuum=sky_continuum,
        sky_lines=sky_lines,
        throughput=np.clip(throughput, 0.05, None),
        builtin=templates_path is None,
        reference_feh=reference_feh(
            ts.names, _rendered_on_scale(templates_path, template_types), TEMPLATE_FILE_FEH
        ),
    )


#: Third seed word of each star's interstellar-gas random stream (apart from its main one).
_GAS_STREAM = 11


@dataclass(frozen=True)
class RenderedStar:
    index: int
    psf_mag: np.ndarray  # (5,)
    psf_mag_err: np.ndarray  # (5,)
    sn_median: float
    elodie_sptype: str


def calibration_tilt(rng: np.random.Generator, npix: int, sigma: float) -> np.ndarray:
    """A flux-calibration distortion over ``npix`` pixels: 1 + a Legendre series (orders 1-3,
    coefficients N(0, sigma)) across the spectrum."""
    coeffs = np.r_[0.0, rng.normal(0.0, sigma, 3)]
    return 1.0 + np.polynomial.legendre.legval(np.linspace(-1.0, 1.0, npix), coeffs)


def noise_sigma(
    model: np.ndarray, sky: np.ndarray, throughput: np.ndarray, snr: float
) -> np.ndarray:
    """Per-pixel noise of an SDSS-like spectrum: source plus sky photon noise through the
    throughput, scaled so the median S/N is ``snr``."""
    var_shape = (np.clip(model, 0.0, None) + sky) / throughput
    q = np.median(np.clip(model, 0.0, None) / np.sqrt(var_shape)) / snr
    return np.sqrt(var_shape) * max(q, 1e-12)


def render_spectrum(
    star: dict, seed: int, ctx: _Context
) -> tuple[np.ndarray, SpecObj, RenderedStar]:
    """One star's COADD table, SPECOBJ row and photometry (a pure function of its inputs)."""
    rng = _star_rng(seed, int(star["index"]))
    ts = ctx.templates
    template, elodie = ts.flux[int(star["template_row"])], str(star["elodie_sptype"])
    library_row = int(star.get("library_row", -1))
    covered = None
    if library_row >= 0:  # a real star: its own spectrum, blurred to SDSS's resolution or so
        lib = wide_library()
        template = gaussian_filter1d(lib.flux[library_row], rng.uniform(0.0, 0.6))
        covered = lib.covered[library_row]
    elif star.get("variety", False):
        draw = star_template(star, rng, ctx)
        template = draw.flux
        if draw.spectral_type is not None:  # ELODIE sees the star, not its subclass
            elodie = elodie_name(draw.spectral_type + rng.normal(0, ELODIE_SIGMA), draw.logg)
    shift = math.log10(1.0 + float(star["z_true"]))
    rest = np.interp(ts.loglam - shift, ts.loglam, template)  # observed frame
    reddened = rest * 10.0 ** (-0.4 * float(star["ebv"]) * ctx.ext_per_ebv)
    # The dust's gas lines, at the observer's rest frame; their own random stream, so the rest
    # of the star (noise, calibration, photometry errors) is drawn as before they existed.
    gas = np.random.default_rng(np.random.SeedSequence([seed, int(star["index"]), _GAS_STREAM]))
    reddened = reddened * interstellar_transmission(
        ts.wavelength, float(star["ebv"]), float(sightline_strength(gas))
    )

    maggies = reddened @ ctx.weights
    scale = 10.0 ** (-0.4 * float(star["r_true"])) / maggies[2]
    true_flux = reddened * scale  # 1e-17 erg/s/cm2/A
    true_mag = -2.5 * np.log10(maggies * scale)
    psf_mag, err = observe_psf_mags(true_mag, rng.normal(0.0, 1.0, 5))

    # SDSS coverage on the 1e-4 lattice, with a few pixels of jitter at both ends.
    start = SDSS_START_INDEX + int(rng.integers(0, 25)) - int(ts.loglam[0] / DLOGLAM + 0.5)
    end = SDSS_END_INDEX - int(rng.integers(0, 25)) - int(ts.loglam[0] / DLOGLAM + 0.5)
    window = slice(start, end + 1)
    wave = ts.wavelength[window]
    x = np.linspace(-1.0, 1.0, wave.size)
    calib_sigma = CALIBRATION_SIGMA if star.get("variety", False) else 0.02
    calib = calibration_tilt(rng, wave.size, calib_sigma)
    model = true_flux[window] * calib

    sky = ctx.sky_continuum[window] + ctx.sky_lines[window]
    sigma = noise_sigma(model, sky, ctx.throughput[window], float(star["snr_target"]))
    residual = 0.03 * ctx.sky_lines[window] * rng.normal(0.0, 1.0, wave.size)  # imperfect sky
    flux = model + sigma * rng.normal(0.0, 1.0, wave.size) + residual
    ivar = 1.0 / (sigma**2 + (0.03 * ctx.sky_lines[window]) ** 2)

    and_mask = np.zeros(wave.size, dtype=np.int32)
    for _ in range(rng.poisson(1.2)):
        length = int(rng.integers(2, 40))
        at = int(rng.integers(0, wave.size - length))
        and_mask[at : at + length] |= rng.choice([BIT_FULLREJECT, BIT_COMBINEREJ, BIT_NODATA])
    if covered is not None:  # no data where the library has none, as SDSS masks such pixels
        seen = np.interp(ts.loglam - shift, ts.loglam, covered.astype(float))[window] > 0.5
        and_mask[~seen] |= BIT_NODATA
        flux[~seen] = 0.0
    ivar[and_mask != 0] = 0.0
    or_mask = and_mask | np.where(ctx.sky_lines[window] > 20.0, BIT_BRIGHTSKY, 0).astype(np.int32)

    coadd = np.zeros(wave.size, dtype=COADD_DTYPE)
    coadd["flux"] = flux
    coadd["loglam"] = ts.loglam[window]
    coadd["ivar"] = ivar
    coadd["and_mask"] = and_mask
    coadd["or_mask"] = or_mask
    coadd["wdisp"] = 0.95 + 0.08 * np.sin(2.2 * x + rng.uniform(0, 2 * np.pi))
    coadd["sky"] = sky
    coadd["model"] = model

    good = coadd["ivar"] > 0
    sn = float(np.median(coadd["flux"][good] * np.sqrt(coadd["ivar"][good]))) if good.any() else 0.0
    sn_band = []
    for j in range(5):
        inband = good & (ctx.weights[window, j] > 0.2 * ctx.weights[:, j].max())
        sn_band.append(
            float(np.median(flux[inband] * np.sqrt(ivar[inband]))) if inband.any() else 0.0
        )
    calibrated = true_flux * _extend(calib, start, ts.loglam.size)
    spectroflux = 1e9 * (calibrated @ ctx.weights)  # nanomaggies, as SPECTROFLUX
    obj = SpecObj(
        plate=int(star["plate"]),
        mjd=int(star["mjd"]),
        fiber=int(star["fiberID"]),
        specobjid=str(star["specObjID"]),
        ra=float(star["ra"]),
        dec=float(star["dec"]),
        subclass=str(star["subClass"]),
        z=float(star["z"]),
        z_err=float(star["zErr"]),
        sn_median_all=sn,
        sn_median=tuple(sn_band),
        spectroflux=tuple(float(v) for v in spectroflux),
        elodie_sptype=elodie,
        wavemin=float(wave[0]),
        wavemax=float(wave[-1]),
    )
    return coadd, obj, RenderedStar(int(star["index"]), psf_mag, err, sn, elodie)


def _extend(calib: np.ndarray, start: int, npix: int) -> np.ndarray:
    """The calibration distortion on the wide grid, held constant beyond the spectrum."""
    out = np.empty(npix)
    out[:start] = calib[0]
    out[start : start + calib.size] = calib
    out[start + calib.size :] = calib[-1]
    return out


def _star_context(star: dict, templates_path: str | None) -> _Context:
    family = star.get("family", templates_path or BUILTIN)
    return _context(None if family == BUILTIN else family, star.get("template_types", "measured"))


def render_chunk(
    records: list[dict], seed: int, spectra_dir: str, templates_path: str | None
) -> list[RenderedStar]:
    """Render and write a chunk of spectra (pure apart from writing its own files).

    Each record names its template family; ``templates_path`` is the family of records that
    do not."""
    out = []
    for star in records:
        coadd, obj, rendered = render_spectrum(star, seed, _star_context(star, templates_path))
        name = spec_file_name(obj.plate, obj.mjd, obj.fiber)
        write_spec_lite(Path(spectra_dir) / name, obj, coadd, seed)
        out.append(rendered)
    return out


def _write_real_star_list(stars: pd.DataFrame, path: Path) -> None:
    """The provenance of every real star in the survey (none: no file)."""
    real = stars[stars["library_row"] >= 0]
    path.unlink(missing_ok=True)
    if real.empty:
        return
    lib = load_library()
    rows = real["library_row"].to_numpy(int)
    pd.DataFrame(
        {"plate": real["plate"], "mjd": real["mjd"], "fiberID": real["fiberID"],
         "subClass": real["subClass"], "star": np.array(lib.names)[rows],
         "sptype": np.array(lib.sptypes)[rows], "library": lib.provenance},
    ).to_csv(path, index=False)  # fmt: skip


# ----------------------------------------------------------------------------- bad files
def _write_bad_files(
    stars: pd.DataFrame, n_bad: int, seed: int, spectra_dir: Path, templates_path: str | None
) -> int:
    """Corrupt files for photometry-only stars: truncated FITS, not FITS, all-zero ivar."""
    pool = stars.index[~stars["has_spectrum"]]
    if n_bad <= 0 or pool.empty:
        return 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1 << 41]))
    chosen = np.sort(rng.choice(pool, min(n_bad, pool.size), replace=False))
    for k, idx in enumerate(chosen):
        star = stars.loc[idx].to_dict() | {"index": int(idx), "snr_target": 20.0}
        coadd, obj, _ = render_spectrum(star, seed, _star_context(star, templates_path))
        path = spectra_dir / spec_file_name(obj.plate, obj.mjd, obj.fiber)
        kind = k % 3
        if kind == 0:  # truncated mid-way, as an interrupted download
            write_spec_lite(path, obj, coadd, seed)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif kind == 1:  # an HTML error page saved under a .fits name
            path.write_text("<html><body>503 Service Unavailable</body></html>\n")
        else:  # structurally valid, but no usable pixel
            coadd["ivar"] = 0.0
            write_spec_lite(path, obj, coadd, seed)
    log.info("wrote %d deliberately bad spectrum files", len(chosen))
    return len(chosen)


# ----------------------------------------------------------------------------- the survey
def _format_catalog(stars: pd.DataFrame) -> pd.DataFrame:
    cat = stars[CATALOG_COLUMNS].copy()
    cat["ra"] = cat["ra"].round(6)
    cat["dec"] = cat["dec"].round(6)
    cat["z"] = cat["z"].round(8)
    cat["zErr"] = cat["zErr"].round(9)
    cat["snMedian"] = cat["snMedian"].round(3)
    for b in BANDS:
        cat[f"psfMag_{b}"] = cat[f"psfMag_{b}"].round(4)
        cat[f"psfMagErr_{b}"] = cat[f"psfMagErr_{b}"].round(4)
    return cat


def simulate_survey(
    out_dir: Path,
    n_stars: int,
    n_spectra: int,
    seed: int,
    templates: str | Path | None,
    labels_from: Path | None,
    workers: int,
    bad_files: int = 0,
    variety: bool = True,
    scheduler: str | None = None,
    template_types: str = "measured",
    targeting: str = "random",
    real_stars: float = REAL_STARS_SHARE,
) -> SimulationSummary:
    """Write a simulated survey (catalog.csv + spectra/) into `out_dir`.

    ``variety`` (the default) makes every star its own: a type between the templates, a
    luminosity class and metallicity, rotation and resolution (``star_template``); False
    renders each star from its subclass template exactly (an oracle's survey, for tests).
    ``template_types``: 'measured' renders a template file's F-K subclasses at their MK types
    (``type_scale``: the SDSS names are 4-7 subtypes off MK for F2-G5); 'names' takes the
    file's names as they are.
    ``scheduler``: render on a Dask cluster (startrack.executors); `out_dir` must be shared.
    ``targeting``: which stars get a spectrum (``simulator.targeting``).
    ``real_stars``: the share of the spectra that are real library stars (``library_stars``);
    ``real_stars.csv`` names each one, with its provenance. An oracle's survey has none.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    spectra_dir = out_dir / SPECTRA_DIR
    if spectra_dir.exists():
        shutil.rmtree(spectra_dir)  # a previous survey's files would mix with this one
    spectra_dir.mkdir(parents=True)
    families = template_families(templates)
    templates_path = families[0]

    real_stars = real_stars if variety else 0.0
    stars, skipped = plan_survey(
        n_stars, n_spectra, seed, families, labels_from, template_types, targeting, real_stars
    )
    stars = stars.join(_catalog_photometry(stars, seed))
    stars["variety"] = bool(variety)
    stars["snMedian"] = stars["snr_target"]
    stars["index"] = np.arange(len(stars))

    spec_rows = stars[stars["has_spectrum"]]
    columns = [
        "index", "plate", "mjd", "fiberID", "specObjID", "ra", "dec", "subClass", "z", "zErr",
        "z_true", "r_true", "ebv", "snr_target", "template_row", "elodie_sptype", "family",
        "template_types", "variety", "library_row",
    ]  # fmt: skip
    records = spec_rows[columns].to_dict("records")
    chunk = max(8, min(100, math.ceil(len(records) / (4 * max(1, workers)))))
    chunks = [records[i : i + chunk] for i in range(0, len(records), chunk)]
    results: list[RenderedStar] = []
    progress = tqdm(total=len(records), desc="spectra", unit="star", disable=not records)
    if scheduler is None and (workers <= 1 or len(chunks) <= 1):
        for part in chunks:
            results.extend(render_chunk(part, seed, str(spectra_dir), templates_path))
            progress.update(len(part))
    else:
        for key in families:
            _context(key, template_types)  # build once; forked workers inherit it
        with open_executor(scheduler, workers, mp_context="fork") as pool:
            pool.require_shared(spectra_dir)
            futures = [
                pool.submit(render_chunk, part, seed, str(spectra_dir), templates_path)
                for part in chunks
            ]
            for future, part in zip(futures, chunks, strict=True):
                results.extend(future.result())
                progress.update(len(part))
    progress.close()

    if results:  # spectroscopic stars: photometry and S/N of their own spectrum
        where = np.array([res.index for res in results])
        mags = np.array([res.psf_mag for res in results])
        errs = np.array([res.psf_mag_err for res in results])
        for j, band in enumerate(BANDS):
            stars.loc[where, f"psfMag_{band}"] = mags[:, j]
            stars.loc[where, f"psfMagErr_{band}"] = errs[:, j]
        stars.loc[where, "snMedian"] = [res.sn_median for res in results]
        stars.loc[where, "elodie_sptype"] = [res.elodie_sptype for res in results]

    _write_real_star_list(stars, out_dir / REAL_STARS_NAME)
    n_bad = _write_bad_files(stars, bad_files, seed, spectra_dir, templates_path)
    catalog_path = out_dir / CATALOG_NAME
    tmp = catalog_path.with_name(catalog_path.name + ".part")
    table = pa.Table.from_pandas(_format_catalog(stars), preserve_index=False)
    with open(tmp, "wb") as handle:  # plain CasJobs-style header, no quotes
        handle.write((",".join(CATALOG_COLUMNS) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(table, handle, options)
    tmp.replace(catalog_path)
    seconds = time.perf_counter() - t0
    log.info(
        "simulated %d stars (%d spectra, %d bad files) into %s in %.1f s",
        len(stars), len(records), n_bad, out_dir, seconds,
    )  # fmt: skip
    return SimulationSummary(
        out_dir, catalog_path, spectra_dir, len(stars), len(records), n_bad, skipped, seconds
    )


# ----------------------------------------------------------------------------- CLI
