"""On-the-fly, batched augmentations that teach spectral features rather than the 40 templates.

The training survey is simulated from SDSS templates; real stars differ by radial velocity,
dust, flux calibration, noise, resolution and bad pixels. Every augmentation here acts on a
batch of normalized spectra (flux/norm, ivar*norm^2, mask) as torch tensors and keeps the
inverse variance consistent with what it did to the flux. Photometry gets the matching
treatment (magnitude jitter within the errors, reddening consistent with the spectrum's).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from startrack.grid import C_KMS, DLOGLAM, wavelength
from startrack.ml.continuum import smooth_continuum
from startrack.ml.train_config import AugmentConfig
from startrack.simulator import interstellar
from startrack.simulator.extinction import R_V_DEFAULT, a_lambda_over_a_v

#: A_band / E(B-V) for SDSS ugriz, R_V = 3.1 (Schlafly & Finkbeiner 2011, table 6).
SDSS_EXTINCTION = (4.239, 3.303, 2.285, 1.698, 1.263)


_CURVE_CACHE: dict[int, torch.Tensor] = {}
#: ugriz effective wavelengths (3551, 4686, 6166, 7480, 8932 A) as log lambda scaled to -1..1.
_BAND_POSITION = torch.tensor([-1.0, -0.40, 0.21, 0.62, 1.0])
_OUTER_BANDS = torch.tensor([True, False, False, True, True])  #: u, i, z


def _extinction_curve(npix: int) -> torch.Tensor:
    if npix not in _CURVE_CACHE:
        wave = wavelength()[:npix]
        curve = a_lambda_over_a_v(wave) * R_V_DEFAULT  # A_lambda / E(B-V)
        _CURVE_CACHE[npix] = torch.as_tensor(curve, dtype=torch.float32)
    return _CURVE_CACHE[npix]


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _dust(n: int, mean: float, cap: float, gen: torch.Generator) -> torch.Tensor:
    """E(B-V) exponential with ``mean``, capped at ``cap``; uniform to ``cap`` when mean <= 0."""
    u = torch.rand(n, generator=gen)
    if mean <= 0:
        return cap * u
    return (-mean * torch.log1p(-u)).clamp(max=cap)


def spectrum_ebv(n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """E(B-V) for ``n`` reddened spectra: uniform to max_ebv, or exponential with mean
    cfg.spec_ebv_mean capped at max_ebv with a share cfg.spec_ebv_tail uniform all the same."""
    ebv = _dust(n, cfg.spec_ebv_mean, cfg.max_ebv, gen)
    if cfg.spec_ebv_mean > 0 and cfg.spec_ebv_tail > 0:
        tail = torch.rand(n, generator=gen) < cfg.spec_ebv_tail
        ebv = torch.where(tail, _uniform(n, 0.0, cfg.max_ebv, gen), ebv)
    return ebv


def photometry_ebv(n: int, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """E(B-V) for ``n`` stars without a spectrum: exponential with mean cfg.phot_ebv_mean,
    capped at cfg.max_ebv (uniform to max_ebv when the mean is 0)."""
    return _dust(n, cfg.phot_ebv_mean, cfg.max_ebv, gen)


def _chosen(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def _var(ivar: torch.Tensor) -> torch.Tensor:
    return torch.where(ivar > 0, 1.0 / ivar.clamp(min=1e-30), torch.full_like(ivar, float("inf")))


def _ivar(var: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(var) & (var > 0), 1.0 / var, torch.zeros_like(var))


def _renormalize(flux: torch.Tensor, ivar: torch.Tensor, mask: torch.Tensor):
    """Divide by the median of unmasked pixels again (as the ETL's norm did)."""
    med = torch.nanmedian(torch.where(mask, torch.nan, flux), dim=1, keepdim=True).values
    med = torch.where(torch.isfinite(med) & (med > 0), med, torch.ones_like(med))
    return flux / med, ivar * med**2


def rv_shift(flux, ivar, mask, v_kms: torch.Tensor):
    """Doppler-shift by v (km/s, + = redshift): a line moves by log10(1+v/c)/DLOGLAM pixels.

    Linear interpolation for sub-pixel shifts; variance propagated; pixels shifted in from
    outside the grid or touching a masked pixel are masked.
    """
    n = flux.shape[1]
    shift = torch.log10(1.0 + v_kms.double() / C_KMS).float() / DLOGLAM  # (B,)
    src = torch.arange(n, dtype=torch.float32).unsqueeze(0) - shift.unsqueeze(1)
    i0 = torch.floor(src)
    w = (src - i0).clamp(0, 1)
    i0 = i0.long()
    i1 = i0 + 1
    outside = (i0 < 0) | (i1 > n - 1)
    i0c, i1c = i0.clamp(0, n - 1), i1.clamp(0, n - 1)
    f = (1 - w) * flux.gather(1, i0c) + w * flux.gather(1, i1c)
    var = (1 - w) ** 2 * _var(ivar).gather(1, i0c) + w**2 * _var(ivar).gather(1, i1c)
    m = mask.gather(1, i0c) | (mask.gather(1, i1c) & (w > 1e-6)) | outside
    f = torch.where(m, torch.zeros_like(f), f)
    return f, torch.where(m, torch.zeros_like(f), _ivar(var)), m


def redden(flux, ivar, mask, ebv: torch.Tensor):
    """Apply dust with colour excess E(B-V) (O94/CCM law, R_V=3.1), then renormalize."""
    k = _extinction_curve(flux.shape[1])
    factor = torch.pow(10.0, -0.4 * ebv.unsqueeze(1) * k.unsqueeze(0))
    flux, ivar = flux * factor, ivar / factor**2
    return (*_renormalize(flux, ivar, mask), mask)


def add_interstellar_lines(flux, ivar, mask, ebv: torch.Tensor, gen: torch.Generator, max_v: float):
    """Multiply in the interstellar lines of dust E(B-V) (simulator.interstellar), each
    spectrum its own sightline strength and gas velocity (uniform within +-max_v km/s)."""
    b, n = flux.shape
    strength = torch.pow(10.0, torch.randn(b, generator=gen) * interstellar.SIGHTLINE_SCATTER_DEX)
    v = _uniform(b, -max_v, max_v, gen)
    t = interstellar.transmission(wavelength()[:n], ebv.numpy(), strength.numpy(), v.numpy())
    t = torch.as_tensor(t, dtype=torch.float32)
    return flux * t, ivar / t**2, mask


def continuum_distort(flux, ivar, mask, sigma: float, gen: torch.Generator, degree: int = 3):
    """Multiply by exp(random Legendre polynomial): flux-calibration / continuum errors."""
    b, n = flux.shape
    x = torch.linspace(-1, 1, n)
    basis = torch.stack([torch.special.legendre_polynomial_p(x, k) for k in range(1, degree + 1)])
    coef = torch.randn(b, degree, generator=gen) * sigma
    factor = torch.exp(coef @ basis)
    flux, ivar = flux * factor, ivar / factor**2
    return (*_renormalize(flux, ivar, mask), mask)


def line_strength(flux, ivar, mask, sigma: float, gen: torch.Generator):
    """flux = cont * (1 + s(lambda) * (flux/cont - 1)), s = exp(quadratic in wavelength).

    Lines (and the noise around them) deepen or weaken smoothly across the spectrum; their
    positions and the continuum stay. ivar follows the scaled noise.
    """
    b, n = flux.shape
    cont = smooth_continuum(flux, mask.float()).clamp(min=1e-3)
    x = torch.linspace(-1, 1, n)
    basis = torch.stack([torch.ones(n), x, torch.special.legendre_polynomial_p(x, 2)])
    s = torch.exp((torch.randn(b, 3, generator=gen) * sigma) @ basis)
    out = cont * (1 + s * (flux / cont - 1))
    zero = torch.zeros_like(flux)
    return torch.where(mask, zero, out), torch.where(mask, zero, ivar / s**2), mask


def median_snr(ivar: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Median per-pixel S/N of a normalized spectrum (flux ~ 1), (B,)."""
    s = torch.where(mask, torch.nan, torch.sqrt(ivar.clamp(min=0)))
    out = torch.nanmedian(s, dim=1).values
    return torch.nan_to_num(out, nan=0.0)


def add_noise(flux, ivar, mask, target_snr: torch.Tensor, gen: torch.Generator):
    """Add Gaussian noise so the median S/N drops to target_snr; ivar updated to match."""
    cur = median_snr(ivar, mask).clamp(min=1e-3)
    add_var = (1.0 / target_snr.clamp(min=1e-3) ** 2 - 1.0 / cur**2).clamp(min=0).unsqueeze(1)
    noise = torch.randn(flux.shape, generator=gen) * torch.sqrt(add_var)
    flux = torch.where(mask, flux, flux + noise)
    ivar = torch.where(mask, ivar, _ivar(_var(ivar) + add_var))
    return flux, ivar, mask


def smooth(flux, ivar, mask, sigma_px: torch.Tensor):
    """Gaussian blur of per-spectrum width (lower resolution), ignoring masked pixels."""
    b = flux.shape[0]
    half = max(1, math.ceil(3 * float(sigma_px.max())))
    x = torch.arange(-half, half + 1, dtype=torch.float32)
    kern = torch.exp(-0.5 * (x.unsqueeze(0) / sigma_px.clamp(min=1e-3).unsqueeze(1)) ** 2)
    kern = (kern / kern.sum(1, keepdim=True)).unsqueeze(1)  # (B, 1, K)
    w = (~mask).float()
    num = F.conv1d((flux * w).unsqueeze(0), kern, padding=half, groups=b)[0]
    den = F.conv1d(w.unsqueeze(0), kern, padding=half, groups=b)[0]
    out = torch.where(mask | (den < 1e-3), torch.zeros_like(flux), num / den.clamp(min=1e-3))
    return out, ivar, mask


def mask_runs(flux, ivar, mask, gen: torch.Generator, max_runs: int = 3, max_len: int = 200):
    """Mask random contiguous runs (bad columns, dichroic gaps, missing arms)."""
    b, n = flux.shape
    pos = torch.arange(n).unsqueeze(0)
    new = mask.clone()
    for _ in range(max_runs):
        start = torch.randint(0, n, (b, 1), generator=gen)
        length = torch.randint(0, max_len + 1, (b, 1), generator=gen)
        new |= (pos >= start) & (pos < start + length)
    zero = torch.zeros_like(flux)
    return torch.where(new, zero, flux), torch.where(new, zero, ivar), new


def cut_end(flux, ivar, mask, gen: torch.Generator):
    """Mask everything beyond a random wavelength at one end of the spectrum."""
    b, n = flux.shape
    loglam = torch.log10(torch.as_tensor(wavelength()[:n], dtype=torch.float64))
    red = torch.rand(b, generator=gen) < 0.8
    edge = torch.where(
        red, _uniform(b, 6500.0, 8800.0, gen), _uniform(b, 3900.0, 4600.0, gen)
    ).double()
    beyond = torch.where(
        red.unsqueeze(1),
        loglam.unsqueeze(0) > torch.log10(edge).unsqueeze(1),
        loglam.unsqueeze(0) < torch.log10(edge).unsqueeze(1),
    )
    new = mask | beyond
    zero = torch.zeros_like(flux)
    return torch.where(new, zero, flux), torch.where(new, zero, ivar), new


def _apply(rows: torch.Tensor, fn, flux, ivar, mask, *args):
    """Run fn on the selected rows only, write them back."""
    if not bool(rows.any()):
        return flux, ivar, mask
    f, iv, m = fn(flux[rows], ivar[rows], mask[rows], *args)
    flux, ivar, mask = flux.clone(), ivar.clone(), mask.clone()
    flux[rows], ivar[rows], mask[rows] = f, iv, m
    return flux, ivar, mask


def augment_spectra(
    flux, ivar, mask, gen: torch.Generator, cfg: AugmentConfig, types: torch.Tensor | None = None
):
    """All spectral augmentations on a batch -> (flux, ivar, mask, ebv (B,), snr (B,)).

    Returns the applied E(B-V) (0 where none) so the photometry can be reddened to match, and
    the new median S/N so the tabular snr feature stays consistent.
    """
    b = flux.shape[0]
    rows = _chosen(b, cfg.p_rv, gen)
    v = _uniform(int(rows.sum()), -cfg.max_rv_kms, cfg.max_rv_kms, gen)
    flux, ivar, mask = _apply(rows, rv_shift, flux, ivar, mask, v)
    ebv = torch.zeros(b)
    rows = _chosen(b, cfg.p_redden, gen)
    ebv[rows] = spectrum_ebv(int(rows.sum()), cfg, gen)
    if cfg.hot_dust_below > 0 and types is not None:  # `types`: each spectrum's own MK type
        hot = rows & (types < cfg.hot_dust_below)
        ebv[hot] = _uniform(int(hot.sum()), 0.0, cfg.max_ebv, gen)
    dust = ebv.clone()
    if cfg.p_calib_tilt > 0:  # along the same law: one pass applies dust and tilt together
        tilted = _chosen(b, cfg.p_calib_tilt, gen)
        ebv[tilted] += torch.randn(int(tilted.sum()), generator=gen) * cfg.calib_tilt_sigma
        rows = rows | tilted
    flux, ivar, mask = _apply(rows, redden, flux, ivar, mask, ebv[rows])
    if cfg.p_interstellar > 0:
        rows = (dust > 0) & _chosen(b, cfg.p_interstellar, gen)
        flux, ivar, mask = _apply(
            rows, add_interstellar_lines, flux, ivar, mask, dust[rows], gen, cfg.max_rv_kms
        )
    rows = _chosen(b, cfg.p_continuum, gen)
    flux, ivar, mask = _apply(rows, continuum_distort, flux, ivar, mask, cfg.continuum_sigma, gen)
    rows = _chosen(b, cfg.p_lines, gen)
    flux, ivar, mask = _apply(rows, line_strength, flux, ivar, mask, cfg.line_sigma, gen)
    rows = _chosen(b, cfg.p_smooth, gen)
    sig = _uniform(int(rows.sum()), 0.5, cfg.max_smooth_px, gen)
    flux, ivar, mask = _apply(rows, smooth, flux, ivar, mask, sig)
    rows = _chosen(b, cfg.p_noise, gen)
    if bool(rows.any()):
        cur = median_snr(ivar[rows], mask[rows]).clamp(min=cfg.min_snr)
        lo = math.log(cfg.min_snr)
        target = torch.exp(lo + (torch.log(cur) - lo) * torch.rand(int(rows.sum()), generator=gen))
        flux, ivar, mask = _apply(rows, add_noise, flux, ivar, mask, target, gen)
    rows = _chosen(b, cfg.p_mask_runs, gen)
    flux, ivar, mask = _apply(rows, mask_runs, flux, ivar, mask, gen, 3, cfg.max_run_px)
    rows = _chosen(b, cfg.p_cut_end, gen)
    flux, ivar, mask = _apply(rows, cut_end, flux, ivar, mask, gen)
    return flux, ivar, mask, ebv, median_snr(ivar, mask)


def augment_photometry(
    raw: torch.Tensor,
    magerr: torch.Tensor,
    ebv: torch.Tensor,
    gen: torch.Generator,
    cfg: AugmentConfig,
    spectrum: torch.Tensor | None = None,
) -> torch.Tensor:
    """Jitter ugriz by their errors, redden consistently with E(B-V), tilt the colours as a
    flux-calibration error would, drop a band sometimes; drop all photometry of some stars
    that have a spectrum (``spectrum``: bool per row), so the fusion learns to type from the
    spectrum alone when the photometry misleads.

    raw columns follow features.RAW_COLUMNS (z, mag_u..mag_z, snr).
    """
    raw = raw.clone()
    mags = raw[:, 1:6]
    err = torch.where(torch.isfinite(magerr) & (magerr > 0), magerr, cfg.default_magerr)
    err = err.clamp(max=0.5)
    ext = torch.as_tensor(SDSS_EXTINCTION).unsqueeze(0) * ebv.unsqueeze(1)
    mags = mags + torch.randn(mags.shape, generator=gen) * err + ext
    # calibration tilt: magnitudes from a spectrum (SPECTROFLUX) inherit its flux-calibration
    # error, a colour offset smooth in wavelength that dust-free photometry never shows
    tilt = _chosen(len(mags), cfg.p_phot_tilt, gen) * torch.randn(len(mags), generator=gen)
    mags = mags + (cfg.phot_tilt_sigma * tilt).unsqueeze(1) * _BAND_POSITION
    drop = torch.rand(mags.shape, generator=gen) < cfg.p_drop_band
    if spectrum is not None:  # a star with a spectrum sometimes without photometry at all
        drop = drop | (spectrum & _chosen(len(mags), cfg.p_drop_photometry, gen)).unsqueeze(1)
        if cfg.p_only_g_r > 0:  # or with the g and r of a spectrum that stops short of u, i, z
            short = spectrum & _chosen(len(mags), cfg.p_only_g_r, gen)
            drop = drop | (short.unsqueeze(1) & _OUTER_BANDS)
    raw[:, 1:6] = torch.where(drop, torch.full_like(mags, float("nan")), mags)
    return raw


def neighbour_mix(
    flux, ivar, mask, raw, targets, classes, neighbours, eligible, gen: torch.Generator, p: float
):
    """Mix a star with another of an adjacent subtype (soft labels between neighbours).

    classes (B,) class index; neighbours (K, K) bool; eligible (B,) rows that may mix (they
    have a spectrum and an MK class). Returns new flux, ivar, mask, raw, targets.
    """
    b = flux.shape[0]
    want = eligible & _chosen(b, p, gen)
    if not bool(want.any()):
        return flux, ivar, mask, raw, targets
    cand = neighbours[classes][:, classes] & eligible.unsqueeze(0)  # (B, B): j neighbour of i
    score = torch.rand(b, b, generator=gen) * cand
    partner = score.argmax(1)
    want = want & cand.any(1)
    if not bool(want.any()):
        return flux, ivar, mask, raw, targets
    lam = _uniform(b, 0.5, 1.0, gen)
    lam = torch.where(want, lam, torch.ones_like(lam))
    l2 = lam.unsqueeze(1)
    fp, ip, mp = flux[partner], ivar[partner], mask[partner]
    flux = torch.where(want.unsqueeze(1), l2 * flux + (1 - l2) * fp, flux)
    var = l2**2 * _var(ivar) + (1 - l2) ** 2 * _var(ip)
    mask = torch.where(want.unsqueeze(1), mask | mp, mask)
    ivar = torch.where(want.unsqueeze(1), _ivar(var), ivar)
    zero = torch.zeros_like(flux)
    flux, ivar = torch.where(mask, zero, flux), torch.where(mask, zero, ivar)
    raw = raw.clone()
    raw[:, 1:6] = torch.where(
        want.unsqueeze(1), l2 * raw[:, 1:6] + (1 - l2) * raw[partner, 1:6], raw[:, 1:6]
    )
    targets = torch.where(want.unsqueeze(1), l2 * targets + (1 - l2) * targets[partner], targets)
    return flux, ivar, mask, raw, targets
