"""Discrete logistic mixtures over integer residuals: likelihood for training and rate
estimation, and integer CDFs for the arithmetic coder.

A symbol r in [lo, hi] owns the interval [r - 0.5, r + 0.5]; the end symbols also own the tails
(-inf, lo + 0.5] and [hi - 0.5, inf), so every CDF sums to one over the coded range.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: torchac's arithmetic coder works with 16-bit CDFs.
CDF_PRECISION = 16
CDF_TOTAL = 1 << CDF_PRECISION
#: Subpixels per chunk when building CDFs, fixed so encoder and decoder see the same shapes.
CDF_CHUNK = 1 << 15


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


def integer_cdf(
    logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, lo: int, hi: int
) -> torch.Tensor:
    """Integer CDFs for symbols ``r - lo``, r in [lo, hi], as torchac wants them.

    Parameters are (K, M) for M subpixels (float32); returns (M, L + 1) int16 (to be read as
    uint16) with cdf[:, 0] = 0, strictly increasing, every symbol given probability >= 2**-16.
    The last column is never read by the coder (it stands for 2**16).
    """
    levels = hi - lo + 1
    k, m = means.shape
    out = torch.empty((m, levels + 1), dtype=torch.int32)
    # Interior boundaries lo + 0.5, ..., hi - 0.5.
    edges = torch.arange(lo, hi, dtype=torch.float32) + 0.5
    ramp = torch.arange(levels + 1, dtype=torch.int32)
    usable = CDF_TOTAL - levels
    for start in range(0, m, CDF_CHUNK):
        sl = slice(start, min(start + CDF_CHUNK, m))
        weights = torch.softmax(logits[:, sl], dim=0)  # (K, c)
        inv_s = torch.exp(-log_scales[:, sl])
        # (K, c, L-1)
        z = (edges.view(1, 1, -1) - means[:, sl].unsqueeze(-1)) * inv_s.unsqueeze(-1)
        cdf = (torch.sigmoid(z) * weights.unsqueeze(-1)).sum(0)  # (c, L-1)
        cdf = torch.cummax(cdf.clamp(0.0, 1.0), dim=1).values
        chunk = torch.zeros((cdf.shape[0], levels + 1), dtype=torch.int32)
        chunk[:, 1:levels] = torch.round(cdf * usable).to(torch.int32)
        chunk[:, levels] = usable
        out[sl] = chunk + ramp
    # 2**16 itself does not fit; torchac never reads the last column.
    out[:, levels] = 0
    return _as_uint16_in_int16(out)


def _as_uint16_in_int16(cdf: torch.Tensor) -> torch.Tensor:
    """Reinterpret values in [0, 2**16) as int16 bit patterns (torchac reads uint16)."""
    return torch.where(cdf >= 1 << 15, cdf - (1 << 16), cdf).to(torch.int16)


def code_length_bits(cdf: torch.Tensor, symbols: torch.Tensor) -> float:
    """Exact ideal code length, in bits, of ``symbols`` (M,) under integer ``cdf`` (M, L+1)."""
    c = cdf.to(torch.int32) & 0xFFFF
    levels = c.shape[1] - 1
    idx = symbols.long().unsqueeze(1)
    low = c.gather(1, idx).squeeze(1)
    high = torch.where(
        idx.squeeze(1) == levels - 1, torch.full_like(low, CDF_TOTAL), c.gather(1, idx + 1).squeeze(1)
    )
    return float(-(torch.log2((high - low).double() / CDF_TOTAL)).sum())
