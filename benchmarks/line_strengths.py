"""Built-in line strengths against real spectra: Lick-style equivalent widths per subclass.

The SDSS pipeline's templates are means of real SDSS stars, so a built-in dwarf whose Mg b or
G band is 2x off the SDSS template of its subclass teaches the model a type scale that real
stars do not follow. Prints one row per subclass: SDSS template / built-in dwarf, in Angstrom
(the narrow 4000 A break D4000n is a flux ratio).

With ``--miles`` (the MILES library, `make miles`) it compares real stars instead: each
star's indices against the built-in physics at that star's own Teff, log g and [Fe/H] (the
library's parameters), medians per Teff bin and gravity class, and a mismatch score per index
(RMS over bins of the median difference in units of ~one subtype, times sqrt(stars)). The
physics was fitted to the stars of even MILES id; ``--held-out`` scores the odd ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from startrack.labels import spectral_type_of
from startrack.simulator.line_indices import INDICES, d4000n, equivalent_widths
from startrack.simulator.templates import builtin_templates, extend_for_photometry, load_templates
from startrack.simulator.type_scale import (
    SCALE_INDICATORS,
    indicators,
    place_on_scale,
    resample_onto_names,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "shared/sdss/templates/spEigenStar-53724.fits"
SUBCLASSES = ("A0", "F2", "F5", "F9", "G0", "G2", "K1", "K3", "K5", "K7", "M0", "M2", "M4")


def _digits(columns: tuple[str, ...]):
    """(column, decimals): equivalent widths to 0.1 A, the break (a ratio) to 0.01."""
    return [(k, 2 if k == "D4000n" else 1) for k in columns]


#: Index differences that count as one unit of mismatch (roughly a subtype of an F-K dwarf).
MISMATCH_UNITS: dict[str, float] = {
    "Ca II K": 1.0, "H delta": 0.5, "Ca I 4227": 0.4, "G band": 0.6, "Fe 4383": 0.7,
    "Ca 4455": 0.4, "Fe 4531": 0.5, "H beta": 0.3, "Mg b": 0.5, "Fe 5270": 0.4, "Na D": 0.5,
    "H alpha": 0.3, "D4000n": 0.08,
}  # fmt: skip
#: Teff bin edges (K) and the gravity classes (lowest log g of each) of the MILES comparison.
TEFF_EDGES = (3500, 4000, 4400, 4800, 5200, 5600, 6000, 6400, 6800, 7500)
GRAVITY_CLASSES = (("dwarf", 3.9), ("subgiant", 3.0), ("giant", -9.0))
#: The [Fe/H] range compared (the simulator's disc stars).
FEH_RANGE = (-0.6, 0.4)


def miles_comparison(source: Path, held_out: bool) -> tuple[pd.DataFrame, dict[str, float]]:
    """(medians real / built-in per gravity class and Teff bin, mismatch score per index) for
    the MILES F-M stars of even id (odd with ``held_out``)."""
    from real_library import load_miles

    from startrack.simulator.templates import BUILTIN_NAMES, SUBCLASS_TEFF, star_flux

    names = [n for n in BUILTIN_NAMES[:20] if 3_000 < SUBCLASS_TEFF[n] < 8_000]
    rows = []
    for star in load_miles(source):
        teff, logg, feh = star.parameters
        if int(star.miles_id) % 2 != int(held_out) or not np.isfinite([teff, logg, feh]).all():
            continue
        if not (TEFF_EDGES[0] < teff < TEFF_EDGES[-1] and FEH_RANGE[0] < feh < FEH_RANGE[1]):
            continue
        name = min(names, key=lambda n: abs(SUBCLASS_TEFF[n] - teff))
        wave = star.wavelength_vac
        for kind, flux in (
            ("real", star.flux),
            ("builtin", star_flux(name, wave, teff, logg, feh)),
        ):
            ew = equivalent_widths(wave, flux)
            ew["D4000n"] = d4000n(wave, flux)
            gravity = next(c for c, lo in GRAVITY_CLASSES if logg >= lo)
            rows.append({"kind": kind, "id": star.miles_id, "teff": teff, "class": gravity, **ew})
    d = pd.DataFrame(rows)
    d["bin"] = pd.cut(d["teff"], TEFF_EDGES).astype(str)
    med = d.groupby(["class", "bin", "kind"])[list(MISMATCH_UNITS)].median()
    n = d[d["kind"] == "real"].groupby(["class", "bin"]).size()
    score = {}
    for key, unit in MISMATCH_UNITS.items():
        diff = (med[key].xs("real", level="kind") - med[key].xs("builtin", level="kind")) / unit
        use = n[n >= 3].index
        score[key] = float(np.sqrt(np.mean((diff.loc[use] * np.sqrt(n.loc[use])) ** 2)))
    return med.assign(n=n.reindex(med.index.droplevel("kind")).to_numpy()), score


def print_miles(source: Path, held_out: bool, out: Path | None) -> int:
    med, score = miles_comparison(source, held_out)
    half = "odd (held out)" if held_out else "even"
    print(f"MILES stars of {half} id, [Fe/H] {FEH_RANGE[0]} to {FEH_RANGE[1]}: real / built-in")
    for cls in med.index.get_level_values("class").unique():
        print(f"\n{cls}")
        part = med.xs(cls, level="class")
        print("Teff bin         n " + " ".join(f"{k[:9]:>13s}" for k in MISMATCH_UNITS))
        for b in part.index.get_level_values("bin").unique():
            real, ours = part.loc[(b, "real")], part.loc[(b, "builtin")]
            cells = " ".join(f"{real[k]:6.2f}/{ours[k]:6.2f}" for k in MISMATCH_UNITS)
            print(f"{b:15s} {int(real['n']):3d} {cells}")
    print("\nmismatch: " + ", ".join(f"{k} {v:.1f}" for k, v in score.items()))
    print(f"total {sum(score.values()):.1f}")
    if out:
        out.write_text(json.dumps({"held_out": held_out, "mismatch": score}, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--templates", type=Path, default=TEMPLATES, help="spEigenStar file")
    ap.add_argument("--miles", type=Path, default=None,
                    help="compare with real MILES stars (the sdss-mangadap wheel)")  # fmt: skip
    ap.add_argument("--held-out", action="store_true",
                    help="with --miles: the odd MILES ids (fitted on even ones)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None, help="also write the table as JSON")
    args = ap.parse_args()
    if args.miles is not None:
        if not args.miles.exists():
            ap.error(f"--miles: {args.miles} not found (`make miles` downloads it)")
        return print_miles(args.miles, args.held_out, args.out)
    if not args.templates.is_file():
        ap.error(f"needs the SDSS templates at {args.templates} (../shared/sdss)")
    sdss, builtin = load_templates(args.templates), builtin_templates()
    table = {}
    columns = (*INDICES, "D4000n")
    print("subclass " + " ".join(f"{n:>14s}" for n in columns))
    for name in SUBCLASSES:
        a = equivalent_widths(sdss.wavelength, sdss.flux[sdss.index_of(name)])
        b = equivalent_widths(builtin.wavelength, builtin.flux[builtin.index_of(name)])
        a["D4000n"] = d4000n(sdss.wavelength, sdss.flux[sdss.index_of(name)])
        b["D4000n"] = d4000n(builtin.wavelength, builtin.flux[builtin.index_of(name)])
        table[name] = {"sdss": a, "builtin": b}
        cells = (f"{a[k]:6.{d}f} /{b[k]:6.{d}f}" for k, d in _digits(columns))
        print(f"{name:8s} " + " ".join(cells))
    print(
        "\nWhere each SDSS template sits on the built-in (MK-calibrated) type scale: the MK"
        "\ntype number (A0 = 20, F0 = 30, G0 = 40, K0 = 50) of the built-in dwarf it matches"
        "\nbest, by each indicator alone and by all of them; 'simulated': the spectrum a"
        "\nsurvey renders for that name (--template-types measured, simulator/type_scale.py)"
    )
    wide = extend_for_photometry(sdss)  # g begins at 3630 A, the templates at 3784 A
    scale_columns = (*SCALE_INDICATORS, "all", "simulated")
    print("SDSS name  its type " + " ".join(f"{k:>7s}" for k in scale_columns))
    rendered = resample_onto_names(wide.loglam, wide.flux, wide.names)
    for name in ("A0", "F2", "F5", "F9", "G0", "G2", "G5", "K1", "K3", "K5", "K7"):
        row = wide.index_of(name)
        placed = place_on_scale(indicators(wide.loglam, wide.flux[row]))
        placed["simulated"] = place_on_scale(indicators(wide.loglam, rendered[row]))["all"]
        table.setdefault(name, {})["builtin_scale"] = placed
        cells = " ".join(f"{placed[k]:7.1f}" for k in scale_columns)
        print(f"{name:9s} {spectral_type_of(name):9.0f} {cells}")
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
