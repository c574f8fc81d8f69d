import numpy as np
import pytest

from lossless_bpg.residual import decode_residual, encode_residual, estimate_bits


def _round_trip(model, image, recon, q=24):
    streams = encode_residual(model.model, image, recon, q)
    residual = decode_residual(model.model, recon, q, streams)
    assert np.array_equal(residual, image.astype(np.int16) - recon.astype(np.int16))
    return streams


def test_residuals_at_both_extremes_round_trip(model):
    image = np.zeros((8, 12, 3), np.uint8)
    recon = np.zeros_like(image)
    image[::2] = 255  # residual +255 on even rows
    recon[1::2] = 255  # residual -255 on odd rows
    streams = _round_trip(model, image, recon)
    assert streams.ranges == ((-255, 255),) * 3


def test_constant_residual_channels_cost_no_bytes(model):
    image = np.full((16, 16, 3), 100, np.uint8)
    streams = _round_trip(model, image, image.copy())
    assert streams.ranges == ((0, 0),) * 3 and streams.streams == (b"", b"", b"")


def test_estimate_is_close_to_the_real_size(model, rng):
    recon = rng.integers(60, 200, (64, 64, 3)).astype(np.uint8)
    image = np.clip(recon.astype(int) + rng.integers(-6, 7, recon.shape), 0, 255).astype(np.uint8)
    streams = _round_trip(model, image, recon)
    real = 8 * sum(map(len, streams.streams))
    assert real == pytest.approx(estimate_bits(model.model, image, recon, 24), rel=0.03)
