"""Backward adaptation: error feedback learned from the image's own decoded passes.

The residual model's mean is off in ways that repeat across an image: where the model
under-predicts a pixel it tends to under-predict its neighbours too (grain, texture, the
lossy layer's own patterns), and how strongly depends on the image. Both sides therefore keep,
per channel, a least-squares predictor of the model's error ``e = r - mean`` at a subpixel
from the errors already known around it (the 24 positions within two pixels that earlier
passes coded, the earlier channels of the same pixel, and a constant). Before each pass it is
refitted to every subpixel coded so far and its prediction is added to the means of that
pass's mixtures; the file sends nothing for it but one header flag.

Exact on every machine, in any process and at any thread count:

- errors are integers (1/16 grey level) measured against the mixture mean that
  :mod:`.exact_cdf`'s integer tables give;
- the normal equations are sums of products of such integers, accumulated in float64 with
  every partial sum below 2**53 (so exact, whatever order BLAS adds them in) into int64;
- the small ridge system is solved in pure-Python floats (IEEE double operations in a fixed
  order: the same result everywhere) and rounded to fixed-point coefficients;
- the shift is then an exact integer product.
"""

from __future__ import annotations

import math

import torch

from .adaptation import MEAN_LIMIT
from .exact_cdf import MEAN_BITS, PROB_BITS, _lookup, tables
from .model import BLOCK, PASS_OFFSETS

#: Errors are kept on the grid 2**-ERROR_BITS grey levels, within +-ERROR_LIMIT of it.
ERROR_BITS = 4
ERROR_LIMIT = (1 << 12) - 1
#: Neighbouring positions read (dy, dx): every one within two pixels; those no earlier pass
#: coded read as zero.
NEIGHBOURS = tuple((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0))
MARGIN = 2
#: The constant feature's value (one grey level on the error grid).
CONSTANT = 1 << ERROR_BITS
#: Features: the neighbours' errors, the two earlier channels' errors at the same pixel (zero
#: where there is no such channel), the constant.
FEATURES = len(NEIGHBOURS) + 3
#: Coefficients are fixed point with COEF_BITS fraction bits, within +-COEF_LIMIT.
COEF_BITS = 12
COEF_LIMIT = 8 << COEF_BITS
#: Ridge: RIDGE times the mean diagonal of the normal matrix, plus one, on every diagonal
#: entry (fixed in advance, not tuned on the test images).
RIDGE = 2.0**-10
#: No prediction until a channel has this many coded subpixels behind it (with fewer, fitting
#: FEATURES coefficients to pure noise costs more than 0.4 % of its squared error).
MIN_SAMPLES = 256 * FEATURES
#: Rows per float64 product when accumulating the normal equations: |feature| <= 2**12, so
#: every partial sum stays below CHUNK_ROWS * 2**24 <= 2**44, far under 2**53.
CHUNK_ROWS = 1 << 20


def mixture_means(logits: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """The mean (M,) int64 on the grid 2**-MEAN_BITS of the mixtures with int64 ``logits``
    (K, M) on the parameter grid and ``means`` (K, M) on 2**-MEAN_BITS, weighted by the same
    integer softmax as the coder's CDFs (:class:`.exact_cdf.Mixtures`)."""
    expd = _lookup(tables()["exp_neg"], logits.amax(0, keepdim=True) - logits, 0)
    weights = (expd << PROB_BITS) // expd.sum(0, keepdim=True)
    # weights <= 2**24 and means limited to MEAN_LIMIT grey levels (2**24 on their grid): each
    # product is below 2**48 and the sum, taken in a fixed order, exact in float64 for K < 32;
    # the rescale is a power of two
    limit = MEAN_LIMIT << MEAN_BITS
    clamped = means.clamp(-limit, limit).double()
    w = weights.double()
    total = w[0] * clamped[0]
    for k in range(1, len(w)):
        total += w[k] * clamped[k]
    return torch.floor(total * 2.0**-PROB_BITS).long()


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Solve the symmetric positive definite ``matrix`` x = ``rhs`` by Cholesky, in Python
    floats (IEEE double, a fixed sequence of correctly rounded operations)."""
    n = len(rhs)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = matrix[i][j]
            for k in range(j):
                s -= low[i][k] * low[j][k]
            if i == j:
                low[i][i] = math.sqrt(s) if s > 0.0 else 1.0
            else:
                low[i][j] = s / low[j][j]
    y = [0.0] * n
    for i in range(n):
        s = rhs[i]
        for k in range(i):
            s -= low[i][k] * y[k]
        y[i] = s / low[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        s = y[i]
        for k in range(i + 1, n):
            s -= low[k][i] * x[k]
        x[i] = s / low[i][i]
    return x


class ErrorFeedback:
    """The per-image state of the backward adaptation for one residual canvas of ``height`` x
    ``width`` (the image's, unpadded) coded in ``steps`` passes. Encoder and decoder call, per
    stream in coding order, :meth:`shift` (before coding it) and then :meth:`record` (with the
    stream's true residuals, once known)."""

    def __init__(self, height: int, width: int, steps: int) -> None:
        if steps == 1:
            raise ValueError("error feedback needs a model that codes in passes")
        self.steps = steps
        self.block = BLOCK[steps]
        rows = -(-height // self.block) * self.block + 2 * MARGIN
        cols = -(-width // self.block) * self.block + 2 * MARGIN
        # integers, held in float64 (exactly: |error| < 2**12) so that the products below need
        # no conversions
        self.errors = torch.zeros(3, rows, cols, dtype=torch.float64)
        self.normal = torch.zeros(3, FEATURES, FEATURES, dtype=torch.int64)
        self.moment = torch.zeros(3, FEATURES, dtype=torch.int64)
        self.samples = [0, 0, 0]
        # the stream between shift() and record(): (step, channel, lattice shape, features
        # (FEATURES, M), model means)
        self._open: tuple[int, int, tuple[int, int], torch.Tensor, torch.Tensor] | None = None
        # errors of the current pass's channels coded so far (a constant channel is not coded:
        # its errors read as zero)
        self._pass = -1
        self._pass_errors: dict[int, torch.Tensor] = {}  # float64, as the canvas

    def _lattice(self, channel: int, step: int, oy: int, ox: int, h: int, w: int) -> torch.Tensor:
        dy, dx = PASS_OFFSETS[self.steps][step]
        b = self.block
        return self.errors[channel, MARGIN + dy + oy :: b, MARGIN + dx + ox :: b][:h, :w]

    def _features(self, step: int, channel: int, h: int, w: int) -> torch.Tensor:
        """(FEATURES, h * w) float64 holding integers, one row per feature."""
        out = torch.zeros(FEATURES, h * w, dtype=torch.float64)
        for row, (oy, ox) in enumerate(NEIGHBOURS):
            out[row].view(h, w).copy_(self._lattice(channel, step, oy, ox, h, w))
        for earlier in range(min(channel, 2)):
            if earlier in self._pass_errors:
                out[len(NEIGHBOURS) + earlier] = self._pass_errors[earlier]
        out[-1] = CONSTANT
        return out

    def _coefficients(self, channel: int) -> torch.Tensor | None:
        if self.samples[channel] < MIN_SAMPLES:
            return None
        normal = self.normal[channel].tolist()
        ridge = RIDGE * sum(float(normal[i][i]) for i in range(FEATURES)) / FEATURES + 1.0
        matrix = [[float(v) + (ridge if i == j else 0.0) for j, v in enumerate(row)] for i, row in enumerate(normal)]
        solution = _solve(matrix, [float(v) for v in self.moment[channel].tolist()])
        fixed = [max(-COEF_LIMIT, min(COEF_LIMIT, round(v * (1 << COEF_BITS)))) for v in solution]
        return torch.tensor(fixed, dtype=torch.int64)

    def shift(self, step: int, channel: int, shape: tuple[int, int], logits: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """The shift (M,) int64 on the grid 2**-MEAN_BITS to add to every component's mean of
        the stream (pass ``step``, ``channel``; its lattice is ``shape`` = (h, w), M = h * w)
        whose model mixtures are ``logits`` and ``means`` (K, M), as in :func:`mixture_means`."""
        if step != self._pass:
            self._pass, self._pass_errors = step, {}
        h, w = shape
        features = self._features(step, channel, h, w)
        self._open = (step, channel, shape, features, mixture_means(logits, means))
        coef = self._coefficients(channel)
        if coef is None:
            return torch.zeros(h * w, dtype=torch.int64)
        # |feature| < 2**12, |coef| <= 2**15, 27 terms: exact in float64
        predicted = (coef.double() @ features).long()
        limit = 64 << MEAN_BITS
        return (predicted >> (ERROR_BITS + COEF_BITS - MEAN_BITS)).clamp_(-limit, limit)

    def record(self, residual: torch.Tensor) -> None:
        """The true residuals (M,) of the stream :meth:`shift` was last asked for: learn from
        them and make their errors known to later passes."""
        if self._open is None:
            raise RuntimeError("record() without shift()")
        step, channel, (h, w), features, model_means = self._open
        self._open = None
        target = (residual.long() << MEAN_BITS) - model_means
        error = (target >> (MEAN_BITS - ERROR_BITS)).clamp_(-ERROR_LIMIT, ERROR_LIMIT)
        known = error.double()
        self._pass_errors[channel] = known
        for start in range(0, len(error), CHUNK_ROWS):
            x = features[:, start : start + CHUNK_ROWS]
            self.normal[channel] += (x @ x.T).long()
            self.moment[channel] += (x @ known[start : start + CHUNK_ROWS]).long()
        self.samples[channel] += len(error)
        self._lattice(channel, step, 0, 0, h, w).copy_(known.view(h, w))
