"""The multimodal classifier: photometry MLP + spectrum conv/BiLSTM, fused by attention.

Each branch has its own head (so the dashboard can compare photometry-only, spectrum-only and
fused answers); the fusion attends over [CLS, photometry, spectrum, spectrum segments...,
line indices] tokens -- the segments are the BiLSTM sequence pooled over stretches of the
spectrum, so the fusion can weigh the regions that matter for a star instead of one global
average; the line indices are learned linear projections of the whole line spectrum -- with the
spectral tokens masked out for stars without a spectrum, so nothing is ever invented for them.
The LSTM runs only on the rows that have a spectrum: a photometry-only batch never touches it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from startrack.grid import NPIX
from startrack.ml.continuum import smooth_continuum
from startrack.ml.features import BRIGHTNESS_FEATURES, N_FEATURES, SPECTRUM_CHANNELS
from startrack.vocabulary import BRANCHES

HEADS = BRANCHES  #: one head per branch, built in this order


@dataclass
class ModelConfig:
    """Hyper-parameters needed to rebuild the network (stored in model.json)."""

    n_classes: int
    n_features: int = N_FEATURES
    in_channels: int = len(SPECTRUM_CHANNELS)
    npix: int = NPIX
    dense_hidden: int = 128
    #: (out_channels, kernel, stride) per conv layer: 4*2*2*2 = 32x shorter sequence for the
    #: LSTM (146 steps over the 4,671-pixel grid). The first layer strides by 4 with few
    #: channels: it runs on the full-resolution input and dominated the cost at stride 2
    #: (~2.5x faster scoring and ~2x faster training than 32 channels at stride 2; README).
    conv_layers: tuple[tuple[int, int, int], ...] = (
        (24, 8, 4),
        (48, 5, 2),
        (64, 5, 2),
        (64, 3, 2),
    )
    #: Add a continuum-normalized flux channel (flux / its smoothed self - 1) computed inside
    #: the network: reddening and flux-calibration tilts vanish from it, the lines remain.
    continuum_channel: bool = True
    #: Half-width in pixels of the continuum smoothing (~1.5% in wavelength).
    continuum_halfwidth: int = 64
    #: Per-pixel S/N above this counts as "reliable" and is not told apart: the log S/N input
    #: channel saturates here, so bright stars (rare in training) look like the many at S/N 20.
    #: None = no cap (artifacts written before it existed).
    pixel_snr_cap: float | None = 20.0
    #: Spectral segment tokens for the fusion: the LSTM sequence pooled into this many pieces
    #: of the spectrum, which the fusion attends over beside the photometry token (0 = only one
    #: pooled spectrum token, as the artifacts written before it existed).
    fusion_segments: int = 16
    #: Fusion logits = attention output + a branch's logits: the lstm's for a star with a
    #: spectrum, the dense's for one without. The fusion starts from what a branch already
    #: knows and learns what to correct, instead of relearning it.
    fusion_residual: bool = True
    #: Also add the dense logits for a star with a spectrum (a product of the two experts, as
    #: before stop 18). Off, such a star's photometry reaches the fusion only through the
    #: attention, which can learn when colours disagree with the lines: another survey's
    #: photometry (dust, calibration) is one voice to weigh, not a vote added to every answer
    #: (+0.03-0.04 within 2.5 subtypes in transfer, both seeds measured; README).
    dense_residual_with_spectrum: bool = False
    #: Learned line indices, a fusion token: this many linear projections of the whole
    #: continuum-normalized spectrum (like Lick indices, but fitted), each pixel weighted by
    #: its S/N up to the cap. Each index adds up thousands of pixels at once, so the fusion can
    #: see line-depth differences of ~0.5% per pixel (F2 vs F5, K1 vs K3) that conv + LSTM
    #: features over short stretches average away. A token rather than part of the lstm head:
    #: the attention learns when to trust it, so faint stars keep the LSTM's answer (README).
    #: Off by default since stop 22 (0 = none, as in artifacts written before it existed):
    #: trained on a survey from a few dozen templates, the token memorizes their line depths,
    #: and at S/N >= 10, where it is on, such a model typed another family's G-K stars 5-7
    #: subtypes early (at S/N >= 20, 0.77-0.86 within 5 subtypes; 0.85-0.88 without it).
    #: Over the real set's S/N 4-60 the SDSS-trained fusion gains 0.045 within 5 without it
    #: and the built-in one moves -0.007 (README, Generalization, stop 22).
    #: `--line-indices 32` turns it on.
    line_indices: int = 0
    #: The indices read the continuum-normalized flux averaged over this many pixels.
    line_index_pool: int = 4
    #: The line-index token is masked for spectra whose median pixel S/N is below this: there
    #: the indices are mostly noise (a fitted index overfits it), and the LSTM knows better.
    line_index_min_snr: float = 10.0
    lstm_hidden: int = 64
    d_model: int = 64
    n_heads: int = 4
    fusion_layers: int = 1
    dropout: float = 0.1
    #: Shift each spectrum to its rest frame by the catalog redshift (a star's z is its radial
    #: velocity) before the network sees it, so lines sit where the weights expect them
    #: whatever the velocity (features.to_rest_frame). False for artifacts written before.
    rest_frame: bool = True
    #: The network never sees a star's apparent brightness: its magnitudes and catalog S/N
    #: (and their missing flags) are zeroed before the dense branch, leaving colours and z.
    #: A star's brightness says where it is, not what it is; in a simulated survey it says
    #: the class through the simulator's magnitude-S/N relation, which a model learns and
    #: real stars break (real SDSS photometry was typed 12 subtypes off; README). The
    #: spectrum keeps its per-pixel S/N channel. False for artifacts written before.
    brightness_blind: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["conv_layers"] = [list(layer) for layer in self.conv_layers]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        # artifacts written before these options existed
        d.setdefault("continuum_channel", False)
        d.setdefault("pixel_snr_cap", None)
        d.setdefault("fusion_segments", 0)
        d.setdefault("fusion_residual", False)
        d.setdefault("line_indices", 0)
        d.setdefault("line_index_min_snr", 0.0)
        d.setdefault("rest_frame", False)
        d.setdefault("dense_residual_with_spectrum", True)
        d.setdefault("brightness_blind", False)
        d["conv_layers"] = tuple(tuple(layer) for layer in d["conv_layers"])
        return cls(**d)


class DenseBranch(nn.Module):
    """MLP on standardized photometric/redshift features."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        h = cfg.dense_hidden
        self.net = nn.Sequential(
            nn.Linear(cfg.n_features, h),
            nn.LayerNorm(h),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(h, h),
            nn.LayerNorm(h),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(h, h),
            nn.LayerNorm(h),
            nn.GELU(),
        )
        self.out_dim = h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def continuum_normalized(flux: torch.Tensor, mask: torch.Tensor, halfwidth: int) -> torch.Tensor:
    """flux / continuum - 1 over unmasked pixels, clipped to [-1.5, 1.5]; 0 where masked."""
    cont = smooth_continuum(flux, mask, halfwidth)
    ratio = flux / cont.clamp(min=0.05) - 1.0
    return torch.where(mask < 0.5, ratio.clamp(-1.5, 1.5), torch.zeros_like(ratio))


class SpectrumBranch(nn.Module):
    """Strided conv front end -> BiLSTM -> masked mean+max pooling (+ segment tokens)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.continuum_halfwidth = cfg.continuum_halfwidth if cfg.continuum_channel else 0
        self.log_snr_cap = math.log10(1 + cfg.pixel_snr_cap) if cfg.pixel_snr_cap else None
        self.segments = cfg.fusion_segments
        layers: list[nn.Module] = []
        c_in = cfg.in_channels + (1 if cfg.continuum_channel else 0)
        for c, k, stride in cfg.conv_layers:
            layers += [
                nn.Conv1d(c_in, c, k, stride=stride, padding=(k - stride + 1) // 2),
                nn.GroupNorm(4 if c % 4 == 0 else 1, c),
                nn.GELU(),
            ]
            c_in = c
        self.conv = nn.Sequential(*layers)
        self.strides = [stride for _, _, stride in cfg.conv_layers]
        self.lstm = nn.LSTM(c_in, cfg.lstm_hidden, batch_first=True, bidirectional=True)
        self.out_dim = 4 * cfg.lstm_hidden
        self.snr_cap = cfg.pixel_snr_cap or 20.0
        self.min_snr = cfg.line_index_min_snr
        self.indices = None
        if cfg.line_indices:
            if not cfg.continuum_channel:
                raise ValueError("line_indices needs continuum_channel=True")
            k = cfg.line_index_pool
            self.indices = nn.Sequential(
                nn.AvgPool1d(k, k, ceil_mode=True),
                nn.Flatten(),
                nn.Linear(math.ceil(cfg.npix / k), cfg.line_indices),
            )
        self.seq_dim = 2 * cfg.lstm_hidden

    def _coverage(self, mask: torch.Tensor, length: int) -> torch.Tensor:
        """1 where a downsampled step covers any unmasked pixel, else 0: (B, length)."""
        cov = (mask < 0.5).float().unsqueeze(1)
        for stride in self.strides:
            cov = F.max_pool1d(cov, stride, stride, ceil_mode=True)
        return cov[:, 0, :length]

    def forward(self, x: torch.Tensor) -> SpectrumEmbedding:
        """x (B, C, NPIX): channel 0 normalized flux, 1 mask (1 = masked), 2 log10(1 + S/N)."""
        if self.log_snr_cap is not None:
            x = torch.cat([x[:, :2], x[:, 2:3].clamp(max=self.log_snr_cap), x[:, 3:]], dim=1)
        if self.continuum_halfwidth:
            lines = continuum_normalized(x[:, 0], x[:, 1], self.continuum_halfwidth)
            x = torch.cat([x, lines.unsqueeze(1)], dim=1)
        h = self.conv(x)  # (B, C, L')
        seq, _ = self.lstm(h.transpose(1, 2))  # (B, L', 2H)
        valid = self._coverage(x[:, 1], seq.shape[1])  # channel 1 is the mask
        n = valid.sum(1, keepdim=True).clamp(min=1.0)
        mean = (seq * valid.unsqueeze(-1)).sum(1) / n
        neg = torch.finfo(seq.dtype).min
        mx = seq.masked_fill(valid.unsqueeze(-1) < 0.5, neg).amax(1)
        mx = torch.where(valid.sum(1, keepdim=True) > 0, mx, torch.zeros_like(mx))
        pooled = torch.cat([mean, mx], dim=1)
        idx = idx_valid = None
        if self.indices is not None:
            # noisy pixels count less (masked ones are 0 already), so a faint star's indices
            # shrink towards 0 instead of turning into confident-looking noise
            snr = torch.pow(10.0, x[:, 2]) - 1.0
            idx = self.indices((lines * (snr / self.snr_cap).clamp(0.0, 1.0)).unsqueeze(1))
            median = torch.nanmedian(torch.where(x[:, 1] < 0.5, snr, torch.nan), dim=1).values
            idx_valid = torch.nan_to_num(median, nan=0.0) >= self.min_snr
        if not self.segments:
            return SpectrumEmbedding(pooled, None, None, idx, idx_valid)
        # masked mean of the sequence over each of `segments` stretches of the spectrum
        num = F.adaptive_avg_pool1d((seq * valid.unsqueeze(-1)).transpose(1, 2), self.segments)
        den = F.adaptive_avg_pool1d(valid.unsqueeze(1), self.segments)  # (B, 1, S)
        segs = (num / den.clamp(min=1e-6)).transpose(1, 2)  # (B, S, 2H)
        return SpectrumEmbedding(pooled, segs, den[:, 0] > 0, idx, idx_valid)


@dataclass
class SpectrumEmbedding:
    """The spectrum branch's output: pooled (B, 4H); segments (B, S, 2H) and which exist;
    line indices (B, I)."""

    pooled: torch.Tensor
    segments: torch.Tensor | None
    segment_valid: torch.Tensor | None
    indices: torch.Tensor | None = None
    indices_valid: torch.Tensor | None = None


class FusionBlock(nn.Module):
    """Pre-norm self-attention + feed-forward over the modality tokens."""

    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(
            nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d, d)
        )

    def forward(self, tokens: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.norm1(tokens)
        a, _ = self.attn(h, h, h, key_padding_mask=pad, need_weights=False)
        tokens = tokens + a
        return tokens + self.ff(self.norm2(tokens))


class StarClassifier(nn.Module):
    """forward(tab, spec, has_spectrum) -> {'dense', 'lstm', 'fusion'} logits (B, K)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.dense = DenseBranch(cfg)
        self.spectrum = SpectrumBranch(cfg)
        self.dense_head = nn.Linear(self.dense.out_dim, cfg.n_classes)
        self.lstm_head = nn.Sequential(
            nn.Dropout(cfg.dropout), nn.Linear(self.spectrum.out_dim, cfg.n_classes)
        )
        self.dense_proj = nn.Linear(self.dense.out_dim, d)
        self.spec_proj = nn.Linear(self.spectrum.out_dim, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.type_emb = nn.Parameter(torch.randn(1, 3, d) * 0.02)
        if cfg.fusion_segments:
            self.segment_proj = nn.Linear(self.spectrum.seq_dim, d)
            self.segment_emb = nn.Parameter(torch.randn(1, cfg.fusion_segments, d) * 0.02)
        if cfg.line_indices:
            self.index_proj = nn.Linear(cfg.line_indices, d)
            self.index_emb = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.blocks = nn.ModuleList(
            FusionBlock(d, cfg.n_heads, cfg.dropout) for _ in range(cfg.fusion_layers)
        )
        self.fusion_norm = nn.LayerNorm(d)
        self.fusion_head = nn.Linear(d, cfg.n_classes)
        keep = torch.ones(cfg.n_features)
        if cfg.brightness_blind:
            keep[list(BRIGHTNESS_FEATURES)] = 0.0
        self.register_buffer("feature_keep", keep, persistent=False)

    def forward(
        self, tab: torch.Tensor, spec: torch.Tensor | None, has_spectrum: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """tab (B, F) standardized; spec (B, C, NPIX) or (n_with, C, NPIX) or None.

        ``spec`` may hold one row per star (rows without a spectrum are ignored, whatever they
        contain) or only the rows of stars with a spectrum, in order.
        """
        b = tab.shape[0]
        has = has_spectrum.bool()
        dense_emb = self.dense(tab * self.feature_keep)
        tokens = [self.cls.expand(b, -1, -1)[:, 0], self.dense_proj(dense_emb)]
        tokens = torch.stack(tokens, dim=1) + self.type_emb[:, :2]
        spec_emb = tab.new_zeros(b, self.spectrum.out_dim)
        pad = None  # no spectrum in the batch: same result as masking its tokens, cheaper
        n_with = int(has.sum())
        if n_with:
            if spec is None:
                raise ValueError("has_spectrum is set for some stars but no spectra were given")
            rows = spec if spec.shape[0] == n_with and n_with != b else spec[has]
            where = (has.nonzero(as_tuple=True)[0],)
            emb = self.spectrum(rows)
            spec_emb = spec_emb.index_put(where, emb.pooled)
            spec_tok = (self.spec_proj(spec_emb) + self.type_emb[0, 2]).unsqueeze(1)
            spec_pad = (~has).unsqueeze(1)
            if emb.segments is not None:
                seg = tab.new_zeros(b, self.cfg.fusion_segments, self.spectrum.seq_dim)
                seg = seg.index_put(where, emb.segments)
                seg_valid = torch.zeros(b, self.cfg.fusion_segments, dtype=torch.bool)
                seg_valid = seg_valid.index_put(where, emb.segment_valid)
                seg_tok = self.segment_proj(seg) + self.segment_emb
                spec_tok = torch.cat([spec_tok, seg_tok], dim=1)
                spec_pad = torch.cat([spec_pad, ~seg_valid], dim=1)
            if emb.indices is not None:
                ix = tab.new_zeros(b, emb.indices.shape[1]).index_put(where, emb.indices)
                ix_tok = self.index_proj(ix).unsqueeze(1) + self.index_emb
                spec_tok = torch.cat([spec_tok, ix_tok], dim=1)
                ix_valid = torch.zeros(b, dtype=torch.bool).index_put(where, emb.indices_valid)
                spec_pad = torch.cat([spec_pad, (~ix_valid).unsqueeze(1)], dim=1)
            tokens = torch.cat([tokens, spec_tok], dim=1)
            pad = torch.cat([torch.zeros(b, 2, dtype=torch.bool), spec_pad], dim=1)
        for block in self.blocks:
            tokens = block(tokens, pad)
        out = {
            "dense": self.dense_head(dense_emb),
            "lstm": self.lstm_head(spec_emb),
            "fusion": self.fusion_head(self.fusion_norm(tokens[:, 0])),
        }
        if self.cfg.fusion_residual:
            spec = has.unsqueeze(1)
            lstm = torch.where(spec, out["lstm"], torch.zeros_like(out["lstm"]))
            dense = out["dense"]
            if not self.cfg.dense_residual_with_spectrum:
                dense = torch.where(spec, torch.zeros_like(dense), dense)
            out["fusion"] = out["fusion"] + dense + lstm
        return out
