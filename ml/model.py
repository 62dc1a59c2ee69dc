"""The multimodal classifier: photometry MLP + spectrum conv/BiLSTM, fused by attention.

Each branch has its own head (so the dashboard can compare photometry-only, spectrum-only and
fused answers); the fusion attends over [CLS, photometry, spectrum] tokens with the spectrum
token masked out for stars without a spectrum, so nothing is ever invented for them. The LSTM
runs only on the rows that have a spectrum: a photometry-only batch never touches it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from startrack.grid import NPIX
from startrack.ml.features import N_FEATURES, SPECTRUM_CHANNELS

HEADS = ("dense", "lstm", "fusion")


@dataclass
class ModelConfig:
    """Hyper-parameters needed to rebuild the network (stored in model.json)."""

    n_classes: int
    n_features: int = N_FEATURES
    in_channels: int = len(SPECTRUM_CHANNELS)
    npix: int = NPIX
    dense_hidden: int = 128
    #: (out_channels, kernel, stride) per conv layer: 4*2*2*2 = 32x shorter sequence for the
    #: LSTM (146 steps over the 4,671-pixel grid): lines stay resolved by the first layers.
    conv_layers: tuple[tuple[int, int, int], ...] = (
        (32, 7, 2),
        (48, 5, 2),
        (64, 5, 2),
        (64, 5, 2),
        (64, 3, 2),
    )
    #: Add a continuum-normalized flux channel (flux / its smoothed self - 1) computed inside
    #: the network: reddening and flux-calibration tilts vanish from it, the lines remain.
    continuum_channel: bool = True
    #: Half-width in pixels of the continuum smoothing (~1.5% in wavelength).
    continuum_halfwidth: int = 64
    lstm_hidden: int = 64
    d_model: int = 64
    n_heads: int = 4
    fusion_layers: int = 1
    dropout: float = 0.1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["conv_layers"] = [list(layer) for layer in self.conv_layers]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d.setdefault("continuum_channel", False)  # artifacts written before it existed
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
    """flux / smooth(flux) - 1 over unmasked pixels, clipped to [-1.5, 1.5]; 0 where masked.

    The continuum is a mask-aware box smoothing applied twice (~triangular kernel) on an 8x
    downsampled copy, then interpolated back: cheap, and wide enough that lines barely bias it.
    """
    keep = (mask < 0.5).float().unsqueeze(1)
    f = flux.unsqueeze(1) * keep
    num, den = F.avg_pool1d(f, 8, 8, ceil_mode=True), F.avg_pool1d(keep, 8, 8, ceil_mode=True)
    k = max(1, halfwidth // 8)
    for _ in range(2):
        num = F.avg_pool1d(num, 2 * k + 1, 1, k, count_include_pad=False)
        den = F.avg_pool1d(den, 2 * k + 1, 1, k, count_include_pad=False)
    cont = num / den.clamp(min=1e-3)
    cont = F.interpolate(cont, size=flux.shape[-1], mode="linear", align_corners=False)[:, 0]
    ratio = flux / cont.clamp(min=0.05) - 1.0
    return torch.where(mask < 0.5, ratio.clamp(-1.5, 1.5), torch.zeros_like(ratio))


class SpectrumBranch(nn.Module):
    """Strided conv front end (32x shorter sequence) -> BiLSTM -> masked mean+max pooling."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.continuum_halfwidth = cfg.continuum_halfwidth if cfg.continuum_channel else 0
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

    def _coverage(self, mask: torch.Tensor, length: int) -> torch.Tensor:
        """1 where a downsampled step covers any unmasked pixel, else 0: (B, length)."""
        cov = (mask < 0.5).float().unsqueeze(1)
        for stride in self.strides:
            cov = F.max_pool1d(cov, stride, stride, ceil_mode=True)
        return cov[:, 0, :length]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, NPIX): channel 0 normalized flux, channel 1 mask (1 = masked)."""
        if self.continuum_halfwidth:
            lines = continuum_normalized(x[:, 0], x[:, 1], self.continuum_halfwidth)
            h = self.conv(torch.cat([x, lines.unsqueeze(1)], dim=1))
        else:
            h = self.conv(x)  # (B, C, L')
        seq, _ = self.lstm(h.transpose(1, 2))  # (B, L', 2H)
        valid = self._coverage(x[:, 1], seq.shape[1])  # channel 1 is the mask
        n = valid.sum(1, keepdim=True).clamp(min=1.0)
        mean = (seq * valid.unsqueeze(-1)).sum(1) / n
        neg = torch.finfo(seq.dtype).min
        mx = seq.masked_fill(valid.unsqueeze(-1) < 0.5, neg).amax(1)
        mx = torch.where(valid.sum(1, keepdim=True) > 0, mx, torch.zeros_like(mx))
        return torch.cat([mean, mx], dim=1)


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
        self.blocks = nn.ModuleList(
            FusionBlock(d, cfg.n_heads, cfg.dropout) for _ in range(cfg.fusion_layers)
        )
        self.fusion_norm = nn.LayerNorm(d)
        self.fusion_head = nn.Linear(d, cfg.n_classes)

    def forward(
        self, tab: torch.Tensor, spec: torch.Tensor | None, has_spectrum: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """tab (B, F) standardized; spec (B, C, NPIX) or (n_with, C, NPIX) or None.

        ``spec`` may hold one row per star (rows without a spectrum are ignored, whatever they
        contain) or only the rows of stars with a spectrum, in order.
        """
        b = tab.shape[0]
        has = has_spectrum.bool()
        dense_emb = self.dense(tab)
        spec_emb = tab.new_zeros(b, self.spectrum.out_dim)
        n_with = int(has.sum())
        if n_with:
            if spec is None:
                raise ValueError("has_spectrum is set for some stars but no spectra were given")
            rows = spec if spec.shape[0] == n_with and n_with != b else spec[has]
            spec_emb = spec_emb.index_put((has.nonzero(as_tuple=True)[0],), self.spectrum(rows))
        parts = [self.cls.expand(b, -1, -1)[:, 0], self.dense_proj(dense_emb)]
        if n_with:
            parts.append(self.spec_proj(spec_emb))
            pad = torch.zeros(b, 3, dtype=torch.bool, device=tab.device)
            pad[:, 2] = ~has
        else:  # same result as masking the spectral token, without computing it
            pad = None
        tokens = torch.stack(parts, dim=1) + self.type_emb[:, : len(parts)]
        for block in self.blocks:
            tokens = block(tokens, pad)
        fused = self.fusion_norm(tokens[:, 0])
        return {
            "dense": self.dense_head(dense_emb),
            "lstm": self.lstm_head(spec_emb),
            "fusion": self.fusion_head(fused),
        }
