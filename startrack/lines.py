"""The stellar absorption features the project knows, in vacuum Angstrom: one list.

The dashboard marks them on spectra; the demo-survey simulator draws its Balmer lines at the
same wavelengths. The warehouse grid is in vacuum wavelengths (SDSS convention), so these are
too.

Sources:
- Balmer series, Ca II H & K, G band and the Ca II triplet: the SDSS spectral line table
  (vacuum), https://classic.sdss.org/dr6/algorithms/linestable.html
- Mg b (Mg I 5167.32, 5172.68, 5183.60 A air) and Na D (5889.95, 5895.92 A air): NIST Atomic
  Spectra Database, converted to vacuum with :func:`air_to_vacuum`.
- TiO band heads (4954, 5167, 5448, 5847, 6159, 6651, 7054, 7589 A air), the bands M-dwarf
  spectral typing uses (Kirkpatrick, Henry & McCarthy 1991, ApJS 77, 417; Reid, Hawley & Gizis
  1995, AJ 110, 1838), converted to vacuum; each band absorbs redward of its head.
"""

from __future__ import annotations

from dataclasses import dataclass

from startrack.grid import air_to_vacuum


@dataclass(frozen=True)
class SpectralLine:
    name: str  # label shown on the plot
    group: str  # toggle group: one checkbox per group
    wavelength: float  # vacuum Angstrom (band head for molecular bands)
    width: float = 0.0  # > 0: a band absorbing from `wavelength` to `wavelength + width`


def _air(name: str, group: str, wave_air: float, width: float = 0.0) -> SpectralLine:
    return SpectralLine(name, group, round(float(air_to_vacuum(wave_air)), 2), width)


#: Every marker, grouped as the dashboard's line toggles.
LINES: tuple[SpectralLine, ...] = (
    SpectralLine("Hα", "Balmer", 6564.61),
    SpectralLine("Hβ", "Balmer", 4862.68),
    SpectralLine("Hγ", "Balmer", 4341.68),
    SpectralLine("Hδ", "Balmer", 4102.89),
    SpectralLine("Hε", "Balmer", 3971.20),
    SpectralLine("H8", "Balmer", 3890.15),
    SpectralLine("H9", "Balmer", 3836.47),
    SpectralLine("H10", "Balmer", 3798.98),
    SpectralLine("Ca II K", "Ca II H&K", 3934.78),
    SpectralLine("Ca II H", "Ca II H&K", 3969.59),
    SpectralLine("G band (CH)", "G band", 4305.61),
    _air("Mg b1", "Mg b", 5183.60),
    _air("Mg b2", "Mg b", 5172.68),
    _air("Mg b4", "Mg b", 5167.32),
    _air("Na D2", "Na D", 5889.95),
    _air("Na D1", "Na D", 5895.92),
    *(_air(f"TiO {head:.0f}", "TiO", head, 80.0) for head in (
        4954.0, 5167.0, 5448.0, 5847.0, 6159.0, 6651.0, 7054.0, 7589.0
    )),
    SpectralLine("Ca II 8500", "Ca II triplet", 8500.36),
    SpectralLine("Ca II 8544", "Ca II triplet", 8544.44),
    SpectralLine("Ca II 8665", "Ca II triplet", 8664.52),
)  # fmt: skip

#: Toggle groups in display order.
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(line.group for line in LINES))

#: Groups shown when a spectrum first opens.
DEFAULT_GROUPS: tuple[str, ...] = ("Balmer", "Ca II H&K", "Mg b", "Na D")


#: Balmer series Hα … H10, vacuum Angstrom.
BALMER: tuple[float, ...] = tuple(line.wavelength for line in LINES if line.group == "Balmer")


def lines_in(groups: list[str] | tuple[str, ...]) -> list[SpectralLine]:
    wanted = set(groups)
    return [line for line in LINES if line.group in wanted]
