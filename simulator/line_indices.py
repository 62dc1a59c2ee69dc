"""Lick-style equivalent widths: how strong a template's lines are, in Angstrom.

The built-in physics sets line strengths by hand; these indices check them against real
spectra (the SDSS templates are means of real SDSS stars; ``benchmarks/line_strengths.py``).
Bands are the Lick / Worthey ones where they exist (vacuum-shifted by ~1 A, which does not
matter at this resolution), each a feature band between a blue and a red pseudo-continuum.
"""

from __future__ import annotations

import numpy as np

#: name -> (feature band, blue continuum, red continuum), Angstrom.
INDICES: dict[str, tuple[tuple[float, float], ...]] = {
    "Ca II K": ((3925, 3945), (3905, 3920), (3990, 4005)),
    "H delta": ((4092, 4112), (4060, 4075), (4125, 4140)),
    "Ca I 4227": ((4222, 4234), (4212, 4220), (4240, 4250)),
    "G band": ((4282, 4318), (4268, 4282), (4320, 4336)),
    "Fe 4383": ((4369, 4420), (4359, 4370), (4443, 4455)),
    "Ca 4455": ((4452, 4475), (4446, 4455), (4477, 4492)),
    "Fe 4531": ((4514, 4559), (4504, 4514), (4561, 4579)),
    "H beta": ((4851, 4873), (4828, 4848), (4877, 4892)),
    "Mg b": ((5162, 5194), (5143, 5162), (5193, 5208)),
    "Fe 5270": ((5247, 5287), (5234, 5247), (5287, 5319)),
    "Na D": ((5878, 5912), (5862, 5877), (5923, 5950)),
    "H alpha": ((6553, 6575), (6520, 6540), (6590, 6610)),
}


#: Narrow 4000 A break (Balogh et al. 1999): mean f_nu in 4000-4100 A over 3850-3950 A.
D4000N_BANDS: tuple[tuple[float, float], tuple[float, float]] = ((3850, 3950), (4000, 4100))


def d4000n(wave: np.ndarray, flux: np.ndarray) -> float:
    """The narrow 4000 A break of an f_lambda spectrum: ~1 for A stars, ~2 for K dwarfs, the
    metal-line blanketing blueward of Ca II H that types G-K stars by eye."""
    fnu = flux * wave**2
    (blue, red) = D4000N_BANDS
    b = fnu[(wave > blue[0]) & (wave < blue[1])].mean()
    r = fnu[(wave > red[0]) & (wave < red[1])].mean()
    return float(r / b)


def equivalent_widths(wave: np.ndarray, flux: np.ndarray) -> dict[str, float]:
    """Each index's equivalent width (A; > 0 = absorption) against a straight pseudo-continuum
    through the means of its two side bands."""
    out = {}
    for name, (band, blue, red) in INDICES.items():
        cb = float(flux[(wave > blue[0]) & (wave < blue[1])].mean())
        cr = float(flux[(wave > red[0]) & (wave < red[1])].mean())
        wb, wr = np.mean(blue), np.mean(red)
        sel = (wave > band[0]) & (wave < band[1])
        cont = cb + (cr - cb) * (wave[sel] - wb) / (wr - wb)
        out[name] = float(np.trapezoid(1.0 - flux[sel] / cont, wave[sel]))
    return out
