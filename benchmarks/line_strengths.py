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

from startrack.simulator.line_indices import INDICES, d4000n, equivalent_widths
from startrack.simulator.templates import builtin_templates, load_templates

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
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
