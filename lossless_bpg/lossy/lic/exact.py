"""Bit-exact decoding side of the learned lossy layer: the hyper-synthesis (entropy parameters
of the latents) and the synthesis (the reconstruction the residual is taken against), in the
integer arithmetic of :mod:`lossless_bpg.intnet`, and the integer CDFs of the latents and
hyper-latents (:mod:`lossless_bpg.residual.exact_cdf`'s discrete logistics, one component).

Nothing here depends on the thread count, the CPU or the library version: the encoder runs the
float analysis transforms (their output is sent), and both sides run this.
"""

from __future__ import annotations

import decimal
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

from ...intnet import ACT_FRACTION_BITS, FLOAT32, OUTPUT_BOUND, OUTPUT_FRACTION_BITS, IntConv, NumberFormat, leaky
from ...residual.exact_cdf import LOG_SCALE_MAX_UNITS, LOG_SCALE_MIN_UNITS, MEAN_BITS, Mixtures, quantize
from .model import PIXEL_OFFSET, PIXEL_SCALE, SIDE_LAYER, ConvStack, LicModel

P = OUTPUT_FRACTION_BITS


def decimal_steps(log_steps: torch.Tensor, octaves: Fraction) -> np.ndarray:
    """The quantiser steps exp(log_steps) * 2**octaves, computed with ``decimal`` (correctly
    rounded by specification), so every machine folds the same numbers into the weights."""
    with decimal.localcontext(decimal.Context(prec=40)):
        D = decimal.Decimal
        scale = (D(octaves.numerator) / D(octaves.denominator) * D(2).ln()).exp()
        return np.array([float(D(float(v)).exp() * scale) for v in log_steps.tolist()])


class IntStack:
    """The integer twin of a :class:`~.model.ConvStack` of stride-1 layers: integer inputs whose
    real values are ``in_scales`` per channel, bounded by ``in_bound``; hidden activations on
    the grid 2**-ACT_FRACTION_BITS; the output on the grid ``out_scale``."""

    def __init__(self, stack: ConvStack, in_scales: np.ndarray, in_bound: int, out_scale: float,
                 fmt: NumberFormat) -> None:
        act, act_bound = 2.0**-ACT_FRACTION_BITS, 2**fmt.act_bits
        self.layers = stack.layers
        self.convs = []
        scales, bounds = in_scales, np.full(len(in_scales), in_bound)
        for i, (spec, conv) in enumerate(zip(stack.layers, stack.convs)):
            assert isinstance(conv, torch.nn.Conv2d)
            if spec.stride != 1:
                raise ValueError("the integer decoder runs stride-1 layers only")
            last = i == len(stack.layers) - 1
            self.convs.append(IntConv(conv, scales, bounds, out_scale if last else act,
                                      OUTPUT_BOUND if last else act_bound, fmt))
            channels = spec.cout // (4 if spec.shuffle else 1)
            scales, bounds = np.full(channels, act), np.full(channels, act_bound)

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return self.tapped(a, None)[0]

    def tapped(self, a: torch.Tensor, tap: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output and the activations after layer ``tap`` (None: not kept)."""
        kept = None
        for i, (spec, conv) in enumerate(zip(self.layers, self.convs)):
            a = conv(a)
            if spec.shuffle:
                a = F.pixel_shuffle(a, 2)
            if spec.act:
                a = leaky(a)
            if i == tap:
                kept = a
        return a, kept


class ExactLic:
    """What the decoder computes, built deterministically from the float weights."""

    def __init__(self, model: LicModel, fmt: NumberFormat = FLOAT32) -> None:
        self.model, self.config, self.fmt = model, model.config, fmt
        cfg = self.config
        self.hyper_synthesis = IntStack(model.h_s, np.ones(cfg.hyper_channels), cfg.hyper_bound, 2.0**-P, fmt)
        unit = 1 << P
        self.hyper_means = np.round(model.hyper_means.detach().double().numpy() * unit).astype(np.int64)
        self.hyper_log_scales = np.round(model.hyper_log_scales.detach().double().numpy() * unit).astype(np.int64)
        self._synthesis: dict[int, IntStack] = {}

    def synthesis(self, q: int) -> IntStack:
        """The synthesis at quality ``q``: its steps folded into the first layer's inputs. One
        output unit is 2**-P grey levels."""
        if q not in self._synthesis:
            cfg = self.config
            steps = decimal_steps(self.model.log_steps.detach(), Fraction(q - cfg.q_min, cfg.q_per_octave))
            self._synthesis[q] = IntStack(self.model.g_s, steps, cfg.latent_bound, 2.0**-P / PIXEL_SCALE, self.fmt)
        return self._synthesis[q]

    def reconstruct(self, latents: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer latents (1, M, h, w) -> the reconstruction (1, 3, 16h, 16w) uint8 and the
        decoder features (1, channels, 4h, 4w): integer activations on the grid
        2**-ACT_FRACTION_BITS (see SIDE_LAYER)."""
        out, side = self.synthesis(q).tapped(latents.to(self.fmt.dtype), SIDE_LAYER)
        assert side is not None
        pixels = out.mul_(2.0**-P).round_().add_(PIXEL_OFFSET).clamp_(0, 255)
        return pixels.to(torch.uint8), side

    def hyper_cdf(self, shape: tuple[int, int, int], bound: int) -> torch.Tensor:
        """CDF rows of every hyper-latent of a (C, h, w) grid (C-major order) over the values
        [-bound, bound]."""
        _, h, w = shape
        means = torch.from_numpy(np.repeat(self.hyper_means, h * w))
        log_scales = torch.from_numpy(np.repeat(self.hyper_log_scales, h * w))
        return _logistic_cdf(means, log_scales, bound)

    def latent_cdf(self, hyper: torch.Tensor, bound: int) -> torch.Tensor:
        """CDF rows of every latent (C-major order) over the values [-bound, bound], given the
        integer hyper-latents (1, Z, h, w)."""
        out = self.hyper_synthesis(hyper.to(self.fmt.dtype)).to(torch.int64)
        m = self.config.latent_channels
        return _logistic_cdf(out[0, :m].reshape(-1), out[0, m:].reshape(-1), bound)


#: Rows of CDFs built at once: the float64 work arrays stay a few tens of MB at any image size.
CDF_CHUNK_ROWS = 1 << 15


def _logistic_cdf(means: torch.Tensor, log_scales: torch.Tensor, bound: int) -> torch.Tensor:
    """torchac CDF rows (M, 2 bound + 2) over the symbols value + bound, for discrete logistics
    with int64 ``means`` and ``log_scales`` (M,) on the grid 2**-P."""
    rows = len(means)
    out = torch.empty((rows, 2 * bound + 2), dtype=torch.int16)
    edges = torch.arange(-bound, bound).unsqueeze(0)
    for start in range(0, rows, CDF_CHUNK_ROWS):
        sl = slice(start, min(start + CDF_CHUNK_ROWS, rows))
        n = sl.stop - sl.start
        mix = Mixtures.build(torch.zeros(1, n, dtype=torch.int64), (means[sl] << (MEAN_BITS - P)).unsqueeze(0),
                             log_scales[sl].clamp(LOG_SCALE_MIN_UNITS, LOG_SCALE_MAX_UNITS).unsqueeze(0))
        values = mix.cdf_at(edges.expand(n, -1), -bound, bound)
        out[sl] = quantize(values, torch.zeros_like(values[:, :1]), mix.total())
    return out
