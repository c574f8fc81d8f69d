"""The residual layer: code r = x - x~ pass by pass (one pass, or one pixel position of every
BxB block per pass) and, inside a pass, channel by channel (R, G, B), with the mixture the model
predicts from x~ and from the residuals already coded."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from ..search import pattern_search
from . import coder
from .mixture import bits, integer_cdf, log_prob
from .model import MixtureParams, ResidualModel, pad_to_multiple, pass_extent, pass_lattice

#: The model always runs with this many intra-op threads, on encode and on decode, whatever
#: the caller set: CPU kernels may pick different reduction orders for different thread counts,
#: and the CDFs must be bit-identical on both sides.
MODEL_THREADS = 2
#: Per-image adaptation (as RC): each stream's mixture log-scales are shifted by k / 32,
#: k in [-SCALE_SHIFT_MAX, SCALE_SHIFT_MAX], chosen by the encoder and sent as one byte.
SCALE_SHIFT_UNIT = 1.0 / 32.0
SCALE_SHIFT_MAX = 64


@contextlib.contextmanager
def deterministic_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(MODEL_THREADS)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class ResidualStreams:
    """What the residual layer writes: per-channel ranges and arithmetic-coded streams, three
    (R, G, B) per coding pass."""

    ranges: tuple[tuple[int, int], ...]  # (lo, hi) per channel
    streams: tuple[bytes, ...]
    #: Per stream, the log-scale shift the encoder fitted to this image, in SCALE_SHIFT_UNIT.
    scale_shifts: tuple[int, ...] = ()


def _chw(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) array -> (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().unsqueeze(0)


def _flat(t: torch.Tensor) -> torch.Tensor:
    """(1, K, h, w) -> (K, h*w), contiguous."""
    return t[0].reshape(t.shape[1], -1).contiguous()


class _Passes:
    """Runs the model pass by pass over a padded residual canvas shared by encoder and decoder,
    so both compute every CDF from identical tensors."""

    def __init__(self, model: ResidualModel, recon: np.ndarray, q: int) -> None:
        self.model = model
        self.height, self.width = recon.shape[:2]
        recon_t = pad_to_multiple(_chw(recon))
        self.features = model.features(recon_t, torch.tensor([q]))
        # Residuals not yet known (and the padding) stay zero.
        self.canvas = torch.zeros_like(recon_t)

    def __iter__(self):
        for step in range(self.model.steps):
            h, w = pass_extent(step, self.model.steps, self.height, self.width)
            if h == 0 or w == 0:  # e.g. odd rows of a one-row image
                yield None, None
                continue
            params = self.model.pass_params(self.features, step, self.canvas).crop(h, w)
            target = pass_lattice(self.canvas, step, self.model.steps)[..., :h, :w]
            yield params, target

    def fill(self, residual: np.ndarray) -> None:
        self.canvas[..., : self.height, : self.width] = _chw(residual)


def _shifted(params: MixtureParams, c: int, target: torch.Tensor, shift: int):
    logits, means, log_scales = params.channel(c, target)
    return logits, means, log_scales + shift * SCALE_SHIFT_UNIT


def _channel_cdf(params: MixtureParams, c: int, target: torch.Tensor, lo: int, hi: int, shift: int):
    """Integer CDFs of channel ``c`` of a pass, identical on encoder and decoder."""
    logits, means, log_scales = _shifted(params, c, target, shift)
    return integer_cdf(_flat(logits), _flat(means), _flat(log_scales), lo, hi)


def _stream_bits(params: MixtureParams, c: int, target: torch.Tensor, lo: int, hi: int, shift: int = 0) -> float:
    """Model code length of channel ``c`` of a pass, in bits."""
    return float(bits(log_prob(*_shifted(params, c, target, shift), target[:, c], lo, hi)))


def _fit_scale_shift(params: MixtureParams, c: int, target: torch.Tensor, lo: int, hi: int) -> int:
    """The shift that minimises this stream's model code length on this image."""
    best, _ = pattern_search(
        lambda shift: _stream_bits(params, c, target, lo, hi, shift),
        0, -SCALE_SHIFT_MAX, SCALE_SHIFT_MAX, steps=(8, 4, 2, 1),
    )
    return best


def encode_residual(
    model: ResidualModel, image: np.ndarray, recon: np.ndarray, q: int, adapt_scales: bool = True
) -> ResidualStreams:
    """Code ``image - recon`` (both (H, W, 3) uint8) given the lossy reconstruction;
    ``adapt_scales`` fits one log-scale shift per stream to this image."""
    residual = image.astype(np.int16) - recon.astype(np.int16)
    ranges = tuple((int(residual[..., c].min()), int(residual[..., c].max())) for c in range(3))
    streams, shifts = [], []
    with deterministic_torch():
        passes = _Passes(model, recon, q)
        passes.fill(residual)
        for params, target in passes:
            for c, (lo, hi) in enumerate(ranges):
                if params is None or lo == hi:
                    streams.append(b"")
                    shifts.append(0)
                    continue
                shift = _fit_scale_shift(params, c, target, lo, hi) if adapt_scales else 0
                cdf = _channel_cdf(params, c, target, lo, hi, shift)
                symbols = (target[0, c].reshape(-1) - lo).to(torch.int16)
                streams.append(coder.encode(cdf, symbols))
                shifts.append(shift)
    return ResidualStreams(ranges, tuple(streams), tuple(shifts))


def decode_residual(
    model: ResidualModel, recon: np.ndarray, q: int, layer: ResidualStreams
) -> np.ndarray:
    """Inverse of :func:`encode_residual`: returns the (H, W, 3) int16 residual."""
    if len(layer.streams) != 3 * model.steps or len(layer.scale_shifts) != len(layer.streams):
        raise ValueError(f"expected {3 * model.steps} residual streams, found {len(layer.streams)}")
    streams, shifts = iter(layer.streams), iter(layer.scale_shifts)
    with deterministic_torch():
        passes = _Passes(model, recon, q)
        for params, target in passes:
            for c, (lo, hi) in enumerate(layer.ranges):
                stream, shift = next(streams), next(shifts)
                if params is None:
                    continue
                if lo == hi:
                    target[0, c] = lo
                    continue
                cdf = _channel_cdf(params, c, target, lo, hi, shift)
                symbols = coder.decode(cdf, stream).to(torch.float32) + lo
                # ``target`` is a view of the canvas: later passes see these residuals.
                target[0, c] = symbols.view(target.shape[-2:])
        out = passes.canvas[0, :, : passes.height, : passes.width]
    return out.permute(1, 2, 0).numpy().astype(np.int16)


def residual_bits(
    model: ResidualModel,
    recon: torch.Tensor,
    q: torch.Tensor,
    residual: torch.Tensor,
) -> torch.Tensor:
    """Bits the model assigns to ``residual`` (N, 3, H, W; H, W multiples of 4), teacher-forced
    through every pass, over the whole 8-bit residual range (the training loss)."""
    total = residual.new_zeros(())
    for step, params in enumerate(model(recon, q, residual)):
        target = pass_lattice(residual, step, model.steps)
        for c in range(3):
            total = total + bits(log_prob(*params.channel(c, target), target[:, c]))
    return total


def estimate_bits(model: ResidualModel, image: np.ndarray, recon: np.ndarray, q: int) -> float:
    """Model estimate of the residual layer's size in bits (no coding), for choosing Q."""
    residual = image.astype(np.int16) - recon.astype(np.int16)
    ranges = [(float(residual[..., c].min()), float(residual[..., c].max())) for c in range(3)]
    total = 0.0
    with deterministic_torch():
        passes = _Passes(model, recon, q)
        passes.fill(residual)
        for params, target in passes:
            if params is None:
                continue
            for c, (lo, hi) in enumerate(ranges):
                if lo == hi:
                    continue  # a constant channel is not coded at all
                total += _stream_bits(params, c, target, lo, hi)
    return total
