"""Per-image adaptation of the residual model's mixtures (forward adaptation, as RC's per-image
scale, extended to a small affine recalibration).

The network is trained on other photographs; on a given image its mixtures are a little off in
a way that is nearly constant over a residual stream (one channel of one coding pass): too
narrow or too wide, means too confident, one component too heavy. The encoder fits, per stream,
a few integers that correct this and sends them; both sides apply them with the integer
arithmetic below, so the CDFs stay bit-exact.

Parameters are signed bytes in units of 1/32, in this order (a stream sends a prefix; missing
ones are 0)::

    0   log-scale offset    log_scale += p0 / 32            (container version 2 sends only this)
    1   mean gain           mean      += mean * p1 / 32     (mean after the R -> G -> B coupling)
    2   mean offset         mean      += p2 / 32            (grey levels)
    3   log-scale gain      log_scale += log_scale * p3 / 32
    4   logit gain          logit     += logit * p4 / 32
    5+k logit offset        logit_k   += p(5+k) / 32        (one per mixture component)

Gains act on the model's value, then the offsets are added; log-scales are then limited to the
lookup table's range and means to +-MEAN_LIMIT grey levels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..threads import torch_threads
from .exact_cdf import LOG_SCALE_HI, LOG_SCALE_LO, MEAN_BITS, P

UNIT_BITS = 5
UNIT = 1.0 / (1 << UNIT_BITS)
PARAM_MAX = 127
LOG_SCALE_OFFSET, MEAN_GAIN, MEAN_OFFSET, LOG_SCALE_GAIN, LOGIT_GAIN, LOGIT_OFFSETS = range(6)
#: Adapted means are limited to this many grey levels either side of zero.
MEAN_LIMIT = 1024
#: The fit looks at no more than about this many subpixels of a stream (on a grid). 1024
#: instead of 2048 (until 0.4.3): +0.04 % on ten validation crops, -0.005 % with four 768x512
#: photographs (512: +0.12 % / +0.05 %), about 0.6 s less per 768x512 encode
#: (benchmarks/recalibration_sample.md); on Kodak afterwards +0.04 % for 1.5 s less.
FIT_MAX_SUBPIXELS = 1024
#: L-BFGS iterations: the log-scale offsets alone (one per stream: converges fast), then all.
OFFSET_FIT_ITERATIONS = 4
FIT_ITERATIONS = 20


def parameter_count(mixtures: int) -> int:
    """Most parameters a stream can send for a model with ``mixtures`` components."""
    return LOGIT_OFFSETS + mixtures


def _padded(params: Sequence[int], mixtures: int) -> list[int]:
    if len(params) > parameter_count(mixtures):
        raise ValueError(
            f"a residual stream carries {len(params)} adaptation parameters; this model takes at "
            f"most {parameter_count(mixtures)}"
        )
    return list(params) + [0] * (parameter_count(mixtures) - len(params))


def apply_exact(
    logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, params: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adapt int64 (K, M) ``logits`` and ``log_scales`` on the grid 2**-P and ``means`` on the
    grid 2**-MEAN_BITS. Integer operations only (arithmetic shifts round towards -infinity)."""
    if not any(params):
        return logits, means, log_scales
    k = logits.shape[0]
    p = _padded(params, k)
    if p[LOGIT_GAIN] or any(p[LOGIT_OFFSETS:]):
        offsets = torch.tensor(p[LOGIT_OFFSETS:], dtype=torch.int64).unsqueeze(1) << (P - UNIT_BITS)
        logits = logits + ((logits * p[LOGIT_GAIN]) >> UNIT_BITS) + offsets
    if p[MEAN_GAIN] or p[MEAN_OFFSET]:
        means = means + ((means * p[MEAN_GAIN]) >> UNIT_BITS) + (p[MEAN_OFFSET] << (MEAN_BITS - UNIT_BITS))
        limit = MEAN_LIMIT << MEAN_BITS
        means = means.clamp(-limit, limit)
    if p[LOG_SCALE_GAIN] or p[LOG_SCALE_OFFSET]:
        log_scales = log_scales + ((log_scales * p[LOG_SCALE_GAIN]) >> UNIT_BITS) + (p[LOG_SCALE_OFFSET] << (P - UNIT_BITS))
        log_scales = log_scales.clamp(LOG_SCALE_LO << P, LOG_SCALE_HI << P)
    return logits, means, log_scales


def apply_float(
    logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, params: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same recalibration in real units, differentiable in ``params``: mixtures (K, M) and
    params (P, M) (each subpixel's stream's :func:`parameter_count` values, in units of 1/32)."""
    p = params * UNIT
    logits = logits * (1 + p[LOGIT_GAIN]) + p[LOGIT_OFFSETS:]
    means = (means * (1 + p[MEAN_GAIN]) + p[MEAN_OFFSET]).clamp(-MEAN_LIMIT, MEAN_LIMIT)
    log_scales = (log_scales * (1 + p[LOG_SCALE_GAIN]) + p[LOG_SCALE_OFFSET]).clamp(LOG_SCALE_LO, LOG_SCALE_HI)
    return logits, means, log_scales


@dataclass
class StreamSample:
    """Float mixtures (K, M) and target (M,) of (a grid sample of) one stream, with the
    stream's range and its full subpixel count."""

    logits: torch.Tensor
    means: torch.Tensor
    log_scales: torch.Tensor
    target: torch.Tensor
    lo: int
    hi: int
    count: int

    def cloned(self) -> StreamSample:
        """A copy whose tensors are ordinary ones (not inference tensors) that autograd can use."""
        return StreamSample(self.logits.clone(), self.means.clone(), self.log_scales.clone(),
                            self.target.clone(), self.lo, self.hi, self.count)

    @classmethod
    def of(
        cls, logits, means, log_scales, target, lo: int, hi: int, max_subpixels: int, interleaved: bool = False
    ) -> StreamSample:
        """From (1, K, H, W) mixtures and a (1, H, W) target, keeping a regular grid of about
        ``max_subpixels`` of them (``interleaved``: the grid shifted by half a step, other
        subpixels where the stream is large). A grid, not whole rows: a few rows of a large
        image can be far from typical (all sky), and then the fit overshoots."""
        count = target.numel()
        row_step = max(1, math.floor(math.sqrt(count / max_subpixels)))
        col_step = max(1, math.ceil(count / (max_subpixels * row_step)))
        start = (row_step // 2, col_step // 2) if interleaved else (0, 0)
        grid = (slice(start[0], None, row_step), slice(start[1], None, col_step))
        logits, means, log_scales = (t[0][(..., *grid)].reshape(t.shape[1], -1).float() for t in (logits, means, log_scales))
        return cls(logits, means, log_scales, target[0][grid].reshape(-1).float(), lo, hi, count)


class _Batch:
    """Streams concatenated along the subpixel axis, so that one tensor expression gives every
    stream's code length."""

    def __init__(self, samples: Sequence[StreamSample]) -> None:
        sizes = torch.tensor([s.target.numel() for s in samples])
        self.streams = len(samples)
        self.index = torch.repeat_interleave(torch.arange(self.streams), sizes)
        self.logits, self.means, self.log_scales = (torch.cat([getattr(s, n) for s in samples], 1)
                                                    for n in ("logits", "means", "log_scales"))
        self.target = torch.cat([s.target for s in samples])
        self.lo = torch.tensor([float(s.lo) for s in samples])[self.index]
        self.hi = torch.tensor([float(s.hi) for s in samples])[self.index]
        # A subsampled stream counts as if whole.
        self.weight = torch.tensor([s.count for s in samples]) / sizes
        self.subpixels = sum(s.count for s in samples)

    def bits(self, params: torch.Tensor) -> torch.Tensor:
        """(S,) code length in bits of each stream under mixtures adapted by ``params`` (S, P).
        (The tails beyond ``lo``/``hi`` are kept; the far-tail refinements of the coder's
        estimate are not: this only steers the fit.)"""
        logits, means, log_scales = apply_float(self.logits, self.means, self.log_scales, params.index_select(0, self.index).T)
        centred = self.target - means
        inv_scale = torch.exp(-log_scales)
        upper = torch.where(self.target >= self.hi, 1.0, torch.sigmoid(inv_scale * (centred + 0.5)))
        lower = torch.where(self.target <= self.lo, 0.0, torch.sigmoid(inv_scale * (centred - 0.5)))
        prob = ((upper - lower) * torch.softmax(logits, 0)).sum(0)
        per_subpixel = -torch.log2(prob.clamp_min(1e-12))
        return torch.zeros(self.streams).index_add_(0, self.index, per_subpixel) * self.weight


def fit(samples: Sequence[StreamSample], checks: Sequence[StreamSample] | None = None) -> list[tuple[int, ...]]:
    """The parameters to send for each stream (see :func:`fit_and_estimate`)."""
    return fit_and_estimate(samples, checks)[0]


def fit_and_estimate(
    samples: Sequence[StreamSample], checks: Sequence[StreamSample] | None = None
) -> tuple[list[tuple[int, ...]], float]:
    """The parameters to send for each stream: none, the log-scale offset alone, or all of
    them, whichever gives the fewest estimated bits counting one byte per parameter sent,
    judged on ``checks`` (other subpixels of the same streams, so that a fit that only suits
    its own sample is not sent) or else on ``samples``; and the estimated bits of all the
    streams so recalibrated, parameters included. Streams are fitted together (their
    parameters are independent; one optimiser run over all of them is much cheaper than one
    per stream)."""
    if not samples:
        return [], 0.0
    k = samples[0].logits.shape[0]
    sizes = (0, 1, parameter_count(k))
    # The encoder may run under inference mode; the fit needs autograd on ordinary tensors.
    # Its float sums depend on how torch splits them over threads: on one thread the file is
    # the same whatever the thread setting or tile workers (with 1,024-subpixel samples, two
    # threads gave other parameters than one).
    with torch.inference_mode(False), torch.enable_grad(), torch_threads(1):
        batch, judge = (_Batch([s.cloned()
                                for s in group]) for group in (samples, checks or samples))
        free = torch.zeros(len(samples), parameter_count(k), dtype=torch.bool)
        free[:, LOG_SCALE_OFFSET] = True
        offset_only = _minimise(batch, torch.zeros(free.shape), free, OFFSET_FIT_ITERATIONS)
        everything = _minimise(batch, offset_only, torch.ones_like(free), FIT_ITERATIONS)
        candidates = [torch.zeros_like(everything), offset_only, everything]
        with torch.no_grad():
            costs = torch.stack([judge.bits(c) for c in candidates])
    costs += 8.0 * torch.tensor(sizes, dtype=costs.dtype).unsqueeze(1)
    best, choices = costs.min(0)
    params = [tuple(int(v) for v in candidates[choice][i, : sizes[choice]]) for i, choice in enumerate(choices.tolist())]
    return params, float(best.sum())


def _minimise(batch: _Batch, start: torch.Tensor, free: torch.Tensor, iterations: int) -> torch.Tensor:
    """Minimise the real-valued total code length over the ``free`` entries of the (S, P)
    parameters, from ``start``; returns them rounded to integers in range."""
    scale = 1.0 / batch.subpixels

    def bits_per_subpixel(values: torch.Tensor) -> torch.Tensor:
        return batch.bits(start.masked_scatter(free, values)).sum() * scale

    values = lbfgs(bits_per_subpixel, start[free], iterations)
    result = start.masked_scatter(free, values)
    if not torch.isfinite(result).all():
        return start
    return result.round().clamp(-PARAM_MAX, PARAM_MAX)


def lbfgs(f, x: torch.Tensor, iterations: int, history: int = 8) -> torch.Tensor:
    """Minimise the differentiable scalar function ``f`` from ``x`` by L-BFGS with a
    backtracking (Armijo) line search. (Small and self-contained: ``torch.optim`` would import
    the compiler stack on first use, about a second and 70 MB.)"""

    def value_and_grad(point: torch.Tensor) -> tuple[float, torch.Tensor]:
        point = point.detach().requires_grad_(True)
        value = f(point)
        (grad,) = torch.autograd.grad(value, point)
        return float(value.detach()), grad

    x = x.detach().clone()
    value, grad = value_and_grad(x)
    steps: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # (s, y, 1 / y.s)
    for _ in range(iterations):
        direction = -grad
        alphas = []
        for s, y, rho in reversed(steps):
            alpha = rho * float(s @ direction)
            direction = direction - alpha * y
            alphas.append(alpha)
        if steps:
            s, y, _ = steps[-1]
            direction = direction * (float(s @ y) / float(y @ y))
        else:  # no curvature known yet: a cautious first step
            direction = direction * min(1.0, 1.0 / max(float(grad.abs().sum()), 1e-12))
        for (s, y, rho), alpha in zip(steps, reversed(alphas)):
            direction = direction + s * (alpha - rho * float(y @ direction))
        slope = float(grad @ direction)
        if not slope < 0:
            break
        t = 1.0
        for _ in range(12):
            candidate = x + t * direction
            new_value, new_grad = value_and_grad(candidate)
            if math.isfinite(new_value) and new_value <= value + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break
        s, y = candidate - x, new_grad - grad
        if float(s @ y) > 1e-12:
            steps = (steps + [(s, y, 1.0 / float(s @ y))])[-history:]
        x, value, grad = candidate, new_value, new_grad
    return x
