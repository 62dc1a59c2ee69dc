"""The dust's gas lines: what the sky writes into a reddened star, in surveys and in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from startrack.grid import NPIX, air_to_vacuum, wavelength
from startrack.ml import augment as A
from startrack.simulator import interstellar as I

NA_D = (float(air_to_vacuum(5889.95)), float(air_to_vacuum(5895.92)))
CA_K = float(air_to_vacuum(3933.66))


def _ew(wave: np.ndarray, trans: np.ndarray, lo: float, hi: float) -> float:
    """Equivalent width (A) of the absorption between lo and hi."""
    near = (wave > lo) & (wave < hi)
    return float(np.sum((1.0 - trans[near]) * np.gradient(wave)[near]))


@pytest.mark.parametrize(
    ("ebv", "na_d", "ca_k"),
    [(0.0, (0.0, 0.0), (0.0, 0.0)), (0.1, (0.5, 0.9), (0.08, 0.25)), (0.5, (1.1, 1.7), (0.3, 0.6))],
)
def test_lines_grow_with_the_dust_as_real_sightlines_do(ebv, na_d, ca_k):
    """Na D 0.7 A at E(B-V) 0.1 and ~1.4 A at 0.5 (Poznanski et al. 2012); Ca II K a few
    tenths of an A; measured on the spectrum the function returns, at vacuum wavelengths."""
    wave = wavelength()
    t = I.transmission(wave, ebv)
    assert na_d[0] <= _ew(wave, t, NA_D[0] - 8, NA_D[1] + 8) <= na_d[1] + 1e-9
    assert ca_k[0] <= _ew(wave, t, CA_K - 6, CA_K + 6) <= ca_k[1] + 1e-9
    if ebv:
        assert np.argmin(np.where(np.abs(wave - NA_D[0]) < 3, t, 1)) == np.argmin(
            np.abs(wave - NA_D[0])
        )  # the D2 trough sits at its vacuum wavelength
        assert _ew(wave, t, 5770, 5790) == pytest.approx(0.51 * ebv, rel=0.05)  # DIB 5780


def test_every_line_takes_out_its_equivalent_width_and_the_sightline_scales_it():
    wave = wavelength()
    for strength in (0.5, 1.0, 2.0):
        t = I.transmission(wave, 0.3, strength)
        total = float(np.sum((1.0 - t) * np.gradient(wave)))
        assert total == pytest.approx(float(I.equivalent_widths(0.3, strength).sum()), rel=0.02)
    assert np.all(I.transmission(wave, -0.2) == 1.0)  # a blue calibration tilt has no gas
    # a batch of sightlines (as training draws them) is each sightline on its own
    batch = I.transmission(wave, np.array([0.1, 0.6]), np.array([1.5, 0.7]), np.array([90, -150]))
    assert batch.shape == (2, wave.size)
    np.testing.assert_allclose(batch[1], I.transmission(wave, 0.6, 0.7, -150.0), atol=1e-6)
    s = I.sightline_strength(np.random.default_rng(0), 20000)
    assert np.std(np.log10(s)) == pytest.approx(I.SIGHTLINE_SCATTER_DEX, rel=0.05)


def _flat(b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.ones(b, NPIX), torch.full((b, NPIX), 100.0), torch.zeros(b, NPIX, dtype=torch.bool)


def test_training_puts_the_gas_lines_in_reddened_spectra_only():
    """Dust in training comes with its gas, as strong as its E(B-V); a calibration tilt along
    the same law (no dust) has none, and p_interstellar = 0 turns it off."""
    n = 400
    quiet = dict(
        p_rv=0, p_continuum=0, p_lines=0, p_smooth=0, p_noise=0, p_mask_runs=0, p_cut_end=0,
        spec_ebv_mean=0.0,
    )  # fmt: skip
    wave = wavelength()
    near = (wave > NA_D[0] - 12) & (wave < NA_D[1] + 12)
    sides = [(wave > 5840) & (wave < 5870), (wave > 5920) & (wave < 5950)]
    at = [float(wave[s].mean()) for s in sides]
    step = torch.as_tensor(np.gradient(wave)[near], dtype=torch.float32)

    def na_depth(cfg: A.AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """EW (A) of Na D over a straight continuum through both sides (tilts cancel)."""
        out, out_ivar, _, ebv, _ = A.augment_spectra(*_flat(n), torch.Generator(), cfg)
        assert torch.isfinite(out_ivar).all() and (out_ivar >= 0).all()
        left, right = (out[:, torch.as_tensor(s)].mean(1, keepdim=True) for s in sides)
        x = torch.as_tensor((wave[near] - at[0]) / (at[1] - at[0]), dtype=torch.float32)
        cont = left + (right - left) * x
        return ((1.0 - out[:, torch.as_tensor(near)] / cont) * step).sum(1), ebv

    depth, ebv = na_depth(A.AugmentConfig(p_redden=1.0, p_calib_tilt=0.0, **quiet))
    low, high = ebv < 0.05, ebv > 0.5
    assert float(depth[high].median()) > 2 * float(depth[low].median()) > 0
    rho = np.corrcoef(np.log(depth.numpy() + 1e-4), np.log(ebv.numpy() + 1e-3))[0, 1]
    assert rho > 0.6  # scatter by sightline, but more dust, more gas
    assert float(depth[high].median()) == pytest.approx(1.45, rel=0.25)  # Na D behind 0.5-0.8
    tilt_depth, tilt = na_depth(A.AugmentConfig(p_redden=0.0, p_calib_tilt=1.0, **quiet))
    assert float(tilt.abs().max()) > 0.2 and float(tilt_depth.abs().max()) < 0.01
    off, _ = na_depth(A.AugmentConfig(p_redden=1.0, p_calib_tilt=0.0, p_interstellar=0, **quiet))
    assert float(off.abs().max()) < 0.01


def test_gas_lines_move_with_the_star_in_its_rest_frame():
    """Training spectra are in the star's rest frame, where the gas sits at minus the star's
    velocity: the lines are drawn at velocities within +-max_v."""
    n = 400
    flux, ivar, mask = _flat(n)
    gen = torch.Generator().manual_seed(0)
    out, _, _ = A.add_interstellar_lines(flux, ivar, mask, torch.full((n,), 0.5), gen, 150.0)
    wave = wavelength()
    win = (wave > 5870) & (wave < 5920)
    trough = wave[win][np.argmin(out[:, torch.as_tensor(win)].numpy(), axis=1)]
    v = (trough / NA_D[0] - 1.0) * 299_792.458
    assert v.min() > -150 - 70 and v.max() < 150 + 70  # one pixel is 69 km/s
    assert v.max() - v.min() > 150  # spread over the range, not one place


def test_a_reddened_survey_star_carries_the_lines_of_its_dust():
    """The simulator gives a star the gas lines of its E(B-V), in the observed frame, and
    draws them from their own random stream (the star's noise is the same with or without)."""
    from startrack.simulator.simulate import _star_context, plan_survey, render_spectrum

    stars, _ = plan_survey(60, 60, 5)
    star = stars[stars["subClass"].isin(["O", "OB", "B6"])].iloc[0].to_dict()
    star |= {"index": int(stars.index[0]), "z_true": 1e-4}
    ctx = _star_context(star, None)
    models = {}
    for ebv in (0.0, 0.3):
        coadd, _, _ = render_spectrum(star | {"ebv": ebv}, 5, ctx)
        models[ebv] = coadd
    wave = 10.0 ** models[0.0]["loglam"]
    ratio = models[0.3]["model"] / models[0.0]["model"]
    cont = np.median(ratio[(wave > 5930) & (wave < 5990)])
    ew = _ew(wave, ratio / cont, NA_D[0] - 12, NA_D[1] + 12)
    expected = I.equivalent_widths(0.3)[2:4].sum()
    assert 10**-0.7 * expected < ew < 10**0.7 * expected  # within the sightline scatter
    resid = (models[0.3]["flux"] - models[0.3]["model"]) / (
        models[0.0]["flux"] - models[0.0]["model"]
    )
    assert np.nanmedian(resid) == pytest.approx(1.0, rel=0.2)  # same noise draws, dimmed
