"""Discrete logistic mixtures over integer residuals, in floating point: the likelihood for
training and the encoder's rate estimates. (The coder's CDFs come from :mod:`.exact_cdf`.)

A symbol r in [lo, hi] owns the interval [r - 0.5, r + 0.5]; the end symbols also own the tails
(-inf, lo + 0.5] and [hi - 0.5, inf), so every CDF sums to one over the coded range.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def log_prob(
    logits: torch.Tensor,
    means: torch.Tensor,
    log_scales: torch.Tensor,
    target: torch.Tensor,
    lo: float = -255.0,
    hi: float = 255.0,
) -> torch.Tensor:
    """Natural-log probability of integer ``target`` (N, H, W) under the mixture whose parameters
    are (N, K, H, W). Returns (N, H, W)."""
    x = target.unsqueeze(1)
    centred = x - means
    inv_s = torch.exp(-log_scales)
    upper = inv_s * (centred + 0.5)
    lower = inv_s * (centred - 0.5)
    # log(sigmoid(u) - sigmoid(l)), stable for both tails and for a tiny bin.
    log_cdf_upper = F.logsigmoid(upper)
    log_one_minus_cdf_lower = -F.softplus(lower)
    diff = torch.sigmoid(upper) - torch.sigmoid(lower)
    mid = inv_s * centred
    log_pdf_mid = mid - log_scales - 2.0 * F.softplus(mid)
    log_bin = torch.where(
        diff > 1e-5, torch.log(diff.clamp_min(1e-12)), log_pdf_mid
    )
    log_bin = torch.where(x <= lo, log_cdf_upper, log_bin)
    log_bin = torch.where(x >= hi, log_one_minus_cdf_lower, log_bin)
    return torch.logsumexp(log_bin + F.log_softmax(logits, dim=1), dim=1)


def bits(log_p: torch.Tensor) -> torch.Tensor:
    """Total information in bits of a tensor of natural-log probabilities."""
    return -log_p.sum() / math.log(2.0)
