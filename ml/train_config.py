"""The training's settings, kept apart from torch.

``startrack --help`` builds every subcommand's arguments, and the train and demo commands take
their defaults from these dataclasses: importing them must not import torch (~1.5 s), which
``ml.train`` and ``ml.augment`` do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class AugmentConfig:
    """Probabilities and ranges (stored in the artifact's hyper-parameters)."""

    # Moderate by design: with ~5k training spectra, heavy augmentation (RV up to 300 km/s on
    # 80% of spectra, E(B-V) up to 0.5, noise on half) kept the LSTM from converging in the
    # time budget; the model sees the continuum-normalized flux, so dust and calibration tilts
    # need less augmentation to be ignored.
    p_rv: float = 0.5
    max_rv_kms: float = 200.0
    p_redden: float = 0.5
    #: Most SDSS stars are at high latitude (E(B-V) 95th percentile ~0.15), but stars in the
    #: plane (and the libraries astronomers type against) reach 0.5-1. Trained to 0.25, a
    #: model typed F5-G2 stars behind E(B-V) = 0.4 as K1-K5 (0.33 within 2.5 subtypes); to
    #: 0.8, 0.62, at no cost unreddened (bench_transfer's reddened condition; README).
    max_ebv: float = 0.8
    #: Stars without a spectrum are reddened more as the sky reddens them: E(B-V)
    #: exponential with this mean (capped at max_ebv), not uniform. Only their colours can
    #: say their type, and a K1 star's colours are an F5's behind E(B-V) ~0.35: trained
    #: uniform to 0.8 (and blind to brightness) the photometry typed G and K stars F5, the
    #: commoner class; with a mean of 0.08, typed 0.55 within 5 subtypes behind E(B-V) = 0.4.
    #: 0.25 keeps real SDSS photometry at the uniform draw's within-5 with both template
    #: families, and most of its robustness to dust (README, Generalization, stop 21).
    #: 0 = uniform to max_ebv.
    phot_ebv_mean: float = 0.25
    #: The same for the reddened share of stars with a spectrum (0 = uniform to max_ebv).
    #: The network tells dust from temperature only in part (it leans on the continuum), so
    #: the training's dust is its prior: uniform to 0.8 on half the spectra, it typed its own
    #: survey's dust-free G stars 3-4 subtypes early. A sky's dust (mean 0.1, a tenth of it
    #: uniform to max_ebv all the same) with O and B stars reddened uniformly (hot_dust_below):
    #: SDSS -> built-in gained 0.04-0.10 within 2.5 subtypes, every type alike, built-in ->
    #: SDSS -0.02 to +0.03; behind E(B-V) = 0.4, rare outside the plane, up to 0.09 lost
    #: (README, Generalization, stop 25).
    spec_ebv_mean: float = 0.1
    #: Of those, this share is drawn uniform to max_ebv all the same (the heavily reddened tail).
    spec_ebv_tail: float = 0.1
    #: Spectra whose own MK type is below this (20 = O and B stars) are reddened uniformly to
    #: max_ebv whatever spec_ebv_mean says: hot stars are luminous and seen far off, through
    #: the plane's dust, while the F-K dwarfs that dominate a survey are near (0 = off).
    hot_dust_below: float = 20.0
    #: Reddened spectra get the interstellar lines of their dust (Ca II H and K, Na D, K I,
    #: the diffuse bands; simulator.interstellar), at a sightline's strength and in the
    #: star's rest frame moved by up to max_rv_kms: a real O or B star behind E(B-V) 0.5
    #: has a Ca II K line an A star would have. 0 = off (and the random stream as before).
    p_interstellar: float = 1.0
    p_continuum: float = 0.5
    continuum_sigma: float = 0.05
    #: Flux-calibration tilt along the dust law, either way (E(B-V)-equivalent ~ N(0, sigma)),
    #: on the spectrum and the photometry together, as SPECTROFLUX magnitudes measured from a
    #: mis-calibrated spectrum share its error. Dust alone only ever reddens, so a model
    #: trained on it read a bluer-than-its-templates star as a hotter one: the SDSS-trained
    #: model lost 0.09 within 2.5 subtypes on blue-tilted spectra; with this, 0.05. Unreddened
    #: SDSS -> built-in +0.03 / +0.02, built-in -> SDSS -0.01 (three seeds; README,
    #: Generalization, stop 22). 0 = off (and the random stream as before it existed).
    p_calib_tilt: float = 0.5
    calib_tilt_sigma: float = 0.15
    p_noise: float = 0.3
    min_snr: float = 3.0
    p_smooth: float = 0.3
    #: Extra Gaussian blur (pixels, added in quadrature to SDSS's ~1 px): down to R ~ 600, as
    #: spectra from other instruments and libraries reach the model (bench_transfer's
    #: low_res condition); a model that never saw blur read blurred lines as weaker ones.
    max_smooth_px: float = 3.0
    p_mask_runs: float = 0.3
    max_run_px: int = 200
    #: Lose one end of the spectrum: red of 6500-8800 A (libraries and instruments that stop
    #: short of SDSS's 9200 A, a dead red camera) or, one time in five, blue of 3900-4600 A.
    p_cut_end: float = 0.15
    p_mix: float = 0.1
    #: Scale line depths by a smooth random factor of wavelength (exp of a quadratic, mean 0,
    #: this sigma per coefficient): real stars of one subclass differ from its template in
    #: metallicity and gravity, which change how deep the lines are, not where they are.
    p_lines: float = 0.3
    line_sigma: float = 0.15
    p_drop_band: float = 0.03
    #: Colour tilt: a linear offset across ugriz (sigma in magnitudes from u to z / 2).
    p_phot_tilt: float = 0.5
    phot_tilt_sigma: float = 0.1
    #: Stars with a spectrum trained now and then without photometry: in transfer to another
    #: template family the fusion typed better with the photometry hidden than shown.
    p_drop_photometry: float = 0.4
    #: Stars with a spectrum trained now and then with g and r only: the photometry a spectrum
    #: that stops short of u, i and z gives (SPECTROFLUX of a 3800-7400 A spectrum, as
    #: stellar libraries observed blueward of 7400 A have).
    p_only_g_r: float = 0.0
    default_magerr: float = 0.03

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 64  #: stars with a spectrum per batch
    phot_per_spec: float = 4.0  #: photometry-only stars per spectrum star (cheap: no LSTM)
    lr: float = 3e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    #: Share of an MK star's target given to its type blurred by a Gaussian (type_sigma
    #: subtypes): neighbouring types are less wrong than distant ones (ml.targets).
    type_smoothing: float = 0.3
    type_sigma: float = 2.0
    #: Target each star at its own MK type where the warehouse has one (ELODIE_SPTYPE),
    #: split between the subclasses around it (ml.targets), not at its label's type.
    own_types: bool = True
    #: Spectrum stars are drawn with probability ~ count(group)^-sample_power (with
    #: replacement): rare groups are seen often, with fresh augmentations each time ...
    sample_power: float = 0.5
    #: ... where a star's group is the bin of this many subtypes its own type falls in, not
    #: its label (0 = by label; stars off MK always by label). A survey with SDSS's label
    #: frequencies holds 30 A0 or M stars for every B2-B7 or G5-K0 one, and by label an A5
    #: labelled A0 counts as common; a set of real stars "O to M" is not so lopsided
    #: (README, Generalization, stop 23).
    sample_type_bin: float = 3.0
    #: Loss weight ~ count^-power: photometry-only stars / spectrum stars (on top of sampling).
    class_weight_power: float = 0.5
    spec_weight_power: float = 0.25
    dense_hidden: int = 128
    lstm_hidden: int = 64
    d_model: int = 64
    dropout: float = 0.1
    patience: int = 4
    #: Decay per step of the weight average that is validated and saved (~1/(1-d) steps).
    ema_decay: float = 0.995
    min_class_count: int = 20
    max_train_stars: int | None = None
    time_budget_s: float | None = None  #: stop after the epoch that crosses this
    #: ... but never before this many epochs (on a slow or busy machine the run takes longer)
    min_epochs: int = 0
    seed: int = 0
    threads: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    #: Further ModelConfig fields (architecture ablations, benchmarks/ablate_model.py).
    model_options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = self.augment.to_dict()
        return d
