"""Temperature scaling: one scalar per head so that softmax probabilities mean what they say."""

from __future__ import annotations

import logging

import torch
from torch.nn import functional as F

log = logging.getLogger(__name__)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """Temperature T > 0 minimizing the NLL of softmax(logits / T) on held-out data (LBFGS).

    ``labels``: class indices (n,), or target distributions (n, K) — a star's own type split
    between the classes around it, for the temperature the continuous type is read at.
    Returns 1.0 when there is nothing to fit (no rows), so an empty validation split is harmless.
    """
    logits = logits.detach().float()
    labels = labels.detach()
    labels = labels.float() if labels.dim() == 2 else labels.long()
    if logits.shape[0] == 0:
        return 1.0
    log_t = torch.zeros(1, requires_grad=True)  # optimize log T: keeps T positive
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp().clamp(0.05, 20.0))
    log.debug(
        "temperature %.3f (NLL %.4f -> %.4f)",
        t,
        float(F.cross_entropy(logits, labels)),
        float(F.cross_entropy(logits / t, labels)),
    )
    return t
