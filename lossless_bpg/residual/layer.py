"""The residual layer: code r = x - x~ channel by channel (R, G, B) with the mixture the
model predicts from x~, G and B conditioned on the residuals already coded."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from . import coder
from .mixture import bits, integer_cdf, log_prob
from .model import MixtureParams, ResidualModel, predict

#: The model always runs with this many intra-op threads, on encode and on decode, whatever
#: the caller set: CPU kernels may pick different reduction orders for different thread counts,
#: and the CDFs must be bit-identical on both sides.
MODEL_THREADS = 2


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
    """What the residual layer writes: per-channel ranges and arithmetic-coded streams."""

    ranges: tuple[tuple[int, int], ...]  # (lo, hi) per channel
    streams: tuple[bytes, ...]


def _recon_tensor(recon: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(recon.transpose(2, 0, 1))).float().unsqueeze(0)


def _params(model: ResidualModel, recon: np.ndarray, q: int) -> MixtureParams:
    return predict(model, _recon_tensor(recon), q)


def _flat(t: torch.Tensor) -> torch.Tensor:
    """(1, K, H, W) -> (K, H*W), contiguous."""
    return t[0].reshape(t.shape[1], -1).contiguous()


def _channel_cdf(params: MixtureParams, c: int, residual: torch.Tensor, lo: int, hi: int):
    logits, means, log_scales = params.channel(c, residual)
    return integer_cdf(_flat(logits), _flat(means), _flat(log_scales), lo, hi)


def encode_residual(
    model: ResidualModel, image: np.ndarray, recon: np.ndarray, q: int
) -> ResidualStreams:
    """Code ``image - recon`` (both (H, W, 3) uint8) given the lossy reconstruction."""
    residual_np = image.astype(np.int16) - recon.astype(np.int16)
    residual = torch.from_numpy(residual_np.transpose(2, 0, 1).astype(np.float32)).unsqueeze(0)
    ranges, streams = [], []
    with deterministic_torch():
        params = _params(model, recon, q)
        for c in range(3):
            lo, hi = int(residual_np[..., c].min()), int(residual_np[..., c].max())
            ranges.append((lo, hi))
            if lo == hi:
                streams.append(b"")
                continue
            cdf = _channel_cdf(params, c, residual, lo, hi)
            symbols = torch.from_numpy((residual_np[..., c].reshape(-1) - lo).astype(np.int16))
            streams.append(coder.encode(cdf, symbols))
    return ResidualStreams(tuple(ranges), tuple(streams))


def decode_residual(
    model: ResidualModel, recon: np.ndarray, q: int, layer: ResidualStreams
) -> np.ndarray:
    """Inverse of :func:`encode_residual`: returns the (H, W, 3) int16 residual."""
    h, w, _ = recon.shape
    residual = torch.zeros((1, 3, h, w), dtype=torch.float32)
    with deterministic_torch():
        params = _params(model, recon, q)
        for c, ((lo, hi), stream) in enumerate(zip(layer.ranges, layer.streams)):
            if lo == hi:
                residual[0, c] = lo
                continue
            cdf = _channel_cdf(params, c, residual, lo, hi)
            symbols = coder.decode(cdf, stream).to(torch.int32) + lo
            residual[0, c] = symbols.view(h, w).float()
    return residual[0].permute(1, 2, 0).numpy().astype(np.int16)


def residual_bits(
    params: MixtureParams,
    residual: torch.Tensor,
    ranges: list[tuple[float, float]] | None = None,
) -> torch.Tensor:
    """Bits the mixture assigns to ``residual`` (N, 3, H, W), R then G then B; the tails beyond
    ``ranges`` (default: the whole 8-bit range) fold into the end symbols, as coding does."""
    total = residual.new_zeros(())
    for c in range(3):
        lo, hi = ranges[c] if ranges else (-255.0, 255.0)
        total = total + bits(log_prob(*params.channel(c, residual), residual[:, c], lo, hi))
    return total


def estimate_bits(model: ResidualModel, image: np.ndarray, recon: np.ndarray, q: int) -> float:
    """Model estimate of the residual layer's size in bits (no coding), for choosing Q."""
    residual = torch.from_numpy(
        (image.astype(np.float32) - recon.astype(np.float32)).transpose(2, 0, 1)
    ).unsqueeze(0)
    ranges = [(float(residual[0, c].min()), float(residual[0, c].max())) for c in range(3)]
    with deterministic_torch():
        return float(residual_bits(_params(model, recon, q), residual, ranges))
