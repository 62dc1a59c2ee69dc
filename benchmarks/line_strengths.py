"""Built-in line strengths against real spectra: Lick-style equivalent widths per subclass.

The SDSS pipeline's templates are means of real SDSS stars, so a built-in dwarf whose Mg b or
G band is 2x off the SDSS template of its subclass teaches the model a type scale that real
stars do not follow. Prints one row per subclass: SDSS template / built-in dwarf, in Angstrom
(the narrow 4000 A break D4000n is a flux ratio).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--templates", type=Path, default=TEMPLATES, help="spEigenStar file")
    ap.add_argument("--out", type=Path, default=None, help="also write the table as JSON")
    args = ap.parse_args()
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
