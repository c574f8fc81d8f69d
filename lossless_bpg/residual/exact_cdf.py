"""Integer CDFs of discrete logistic mixtures, computed with integer arithmetic only.

The mixture parameters come from :class:`~lossless_bpg.residual.exact.ExactResidualModel` as
integers on the grid 2**-OUTPUT_FRACTION_BITS. Every transcendental function is a lookup table
(``exact_tables.npz``, generated with Python's ``decimal``, whose results are correctly rounded
by specification, so the tables are the same everywhere), and everything else is int64
arithmetic, so encoder and decoder build bit-identical CDFs on any machine.

Per subpixel and boundary b = r + 1/2 between symbols r and r + 1::

    cdf(b) = sum_k w_k * sigmoid((b - mean_k) * exp(-log_scale_k)),   w = softmax(logits)

with the R -> G -> B coupling (tanh of the coupling outputs times the earlier residuals) added
to the means, and the per-image recalibration of :mod:`.adaptation` applied.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .coder import CDF_TOTAL, as_uint16_in_int16
from .exact import OUTPUT_FRACTION_BITS, ExactParams
from .model import LOG_SCALE_MAX, LOG_SCALE_MIN

TABLES_PATH = Path(__file__).with_name("exact_tables.npz")
#: Parameter grid: 2**-P real units per integer step.
P = OUTPUT_FRACTION_BITS
#: The model's log-scale bounds on that grid.
LOG_SCALE_MIN_UNITS, LOG_SCALE_MAX_UNITS = int(LOG_SCALE_MIN * (1 << P)), int(LOG_SCALE_MAX * (1 << P))
#: Means are carried on the finer grid 2**-MEAN_BITS once the coupling is added.
MEAN_BITS = 14
#: exp(-log_scale) table: log-scales in [LOG_SCALE_LO, LOG_SCALE_HI] (after adaptation), values
#: scaled by 2**INV_SCALE_BITS.
LOG_SCALE_LO, LOG_SCALE_HI = -6, 8
INV_SCALE_BITS = 18
#: sigmoid table: arguments in [-SIGMOID_RANGE, SIGMOID_RANGE] on the grid 2**-SIGMOID_GRID_BITS.
SIGMOID_RANGE = 16
SIGMOID_GRID_BITS = 10
#: Probabilities (sigmoid and mixture weights) are scaled by 2**PROB_BITS.
PROB_BITS = 24
#: exp(-d) table for the softmax: d in [0, SOFTMAX_RANGE] on the parameter grid.
SOFTMAX_RANGE = 24
#: tanh table for the coupling: arguments in [-TANH_RANGE, TANH_RANGE] on the parameter grid,
#: values scaled by 2**TANH_BITS.
TANH_RANGE = 8
TANH_BITS = 14


def _round(value: decimal.Decimal) -> int:
    return int(value.to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


def generate_tables() -> dict[str, np.ndarray]:
    """The lookup tables, from their definitions (``decimal``, 40 significant digits)."""
    with decimal.localcontext(decimal.Context(prec=40)):
        D = decimal.Decimal
        one = D(1)

        def exp(x: decimal.Decimal) -> decimal.Decimal:
            return x.exp()

        inv_scale = [
            _round(exp(-D(i) / (1 << P)) * (1 << INV_SCALE_BITS))
            for i in range(LOG_SCALE_LO << P, (LOG_SCALE_HI << P) + 1)
        ]
        half = [
            _round(one / (one + exp(-D(i) / (1 << SIGMOID_GRID_BITS))) * (1 << PROB_BITS))
            for i in range((SIGMOID_RANGE << SIGMOID_GRID_BITS) + 1)
        ]
        # sigmoid(-x) = 1 - sigmoid(x): exact on the integer scale as well.
        sigmoid = [(1 << PROB_BITS) - v for v in reversed(half[1:])] + half
        exp_neg = [_round(exp(-D(i) / (1 << P)) * (1 << PROB_BITS)) for i in range((SOFTMAX_RANGE << P) + 1)]
        tanh_half = [
            _round((one - 2 / (exp(2 * D(i) / (1 << P)) + one)) * (1 << TANH_BITS))
            for i in range((TANH_RANGE << P) + 1)
        ]
        tanh = [-v for v in reversed(tanh_half[1:])] + tanh_half
    return {
        "inv_scale": np.array(inv_scale, dtype=np.int64),
        "sigmoid": np.array(sigmoid, dtype=np.int64),
        "exp_neg": np.array(exp_neg, dtype=np.int64),
        "tanh": np.array(tanh, dtype=np.int64),
    }


@lru_cache(maxsize=1)
def tables() -> dict[str, torch.Tensor]:
    with np.load(TABLES_PATH) as data:
        out = {k: torch.from_numpy(data[k].astype(np.int64)) for k in data.files}
    out["sigmoid_f64"] = out["sigmoid"].double()
    return out


def _gather(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a 1-D table: index_select on the flattened index gives the same
    values as advanced indexing, about twice as fast."""
    return table.index_select(0, index.reshape(-1)).view(index.shape)


def _lookup(table: torch.Tensor, index: torch.Tensor, lo: int) -> torch.Tensor:
    """``table[index - lo]`` with the index clamped to the table."""
    return _gather(table, (index - lo).clamp_(0, table.numel() - 1))


def coupled_means(params: ExactParams, c: int, residual: torch.Tensor) -> torch.Tensor:
    """Means of channel ``c`` (N, K, H, W) on the grid 2**-MEAN_BITS, shifted by the coupling
    with the known residuals (N, 3, H, W) of the earlier channels."""
    t = tables()["tanh"]
    lo = -(TANH_RANGE << P)
    means = params.means[:, c] << (MEAN_BITS - P)
    r = residual.to(torch.int64)
    coupling = params.coupling
    if c == 1:
        shift = _lookup(t, coupling[:, 0], lo) * r[:, 0]
    elif c == 2:
        shift = _lookup(t, coupling[:, 1], lo) * r[:, 0] + _lookup(t, coupling[:, 2], lo) * r[:, 1]
    else:
        return means
    return means + (shift << (MEAN_BITS - TANH_BITS)).unsqueeze(1)


def channel_params(params: ExactParams, c: int, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, means, log_scales) of channel ``c``, each (N, K, H, W) int64: logits and
    log-scales on the grid 2**-P, means on 2**-MEAN_BITS after the coupling, and for generation
    2 models corrected by the channel network from the known residuals (N, 3, H, W) of the
    earlier channels."""
    logits, means, log_scales = params.logits[:, c], coupled_means(params, c, residual), params.log_scales[:, c]
    if c and params.refiner is not None and params.hidden is not None:
        k = logits.shape[1]
        delta = params.refiner(c, params.hidden, residual)
        logits = logits + delta[:, :k]
        means = means + (delta[:, k : 2 * k] << (MEAN_BITS - P))
        log_scales = (log_scales + delta[:, 2 * k :]).clamp(LOG_SCALE_MIN_UNITS, LOG_SCALE_MAX_UNITS)
    return logits, means, log_scales


@dataclass(frozen=True)
class Mixtures:
    """The mixtures of M subpixels, ready for CDF evaluation: ``weights`` (K, M) summing to at
    most 2**PROB_BITS, ``means`` (K, M) on the grid 2**-MEAN_BITS, ``inv_scales`` (K, M) on the
    grid 2**-INV_SCALE_BITS. Stored as float64 holding integers: every product and sum below
    stays under 2**53, so float64 computes them exactly (and faster than int64 on x86)."""

    weights: torch.Tensor
    means: torch.Tensor
    inv_scales: torch.Tensor

    @classmethod
    def build(cls, logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor) -> Mixtures:
        """From int64 ``logits``, ``log_scales`` (K, M) on the parameter grid and ``means``
        (K, M) on the grid 2**-MEAN_BITS (from :func:`coupled_means`, then adapted)."""
        tab = tables()
        expd = _lookup(tab["exp_neg"], logits.amax(0, keepdim=True) - logits, 0)
        weights = (expd << PROB_BITS) // expd.sum(0, keepdim=True)
        inv = _lookup(tab["inv_scale"], log_scales, LOG_SCALE_LO << P)
        return cls(weights.double(), means.double(), inv.double())

    def select(self, index: torch.Tensor) -> Mixtures:
        return Mixtures(self.weights[:, index], self.means[:, index], self.inv_scales[:, index])

    def total(self) -> torch.Tensor:
        """(M, 1): the mixture CDF at +infinity (just under 2**48)."""
        return (self.weights.sum(0) * float(1 << PROB_BITS)).unsqueeze(1)

    def centers(self, lo: int, hi: int) -> torch.Tensor:
        """(M,) int64: the rounded mean of the heaviest component (first on ties), in [lo, hi]."""
        # A running maximum over the K rows rather than argmax(0): the same answer (a later
        # component wins only when strictly heavier), far faster on a (K, M) tensor.
        heaviest, mean = self.weights[0], self.means[0]
        for k in range(1, self.weights.shape[0]):
            heavier = self.weights[k] > heaviest
            heaviest = torch.where(heavier, self.weights[k], heaviest)
            mean = torch.where(heavier, self.means[k], mean)
        return torch.floor(mean * 2.0**-MEAN_BITS + 0.5).long().clamp_(lo, hi)

    def cdf_at(self, edges: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """The mixture CDF (exact integers, scale ~2**48) at boundaries ``edges + 1/2``;
        ``edges`` (M, B) int64. The tails belong to the end symbols: 0 below lo + 1/2, the
        total from hi + 1/2 on."""
        m, b = edges.shape
        out = torch.empty((m, b), dtype=torch.float64)
        sigmoid = tables()["sigmoid_f64"]
        limit = SIGMOID_RANGE << SIGMOID_GRID_BITS
        # Table index floor(z / grid + 1/2) + limit, with the power-of-two rescale folded into
        # the inverse scales: every intermediate is a multiple of a power of two below 2**53
        # in significant bits, so nothing rounds.
        inv = self.inv_scales * 2.0 ** -(MEAN_BITS + INV_SCALE_BITS - SIGMOID_GRID_BITS)
        chunk = max(1, CDF_ELEMENTS // b)
        for start in range(0, m, chunk):
            sl = slice(start, min(start + chunk, m))
            offset = edges[sl].double().mul_(float(1 << MEAN_BITS)).add_(float(1 << (MEAN_BITS - 1)))
            acc = out[sl]
            acc.zero_()
            for k in range(self.means.shape[0]):
                z = (offset - self.means[k, sl, None]).mul_(inv[k, sl, None])
                index = z.add_(limit + 0.5).clamp_(0, 2 * limit).to(torch.int32)
                acc.addcmul_(_gather(sigmoid, index), self.weights[k, sl, None])
        out = torch.where(edges < lo, torch.zeros_like(out), out)
        return torch.where(edges >= hi, self.total().expand_as(out), out)


#: Elements of the (subpixels, boundaries) work tensors per chunk (keeps them in cache).
CDF_ELEMENTS = 1 << 16


def quantize(values: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """torchac CDF rows for symbols whose interior boundaries have mixture CDF ``values``
    (M, S - 1), the coded interval being [low, high] (M, 1): every symbol gets at least
    2**-16; (M, S + 1) int16 (read as uint16), last column never read."""
    m, inner = values.shape
    symbols = inner + 1
    usable = float(CDF_TOTAL - symbols)
    # Drop 20 low bits so that products stay below 2**53; then floor(a / b) of such integers is
    # exact in float64 (a quotient below 2**16 cannot round across an integer).
    unit = 2.0**-20
    span = torch.floor((high - low) * unit).clamp_(min=1.0)
    inside = torch.floor((values.clamp(low, high) - low).mul_(unit))
    cdf = torch.empty((m, symbols + 1), dtype=torch.float64)
    cdf[:, 0] = 0.0
    torch.floor(inside.mul_(usable).div_(span), out=cdf[:, 1:symbols])
    cdf[:, symbols] = usable
    cdf += torch.arange(symbols + 1, dtype=torch.float64)
    cdf[:, symbols] = 0.0
    return as_uint16_in_int16(cdf.to(torch.int32))


def window_cdf(mix: Mixtures, centers: torch.Tensor, half_width: int, lo: int, hi: int) -> torch.Tensor:
    """CDF rows over 2 * half_width + 3 symbols: "below the window", the values
    centers - half_width .. centers + half_width, "above the window"."""
    edges = centers.unsqueeze(1) + torch.arange(-half_width - 1, half_width + 1).unsqueeze(0)
    values = mix.cdf_at(edges, lo, hi)
    return quantize(values, torch.zeros_like(values[:, :1]), mix.total())


def escape_cdf(
    mix: Mixtures, centers: torch.Tensor, below: torch.Tensor, half_width: int, lo: int, hi: int, width: int
) -> torch.Tensor:
    """CDF rows of ``width`` symbols for values that left the window: below it (``below``),
    symbol = r - lo for r in [lo, center - half_width - 1]; above it, symbol =
    r - (center + half_width + 1) for r up to hi. Each row is the mixture conditioned on its
    side; symbols past a row's own range get only the minimum probability."""
    steps = torch.arange(width - 1).unsqueeze(0)
    first = torch.where(below, torch.full_like(centers, lo), centers + half_width + 1)
    edges = first.unsqueeze(1) + steps
    window = mix.cdf_at(torch.stack([centers - half_width - 1, centers + half_width], 1), lo, hi)
    window_lo, window_hi = window[:, :1], window[:, 1:]
    side = below.unsqueeze(1)
    low = torch.where(side, torch.zeros_like(window_lo), window_hi)
    high = torch.where(side, window_lo, mix.total())
    return quantize(mix.cdf_at(edges, lo, hi), low, high)


if __name__ == "__main__":  # regenerate the shipped tables
    np.savez_compressed(TABLES_PATH, allow_pickle=False, **generate_tables())
    print(f"wrote {TABLES_PATH}")
