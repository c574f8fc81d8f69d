"""Integer inference of convolutional networks, identical on every machine; shared by the
residual model (:mod:`lossless_bpg.residual.exact`) and the learned lossy layer
(:mod:`lossless_bpg.lossy.lic.exact`).

Every activation is an integer tensor ``A`` standing for ``A * 2**-ACT_FRACTION_BITS``, clamped
to ``|A| <= 2**act_bits``; every weight is an integer on a per-output-channel power-of-two grid
chosen so that the worst-case sum of a convolution stays within the float type's exact integer
range. Then no product or partial sum rounds, whatever the order of summation (threads, SIMD,
FMA, blocking), and re-quantising is a power-of-two multiply and a round half to even.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Fractional bits of hidden activations.
ACT_FRACTION_BITS = 6
#: Fractional bits of the head outputs (means, log-scales, logits, coupling pre-activations).
OUTPUT_FRACTION_BITS = 8
#: Head outputs are clamped to this many integer units (+-128 in real units).
OUTPUT_BOUND = 128 << OUTPUT_FRACTION_BITS
LEAKY_SLOPE = 0.2


@dataclass(frozen=True)
class NumberFormat:
    dtype: torch.dtype
    #: Exact integer range of the float type, in bits (24 for float32, 53 for float64).
    accumulator_bits: int
    #: Hidden activations are clamped to +-2**act_bits.
    act_bits: int


FLOAT32 = NumberFormat(torch.float32, 24, 12)
FLOAT64 = NumberFormat(torch.float64, 53, 24)


class IntConv:
    """A convolution on integer-valued tensors, re-quantised to an output grid."""

    def __init__(
        self,
        conv: nn.Conv2d,
        in_scales: np.ndarray,
        in_bounds: np.ndarray,
        out_scale: float,
        out_bound: int,
        fmt: NumberFormat,
    ) -> None:
        """``in_scales``/``in_bounds``: real value of one input unit and the largest |input| per
        input channel; ``out_scale`` (a power of two): real value of one output unit."""
        weight = conv.weight.detach().double().numpy() * in_scales[None, :, None, None]
        assert conv.bias is not None, "the model's convolutions all have biases"
        bias = conv.bias.detach().double().numpy()
        limit = 2**fmt.accumulator_bits
        bounds = in_bounds.astype(np.int64)[None, :, None, None]
        shape = (-1, 1, 1, 1)
        biggest = np.maximum(np.abs(weight).reshape(len(weight), -1).max(1), np.abs(bias)).clip(1e-30)
        # Per output channel, the finest power-of-two grid whose exact worst-case sum fits the
        # float type: start surely too fine (whatever log2 rounds to here), then coarsen.
        unit_exp = np.floor(np.log2(biggest)).astype(np.int64) - fmt.accumulator_bits - 2
        while True:
            w_int = np.round(np.ldexp(weight, -unit_exp.reshape(shape)))
            b_int = np.round(np.ldexp(bias, -unit_exp))
            worst = (np.abs(w_int).astype(np.int64) * bounds).reshape(len(weight), -1).sum(1)
            too_big = worst + np.abs(b_int).astype(np.int64) >= limit
            if not too_big.any():
                break
            unit_exp += too_big
        out_exp = int(np.log2(out_scale))
        if 2.0**out_exp != out_scale:
            raise ValueError("output scale must be a power of two")
        # The re-quantising power of two is folded into the integers: scaling by 2**k changes no
        # significant bit, so the sums stay exact and come out on the output grid.
        rescale = np.ldexp(1.0, unit_exp - out_exp)
        self.weight = torch.from_numpy(w_int * rescale.reshape(shape)).to(fmt.dtype)
        self.bias = torch.from_numpy(b_int * rescale).to(fmt.dtype)
        self.padding, self.stride = conv.padding, conv.stride
        self.bound = float(out_bound)

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(a, self.weight, self.bias, self.stride, self.padding)
        return out.round_().clamp_(-self.bound, self.bound)


def leaky(a: torch.Tensor) -> torch.Tensor:
    """LeakyReLU on the integer grid: max(a, round(0.2 a)) equals a for a >= 0 and
    round(0.2 a) below."""
    return torch.maximum(a, (a * LEAKY_SLOPE).round_())
