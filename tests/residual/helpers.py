"""Random integer mixtures for the CDF and coder tests; files carrying a model update."""

from dataclasses import replace

import numpy as np
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


def random_update(model, seed: int, scale: int):
    """A model update (residual.finetune.HeadUpdate) of random integers in [-scale, scale]."""
    from lossless_bpg.residual.finetune import HeadUpdate

    last = model.model.head_convs()[0][2]
    rng = np.random.default_rng(seed)
    shape = (last.out_channels, last.in_channels)
    return HeadUpdate(6, rng.integers(-scale, scale + 1, shape), rng.integers(-scale, scale + 1, shape[0]))


def file_with_update(model, image: np.ndarray, quality: int, update) -> bytes:
    """The (version 5) file of ``image`` at ``quality`` with its residual coded by the model
    changed by ``update``, as the encoder writes one when an update pays."""
    from lossless_bpg.codec import compress
    from lossless_bpg.container import LbpgFile, pack, unpack
    from lossless_bpg.lossy import get_lossy_codec
    from lossless_bpg.residual import encode_residual
    from lossless_bpg.residual.finetune import apply_update

    plain = unpack(compress(image, model, quality=quality, adapt="none").data)
    assert isinstance(plain, LbpgFile)
    recon = get_lossy_codec("hevc").decode(plain.lossy, size=image.shape[:2])
    streams = encode_residual(apply_update(model.model, model.exact, update), image, recon, quality)
    header = replace(plain.header, residual_ranges=streams.ranges)
    return pack(LbpgFile(header, plain.lossy, streams.streams, streams.escapes, streams.adaptations,
                         streams.half_widths, update.pack()))
