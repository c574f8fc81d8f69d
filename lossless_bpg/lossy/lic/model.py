"""The learned lossy layer's network, in floating point (training and the encoder's analysis).

A mean-scale hyperprior transform codec (Ballé et al. 2018, Minnen et al. 2018) built only from
what the integer decoder (:mod:`.exact`) can express exactly: convolutions, pixel shuffle and
LeakyReLU (no GDN, no transposed convolutions):

- analysis ``g_a``: four stride-2 convolutions, image -> latents ``y`` at 1/16 resolution;
- quantiser: ``y_hat = round(y / step)``, with a learned step per latent channel times
  2**((q - q_min) / q_per_octave) at quality q (variable rate from one model), clamped to
  the latent bound;
- hyper-analysis ``h_a``: ``y / step`` -> hyper-latents ``z`` at 1/64, rounded, coded with a
  learned logistic per channel;
- hyper-synthesis ``h_s``: ``z_hat`` -> mean and log-scale of a discrete logistic per latent;
- synthesis ``g_s``: ``y_hat * step[q]`` -> the reconstruction, by four 3x3 convolutions each
  followed by a 2x pixel shuffle.

Trained for the total lossless rate: bits of ``y_hat`` and ``z_hat`` plus the residual model's
bits for ``x - x~`` (see :mod:`lossless_bpg.train.lic`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...intnet import LEAKY_SLOPE
from ...residual.mixture import log_prob
from ...residual.model import LOG_SCALE_MAX, LOG_SCALE_MIN
from .config import LicConfig

#: Pixels enter the network as (x - PIXEL_OFFSET) / PIXEL_SCALE and leave the same way.
PIXEL_OFFSET = 128.0
PIXEL_SCALE = 64.0
#: Total down-sampling of the hyper-latents: images are padded to a multiple of it.
STRIDE = 64
#: The synthesis's activations after this layer (at 1/4 resolution, ``channels`` wide) are the
#: decoder features a residual model may read besides the reconstruction (DLPR's conditioning).
SIDE_LAYER = 1


@dataclass(frozen=True)
class Layer:
    """One convolution of a :class:`ConvStack`: ``kernel`` x ``kernel``, ``stride`` 1 or 2
    ('same' padding), then a 2x pixel shuffle if ``shuffle``, then LeakyReLU if ``act``."""

    cin: int
    cout: int
    kernel: int = 3
    stride: int = 1
    shuffle: bool = False
    act: bool = True


class ConvStack(nn.Module):
    def __init__(self, layers: list[Layer]) -> None:
        super().__init__()
        self.layers = layers
        self.convs = nn.ModuleList(
            nn.Conv2d(s.cin, s.cout, s.kernel, s.stride, padding=s.kernel // 2) for s in layers
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tapped(x, None)[0]

    def forward_tapped(self, x: torch.Tensor, tap: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output and the activations after layer ``tap`` (None: not kept)."""
        kept = None
        for i, (spec, conv) in enumerate(zip(self.layers, self.convs)):
            x = conv(x)
            if spec.shuffle:
                x = F.pixel_shuffle(x, 2)
            if spec.act:
                x = F.leaky_relu(x, LEAKY_SLOPE)
            if i == tap:
                kept = x
        return x, kept


def synthesis_layers(cfg: LicConfig) -> list[Layer]:
    n, m = cfg.channels, cfg.latent_channels
    return [Layer(m, 4 * n, shuffle=True), Layer(n, 4 * n, shuffle=True), Layer(n, 4 * n, shuffle=True),
            Layer(n, 12, shuffle=True, act=False)]


def hyper_synthesis_layers(cfg: LicConfig) -> list[Layer]:
    n, m, z = cfg.channels, cfg.latent_channels, cfg.hyper_channels
    return [Layer(z, 4 * n, shuffle=True), Layer(n, 4 * n, shuffle=True), Layer(n, 2 * m, act=False)]


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Rounds forward, passes gradients straight through."""
    return x + (torch.round(x) - x).detach()


@dataclass
class LicOutput:
    #: Reconstruction in pixel units, integer-valued, clamped to [0, 255] (N, 3, H, W).
    recon: torch.Tensor
    #: Bits of the latents and hyper-latents per image (N,).
    latent_bits: torch.Tensor
    hyper_bits: torch.Tensor
    #: The synthesis's decoder features (N, channels, H/4, W/4), see SIDE_LAYER.
    side: torch.Tensor


class LicModel(nn.Module):
    def __init__(self, config: LicConfig) -> None:
        super().__init__()
        self.config = config
        n, m, z = config.channels, config.latent_channels, config.hyper_channels
        self.g_a = ConvStack([Layer(3, n, 5, 2), Layer(n, n, 5, 2), Layer(n, n, 5, 2), Layer(n, m, 5, 2, act=False)])
        self.h_a = ConvStack([Layer(m, n), Layer(n, n, 5, 2), Layer(n, z, 5, 2, act=False)])
        self.h_s = ConvStack(hyper_synthesis_layers(config))
        self.g_s = ConvStack(synthesis_layers(config))
        # The quantiser step of channel c at quality q is exp(log_steps[c]) * 2**((q - q_min) /
        # q_per_octave): the shape across channels is learned, the spacing of the qualities is
        # fixed (trained for one objective, learned per-q steps would all converge together).
        self.log_steps = nn.Parameter(torch.full((m,), -math.log(2.0)))
        self.hyper_means = nn.Parameter(torch.zeros(z))
        self.hyper_log_scales = nn.Parameter(torch.zeros(z))

    def log_step(self, q: torch.Tensor) -> torch.Tensor:
        """Natural log of the quantiser steps (N, M) at qualities ``q`` (N,)."""
        cfg = self.config
        octaves = (q.to(self.log_steps.dtype) - cfg.q_min) / cfg.q_per_octave
        return self.log_steps[None, :] + (octaves * math.log(2.0))[:, None]

    def analyse(self, image: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels (N, 3, H, W; H, W multiples of STRIDE) -> the scaled latents ``y / step``
        and the hyper-latents, both unrounded and unclamped."""
        y = self.g_a((image - PIXEL_OFFSET) / PIXEL_SCALE)
        scaled = y * torch.exp(-self.log_step(q))[:, :, None, None]
        return scaled, self.h_a(scaled)

    def latent_params(self, hyper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rounded hyper-latents -> means and log-scales (N, M, h, w) of the rounded latents."""
        out = self.h_s(hyper)
        m = self.config.latent_channels
        return out[:, :m], out[:, m:].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    @property
    def side_channels(self) -> int:
        return self.config.channels

    def synthesise(self, latents: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rounded latents -> reconstruction in pixel units (real-valued, unclamped) and the
        decoder features (see SIDE_LAYER)."""
        y = latents * torch.exp(self.log_step(q))[:, :, None, None]
        out, side = self.g_s.forward_tapped(y, SIDE_LAYER)
        assert side is not None
        return out * PIXEL_SCALE + PIXEL_OFFSET, side

    def forward(self, image: torch.Tensor, q: torch.Tensor) -> LicOutput:
        cfg = self.config
        scaled, hyper = self.analyse(image, q)
        z_hat = ste_round(hyper.clamp(-cfg.hyper_bound, cfg.hyper_bound))
        y_hat = ste_round(scaled.clamp(-cfg.latent_bound, cfg.latent_bound))
        means, log_scales = self.latent_params(z_hat)
        latent_bits = _bits(y_hat, means, log_scales, cfg.latent_bound)
        zc = z_hat.shape[1]
        hyper_bits = _bits(z_hat, self.hyper_means.view(1, zc, 1, 1).expand_as(z_hat),
                           self.hyper_log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).view(1, zc, 1, 1).expand_as(z_hat),
                           cfg.hyper_bound)
        pixels, side = self.synthesise(y_hat, q)
        return LicOutput(ste_round(pixels.clamp(0.0, 255.0)), latent_bits, hyper_bits, side)


def _bits(symbols: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, bound: int) -> torch.Tensor:
    """Bits per image (N,) of integer ``symbols`` (N, C, h, w) under discrete logistics over
    [-bound, bound]."""
    n, c, h, w = symbols.shape
    flat = (n * c, h, w)
    logp = log_prob(torch.zeros(n * c, 1, h, w, dtype=symbols.dtype, device=symbols.device),
                    means.reshape(n * c, 1, h, w), log_scales.reshape(n * c, 1, h, w),
                    symbols.reshape(flat), -bound, bound)
    return -logp.reshape(n, -1).sum(1) / math.log(2.0)
