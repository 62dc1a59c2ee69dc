"""Placing spectra on the common grid: exact lattice shifts, interpolation, masks, norms."""

from __future__ import annotations

import numpy as np
import pytest

from startrack import grid
from startrack.etl.errors import SpectrumError
from startrack.etl.resample import ALL_BITS, INFORMATIONAL_BITS, place_on_grid


def _lattice(k0: int, n: int, dtype=np.float32) -> np.ndarray:
    return (grid.LOGLAM0 + grid.DLOGLAM * (k0 + np.arange(n))).astype(dtype)


def test_lattice_spectrum_is_shifted_not_interpolated():
    rng = np.random.default_rng(1)
    flux = rng.normal(100, 5, 3000).astype(np.float32)
    ivar = rng.uniform(0.5, 2, 3000).astype(np.float32)
    out = place_on_grid(_lattice(300, 3000), flux, ivar)
    assert out.exact_shift and (out.pix_start, out.pix_end) == (300, 3300)
    np.testing.assert_array_equal(out.flux[300:3300], flux)
    np.testing.assert_array_equal(out.ivar[300:3300], ivar)
    assert not out.mask[300:3300].any()
    assert out.mask[:300].all() and out.mask[3300:].all()
    assert np.isnan(out.flux[:300]).all() and (out.ivar[:300] == 0).all()
    assert out.norm == pytest.approx(np.median(flux))
    assert out.snr_median == pytest.approx(np.median(flux * np.sqrt(ivar)), rel=1e-6)


def test_float64_lattice_and_partial_overlap_at_the_red_end():
    out = place_on_grid(_lattice(4500, 400, np.float64), np.ones(400), np.ones(400))
    assert out.exact_shift and (out.pix_start, out.pix_end) == (4500, grid.NPIX)
    assert not out.mask[4500:].any()


def test_half_pixel_offset_interpolates_and_propagates_variance():
    n = 1000
    loglam = grid.LOGLAM0 + grid.DLOGLAM * (100.5 + np.arange(n))
    flux = 2.0 * np.arange(n) + 7.0  # linear: interpolation must reproduce it exactly
    ivar = np.full(n, 4.0)
    out = place_on_grid(loglam, flux, ivar)
    assert not out.exact_shift
    assert (out.pix_start, out.pix_end) == (101, 1100)
    # grid pixel 101 sits halfway between input pixels 0 and 1
    assert out.flux[101] == pytest.approx(8.0)
    np.testing.assert_allclose(out.flux[101:1100], 2.0 * (np.arange(101, 1100) - 100.5) + 7.0)
    # var = 0.25/4 + 0.25/4 = 0.125 -> ivar 8: averaging two pixels halves the variance
    np.testing.assert_allclose(out.ivar[101:1100], 8.0, rtol=1e-6)


def test_interpolated_pixels_touching_a_masked_input_are_masked():
    n = 200
    loglam = grid.LOGLAM0 + grid.DLOGLAM * (10.3 + np.arange(n))
    ivar = np.ones(n)
    ivar[50] = 0
    out = place_on_grid(loglam, np.ones(n), ivar)
    # input 50 sits at grid 60.3: grid pixels 60 (inputs 49, 50) and 61 (inputs 50, 51)
    assert out.mask[60] and out.mask[61]
    assert not out.mask[59] and not out.mask[62]
    assert out.ivar[60] == 0 and np.isnan(out.flux[60])


def test_sub_tolerance_offset_still_counts_as_exact():
    loglam = grid.LOGLAM0 + grid.DLOGLAM * (50.0004 + np.arange(100))
    assert place_on_grid(loglam, np.ones(100), np.ones(100)).exact_shift
    loglam = grid.LOGLAM0 + grid.DLOGLAM * (50.01 + np.arange(100))
    assert not place_on_grid(loglam, np.ones(100), np.ones(100)).exact_shift


def test_and_mask_bits_mask_pixels_but_whopper_is_informational():
    and_mask = np.zeros(100, dtype=np.int32)
    and_mask[10] = 1 << 23  # BRIGHTSKY
    and_mask[20] = 1 << INFORMATIONAL_BITS["WHOPPER"]
    out = place_on_grid(_lattice(0, 100), np.ones(100), np.ones(100), and_mask)
    assert out.mask[10] and not out.mask[20]
    strict = place_on_grid(_lattice(0, 100), np.ones(100), np.ones(100), and_mask, ALL_BITS)
    assert strict.mask[10] and strict.mask[20]


def test_nonfinite_and_nonpositive_ivar_are_masked():
    flux, ivar = np.ones(100), np.ones(100)
    flux[5], flux[6], ivar[7], ivar[8] = np.nan, np.inf, 0.0, -1.0
    out = place_on_grid(_lattice(0, 100), flux, ivar)
    assert out.mask[5:9].all() and not out.mask[9]
    assert (out.ivar[5:9] == 0).all() and np.isnan(out.flux[5:7]).all()


def test_negative_median_flux_falls_back_to_median_abs():
    flux = np.full(100, -3.0)
    out = place_on_grid(_lattice(0, 100), flux, np.ones(100))
    assert out.norm == pytest.approx(3.0) and out.norm_method.startswith("median_abs_unmasked")


@pytest.mark.parametrize(
    ("loglam", "flux", "ivar", "message"),
    [
        (_lattice(0, 10), np.ones(9), np.ones(10), "mismatched length"),
        (_lattice(0, 10)[::-1], np.ones(10), np.ones(10), "not strictly increasing"),
        (np.linspace(4.5, 4.6, 10), np.ones(10), np.ones(10), "no overlap with the common grid"),
        (_lattice(0, 10), np.ones(10), np.zeros(10), "all-zero ivar"),
        (_lattice(0, 10), np.full(10, np.nan), np.ones(10), "flux is NaN or inf in all 10"),
        (_lattice(0, 10), np.zeros(10), np.ones(10), "every unmasked pixel has flux 0"),
        (_lattice(0, 1), np.ones(1), np.ones(1), "at least 2 are needed"),
    ],
)
def test_unusable_spectra_raise_with_a_reason(loglam, flux, ivar, message):
    with pytest.raises(SpectrumError, match=message):
        place_on_grid(loglam, flux, ivar)


def test_resampling_is_fast():
    import time

    loglam, flux, ivar = _lattice(300, 3829), np.ones(3829), np.ones(3829)
    shifted = grid.LOGLAM0 + grid.DLOGLAM * (300.37 + np.arange(3829))
    t0 = time.perf_counter()
    for _ in range(50):
        place_on_grid(loglam, flux, ivar)
        place_on_grid(shifted, flux, ivar)
    assert (time.perf_counter() - t0) / 100 < 0.005  # generous: ~0.3 ms measured
