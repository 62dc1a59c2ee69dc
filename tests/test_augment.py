"""Training augmentations: shapes and masks kept, physics right (RV shift, dust, noise)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from startrack.grid import C_KMS, DLOGLAM, NPIX
from startrack.ml import augment as A


def _line_spectra(b: int = 4, center: float = 2000.0, snr: float = 50.0):
    x = torch.arange(NPIX, dtype=torch.float32)
    flux = (1 - 0.5 * torch.exp(-0.5 * ((x - center) / 3.0) ** 2)).repeat(b, 1)
    ivar = torch.full((b, NPIX), snr**2)
    mask = torch.zeros(b, NPIX, dtype=torch.bool)
    mask[:, :100] = True
    flux[mask], ivar[mask] = 0, 0
    return flux, ivar, mask


def _centroid(flux: torch.Tensor, lo: int = 1950, hi: int = 2050) -> np.ndarray:
    depth = (1 - flux[:, lo:hi]).clamp(min=0)
    pos = torch.arange(lo, hi, dtype=torch.float32)
    return ((depth * pos).sum(1) / depth.sum(1)).numpy()


def test_rv_shift_moves_a_line_by_the_expected_pixels():
    flux, ivar, mask = _line_spectra(3)
    v = torch.tensor([-250.0, 0.0, 172.5])
    out, _, _ = A.rv_shift(flux, ivar, mask, v)
    expected = 2000.0 + np.log10(1 + v.double().numpy() / C_KMS) / DLOGLAM
    np.testing.assert_allclose(_centroid(out), expected, atol=0.05)
    assert abs(expected[2] - 2000 - 2.5) < 0.01  # ~69 km/s per pixel: a sub-pixel case


def test_rv_shift_keeps_masks_and_marks_pixels_shifted_in_from_outside():
    flux, ivar, mask = _line_spectra(2)
    out, iv, m = A.rv_shift(flux, ivar, mask, torch.tensor([-300.0, 300.0]))
    assert out.shape == flux.shape and m.dtype == torch.bool
    assert m[0, -1] and m[1, :104].all()  # blue mask moved red by ~4.3 px
    assert (out[m] == 0).all() and (iv[m] == 0).all()
    assert (iv[~m] > 0).all()


def test_reddening_dims_blue_more_than_red_and_keeps_unit_median():
    flux = torch.ones(2, NPIX)
    ivar = torch.full((2, NPIX), 100.0)
    mask = torch.zeros(2, NPIX, dtype=torch.bool)
    out, iv, _ = A.redden(flux, ivar, mask, torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(out[0], flux[0])
    assert out[1, 0] < 0.7 * out[1, -1]
    assert abs(float(out[1].median()) - 1.0) < 1e-3
    # S/N per pixel is unchanged by a multiplicative factor
    torch.testing.assert_close(
        out[1] * iv[1].sqrt(), flux[1] * ivar[1].sqrt(), rtol=1e-4, atol=1e-4
    )


def test_noise_brings_snr_down_to_the_target_and_ivar_follows():
    flux, ivar, mask = _line_spectra(2, snr=50.0)
    g = torch.Generator().manual_seed(0)
    out, iv, m = A.add_noise(flux, ivar, mask, torch.tensor([5.0, 50.0]), g)
    snr = A.median_snr(iv, m)
    assert abs(float(snr[0]) - 5.0) < 0.1 and abs(float(snr[1]) - 50.0) < 0.1
    resid = (out[0] - flux[0])[~m[0]]
    assert abs(float(resid.std()) - math.sqrt(1 / 25 - 1 / 2500)) < 0.01


def test_smoothing_lowers_line_depth_but_keeps_its_position():
    flux, ivar, mask = _line_spectra(1)
    out, _, m = A.smooth(flux, ivar, mask, torch.tensor([3.0]))
    assert float(out[0, 1995:2005].min()) > float(flux[0, 1995:2005].min()) + 0.05
    assert abs(_centroid(out)[0] - 2000) < 0.05
    assert (out[m] == 0).all()


def test_cut_end_masks_one_contiguous_end_and_keeps_the_rest():
    from startrack.grid import wavelength

    flux, ivar, mask = _line_spectra(64)
    out, iv, m = A.cut_end(flux, ivar, mask, torch.Generator().manual_seed(0))
    wave = torch.as_tensor(wavelength())
    new = m & ~mask
    red = new[:, -1]
    assert red.any() and (~red).any()  # both ends are lost, now and then
    for row in range(64):
        lost = wave[new[row]]
        if red[row]:  # everything red of the edge, the edge between 6500 and 8800 A
            assert 6500 <= float(lost.min()) <= 8800 and new[row, -1]
            assert bool(new[row, int(new[row].nonzero()[0]) :].all())
        else:
            assert 3900 <= float(lost.max()) <= 4600
            assert bool(m[row, : int(new[row].nonzero()[-1]) + 1].all())
    assert (out[m] == 0).all() and (iv[m] == 0).all()
    assert torch.equal(out[~m], flux[~m])


@pytest.mark.parametrize("seed", [0, 1])
def test_full_augmentation_preserves_shapes_masks_and_finiteness(seed):
    flux, ivar, mask = _line_spectra(16)
    g = torch.Generator().manual_seed(seed)
    cfg = A.AugmentConfig(
        p_rv=1, p_redden=1, p_continuum=1, p_noise=1, p_smooth=1, p_mask_runs=1, p_cut_end=1
    )
    out, iv, m, ebv, snr = A.augment_spectra(flux, ivar, mask, g, cfg)
    assert out.shape == iv.shape == m.shape == flux.shape
    assert ebv.shape == snr.shape == (16,)
    assert torch.isfinite(out).all() and torch.isfinite(iv).all()
    assert (out[m] == 0).all() and (iv[m] == 0).all()
    assert m[:, :95].all()  # the masked blue end stays masked (RV shifts are < 5 px)
    # dust (0 to max_ebv) plus a calibration tilt either way (Gaussian, sigma calib_tilt_sigma)
    tilt = 6 * cfg.calib_tilt_sigma
    assert ((ebv >= -tilt) & (ebv <= cfg.max_ebv + tilt)).all()
    # S/N (flux * sqrt(ivar)) never rises above the input's 60, except that a sub-pixel RV
    # shift averages two pixels (per-pixel variance down to half, noise correlated): at most
    # a factor sqrt(2). (The returned snr is sqrt(ivar) of the renormalized spectrum, which
    # a strong tilt moves either way.)
    true_snr = torch.nanmedian(torch.where(m, torch.nan, out.abs() * iv.sqrt()), dim=1).values
    assert (true_snr <= 60 * math.sqrt(2)).all() and (snr >= cfg.min_snr - 0.5).all()


def test_photometry_reddening_shifts_colours_by_the_extinction_vector():
    raw = torch.tensor([[0.0, 18.0, 17.0, 16.5, 16.3, 16.2, 20.0]]).repeat(2, 1)
    err = torch.full((2, 5), 1e-6)
    g = torch.Generator().manual_seed(0)
    cfg = A.AugmentConfig(p_drop_band=0.0)
    out = A.augment_photometry(raw, err, torch.tensor([0.0, 0.3]), g, cfg)
    g_r = out[:, 2] - out[:, 3]
    expected = 0.3 * (A.SDSS_EXTINCTION[1] - A.SDSS_EXTINCTION[2])
    assert abs(float(g_r[1] - g_r[0]) - expected) < 1e-3
    assert out[0, 0] == 0.0 and out[0, 6] == 20.0  # z and snr untouched


def test_some_spectra_train_with_the_g_and_r_of_a_spectrum_short_of_u_i_and_z():
    raw = torch.tensor([[0.0, 18.0, 17.0, 16.5, 16.3, 16.2, 20.0]]).repeat(400, 1)
    err = torch.full((400, 5), 1e-6)
    spectrum = torch.arange(400) < 200
    cfg = A.AugmentConfig(p_drop_band=0.0, p_drop_photometry=0.0, p_only_g_r=0.5)
    out = A.augment_photometry(raw, err, torch.zeros(400), torch.Generator().manual_seed(1), cfg,
                               spectrum)  # fmt: skip
    short = out[:, 1:6].isnan()
    assert not short[~spectrum].any()  # photometry-only stars keep every band
    g_r_only = short[:, [0, 3, 4]].all(dim=1) & ~short[:, [1, 2]].any(dim=1)
    assert (short.any(dim=1) == g_r_only).all()  # u, i and z go together; g and r stay
    assert 70 < int(g_r_only[spectrum].sum()) < 130
    off = A.augment_photometry(raw, err, torch.zeros(400), torch.Generator().manual_seed(1),
                               A.AugmentConfig(p_drop_band=0.0, p_drop_photometry=0.0),
                               spectrum)  # fmt: skip
    assert not off.isnan().any()


def test_neighbour_mix_only_blends_adjacent_classes_with_soft_labels():
    b = 64
    flux, ivar, mask = _line_spectra(b)
    classes = torch.arange(b) % 4
    neighbours = torch.zeros(4, 4, dtype=torch.bool)
    neighbours[0, 1] = neighbours[1, 0] = True  # only classes 0 and 1 are neighbours
    targets = torch.nn.functional.one_hot(classes, 4).float()
    raw = torch.zeros(b, 7)
    g = torch.Generator().manual_seed(0)
    eligible = torch.ones(b, dtype=torch.bool)
    *_, t = A.neighbour_mix(flux, ivar, mask, raw, targets, classes, neighbours, eligible, g, 1.0)
    torch.testing.assert_close(t.sum(1), torch.ones(b))
    mixed = (t.max(1).values < 1).nonzero().flatten()
    assert len(mixed) > 0
    assert set(classes[mixed].tolist()) <= {0, 1}
    assert (t[mixed][:, 2:] == 0).all()
    assert (t.max(1).values >= 0.5).all()


def test_line_strength_changes_line_depth_but_not_position_or_continuum():
    n = 4671
    g = torch.Generator().manual_seed(0)
    flux = torch.ones(8, n)
    flux[:, 2000:2004] = 0.5  # one absorption line, depth 0.5
    ivar = torch.full((8, n), 100.0)
    mask = torch.zeros(8, n, dtype=torch.bool)
    f, iv, m = A.line_strength(flux, ivar, mask, 0.3, g)
    depth = 1 - f[:, 2000:2004].mean(1)
    assert depth.std() > 0.03  # depths differ from star to star
    assert ((depth > 0.2) & (depth < 0.9)).all()
    assert f[:, 2000:2004].mean(1).lt(f[:, 1990:1996].mean(1)).all()  # still a line, same place
    assert (f[:, 3000:3100] - 1).abs().max() < 0.02  # continuum untouched
    assert torch.equal(m, mask) and (iv > 0).all()


def test_stars_without_a_spectrum_are_reddened_as_the_sky_reddens_them():
    """Mostly a little, now and then a lot: their colours are all that types them."""
    from startrack.ml.augment import photometry_ebv
    from startrack.ml.train_config import AugmentConfig

    cfg = AugmentConfig()
    ebv = photometry_ebv(20000, cfg, torch.Generator().manual_seed(0))
    assert float(ebv.mean()) == pytest.approx(cfg.phot_ebv_mean, rel=0.05)
    assert float(ebv.median()) < 0.75 * cfg.phot_ebv_mean  # most stars: a little dust
    assert 0.05 < float((ebv > 0.5).float().mean()) < 0.25  # a tail, not a wall
    assert float(ebv.min()) >= 0 and float(ebv.max()) <= cfg.max_ebv + 1e-6
    cfg.phot_ebv_mean = 0.0  # as for spectra: uniform to max_ebv
    flat = photometry_ebv(20000, cfg, torch.Generator().manual_seed(0))
    assert float(flat.mean()) == pytest.approx(cfg.max_ebv / 2, rel=0.05)


def test_calibration_tilts_go_both_ways_and_the_photometry_gets_the_same_one():
    """Dust only reddens; a flux-calibration error tilts a spectrum either way, and magnitudes
    measured from that spectrum (SPECTROFLUX) share it: the returned E(B-V) is the tilt."""
    flux, ivar, mask = _line_spectra(400)
    cfg = A.AugmentConfig(
        p_rv=0, p_redden=0, p_continuum=0, p_lines=0, p_smooth=0, p_noise=0, p_mask_runs=0,
        p_cut_end=0, p_calib_tilt=1.0, calib_tilt_sigma=0.1,
    )  # fmt: skip
    out, _, _, ebv, _ = A.augment_spectra(flux, ivar, mask, torch.Generator().manual_seed(0), cfg)
    assert float(ebv.std()) == pytest.approx(0.1, rel=0.15)
    assert (ebv < -0.05).any() and (ebv > 0.05).any()  # bluer as well as redder
    blue, red = slice(300, 400), slice(4000, 4100)  # ~3900 A and ~8700 A, no line there
    k = A._extinction_curve(NPIX)
    ratio = out[:, blue].mean(1) / out[:, red].mean(1)
    expected = 10 ** (-0.4 * ebv * (k[blue].mean() - k[red].mean()))
    torch.testing.assert_close(ratio, expected, rtol=0.01, atol=0.0)
    # ... and training reddens the photometry by the returned E(B-V): bluer colours too
    raw = torch.tensor([[0.0, 18.0, 17.0, 16.5, 16.3, 16.2, 20.0]]).repeat(len(ebv), 1)
    phot_cfg = A.AugmentConfig(p_drop_band=0.0, p_phot_tilt=0.0)
    mags = A.augment_photometry(
        raw, torch.full((len(ebv), 5), 1e-6), ebv, torch.Generator().manual_seed(0), phot_cfg
    )
    g_r = mags[:, 2] - mags[:, 3] - 0.5
    ext = A.SDSS_EXTINCTION[1] - A.SDSS_EXTINCTION[2]
    torch.testing.assert_close(g_r, ebv * ext, rtol=0.0, atol=1e-3)
    off = A.augment_spectra(
        flux, ivar, mask, torch.Generator().manual_seed(0), A.AugmentConfig(p_calib_tilt=0.0)
    )[3]
    assert (off >= 0).all()  # without it, only dust: never bluer


def test_spectra_are_reddened_as_the_sky_reddens_them_or_uniformly_if_asked():
    from startrack.ml.augment import spectrum_ebv
    from startrack.ml.train_config import AugmentConfig

    gen = torch.Generator().manual_seed(0)
    uniform = spectrum_ebv(20000, AugmentConfig(spec_ebv_mean=0.0), gen)
    assert float(uniform.mean()) == pytest.approx(0.4, abs=0.01) and float(uniform.max()) <= 0.8
    clear = spectrum_ebv(20000, AugmentConfig(spec_ebv_mean=0.1, spec_ebv_tail=0.0), gen)
    assert float(clear.mean()) == pytest.approx(0.1, abs=0.01)
    assert float((clear > 0.4).float().mean()) < 0.03
    tail = spectrum_ebv(20000, AugmentConfig(spec_ebv_mean=0.05, spec_ebv_tail=0.2), gen)
    assert float((tail > 0.4).float().mean()) == pytest.approx(0.2 * 0.5, abs=0.015)
    assert float(tail.max()) <= 0.8


def test_hot_stars_are_reddened_as_far_off_stars_and_the_rest_as_near_ones():
    """O and B stars are seen through the plane's dust; the F-K dwarfs of a survey are near:
    below `hot_dust_below` a spectrum's dust is uniform to max_ebv, above it the sky's."""
    n = 4000
    flux, ivar, mask = _line_spectra(2 * n)
    cfg = A.AugmentConfig(
        p_rv=0, p_redden=1.0, p_continuum=0, p_lines=0, p_smooth=0, p_noise=0, p_mask_runs=0,
        p_cut_end=0, p_calib_tilt=0, spec_ebv_mean=0.1, spec_ebv_tail=0.0, hot_dust_below=20.0,
    )  # fmt: skip
    types = torch.cat([torch.full((n,), 12.0), torch.full((n,), 42.0)])  # B2 and G2
    types[::100] = float("nan")  # off MK (a white dwarf, say): the sky's dust
    gen = torch.Generator().manual_seed(0)
    ebv = A.augment_spectra(flux, ivar, mask, gen, cfg, types)[3]
    hot, cool = ebv[:n][torch.isfinite(types[:n])], ebv[n:]
    assert float(hot.mean()) == pytest.approx(0.4, abs=0.02) and float(hot.max()) <= 0.8
    assert float(cool.mean()) == pytest.approx(0.1, abs=0.01)
    assert float(ebv[:n][~torch.isfinite(types[:n])].mean()) < 0.2
    # without the types, or with the option off, every spectrum gets the sky's dust
    off = dataclasses.replace(cfg, hot_dust_below=0.0)
    for c, t in ((cfg, None), (off, types)):
        e = A.augment_spectra(flux, ivar, mask, torch.Generator().manual_seed(0), c, t)[3]
        assert float(e[:n].mean()) == pytest.approx(0.1, abs=0.01)
