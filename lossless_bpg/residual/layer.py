"""The residual layer: code r = x - x~ pass by pass (one pass, or one pixel position of every
BxB block per pass) and, inside a pass, channel by channel (R, G, B), with the mixture the model
predicts from x~ and from the residuals already coded."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..container import MAX_HALF_WIDTH
from . import adaptation, coder
from .backward import ErrorFeedback
from .exact import ExactParams, ExactResidualModel
from .exact_cdf import MEAN_BITS, Mixtures, channel_params, escape_cdf, window_cdf
from .mixture import bits, log_prob
from .model import ResidualModel, pad_to_multiple, pass_extent, pass_lattice


@dataclass(frozen=True)
class ResidualStreams:
    """What the residual layer writes: per-channel ranges and, per coded stream (R, G, B of each
    coding pass), the arithmetic-coded window symbols, the coded escapes, the adaptation
    parameters (see :mod:`.adaptation`) and the window half-width the encoder chose."""

    ranges: tuple[tuple[int, int], ...]  # (lo, hi) per channel
    streams: tuple[bytes, ...]
    escapes: tuple[bytes, ...]
    #: Per-image recalibration of the stream's mixtures (a prefix of adaptation's parameters).
    adaptations: tuple[tuple[int, ...], ...]
    #: Symbols within this distance of a subpixel's window centre are coded directly.
    half_widths: tuple[int, ...]
    #: Whether the means were corrected by the backward error feedback (see :mod:`.backward`).
    error_feedback: bool = False

    @property
    def coded_bytes(self) -> int:
        """Bytes of the coded symbols and escapes (the parameters are a few bytes more)."""
        return sum(map(len, self.streams)) + sum(map(len, self.escapes)) + sum(map(len, self.adaptations))

    def __post_init__(self) -> None:
        n = len(self.streams)
        if not len(self.escapes) == len(self.adaptations) == len(self.half_widths) == n:
            raise ValueError("every residual stream needs its escapes, adaptation and half-width")


def _chw(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) array -> (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().unsqueeze(0)


def _flat(t: torch.Tensor) -> torch.Tensor:
    """(1, K, h, w) -> (K, h*w), contiguous."""
    return t[0].reshape(t.shape[1], -1).contiguous()


def memo_bytes_per_pixel(model: ExactResidualModel) -> int:
    """What a :class:`PassMemo` of ``model`` keeps per pixel: every subpixel's mixture
    parameters and coupling, as int32 (and a generation 2 head's hidden activations)."""
    hidden = 4 * model.config.head_channels if model.config.channel_net_channels else 0
    return 4 * (9 * model.mixtures + 3) + hidden


class PassMemo:
    """The pass parameters of one encoder input (model, reconstruction, Q, decoder features),
    kept by the first complete sweep over it and replayed by the later ones (the estimates and
    the coding of the same input), which then skip the network. The encoder knows every
    residual before its first sweep, so they cannot change between its sweeps; the decoder,
    which learns them pass by pass, never uses one. Costs :func:`memo_bytes_per_pixel`."""

    def __init__(self) -> None:
        self._inputs: tuple | None = None
        self._params: dict[int, ExactParams] = {}
        self.complete = False

    def bind(self, model: ExactResidualModel, recon: np.ndarray, q: int, side: torch.Tensor | None) -> None:
        """Tie the memo to its input at first use; any other input is refused (its parameters
        would be wrong)."""
        inputs = (model, recon, q, side)
        if self._inputs is None:
            self._inputs = inputs
        elif any(a is not b for a, b in zip(self._inputs, inputs)):
            raise ValueError("a pass memo replays the parameters of one model, reconstruction, Q and features only")

    def release(self) -> None:
        """Forget the parameters (a later sweep computes them again)."""
        self._params.clear()
        self.complete = False

    def put(self, step: int, params: ExactParams) -> None:
        self._params[step] = replace(
            params, logits=params.logits.to(torch.int32), means=params.means.to(torch.int32),
            log_scales=params.log_scales.to(torch.int32), coupling=params.coupling.to(torch.int32))

    def get(self, step: int) -> ExactParams:
        params = self._params[step]
        return replace(
            params, logits=params.logits.long(), means=params.means.long(), log_scales=params.log_scales.long(),
            coupling=params.coupling.long())


def hidden_bytes_per_pixel(model: ExactResidualModel) -> int:
    """What the heads' last hidden activations of every pass (:func:`memo_from_hidden`'s
    input) take per pixel."""
    return model.config.head_channels * torch.finfo(model.fmt.dtype).bits // 8


def memo_from_hidden(
    model: ExactResidualModel, recon: np.ndarray, q: int, side: torch.Tensor | None, hidden: dict[int, torch.Tensor]
) -> PassMemo:
    """A complete memo of ``model``'s pass parameters for this input, made from ``hidden``, the
    heads' last hidden activations of every pass (cropped to the pass, as
    :func:`.finetune.fit_update` keeps them) that a model differing from ``model`` only in
    the heads' last layers computed for the same input: what a sweep of ``model`` would
    compute, with only the last layers run (the fine-tuned model's first sweep)."""
    memo = PassMemo()
    memo.bind(model, recon, q, side)
    height, width = recon.shape[:2]
    for step in range(model.steps):
        h, w = pass_extent(step, model.steps, height, width)
        if h and w:
            memo.put(step, model.params_from_hidden(step, hidden[step]))
    memo.complete = True
    return memo


class _Passes:
    """Runs the exact model pass by pass over a padded residual canvas shared by encoder and
    decoder, so both compute every CDF from identical integers."""

    def __init__(self, model: ExactResidualModel, recon: np.ndarray, q: int, side: torch.Tensor | None,
                 memo: PassMemo | None = None) -> None:
        self.model = model
        self.height, self.width = recon.shape[:2]
        recon_t = pad_to_multiple(_chw(recon))
        if memo is not None:
            memo.bind(model, recon, q, side)
        self.memo = memo
        replay = memo is not None and memo.complete
        self.features = None if replay else model.features(recon_t, q, side)
        # Residuals not yet known (and the padding) stay zero.
        self.canvas = torch.zeros_like(recon_t)

    def __iter__(self):
        memo = self.memo
        replay = memo is not None and memo.complete
        for step in range(self.model.steps):
            h, w = pass_extent(step, self.model.steps, self.height, self.width)
            if h == 0 or w == 0:  # e.g. odd rows of a one-row image
                yield None, None
                continue
            if replay:
                assert memo is not None
                params = memo.get(step)
            else:
                assert self.features is not None
                params = self.model.pass_params(self.features, step, self.canvas).crop(h, w)
                if memo is not None:
                    memo.put(step, params)
            target = pass_lattice(self.canvas, step, self.model.steps)[..., :h, :w]
            yield params, target
        if memo is not None:
            memo.complete = True

    def fill(self, residual: np.ndarray) -> None:
        self.canvas[..., : self.height, : self.width] = _chw(residual)


def _mixtures(
    params: ExactParams, step: int, c: int, target: torch.Tensor, adapt: tuple[int, ...], feedback: ErrorFeedback | None
) -> Mixtures:
    """The coder's mixtures of one stream: the model's, shifted by the error feedback (if any),
    then recalibrated by the stream's adaptation parameters."""
    logits, means, log_scales = (_flat(t) for t in channel_params(params, c, target))
    if feedback is not None:
        means = means + feedback.shift(step, c, (target.shape[-2], target.shape[-1]), logits, means)
    logits, means, log_scales = adaptation.apply_exact(logits, means, log_scales, adapt)
    return Mixtures.build(logits, means, log_scales)


def _feedback(passes: _Passes, on: bool) -> ErrorFeedback | None:
    return ErrorFeedback(passes.height, passes.width, passes.model.steps) if on else None


def _ranges(residual: np.ndarray) -> tuple[tuple[int, int], ...]:
    """(lo, hi) of each channel of an (H, W, 3) residual."""
    return tuple((int(residual[..., c].min()), int(residual[..., c].max())) for c in range(3))


def _choose_half_width(distance: torch.Tensor, span: int) -> int:
    """Window half-width for residuals at ``distance`` = |r - centre| from their window centres:
    the one that minimises the CDF entries to evaluate (window rows for every subpixel, and
    escape rows as wide as the channel's range for the subpixels left outside)."""
    best, best_cost = 0, None
    for half_width in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, MAX_HALF_WIDTH):
        escaped = int((distance > half_width).sum())
        cost = distance.numel() * (2 * half_width + 2) + escaped * span
        if best_cost is None or cost < best_cost:
            best, best_cost = half_width, cost
        if not escaped:
            break
    return best


def _escapes(mix: Mixtures, centers: torch.Tensor, symbols: torch.Tensor, half_width: int, lo: int, hi: int):
    """The subpixels whose window symbol says they left the window (indices), which of them
    below it, and the CDFs their values are coded with, in an alphabet as wide as the longest
    stretch between a window edge and the range's end (None when no subpixel left)."""
    index = torch.nonzero((symbols == 0) | (symbols == 2 * half_width + 2)).view(-1)
    if not index.numel():
        return index, None, None
    below = symbols[index] == 0
    c = centers[index]
    width = max(int(torch.where(below, c - half_width - lo, hi - c - half_width).max()), 2)
    return index, below, escape_cdf(mix.select(index), c, below, half_width, lo, hi, width)


@dataclass
class FitSamples:
    """Grid samples of every coded stream (and interleaved check grids), gathered during one
    sweep over the passes; the per-image adaptation is fitted to them."""

    keys: list[tuple[int, int]] = field(default_factory=list)  # (pass, channel) of each stream
    samples: list[adaptation.StreamSample] = field(default_factory=list)
    checks: list[adaptation.StreamSample] = field(default_factory=list)
    _fitted: tuple[dict[tuple[int, int], tuple[int, ...]], float] | None = None

    def add(self, key: tuple[int, int], logits, means, log_scales, target, lo: int, hi: int) -> None:
        stream = (logits, means, log_scales, target, lo, hi, adaptation.FIT_MAX_SUBPIXELS)
        self.keys.append(key)
        self.samples.append(adaptation.StreamSample.of(*stream))
        self.checks.append(adaptation.StreamSample.of(*stream, interleaved=True))

    def fit(self) -> dict[tuple[int, int], tuple[int, ...]]:
        """Adaptation parameters of every sampled stream, by (pass, channel)."""
        return self.fit_and_estimate()[0]

    def fit_and_estimate(self) -> tuple[dict[tuple[int, int], tuple[int, ...]], float]:
        """The parameters and the estimated bits of the streams so recalibrated (fitted once;
        the samples must not change after)."""
        if self._fitted is None:
            params, estimate = adaptation.fit_and_estimate(self.samples, self.checks)
            self._fitted = dict(zip(self.keys, params)), estimate
        return self._fitted


def _sweep(
    passes: _Passes,
    ranges,
    fit_samples: FitSamples | None,
    feedback: ErrorFeedback | None,
    feedback_samples: FitSamples | None = None,
    count_bits: bool = True,
) -> tuple[float, float]:
    """One pass over the model's passes: the float estimates of the residual layer's bits (if
    ``count_bits``) without and with the error ``feedback`` (the same without it), gathering
    on the way ``fit_samples`` of the model's mixtures and ``feedback_samples`` of the
    mixtures shifted by the feedback."""
    plain = corrected = 0.0
    for step, (params, target) in enumerate(passes):
        if params is None:
            continue
        estimate = params.as_float()
        for c, (lo, hi) in enumerate(ranges):
            if lo == hi:
                continue  # a constant channel is not coded at all
            logits, means, log_scales = estimate.channel(c, target)
            if count_bits:
                plain += float(bits(log_prob(logits, means, log_scales, target[:, c], lo, hi)))
            if fit_samples is not None:
                fit_samples.add((step, c), logits, means, log_scales, target[:, c], lo, hi)
            if feedback is not None:
                exact_logits, exact_means, _ = (_flat(t) for t in channel_params(params, c, target))
                shape = (target.shape[-2], target.shape[-1])
                shift = feedback.shift(step, c, shape, exact_logits, exact_means)
                means = means + (shift.float() * 2.0**-MEAN_BITS).view(1, 1, *shape)
                feedback.record(target[0, c].reshape(-1))
                if count_bits:
                    corrected += float(bits(log_prob(logits, means, log_scales, target[:, c], lo, hi)))
                if feedback_samples is not None:
                    feedback_samples.add((step, c), logits, means, log_scales, target[:, c], lo, hi)
    return plain, (corrected if feedback is not None else plain)


def encode_residual(
    model: ExactResidualModel,
    image: np.ndarray,
    recon: np.ndarray,
    q: int,
    adapt: bool = True,
    fit_samples: FitSamples | None = None,
    error_feedback: bool = False,
    side: torch.Tensor | None = None,
    memo: PassMemo | None = None,
) -> ResidualStreams:
    """Code ``image - recon`` (both (H, W, 3) uint8) given the lossy reconstruction;
    ``adapt`` fits the mixtures' per-stream recalibration to this image, to ``fit_samples``
    when :func:`estimate_residual` gathered them for this same image, recon, q and
    ``error_feedback`` setting (which saves a sweep over the passes); ``error_feedback``
    corrects the means by the backward adaptation of :mod:`.backward`; ``side``: the lossy
    layer's decoder features, for a model that reads them (see :meth:`LossyCodec.side_features`);
    ``memo``: the pass parameters of this same input, kept or replayed (see :class:`PassMemo`)."""
    residual = image.astype(np.int16) - recon.astype(np.int16)
    ranges = _ranges(residual)
    streams: list[bytes] = []
    escapes: list[bytes] = []
    adaptations: list[tuple[int, ...]] = []
    widths: list[int] = []
    # Any thread count: the exact inference gives the same CDFs whatever it is.
    with torch.inference_mode():
        passes = _Passes(model, recon, q, side, memo)
        passes.fill(residual)
        fitted = {}
        if adapt:
            if fit_samples is None:
                # Two sweeps: one gathers every stream's sample (they are fitted all at once),
                # one codes (recomputing the passes is cheaper than keeping them all).
                fit_samples = FitSamples()
                if error_feedback:
                    _sweep(passes, ranges, None, _feedback(passes, True), fit_samples, count_bits=False)
                else:
                    _sweep(passes, ranges, fit_samples, None, count_bits=False)
            fitted = fit_samples.fit()
        feedback = _feedback(passes, error_feedback)
        for step, (params, target) in enumerate(passes):
            for c, (lo, hi) in enumerate(ranges):
                if params is None or lo == hi:
                    streams.append(b"")
                    escapes.append(b"")
                    adaptations.append(())
                    widths.append(0)
                    continue
                adapt_c = fitted.get((step, c), ())
                mix = _mixtures(params, step, c, target, adapt_c, feedback)
                centers = mix.centers(lo, hi)
                values = target[0, c].reshape(-1).long()
                if feedback is not None:
                    feedback.record(values)
                half_width = _choose_half_width((values - centers).abs(), hi - lo)
                symbols = (values - centers + half_width + 1).clamp_(0, 2 * half_width + 2)
                streams.append(coder.encode(window_cdf(mix, centers, half_width, lo, hi), symbols))
                index, below, cdf = _escapes(mix, centers, symbols, half_width, lo, hi)
                if cdf is None:
                    escapes.append(b"")
                else:
                    above_start = centers[index] + half_width + 1
                    escapes.append(coder.encode(cdf, torch.where(below, values[index] - lo, values[index] - above_start)))
                adaptations.append(adapt_c)
                widths.append(half_width)
    return ResidualStreams(ranges, tuple(streams), tuple(escapes), tuple(adaptations), tuple(widths), error_feedback)


def decode_residual(
    model: ExactResidualModel, recon: np.ndarray, q: int, layer: ResidualStreams, side: torch.Tensor | None = None
) -> np.ndarray:
    """Inverse of :func:`encode_residual`: returns the (H, W, 3) int16 residual."""
    if len(layer.streams) != 3 * model.steps:
        raise ValueError(f"expected {3 * model.steps} residual streams, found {len(layer.streams)}")
    coded = iter(zip(layer.streams, layer.escapes, layer.adaptations, layer.half_widths))
    with torch.inference_mode():
        passes = _Passes(model, recon, q, side)
        feedback = _feedback(passes, layer.error_feedback)
        for step, (params, target) in enumerate(passes):
            for c, (lo, hi) in enumerate(layer.ranges):
                stream, escape, adapt, half_width = next(coded)
                if params is None:
                    continue
                if lo == hi:
                    target[0, c] = lo
                    continue
                mix = _mixtures(params, step, c, target, adapt, feedback)
                centers = mix.centers(lo, hi)
                symbols = coder.decode(window_cdf(mix, centers, half_width, lo, hi), stream).long()
                values = centers + symbols - half_width - 1
                index, below, cdf = _escapes(mix, centers, symbols, half_width, lo, hi)
                if cdf is not None:
                    escaped = coder.decode(cdf, escape).long()
                    values[index] = torch.where(below, escaped + lo, escaped + centers[index] + half_width + 1)
                # ``target`` is a view of the canvas: later passes see these residuals. (Clamped:
                # a damaged stream must not push the network's inputs past the bounds its exact
                # arithmetic was sized for; the checksum reports the damage.)
                values.clamp_(lo, hi)
                if feedback is not None:
                    feedback.record(values)
                target[0, c] = values.to(torch.float32).view(target.shape[-2:])
        out = passes.canvas[0, :, : passes.height, : passes.width]
    return out.permute(1, 2, 0).numpy().astype(np.int16)


def residual_bits(
    model: ResidualModel,
    recon: torch.Tensor,
    q: torch.Tensor,
    residual: torch.Tensor,
    side: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bits the model assigns to ``residual`` (N, 3, H, W; H, W multiples of 4), teacher-forced
    through every pass, over the whole 8-bit residual range (the training loss)."""
    total = residual.new_zeros(())
    for step, params in enumerate(model(recon, q, residual, side)):
        target = pass_lattice(residual, step, model.steps)
        for c in range(3):
            logits, means, log_scales = params.channel(c, target)
            total = total + bits(log_prob(logits, means, log_scales, target[:, c]))
    return total


@dataclass(frozen=True)
class ResidualEstimate:
    """The model's estimate of the residual layer's size, and the samples its sweep gathered
    for the per-image adaptation's fit (see :func:`encode_residual`)."""

    bits: float
    fit_samples: FitSamples | None
    #: The same samples of the mixtures shifted by the error feedback (None: not allowed).
    feedback_samples: FitSamples | None = None

    def choose_error_feedback(self) -> tuple[bool, FitSamples | None]:
        """Whether to code with the error feedback, and the samples to fit the recalibration
        to: the choice whose recalibrated estimate is smaller (the recalibration can take part
        of what the feedback would, so the raw estimates do not decide). Without samples: no
        feedback."""
        if self.fit_samples is None or self.feedback_samples is None:
            return False, self.fit_samples
        if self.feedback_samples.fit_and_estimate()[1] < self.fit_samples.fit_and_estimate()[1]:
            return True, self.feedback_samples
        return False, self.fit_samples


def estimate_residual(
    model: ExactResidualModel,
    image: np.ndarray,
    recon: np.ndarray,
    q: int,
    gather_fit_samples: bool = True,
    error_feedback: bool = False,
    side: torch.Tensor | None = None,
    memo: PassMemo | None = None,
) -> ResidualEstimate:
    """Estimate the residual layer's size in bits (no coding, no recalibration), for choosing
    Q: with the error feedback where ``error_feedback`` allows it and it saves bits. Gathers
    on the way the samples the recalibration of this Q would be fitted to, with and without
    the feedback."""
    residual = image.astype(np.int16) - recon.astype(np.int16)
    feedback_allowed = error_feedback and model.steps > 1
    fit_samples = FitSamples() if gather_fit_samples else None
    feedback_samples = FitSamples() if gather_fit_samples and feedback_allowed else None
    with torch.inference_mode():
        passes = _Passes(model, recon, q, side, memo)
        passes.fill(residual)
        plain, corrected = _sweep(passes, _ranges(residual), fit_samples, _feedback(passes, feedback_allowed),
                                  feedback_samples)
    return ResidualEstimate(min(plain, corrected), fit_samples, feedback_samples)


def estimate_bits(model: ExactResidualModel, image: np.ndarray, recon: np.ndarray, q: int,
                  side: torch.Tensor | None = None) -> float:
    """Model estimate of the residual layer's size in bits (no coding, no adaptation, no error
    feedback)."""
    return estimate_residual(model, image, recon, q, gather_fit_samples=False, side=side).bits
