"""The fusion model: shapes, spectrum masking, and the photometry-only fast path."""

from __future__ import annotations

import pytest
import torch

from startrack.grid import NPIX
from startrack.ml.features import N_FEATURES, SPECTRUM_CHANNELS
from startrack.ml.model import HEADS, ModelConfig, StarClassifier

K = 5


@pytest.fixture(scope="module")
def model() -> StarClassifier:
    torch.manual_seed(0)
    return StarClassifier(ModelConfig(n_classes=K)).eval()


def _batch(b: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tab = torch.randn(b, N_FEATURES, generator=g)
    spec = torch.randn(b, len(SPECTRUM_CHANNELS), NPIX, generator=g)
    spec[:, 1] = 0.0  # mask channel: nothing masked
    return tab, spec


def test_every_head_returns_logits_per_star(model):
    tab, spec = _batch(6)
    has = torch.tensor([True, False, True, True, False, True])
    with torch.inference_mode():
        out = model(tab, spec, has)
    assert set(out) == set(HEADS)
    for h in HEADS:
        assert out[h].shape == (6, K)
        assert torch.isfinite(out[h]).all()


def test_star_without_spectrum_ignores_whatever_is_in_its_spectrum_rows(model):
    tab, spec = _batch(4)
    has = torch.tensor([True, False, True, False])
    garbage = spec.clone()
    garbage[~has] = torch.randn(2, len(SPECTRUM_CHANNELS), NPIX) * 1e3
    with torch.inference_mode():
        a = model(tab, spec, has)
        b = model(tab, garbage, has)
    for h in ("dense", "fusion"):
        torch.testing.assert_close(a[h], b[h])
    # the spectrum really matters for stars that have one
    other = spec.clone()
    other[has] = torch.randn(2, len(SPECTRUM_CHANNELS), NPIX)
    with torch.inference_mode():
        c = model(tab, other, has)
    assert not torch.allclose(a["fusion"][has], c["fusion"][has])
    torch.testing.assert_close(a["fusion"][~has], c["fusion"][~has])


def test_spectra_may_be_given_only_for_stars_that_have_one(model):
    tab, spec = _batch(4)
    has = torch.tensor([False, True, False, True])
    with torch.inference_mode():
        full = model(tab, spec, has)
        compact = model(tab, spec[has], has)
    for h in HEADS:
        torch.testing.assert_close(full[h], compact[h])


def test_photometry_only_batch_skips_the_lstm_and_matches_the_masked_path(model):
    calls = []
    hook = model.spectrum.lstm.register_forward_hook(lambda *a: calls.append(1))
    try:
        tab, spec = _batch(5)
        none = torch.zeros(5, dtype=torch.bool)
        with torch.inference_mode():
            alone = model(tab, None, none)
        assert calls == []
        # the same photometry-only stars scored next to a star with a spectrum
        has = torch.tensor([False, False, False, False, False, True])
        tab6 = torch.cat([tab, tab[:1]])
        spec6 = torch.cat([spec, spec[:1]])
        with torch.inference_mode():
            mixed = model(tab6, spec6, has)
        assert calls == [1]
    finally:
        hook.remove()
    for h in ("dense", "fusion"):
        torch.testing.assert_close(alone[h], mixed[h][:5], atol=1e-5, rtol=1e-5)


def test_has_spectrum_without_spectra_is_a_clear_error(model):
    tab, _ = _batch(2)
    with pytest.raises(ValueError, match="no spectra"):
        model(tab, None, torch.tensor([True, False]))


def test_fully_masked_spectrum_gives_finite_output(model):
    tab, spec = _batch(2)
    spec[:, 0] = 0
    spec[:, 1] = 1.0  # every pixel masked
    with torch.inference_mode():
        out = model(tab, spec, torch.ones(2, dtype=torch.bool))
    assert all(torch.isfinite(out[h]).all() for h in HEADS)


def test_continuum_channel_removes_a_smooth_tilt_but_keeps_lines():
    from startrack.ml.model import continuum_normalized

    x = torch.linspace(0, 1, NPIX)
    line = torch.zeros(NPIX)
    line[2000:2006] = -0.5  # a narrow absorption line
    flat = 1.0 + line
    tilted = (1.0 + line) * (0.5 + 1.5 * x)  # reddening / calibration tilt
    mask = torch.zeros(2, NPIX)
    out = continuum_normalized(torch.stack([flat, tilted]), mask, 64)
    assert out[:, 2000:2006].mean() < -0.4  # the line survives in both
    far = torch.cat([torch.arange(300, 1900), torch.arange(2100, 4300)])
    assert out[:, far].abs().max() < 0.05  # the tilt is gone away from the ends
    torch.testing.assert_close(out[0, 2000:2006], out[1, 2000:2006], atol=0.03, rtol=0)


@pytest.mark.parametrize(
    "missing", ["continuum_channel", "pixel_snr_cap", "fusion_segments", "line_indices"]
)
def test_configs_saved_before_an_option_existed_still_load_as_they_were(missing):
    d = ModelConfig(n_classes=K).to_dict()
    options = ("continuum_channel", "pixel_snr_cap", "fusion_segments", "fusion_residual")
    for key in (*options, "line_indices"):
        if key == missing or missing == "continuum_channel":
            d.pop(key)
    old = ModelConfig.from_dict(d)
    off = {
        "continuum_channel": False,
        "pixel_snr_cap": None,
        "fusion_segments": 0,
        "line_indices": 0,
    }
    assert getattr(old, missing) == off[missing]
    m = StarClassifier(old).eval()
    tab, spec = _batch(2)
    with torch.inference_mode():
        out = m(tab, spec, torch.tensor([True, False]))
    assert out["lstm"].shape == (2, K)


def test_pixel_snr_above_the_cap_does_not_change_the_answer(model):
    tab, spec = _batch(2)
    spec[:, 2] = 2.0  # log10(1 + S/N) = 2: S/N 99 everywhere
    brighter = spec.clone()
    brighter[:, 2] = 3.0  # S/N 999
    fainter = spec.clone()
    fainter[:, 2] = 0.5  # S/N 2
    has = torch.ones(2, dtype=torch.bool)
    with torch.inference_mode():
        a, b, c = model(tab, spec, has), model(tab, brighter, has), model(tab, fainter, has)
    torch.testing.assert_close(a["lstm"], b["lstm"])
    assert not torch.allclose(a["lstm"], c["lstm"])


def test_fusion_attends_to_spectrum_segments_but_not_to_fully_masked_ones():
    torch.manual_seed(0)
    m = StarClassifier(ModelConfig(n_classes=K)).eval()
    tab, spec = _batch(1)
    spec[:, 1, 3000:] = 1.0  # the red third of the spectrum is masked
    spec[:, 0, 3000:] = 0.0
    has = torch.ones(1, dtype=torch.bool)
    with torch.inference_mode():
        emb = m.spectrum(spec)
        before = m(tab, spec, has)["fusion"]
        # a random vector: a constant shift would vanish in the pre-attention LayerNorm
        shift = torch.randn(m.cfg.d_model) * 3
        m.segment_emb[:, -3:] += shift  # tokens of masked segments: must be ignored
        masked_changed = m(tab, spec, has)["fusion"]
        m.segment_emb[:, :3] += shift  # tokens of observed segments: must matter
        observed_changed = m(tab, spec, has)["fusion"]
    assert emb.segments.shape == (1, m.cfg.fusion_segments, m.spectrum.seq_dim)
    assert emb.segment_valid[0, :8].all() and not emb.segment_valid[0, -3:].any()
    torch.testing.assert_close(before, masked_changed)
    assert not torch.allclose(before, observed_changed)


def test_line_index_token_feeds_the_fusion_only_and_only_for_stars_with_a_spectrum():
    torch.manual_seed(0)
    m = StarClassifier(ModelConfig(n_classes=K, line_indices=32)).eval()
    tab, spec = _batch(2)
    spec[:, 2] = 1.5  # S/N 31: above line_index_min_snr
    has = torch.tensor([True, False])
    with torch.inference_mode():
        before = m(tab, spec, has)
        m.index_emb += torch.randn(m.cfg.d_model) * 3
        after = m(tab, spec, has)
    assert not torch.allclose(before["fusion"][0], after["fusion"][0])
    torch.testing.assert_close(before["fusion"][1], after["fusion"][1])  # no spectrum: masked
    torch.testing.assert_close(before["lstm"], after["lstm"])


def test_line_indices_give_pixels_without_signal_to_noise_little_weight():
    torch.manual_seed(0)
    m = StarClassifier(ModelConfig(n_classes=K, line_indices=32)).eval()
    _, spec = _batch(1)
    spec[:, 0] = 1.0 + 0.1 * spec[:, 0]
    spec[:, 2] = 1.0  # log10(1 + S/N) = 1: S/N 9
    spec[:, 2, 1000:1400] = 0.0  # S/N 0 there (unmasked, but no information)
    wiggle = torch.randn(400) * 0.3

    def moved(at: int) -> float:
        other = spec.clone()
        other[:, 0, at : at + 400] += wiggle
        with torch.inference_mode():
            return float((m.spectrum(spec).indices - m.spectrum(other).indices).abs().max())

    # only the continuum estimate near the dark stretch lets it move the indices at all
    assert moved(1000) < 0.25 * moved(2500)


def test_line_index_token_is_masked_for_faint_spectra():
    torch.manual_seed(0)
    m = StarClassifier(ModelConfig(n_classes=K, line_indices=32, line_index_min_snr=5.0)).eval()
    tab, spec = _batch(2)
    spec[:, 2] = 1.0  # log10(1 + S/N) = 1: S/N 9
    spec[1, 2] = 0.5  # S/N 2.2: below the threshold
    has = torch.ones(2, dtype=torch.bool)
    with torch.inference_mode():
        assert m.spectrum(spec).indices_valid.tolist() == [True, False]
        before = m(tab, spec, has)["fusion"]
        m.index_emb += torch.randn(m.cfg.d_model) * 3
        after = m(tab, spec, has)["fusion"]
    assert not torch.allclose(before[0], after[0])
    torch.testing.assert_close(before[1], after[1])


@pytest.mark.parametrize("with_spectrum", [True, False])
def test_dense_logits_reach_a_spectrum_stars_fusion_only_when_configured(with_spectrum):
    """Without the dense residual, a star with a spectrum reads its photometry only through
    the attention (whose weights are not the dense head's): another survey's colours are one
    voice for the fusion to weigh, not a vote added to its answer."""
    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=K, dense_residual_with_spectrum=with_spectrum)
    m = StarClassifier(cfg).eval()
    tab, spec = _batch(2)
    has = torch.tensor([True, False])
    with torch.inference_mode():
        before = m(tab, spec, has)["fusion"]
        m.dense_head.bias += torch.randn(K) * 3
        after = m(tab, spec, has)["fusion"]
    assert not torch.allclose(before[1], after[1])  # photometry-only: dense logits always count
    assert torch.allclose(before[0], after[0]) is not with_spectrum


def test_configs_saved_before_the_dense_residual_option_keep_the_dense_residual():
    d = ModelConfig(n_classes=K).to_dict()
    d.pop("dense_residual_with_spectrum")
    assert ModelConfig.from_dict(d).dense_residual_with_spectrum is True


def _tabular(shift_mag: float = 0.0, snr_factor: float = 1.0) -> torch.Tensor:
    """Standardized features of four stars, made brighter/fainter and with another S/N."""
    from startrack.ml.features import Standardizer, tabular_features

    raw = torch.tensor(
        [
            [1e-4, 19.1, 18.0, 17.6, 17.4, 17.3, 12.0],  # z, ugriz, catalog S/N
            [-2e-4, 21.5, 19.2, 18.1, 17.6, 17.2, 4.0],
            [0.0, 18.2, 17.9, 18.0, 18.1, 18.2, 30.0],
            [5e-5, 23.0, 20.5, 19.0, 18.1, 17.5, float("nan")],
        ]
    )
    stats = Standardizer.fit(tabular_features(raw).numpy())
    raw = raw.clone()
    raw[:, 1:6] += shift_mag
    raw[:, 6] *= snr_factor
    return stats.apply(tabular_features(raw))


def test_a_stars_brightness_does_not_change_what_the_model_says_it_is(model):
    """Apparent magnitude and catalog S/N say where a star is, not what it is."""
    has = torch.zeros(4, dtype=torch.bool)
    with torch.inference_mode():
        a = model(_tabular(), None, has)
        b = model(_tabular(shift_mag=2.5, snr_factor=5.0), None, has)
    for h in ("dense", "fusion"):
        torch.testing.assert_close(a[h], b[h])
    # the colours still count
    other = _tabular()
    other[:, 7] += 1.0  # g-r
    with torch.inference_mode():
        c = model(other, None, has)
    assert not torch.allclose(a["dense"], c["dense"])


def test_models_written_before_brightness_blindness_still_read_brightness():
    cfg = ModelConfig(n_classes=K).to_dict()
    del cfg["brightness_blind"]
    old = ModelConfig.from_dict(cfg)
    assert not old.brightness_blind
    torch.manual_seed(0)
    net = StarClassifier(old).eval()
    has = torch.zeros(4, dtype=torch.bool)
    with torch.inference_mode():
        a = net(_tabular(), None, has)["dense"]
        b = net(_tabular(shift_mag=2.5, snr_factor=5.0), None, has)["dense"]
    assert not torch.allclose(a, b)
