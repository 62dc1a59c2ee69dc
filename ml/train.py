"""Training loop for the multimodal classifier, on plain numpy arrays.

Class set: the normalized labels with at least ``min_class_count`` training stars; stars with a
rarer (or no) label are left out of training and validation and the model never predicts them.
Each epoch uses every training star with a spectrum plus ``phot_per_spec`` times as many
photometry-only stars (resampled each epoch), so both branches learn although the warehouse
holds ~32x more photometry-only stars. Loss = dense (all stars) + lstm (stars with a spectrum)
+ fusion (stars with a spectrum, plus stars without one as a separate term), class-weighted by
inverse sqrt frequency, with label smoothing. Early stopping on the validation fusion cross-entropy
(mean of stars with and without a spectrum, so neither dominates) of an exponential moving
average of the weights, which is also what is saved.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from startrack.errors import NothingToTrain
from startrack.labels import normalize_subclass, sort_key, spectral_types
from startrack.ml.augment import (
    augment_photometry,
    augment_spectra,
    median_snr,
    neighbour_mix,
    photometry_ebv,
)
from startrack.ml.calibration import fit_temperature
from startrack.ml.dataset import TrainingData
from startrack.ml.features import (
    FEATURE_NAMES,
    RAW_COLUMNS,
    SPECTRUM_CHANNELS,
    Standardizer,
    magerr_matrix,
    normalized_spectra,
    raw_matrix,
    spectrum_channels,
    tabular_features,
    to_rest_frame,
)
from startrack.ml.inference import Spectra, batched_logits, spectrum_profiles
from startrack.ml.model import HEADS, ModelConfig, StarClassifier
from startrack.ml.quality import OOD_QUANTILE, OutlierModel
from startrack.ml.targets import star_targets, star_types
from startrack.ml.train_config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: StarClassifier
    meta: dict  #: model.json content (labels, features, temperatures, metrics, ...)
    history: list[dict]


def class_set(labels: pd.Series, min_count: int) -> list[str]:
    """Labels with at least min_count stars, ordered along the MK sequence."""
    counts = labels.dropna().value_counts()
    keep = [lab for lab, c in counts.items() if c >= min_count]
    return sorted(keep, key=sort_key)


def neighbour_matrix(classes: list[str]) -> torch.Tensor:
    """(K, K) True where two MK classes are adjacent along the spectral sequence."""
    k = len(classes)
    types = [normalize_subclass(c).spectral_type for c in classes]
    mk = sorted((t, i) for i, t in enumerate(types) if t is not None)
    out = torch.zeros(k, k, dtype=torch.bool)
    for (_, a), (_, b) in itertools.pairwise(mk):
        out[a, b] = out[b, a] = True
    return out


def _nll(y: np.ndarray, logits: np.ndarray, rows: np.ndarray) -> float:
    if not rows.any():
        return float("nan")
    lg = torch.from_numpy(logits[rows])
    return float(F.cross_entropy(lg, torch.from_numpy(y[rows])))


def _macro_f1(y: np.ndarray, logits: np.ndarray, rows: np.ndarray) -> float:
    if not rows.any():
        return float("nan")
    return float(f1_score(y[rows], logits[rows].argmax(1), average="macro", zero_division=0))


def _batches(spec_idx, phot_idx, cfg: TrainConfig, rng: np.random.Generator, spec_p=None):
    """Yield index arrays mixing spectrum stars and photometry-only stars.

    ``spec_p``: sampling probabilities of the spectrum stars (class balancing); None = each
    once, in random order.
    """
    if spec_p is not None and len(spec_idx):
        spec = rng.choice(spec_idx, size=len(spec_idx), replace=True, p=spec_p)
    else:
        spec = rng.permutation(spec_idx)
    n_phot = min(len(phot_idx), round(cfg.phot_per_spec * max(len(spec), 1)))
    if len(spec) == 0:  # photometry-only training set
        n_phot = min(len(phot_idx), max(cfg.batch_size * 16, 4096))
    phot = rng.choice(phot_idx, size=n_phot, replace=False) if n_phot else phot_idx[:0]
    n_batches = max(1, math.ceil(max(len(spec), 1) / cfg.batch_size))
    if len(spec) == 0:
        n_batches = max(1, math.ceil(n_phot / (cfg.batch_size * (1 + cfg.phot_per_spec))))
    for s, p in zip(np.array_split(spec, n_batches), np.array_split(phot, n_batches), strict=True):
        yield np.concatenate([s, p])


@dataclass
class _Selection:
    """Which stars train and validate, and the classes they are trained on."""

    classes: list[str]
    y: np.ndarray  #: class index per star, -1 = not learned
    train_idx: np.ndarray
    val_idx: np.ndarray
    dropped: int  #: training stars whose label is rare or missing


def _select(data: TrainingData, cfg: TrainConfig, rng: np.random.Generator) -> _Selection:
    """Classes with enough training stars; the train and validation stars that have one."""
    stars, split = data.stars, data.split
    train_all = np.flatnonzero(split == "train")
    classes = class_set(stars["label"].iloc[train_all], cfg.min_class_count)
    if len(classes) < 2:
        raise NothingToTrain(
            f"need at least 2 labels with >= {cfg.min_class_count} training stars, got {classes}: "
            "ingest more labelled stars or lower --min-class-count"
        )
    index = {c: i for i, c in enumerate(classes)}
    y = stars["label"].map(index).fillna(-1).to_numpy(np.int64)
    known = y >= 0
    train_idx = np.flatnonzero((split == "train") & known)
    if cfg.max_train_stars and len(train_idx) > cfg.max_train_stars:
        # keep spectrum stars first: they are the scarce ones
        has = data.spec_row[train_idx] >= 0
        order = np.concatenate([rng.permutation(train_idx[has]), rng.permutation(train_idx[~has])])
        train_idx = np.sort(order[: cfg.max_train_stars])
    val_idx = np.flatnonzero((split == "val") & known)
    dropped = int(((split == "train") & ~known).sum())
    log.info(
        "%d classes; train %d stars (%d with spectra), val %d; %d training stars with rare or "
        "missing labels left out",
        len(classes),
        len(train_idx),
        int((data.spec_row[train_idx] >= 0).sum()),
        len(val_idx),
        dropped,
    )
    return _Selection(classes, y, train_idx, val_idx, dropped)


def _validate(
    model: StarClassifier, batches: _Batches, sel: _Selection, epoch: int, seconds: float,
    mean_loss: dict[str, float],
) -> dict:  # fmt: skip
    """One epoch's history row: losses, the fusion's validation cross-entropy (the checkpoint
    score) and every head's validation macro-F1; logged."""
    val_idx, y = sel.val_idx, sel.y
    logits = batched_logits(
        model, batches.stats, batches.raw[val_idx], _subset(batches.spectra, val_idx)
    )
    has_val = batches.spec_row[val_idx] >= 0
    yv = y[val_idx]
    f1_spec = _macro_f1(yv, logits["fusion"], has_val)
    f1_phot = _macro_f1(yv, logits["fusion"], ~has_val)
    # Select on the fusion's validation cross-entropy (stars with and without a spectrum
    # weighted equally): macro-F1 over ~20 classes, some with 1-2 validation stars, jumps
    # by 0.04 when one rare star flips, which made mid-training checkpoints look best.
    nll_spec = _nll(yv, logits["fusion"], has_val)
    nll_phot = _nll(yv, logits["fusion"], ~has_val)
    score = (
        -float(np.nanmean([nll_spec, nll_phot]))
        if len(val_idx)
        else -float(sum(mean_loss.values()))
    )
    row = {
        "epoch": epoch,
        "seconds": round(seconds, 2),
        **{f"loss_{h}": mean_loss[h] for h in HEADS},
        "val_f1_fusion_spectrum": f1_spec,
        "val_f1_fusion_photometry": f1_phot,
        "val_f1_lstm": _macro_f1(yv, logits["lstm"], has_val),
        "val_f1_dense": _macro_f1(yv, logits["dense"], np.ones_like(has_val)),
        "val_nll_fusion_spectrum": nll_spec,
        "val_nll_fusion_photometry": nll_phot,
        "score": score,
    }
    log.info(
        "epoch %d: loss dense %.3f lstm %.3f fusion %.3f | val fusion NLL spec %.3f phot %.3f"
        " | val macro-F1 fusion spec %.3f phot %.3f lstm %.3f dense %.3f (%.1fs)",
        epoch,
        row["loss_dense"],
        row["loss_lstm"],
        row["loss_fusion"],
        nll_spec,
        nll_phot,
        f1_spec,
        f1_phot,
        row["val_f1_lstm"],
        row["val_f1_dense"],
        row["seconds"],
    )
    return row


def _out_of_time(cfg: TrainConfig, epoch: int, t_start: float, last_epoch_s: float) -> bool:
    """Stop for the time budget: after the minimum epochs, once the budget is spent or
    another epoch as long as the last would end past it."""
    if epoch < cfg.min_epochs or not cfg.time_budget_s:
        return False  # an under-trained model makes wild misses: the budget waits for these
    elapsed = time.monotonic() - t_start
    if elapsed > cfg.time_budget_s:
        log.info("time budget %.0fs reached after epoch %d", cfg.time_budget_s, epoch)
        return True
    if elapsed + last_epoch_s > cfg.time_budget_s:
        log.info("time budget %.0fs: no room for another epoch", cfg.time_budget_s)
        return True
    return False


def _metadata(
    cfg: TrainConfig, data: TrainingData, sel: _Selection, stats: Standardizer,
    temperatures: dict, val_metrics: dict, history: list[dict], best_epoch: int,
    counts: np.ndarray, spec_train: np.ndarray, outliers, seconds: float,
) -> dict:  # fmt: skip
    """model.json: what scoring needs to reproduce the inputs, and how the model was made."""
    return {
        "labels": sel.classes,
        "features": {
            "names": list(FEATURE_NAMES),
            "raw_columns": list(RAW_COLUMNS),
            "spectrum_channels": list(SPECTRUM_CHANNELS),
            "stats": stats.to_dict(),
        },
        "hyperparameters": cfg.to_dict(),
        "temperatures": temperatures,
        "metrics": {
            "validation": val_metrics,
            "best_epoch": best_epoch,
            "epochs_run": len(history),
        },
        "history": history,
        "class_counts_train": dict(zip(sel.classes, counts.astype(int).tolist(), strict=True)),
        "training": {
            "n_train": len(sel.train_idx),
            "n_train_spectra": len(spec_train),
            "n_val": len(sel.val_idx),
            "n_left_out_rare": sel.dropped,
            "seconds": round(seconds, 1),
            "split": "blake2b(star_id): train < 0.8 <= val < 0.9 <= test",
        },
        "data_snapshot": data.snapshot_id,
        "outliers": outliers.to_dict(),
    }


def train_model(
    data: TrainingData, config: TrainConfig | None = None, progress: bool = True
) -> TrainResult:
    """Train, early-stop, calibrate; returns the model and its metadata (not yet saved)."""
    cfg = config or TrainConfig()
    t_start = time.monotonic()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    sel = _select(data, cfg, rng)
    classes, y, train_idx, val_idx = sel.classes, sel.y, sel.train_idx, sel.val_idx
    raw_all = raw_matrix(data.stars)
    magerr_all = magerr_matrix(data.stars)
    stats = Standardizer.fit(tabular_features(torch.from_numpy(raw_all[train_idx])).numpy())

    # normalize the spectra once (flux/norm, ivar*norm^2); batches index into these
    flux_n, ivar_n, mask_n = normalized_spectra(data.flux, data.ivar, data.mask, data.norm)
    ones = np.ones(len(data.norm), dtype=np.float32)
    norm_spectra = Spectra(flux_n.numpy(), ivar_n.numpy(), mask_n.numpy(), ones, data.spec_row)

    counts = np.bincount(y[train_idx], minlength=len(classes)).astype(np.float64)
    mk_class = torch.as_tensor(
        [normalize_subclass(c).family == "MK" for c in classes], dtype=torch.bool
    )
    mcfg = ModelConfig(
        n_classes=len(classes),
        dense_hidden=cfg.dense_hidden,
        lstm_hidden=cfg.lstm_hidden,
        d_model=cfg.d_model,
        dropout=cfg.dropout,
        **cfg.model_options,
    )
    model = StarClassifier(mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Validate and keep an exponential moving average of the weights: the raw weights swing
    # by several points of validation F1 from one epoch to the next at this batch size.
    ema = AveragedModel(model, avg_fn=_ema_fn(cfg.ema_decay), use_buffers=True)
    spec_train = train_idx[data.spec_row[train_idx] >= 0]
    phot_train = train_idx[data.spec_row[train_idx] < 0]
    spec_counts = np.bincount(y[spec_train], minlength=len(classes)).astype(np.float64)
    own_t = _own_types(data, y, classes, cfg)
    spec_p = sampling_probabilities(
        y[spec_train], own_t[spec_train], cfg.sample_type_bin, cfg.sample_power
    )
    dense_w = np.ones(len(y), dtype=np.float32)
    dense_w[spec_train] = label_draw_weights(
        y[spec_train], own_t[spec_train], spec_p, cfg.sample_power
    )
    steps_per_epoch = sum(
        1 for _ in _batches(spec_train, phot_train, cfg, np.random.default_rng(0))
    )
    total_steps = cfg.epochs * steps_per_epoch
    global_step = 0

    def progress_done() -> float:
        """Fraction of the run done: by steps, or by the time budget when that comes first."""
        p = global_step / max(total_steps, 1)
        if cfg.time_budget_s:
            t = (time.monotonic() - t_start) / cfg.time_budget_s
            if cfg.min_epochs:  # a slow machine anneals over the minimum epochs instead
                t = min(t, global_step / max(cfg.min_epochs * steps_per_epoch, 1))
            p = max(p, t)
        return p

    batches = _Batches(
        data.spec_row,
        norm_spectra,
        raw_all,
        magerr_all,
        y,
        stats,
        _class_weights(counts, cfg.class_weight_power),
        _class_weights(spec_counts, cfg.spec_weight_power),
        neighbour_matrix(classes),
        mk_class,
        torch.as_tensor(spectral_types(classes)),
        torch.as_tensor(own_t),
        torch.from_numpy(dense_w),
        gen,
        cfg,
    )
    best = (-np.inf, None, 0)  # score, state, epoch
    history: list[dict] = []
    bad_epochs = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.monotonic()
        sums = dict.fromkeys(HEADS, 0.0)
        n_steps = 0
        bar = tqdm(
            list(_batches(spec_train, phot_train, cfg, rng, spec_p)),
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not progress,
            leave=False,
        )
        for idx in bar:
            losses = _train_step(model, idx, batches)
            loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(progress_done())
            opt.step()
            ema.update_parameters(model)
            global_step += 1
            n_steps += 1
            for h, v in losses.items():
                sums[h] += float(v.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        mean_loss = {h: sums[h] / max(n_steps, 1) for h in HEADS}
        row = _validate(ema.module, batches, sel, epoch, time.monotonic() - t0, mean_loss)
        history.append(row)
        if row["score"] > best[0]:
            best = (row["score"], {k: v.clone() for k, v in ema.module.state_dict().items()}, epoch)
            bad_epochs = 0
        else:
            bad_epochs += 1
            # only once the learning rate is annealing: early plateaus at a high rate are common
            if bad_epochs >= cfg.patience and progress_done() > 0.5:
                log.info("early stop after epoch %d (best %d)", epoch, best[2])
                break
        if _out_of_time(cfg, epoch, t_start, row["seconds"]):
            break
    if best[1] is not None:
        model.load_state_dict(best[1])
    model.eval()

    temperatures, type_temps, val_metrics = _calibrate(
        model, stats, raw_all, norm_spectra, y, own_t, val_idx, data, classes
    )
    outliers = _fit_outliers(model, norm_spectra, raw_all, y, spec_train, val_idx, len(classes))
    meta = _metadata(
        cfg, data, sel, stats, temperatures, val_metrics, history, best[2], counts, spec_train,
        outliers, time.monotonic() - t_start,
    )  # fmt: skip
    meta["type_readout"] = {"temperatures": type_temps, "neighbours": TYPE_NEIGHBOURS}
    return TrainResult(model, meta, history)


def _own_types(data: TrainingData, y: np.ndarray, classes: list[str], cfg: TrainConfig):
    """Each star's MK type for its target: ELODIE's where there is one and cfg.own_types."""
    own = data.stars.get("elodie_sptype") if cfg.own_types else None
    t = star_types(y, own, classes)
    if own is not None:
        log.info(
            "targets at the stars' own (ELODIE) types for %d stars",
            int((np.isfinite(t) & (t != spectral_types(classes)[np.clip(y, 0, None)])).sum()),
        )
    return t


def sampling_probabilities(
    y: np.ndarray, types: np.ndarray, type_bin: float, power: float
) -> np.ndarray | None:
    """Probability of drawing each spectrum star: ~ count(its group)^-power, the group being
    its label, or (type_bin > 0) the type_bin-subtype bin its own type falls in (stars off
    MK: their label). None = each star once (power 0 or no stars)."""
    if not len(y) or power <= 0:
        return None
    group = y.astype(np.int64)
    if type_bin > 0:
        bins = np.floor(np.nan_to_num(types, nan=0.0) / type_bin).astype(np.int64)
        group = np.where(np.isfinite(types), int(y.max()) + 1 + bins, group)
    _, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    p = counts[inverse].astype(np.float64) ** -power
    return p / p.sum()


def label_draw_weights(
    y: np.ndarray, types: np.ndarray, p: np.ndarray | None, power: float
) -> np.ndarray:
    """Per spectrum star, the weight that turns its draw ``p`` (by type) back into the draw by
    label, for the dense head's loss: colours are all that head has for the stars without a
    spectrum, and those keep SDSS's mix of types (drawn by type, it typed the real SDSS
    stars' photometry 0.035 worse within 2.5 subtypes; README, Generalization, stop 23)."""
    by_label = sampling_probabilities(y, types, 0.0, power)
    if p is None or by_label is None:
        return np.ones(len(y), dtype=np.float32)
    return (by_label / p).astype(np.float32)


def _fit_outliers(
    model: StarClassifier,
    spectra: Spectra,
    raw: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    n_classes: int,
) -> OutlierModel:
    """Class line profiles from the training spectra; the threshold from validation ones."""
    prof, iv = spectrum_profiles(model, spectra, raw, train_idx)
    outliers = OutlierModel.fit(prof, iv, y[train_idx], n_classes)
    val = val_idx[spectra.row[val_idx] >= 0]
    if len(val):
        scores = outliers.score(*spectrum_profiles(model, spectra, raw, val))
        outliers.threshold = float(np.quantile(scores[np.isfinite(scores)], OOD_QUANTILE))
    return outliers


def lr_factor(progress: float, warmup: float = 0.05, floor: float = 0.02) -> float:
    """Linear warm-up then cosine decay to ``floor`` over progress in [0, 1].

    Driven by progress (steps or elapsed/time budget) so a time-limited run still anneals.
    """
    if progress < warmup:
        return max(floor, progress / warmup)
    t = min(1.0, (progress - warmup) / (1 - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def _ema_fn(decay: float):
    """EMA update with the usual warm-up, min(decay, (1 + n) / (10 + n)) after n updates, so
    a short run (a few hundred steps) is not stuck near its random initialization."""

    def update(avg: torch.Tensor, new: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return avg * d + new * (1.0 - d)

    return update


def _subset(spectra: Spectra, idx: np.ndarray) -> Spectra:
    return Spectra(spectra.flux, spectra.ivar, spectra.mask, spectra.norm, spectra.row[idx])


@dataclass
class _Batches:
    """Everything a training step reads besides the model: arrays, weights, the RNG."""

    spec_row: np.ndarray
    spectra: Spectra  #: normalized once (flux/norm, ivar*norm^2)
    raw: np.ndarray
    magerr: np.ndarray
    y: np.ndarray
    stats: Standardizer
    weights: torch.Tensor  #: per class, photometry-only stars
    spec_weights: torch.Tensor  #: per class, stars with a spectrum
    neighbours: torch.Tensor
    mk_class: torch.Tensor
    class_types: torch.Tensor  #: (K,) MK number per class, NaN off MK
    star_types: torch.Tensor  #: (n,) each star's MK type for its target (ml.targets)
    dense_weights: torch.Tensor  #: (n,) the dense loss's weight per star (sampling by type)
    gen: torch.Generator
    cfg: TrainConfig


def _train_step(model: StarClassifier, idx: np.ndarray, b: _Batches) -> dict[str, torch.Tensor]:
    """Augment one batch and return the per-head losses."""
    cfg, gen, spectra = b.cfg, b.gen, b.spectra
    rows = b.spec_row[idx]
    has = torch.as_tensor(rows >= 0)
    raw = torch.from_numpy(b.raw[idx])
    magerr = torch.from_numpy(b.magerr[idx])
    yb = torch.from_numpy(b.y[idx])
    targets = star_targets(yb, b.star_types[idx], b.class_types, cfg.type_smoothing, cfg.type_sigma)
    ebv = torch.zeros(len(idx))
    x = None
    if bool(has.any()):
        r = rows[rows >= 0]
        flux = torch.from_numpy(spectra.flux[r])
        ivar = torch.from_numpy(spectra.ivar[r])
        mask = torch.from_numpy(spectra.mask[r])
        if model.cfg.rest_frame:  # as batched_logits does at validation and inference
            flux, ivar, mask = to_rest_frame(flux, ivar, mask, raw[has, 0])
        snr0 = median_snr(ivar, mask)
        flux, ivar, mask, ebv_s, snr1 = augment_spectra(
            flux, ivar, mask, gen, cfg.augment, b.star_types[idx][has]
        )
        ebv[has] = ebv_s
        # keep the tabular S/N consistent with the noise we added
        ratio = torch.where(snr0 > 0, snr1 / snr0.clamp(min=1e-3), torch.ones_like(snr0))
        raw[has, 6] = raw[has, 6] * ratio.clamp(max=1.0)
        # neighbouring-type mixing among the spectrum stars
        sub_raw, sub_t = raw[has], targets[has]
        eligible, p_mix = b.mk_class[yb[has]], cfg.augment.p_mix
        flux, ivar, mask, sub_raw, sub_t = neighbour_mix(
            flux, ivar, mask, sub_raw, sub_t, yb[has], b.neighbours, eligible, gen, p_mix
        )
        raw[has], targets[has] = sub_raw, sub_t
        x = spectrum_channels(flux, ivar, mask)
    no_spec = ~has
    redden = no_spec & (torch.rand(len(idx), generator=gen) < cfg.augment.p_redden)
    ebv[redden] = photometry_ebv(int(redden.sum()), cfg.augment, gen)
    raw = augment_photometry(raw, magerr, ebv, gen, cfg.augment, spectrum=has)
    tab = b.stats.apply(tabular_features(raw))
    out = model(tab, x, has)
    w = torch.where(has, b.spec_weights[yb], b.weights[yb])
    eps = cfg.label_smoothing
    targets = targets * (1 - eps) + eps / targets.shape[1]

    def ce(head: str, rows: torch.Tensor, weight: torch.Tensor = w) -> torch.Tensor:
        if not bool(rows.any()):
            return out[head].sum() * 0
        return _weighted_ce(out[head][rows], targets[rows], weight[rows])

    # The fusion loss counts stars with and without a spectrum as two equal terms: averaged
    # together, the 4x more numerous photometry-only stars would starve its spectral path.
    return {
        "dense": ce("dense", torch.ones_like(has), w * b.dense_weights[idx]),
        "lstm": ce("lstm", has),
        "fusion": ce("fusion", has) + ce("fusion", ~has),
    }


def _weighted_ce(logits: torch.Tensor, targets: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Soft-target cross-entropy, per-star weighted mean."""
    ce = -(targets * F.log_softmax(logits, dim=1)).sum(1)
    return (ce * w).sum() / w.sum().clamp(min=1e-6)


def _class_weights(counts: np.ndarray, power: float) -> torch.Tensor:
    """count^-power per class, mean 1 over the classes present."""
    w = np.maximum(counts, 1.0) ** -power
    present = counts > 0
    w = w / (w[present].mean() if present.any() else 1.0)
    return torch.as_tensor(w, dtype=torch.float32)


#: A spectrum's continuous type is the mean over the top MK class and this many neighbours
#: either side (quality.continuous_type), at temperatures of its own. Over every class at the
#: class temperature (until stop 31) an A5 star between A0 and F2 read as A2. Photometry keeps
#: that read-out: its posterior is too broad to say where between two classes a star sits,
#: and read this way it typed real SDSS stars from their colours 0.1 less often within 2.5
#: subtypes of their labels (README, Generalization, stop 31).
TYPE_NEIGHBOURS = 1
#: Fewer validation spectra with an own MK type than this: the class temperatures are used.
MIN_TYPE_STARS = 20


def _type_temperatures(
    logits: dict, has: np.ndarray, yv: np.ndarray, tv: np.ndarray, classes: list, class_temps: dict
) -> dict:
    """The temperatures the continuous type of a star with a spectrum is read at (lstm, and
    the fusion's `fusion_spectrum`): those at which the posterior says where between the
    classes the validation stars sit, the NLL against each star's own type ``tv`` split
    between the two classes around it (targets.star_targets without the blur). The class
    temperature where fewer than MIN_TYPE_STARS spectra have an MK type."""
    temps = {"lstm": class_temps["lstm"]}
    temps["fusion_spectrum"] = class_temps.get("fusion_spectrum", class_temps["fusion"])
    ct = spectral_types(classes)
    on = has & np.isfinite(tv) & (yv >= 0) & np.isfinite(ct[np.clip(yv, 0, None)])
    if on.sum() < MIN_TYPE_STARS:
        return temps
    targets = star_targets(
        torch.from_numpy(yv[on]), torch.from_numpy(tv[on]), torch.from_numpy(ct), 0.0, 0.0
    )
    for key, head in (("lstm", "lstm"), ("fusion_spectrum", "fusion")):
        temps[key] = fit_temperature(torch.from_numpy(logits[head][on]), targets)
    return temps


def _calibrate(model, stats, raw_all, spectra, y, own_t, val_idx, data, classes):
    """Per-head temperatures on the validation split (for the class probabilities and for
    the continuous type), plus quick validation accuracies."""
    if len(val_idx) == 0:
        return dict.fromkeys(HEADS, 1.0), {}, {}  # no type temperatures: the class read-out
    logits = batched_logits(model, stats, raw_all[val_idx], _subset(spectra, val_idx))
    has = data.spec_row[val_idx] >= 0
    yv = torch.from_numpy(y[val_idx])
    temps, metrics = {}, {}
    for h in HEADS:
        rows = has if h == "lstm" else np.ones_like(has)
        lg = torch.from_numpy(logits[h][rows])
        temps[h] = fit_temperature(lg, yv[rows])
        if rows.any():
            metrics[f"{h}_accuracy"] = float((lg.argmax(1) == yv[rows]).float().mean())
            metrics[f"{h}_nll"] = float(F.cross_entropy(lg / temps[h], yv[rows]))
    # The fusion sums more evidence for a star with a spectrum (and is sharper there) than for
    # one without: one temperature for both leaves one group over- or under-confident.
    if has.any() and (~has).any():
        temps["fusion"] = fit_temperature(torch.from_numpy(logits["fusion"][~has]), yv[~has])
        temps["fusion_spectrum"] = fit_temperature(torch.from_numpy(logits["fusion"][has]), yv[has])
    if has.any():
        metrics["fusion_accuracy_spectrum"] = float(
            (logits["fusion"][has].argmax(1) == y[val_idx][has]).mean()
        )
    if (~has).any():
        metrics["fusion_accuracy_photometry"] = float(
            (logits["fusion"][~has].argmax(1) == y[val_idx][~has]).mean()
        )
    metrics["n_val"] = len(val_idx)
    metrics["n_val_spectra"] = int(has.sum())
    type_temps = _type_temperatures(logits, has, y[val_idx], own_t[val_idx], classes, temps)
    log.info(
        "temperatures: classes %s, continuous type %s",
        {k: round(v, 3) for k, v in temps.items()},
        {k: round(v, 3) for k, v in type_temps.items()},
    )
    return temps, type_temps, metrics
