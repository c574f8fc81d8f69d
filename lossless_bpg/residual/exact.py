"""Bit-exact inference of a :class:`ResidualModel`, identical on every machine.

Floating-point convolutions round differently with the thread count, the instruction set
(AVX2, AVX-512, NEON) and the library version, and one flipped CDF entry makes a file
undecodable. So the coder never runs the float network. It runs this integer copy instead:

- every activation is an integer tensor ``A`` standing for ``A * 2**-ACT_FRACTION_BITS``,
  clamped to ``|A| <= 2**act_bits``; the network's inputs are the integers themselves
  (``2 * x~ - 255``, ``q``, residuals) and their real scales are folded into the first weights;
- every weight is an integer, per output channel on a power-of-two grid chosen so that the sum
  of ``|weight| * max|input|`` plus ``|bias|`` stays within ``2**accumulator_bits``.

Then every product and every partial sum of a convolution is an integer the float type holds
exactly, so the result does not depend on the order of summation (threads, SIMD width, FMA,
blocking); re-quantising multiplies by a power of two and rounds half to even, and
LeakyReLU's 0.2 is one correctly rounded IEEE multiply. The outputs are integers on the grid
``2**-OUTPUT_FRACTION_BITS``, turned into CDFs with integer arithmetic (:mod:`.exact_cdf`).

Two number formats are provided: float32 (24-bit exact range; fast, what the codec uses) and
float64 (53-bit; finer weights, slower; a reference for measuring what float32 costs).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..intnet import ACT_FRACTION_BITS, FLOAT32, OUTPUT_BOUND, OUTPUT_FRACTION_BITS, IntConv, NumberFormat, leaky
from .model import (
    LOG_SCALE_MAX,
    LOG_SCALE_MIN,
    Q_SCALE,
    MixtureParams,
    ResBlock,
    ResidualModel,
    pass_lattice,
    side_at,
)

#: Residuals enter the context convolutions divided by this (as in the float model).
RESIDUAL_DIVISOR = 16.0
#: Names this inference procedure inside model ids: change it with any change to the
#: arithmetic of :mod:`lossless_bpg.intnet` or of exact_cdf, so files coded the old way fail
#: with a clear error.
INFERENCE_ID = "exact-int-f32/1"


#: Integer channel network: (c, hidden activations, residuals) -> int64 corrections (N, 3K, H, W)
#: of channel c's logits, means and log-scales on the grid 2**-OUTPUT_FRACTION_BITS.
ExactRefiner = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ExactParams:
    """Integer head outputs of one pass, each on the grid 2**-OUTPUT_FRACTION_BITS:
    ``logits``, ``means``, ``log_scales`` (N, 3, K, H, W) and ``coupling`` pre-activations
    (N, 3, H, W), as int64. Generation 2: the head's ``hidden`` activations and the channel
    network ``refiner`` that corrects G's and B's mixtures once R (and G) are known (applied by
    :func:`.exact_cdf.channel_params`)."""

    logits: torch.Tensor
    means: torch.Tensor
    log_scales: torch.Tensor
    coupling: torch.Tensor
    hidden: torch.Tensor | None = None
    refiner: ExactRefiner | None = None

    def crop(self, height: int, width: int) -> ExactParams:
        def cut(t: torch.Tensor) -> torch.Tensor:
            return t[..., :height, :width]

        return ExactParams(cut(self.logits), cut(self.means), cut(self.log_scales), cut(self.coupling),
                           None if self.hidden is None else cut(self.hidden), self.refiner)

    def as_float(self) -> MixtureParams:
        """The same parameters in real units, float32 (for the encoder's rate estimates and
        adaptation fit; the coder itself never uses them)."""
        unit = 2.0**-OUTPUT_FRACTION_BITS
        refiner = None
        if self.refiner is not None:
            exact_refiner = self.refiner

            def refiner(c: int, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
                return exact_refiner(c, hidden, residual).float() * unit

        return MixtureParams(
            self.logits.float() * unit,
            self.means.float() * unit,
            self.log_scales.float() * unit,
            torch.tanh(self.coupling.float() * unit),
            self.hidden,
            refiner,
        )


def _head_output_layer(conv: nn.Conv2d, fmt: NumberFormat) -> IntConv:
    """The integer last layer of a pass head: hidden activations in, outputs out."""
    n = conv.in_channels
    return IntConv(conv, np.full(n, 2.0**-ACT_FRACTION_BITS), np.full(n, 2**fmt.act_bits),
                   2.0**-OUTPUT_FRACTION_BITS, OUTPUT_BOUND, fmt)


def _res_block(module: nn.Module) -> ResBlock:
    assert isinstance(module, ResBlock)
    return module


class ExactResidualModel:
    """Integer twin of a trained :class:`ResidualModel` with the same ``features`` /
    ``pass_params`` interface; built deterministically from the float weights."""

    def __init__(self, model: ResidualModel, fmt: NumberFormat = FLOAT32) -> None:
        cfg = model.config
        self.config, self.fmt = cfg, fmt
        self.steps = cfg.context_steps
        self.mixtures = cfg.mixtures
        act = 2.0**-ACT_FRACTION_BITS
        act_bound = 2**fmt.act_bits
        out = 2.0**-OUTPUT_FRACTION_BITS

        def make(conv: nn.Conv2d, scales: np.ndarray, bounds: np.ndarray, to_output: bool = False) -> IntConv:
            if to_output:
                return IntConv(conv, scales, bounds, out, OUTPUT_BOUND, fmt)
            return IntConv(conv, scales, bounds, act, act_bound, fmt)

        def hidden(conv: nn.Conv2d, to_output: bool = False) -> IntConv:
            """A convolution whose inputs are hidden activations."""
            n = conv.in_channels
            return make(conv, np.full(n, act), np.full(n, act_bound), to_output)

        # Stem input: 2x2-unshuffled (2 x~ - 255) / 255 and q / Q_SCALE.
        self.stem = make(model.stem, np.r_[np.full(12, 1 / 255), 1 / Q_SCALE], np.r_[np.full(12, 255), 51])
        self.down = hidden(model.down)
        self.trunk = [(hidden(b.conv1), hidden(b.conv2)) for b in map(_res_block, model.trunk)]
        if cfg.side_channels:  # the lossy layer's features: integer activations, as ours
            self.side_in = hidden(model.side_in)
        if self.steps != 16:
            self.up = hidden(model.up)
            self.half_blocks = [(hidden(b.conv1), hidden(b.conv2)) for b in map(_res_block, model.half_blocks)]
        if self.steps == 1:
            self.head = hidden(model.head, to_output=True)
            return
        if self.steps == 16:  # trunk features, then the 4x4-unshuffled (2 x~ - 255) / 255
            cq = cfg.quarter_channels
            feat_scales = np.r_[np.full(cq, act), np.full(48, 1 / 255)]
            feat_bounds = np.r_[np.full(cq, act_bound), np.full(48, 255)]
        else:
            feat_scales, feat_bounds = np.full(cfg.half_channels, act), np.full(cfg.half_channels, act_bound)
        self.context = [
            make(conv, np.full(conv.in_channels, 1 / RESIDUAL_DIVISOR), np.full(conv.in_channels, 255))
            for conv in model.context_convs()
        ]
        cc, gc = cfg.context_channels, cfg.context_net_channels
        self.heads = []
        for s, (first, second, last) in enumerate(model.head_convs()):
            extra = (cc if s else 0) + gc  # pass 0 has no per-pass context
            first_int = make(first, np.r_[feat_scales, np.full(extra, act)], np.r_[feat_bounds, np.full(extra, act_bound)])
            self.heads.append([first_int, hidden(second), _head_output_layer(last, fmt)])
        self.generation = model.generation
        self.feature_channels = len(feat_scales)
        if gc:
            # Generation 2's context network: its x~ term once per image, then per pass a
            # convolution of the known residuals whose bias holds the pass embedding.
            self.ctx_feat = make(model.ctx_feat, feat_scales, feat_bounds)
            known = model.ctx_known.in_channels
            self.ctx_known = []
            for s in range(self.steps):
                conv = copy.deepcopy(model.ctx_known)
                assert conv.bias is not None
                with torch.no_grad():
                    conv.bias += model.pass_embedding[s]
                self.ctx_known.append(make(conv, np.full(known, 1 / RESIDUAL_DIVISOR), np.full(known, 255)))
            self.ctx_blocks = [(hidden(b.conv1), hidden(b.conv2)) for b in model.context_blocks()]
        if cfg.channel_net_channels:
            hc = cfg.head_channels
            self.channel_nets = [
                (make(first, np.r_[np.full(hc, act), np.full(c, 1 / RESIDUAL_DIVISOR)],
                      np.r_[np.full(hc, act_bound), np.full(c, 255)]),
                 hidden(last, to_output=True))
                for c, (first, last) in zip((1, 2), model.channel_net_convs())
            ]

    @staticmethod
    def _block(pair, a: torch.Tensor, bound: float) -> torch.Tensor:
        conv1, conv2 = pair
        return (a + conv2(leaky(conv1(a)))).clamp_(-bound, bound)

    def features(self, recon: torch.Tensor, q: int, side: torch.Tensor | None = None) -> torch.Tensor:
        """Integer features of the reconstruction ``recon`` (N, 3, H, W) integers in [0, 255]
        (and, for a model that reads them, of the lossy layer's decoder features ``side``:
        integer activations on the grid 2**-ACT_FRACTION_BITS, at >= 1/4 resolution)."""
        bound = float(2**self.fmt.act_bits)
        centred = (recon.to(self.fmt.dtype) * 2 - 255)
        n, _, h, w = centred.shape
        x = F.pixel_unshuffle(centred, 2)
        qmap = torch.full((n, 1, h // 2, w // 2), float(q), dtype=self.fmt.dtype)
        half = leaky(self.stem(torch.cat([x, qmap], 1)))
        quarter = self.down(F.pixel_unshuffle(half, 2))
        if self.config.side_channels:
            side = side_at(side, self.config.side_channels, h // 4, w // 4).to(self.fmt.dtype)
            quarter = (quarter + self.side_in(side.clamp(-bound, bound))).clamp_(-bound, bound)
        for pair in self.trunk:
            quarter = self._block(pair, quarter, bound)
        if self.steps == 16:
            features = torch.cat([leaky(quarter), F.pixel_unshuffle(centred, 4)], 1)
            if self.config.context_net_channels:
                return torch.cat([features, self.ctx_feat(features)], 1)
            return features
        half = (half + F.pixel_shuffle(self.up(quarter), 2)).clamp_(-bound, bound)
        for pair in self.half_blocks:
            half = self._block(pair, half, bound)
        return leaky(half)

    def pass_params(self, features: torch.Tensor, step: int, residual: torch.Tensor) -> ExactParams:
        """Integer mixture parameters of pass ``step``, reading only the residuals (integers)
        of earlier passes from ``residual`` (N, 3, H, W)."""
        if self.steps == 1:
            return self._split(F.pixel_shuffle(self.head(features), 2))
        hidden, out = self.head_hidden_and_output(features, step, residual)
        return self._params(out, hidden)

    def params_from_hidden(self, step: int, hidden: torch.Tensor) -> ExactParams:
        """Pass ``step``'s parameters from its head's last hidden activations (as
        :meth:`head_hidden_and_output` gives them): only the head's last layer runs."""
        return self._params(self.heads[step][2](hidden), hidden)

    def _params(self, out: torch.Tensor, hidden: torch.Tensor) -> ExactParams:
        params = self._split(out)
        if self.config.channel_net_channels:
            params.hidden, params.refiner = hidden, self.refine_channel
        return params

    def head_hidden_and_output(
        self, features: torch.Tensor, step: int, residual: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The integer activations that pass ``step``'s head ends with and its raw output
        (before the split into mixture parameters)."""
        fc = self.feature_channels
        inputs = [features[:, :fc]]
        if step:
            known = torch.cat([pass_lattice(residual, s, self.steps) for s in range(step)], 1)
            inputs.append(leaky(self.context[step - 1](known.to(self.fmt.dtype))))
        if self.config.context_net_channels:
            inputs.append(self._context_net(features[:, fc:], step, residual))
        first, second, last = self.heads[step]
        hidden = leaky(second(leaky(first(torch.cat(inputs, 1)))))
        return hidden, last(hidden)

    def with_last_head_layers(self, lasts: list[nn.Conv2d]) -> ExactResidualModel:
        """A copy of this model whose pass heads end in the (float) layers ``lasts`` instead,
        made integer as the shipped ones (see :mod:`.finetune`)."""
        changed = copy.copy(self)
        changed.heads = [[first, second, _head_output_layer(last, self.fmt)]
                         for (first, second, _), last in zip(self.heads, lasts, strict=True)]
        return changed

    def _context_net(self, feat_term: torch.Tensor, step: int, residual: torch.Tensor) -> torch.Tensor:
        bound = float(2**self.fmt.act_bits)
        b = 4
        n, _, h, w = residual.shape
        lattices = [pass_lattice(residual, s, self.steps) for s in range(step)]
        zeros = residual.new_zeros(n, 3 * (self.steps - step), h // b, w // b)
        known = torch.cat([*lattices, zeros], 1).to(self.fmt.dtype)
        x = leaky((feat_term + self.ctx_known[step](known)).clamp_(-bound, bound))
        for pair in self.ctx_blocks:
            x = self._block(pair, x, bound)
        return leaky(x)

    def refine_channel(self, c: int, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Integer corrections of channel ``c``'s mixtures from the head's ``hidden`` activations
        and the residuals (integers) of channels < ``c`` of the same subpixels."""
        first, last = self.channel_nets[c - 1]
        x = torch.cat([hidden, residual[:, :c].to(self.fmt.dtype)], 1)
        return last(leaky(first(x))).to(torch.int64)

    def _split(self, out: torch.Tensor) -> ExactParams:
        n, _, h, w = out.shape
        k = self.mixtures
        out = out.to(torch.int64)
        mix = out[:, : 9 * k].reshape(n, 3, 3, k, h, w)
        unit = 1 << OUTPUT_FRACTION_BITS
        return ExactParams(
            logits=mix[:, :, 0],
            means=mix[:, :, 1],
            log_scales=mix[:, :, 2].clamp(int(LOG_SCALE_MIN * unit), int(LOG_SCALE_MAX * unit)),
            coupling=out[:, 9 * k:],
        )
