"""Random integer mixtures for the CDF and coder tests."""

import torch

from lossless_bpg.residual.exact import OUTPUT_FRACTION_BITS
from lossless_bpg.residual.exact_cdf import MEAN_BITS, Mixtures

UNIT = 1 << OUTPUT_FRACTION_BITS


def random_mixtures(m: int, k: int = 4, seed: int = 0, spread: float = 5.0, log_scale: float | None = None):
    """(integer parameters, Mixtures) for ``m`` subpixels: logits ~ N(0, 1), means ~ N(0,
    spread), log-scales in [-3, 4] (or all ``log_scale``), on the model's output grid."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(k, m, generator=g) * UNIT).long()
    means = (torch.randn(k, m, generator=g) * spread * UNIT).long() << (MEAN_BITS - OUTPUT_FRACTION_BITS)
    log_scales = (torch.randn(k, m, generator=g).clamp(-3, 4) * UNIT).long()
    if log_scale is not None:
        log_scales.fill_(int(log_scale * UNIT))
    return (logits, means, log_scales), Mixtures.build(logits, means, log_scales)
