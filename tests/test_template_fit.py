"""The chi-square template fit recovers the template behind noisy, shifted, distorted copies."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from startrack import grid
from startrack.labels import normalize_subclass
from startrack.ml.template_fit import KMS_PER_PIXEL, TemplateFitter, fit_templates

SDSS = Path(__file__).resolve().parents[1].parent / "shared" / "sdss"


def _sdss_templates() -> SimpleNamespace:
    path = SDSS / "templates" / "spEigenStar-53724.fits"
    if not path.exists():
        pytest.skip("../shared/sdss not present: real SDSS fixtures unavailable")
    from astropy.io import fits

    with fits.open(path) as hdul:
        hdr, data = hdul[0].header, hdul[0].data.astype(np.float64)
    names = [str(hdr[f"NAME{i}"]).strip() for i in range(data.shape[0])]
    loglam = hdr["COEFF0"] + hdr["COEFF1"] * np.arange(data.shape[1])
    return SimpleNamespace(names=names, loglam=loglam, flux=data)


def _synthetic_templates(loglam: np.ndarray) -> SimpleNamespace:
    """Blackbody-like continua with distinct absorption-line patterns, one per subclass."""
    lam = 10**loglam
    rng = np.random.default_rng(42)
    names = ["A0", "F5", "G2", "K3", "M2V", "WD"]
    flux = []
    for i, _ in enumerate(names):
        cont = (lam / 5000.0) ** (-2.0 + 0.8 * i)
        lines = np.ones_like(lam)
        for center in rng.uniform(lam[50], lam[-50], 25):
            lines -= rng.uniform(0.2, 0.6) * np.exp(-0.5 * ((lam - center) / 4.0) ** 2)
        flux.append(cont * lines)
    return SimpleNamespace(names=names, loglam=loglam, flux=np.array(flux))


def _observe(templates, rng, n, snr=15.0, max_shift=4):
    """Copies of random templates: integer-pixel RV shift, cubic distortion, noise, masking."""
    fitter_grid = TemplateFitter(templates, max_velocity_kms=0.0)
    from startrack.ml.template_fit import _templates_on_grid

    on_grid = _templates_on_grid(np.asarray(templates.loglam), np.asarray(templates.flux))
    x = np.linspace(-1, 1, grid.NPIX)
    idx = rng.integers(0, len(templates.names), n)
    shifts = rng.integers(-max_shift, max_shift + 1, n)
    flux = np.full((n, grid.NPIX), np.nan)
    ivar = np.zeros((n, grid.NPIX))
    for k, (t, s) in enumerate(zip(idx, shifts, strict=True)):
        shifted = np.roll(on_grid[t], s)
        poly = 3.0 * (1 + rng.uniform(-0.3, 0.3) * x + rng.uniform(-0.2, 0.2) * x**3)
        model = shifted * poly
        covered = np.isfinite(model)
        covered[: fitter_grid.pix.start + 10] = covered[fitter_grid.pix.stop - 10 :] = False
        sigma = np.nanmedian(np.abs(model[covered])) / snr
        flux[k, covered] = model[covered] + rng.normal(0, sigma, covered.sum())
        ivar[k, covered] = 1.0 / sigma**2
        bad = rng.uniform(size=grid.NPIX) < 0.02  # a few masked pixels with garbage flux
        ivar[k, bad] = 0.0
        flux[k, bad & covered] = 1e6
    return flux, ivar, idx, shifts


def test_recovers_synthetic_templates_with_velocity() -> None:
    templates = _synthetic_templates(3.60 + 1e-4 * np.arange(3500))  # on the grid lattice
    rng = np.random.default_rng(0)
    flux, ivar, idx, shifts = _observe(templates, rng, 60)
    result = fit_templates(templates, flux, ivar, max_velocity_kms=300.0)
    names = np.array(templates.names, dtype=object)
    assert (result.template_names == names[idx]).all()
    assert (result.labels == [normalize_subclass(n).label for n in names[idx]]).all()
    np.testing.assert_allclose(result.velocity_kms, shifts * KMS_PER_PIXEL)
    assert np.all(np.abs(result.rchi2 - 1.0) < 0.15)  # noise model is right: rchi2 ~ 1
    p = result.proba()
    assert p.shape == (60, len(result.classes))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_templates_off_the_grid_lattice_are_interpolated() -> None:
    templates = _synthetic_templates(3.6 + 0.7e-4 * np.arange(5000) + 0.3e-4)
    rng = np.random.default_rng(1)
    flux, ivar, idx, _ = _observe(templates, rng, 30, max_shift=2)
    result = TemplateFitter(templates, max_velocity_kms=150.0).fit(flux, ivar)
    assert (result.template_names == np.array(templates.names, dtype=object)[idx]).all()


def test_recovers_real_sdss_templates() -> None:
    templates = _sdss_templates()
    rng = np.random.default_rng(2)
    flux, ivar, idx, shifts = _observe(templates, rng, 120, snr=30.0)
    result = TemplateFitter(templates).fit(flux, ivar)
    names = np.array(templates.names, dtype=object)
    exact = result.template_names == names[idx]
    # Neighbouring SDSS templates (F9/G0, B6/B9, A0/A0p, M2/M2V) are nearly degenerate at
    # moderate S/N; demand near-perfect recovery of the exact template and of the velocity.
    assert exact.mean() >= 0.95
    np.testing.assert_allclose(result.velocity_kms[exact], shifts[exact] * KMS_PER_PIXEL)
    assert set(result.classes) >= {"A0", "K3", "M2", "WD", "Carbon", "L5", "T2", "OB"}


def test_builtin_demo_templates_are_recovered() -> None:
    from startrack.simulator.templates import builtin_templates

    templates = builtin_templates()
    flux, ivar, idx, _ = _observe(templates, np.random.default_rng(3), 80, snr=20.0)
    result = TemplateFitter(templates).fit(flux, ivar)
    expected = [normalize_subclass(templates.names[i]).label for i in idx]
    assert np.mean(result.labels == np.array(expected, dtype=object)) >= 0.95


def test_unfittable_spectra_and_bad_shapes() -> None:
    templates = _synthetic_templates(3.60 + 1e-4 * np.arange(3500))
    fitter = TemplateFitter(templates)
    flux = np.ones((2, grid.NPIX))
    ivar = np.zeros((2, grid.NPIX))  # nothing to fit
    result = fitter.fit(flux, ivar)
    assert list(result.labels) == [None, None] and np.isnan(result.rchi2).all()
    with pytest.raises(ValueError, match="common grid"):
        fitter.fit(np.ones((2, 100)), np.ones((2, 100)))
    with pytest.raises(ValueError, match="template flux"):
        TemplateFitter(SimpleNamespace(names=["A0"], loglam=np.arange(3), flux=np.ones((2, 3))))


def test_ambiguity_warning_when_the_best_two_are_within_one_percent() -> None:
    """A spectrum half-way between two templates is the SDSS pipeline's ambiguous case."""
    templates = _synthetic_templates(3.60 + 1e-4 * np.arange(3500))
    mid = np.sqrt(templates.flux[2] * templates.flux[3])  # between G2 and K3
    blend = SimpleNamespace(names=["G2", "K3"], loglam=templates.loglam, flux=templates.flux[2:4])
    flux = np.full((2, grid.NPIX), np.nan)
    ivar = np.zeros((2, grid.NPIX))
    start = round((templates.loglam[0] - grid.LOGLAM0) / grid.DLOGLAM)
    rng = np.random.default_rng(5)
    for k, (spec, snr) in enumerate(((mid, 2.0), (templates.flux[2], 30.0))):
        sigma = np.median(spec) / snr
        flux[k, start + 20 : start + 3480] = spec[20:3480] + rng.normal(0, sigma, 3460)
        ivar[k, start + 20 : start + 3480] = 1.0 / sigma**2
    result = TemplateFitter(blend, max_velocity_kms=0.0).fit(flux, ivar)
    runner, runner_rchi2 = result.runner_up
    assert list(result.ambiguous) == [True, False]
    assert set(runner) <= {"G2", "K3"} and np.all(runner_rchi2 >= result.rchi2)
