"""Decoding gives identical pixels in a fresh process and at other thread counts, for every
residual model the HEVC backend ships (the default and `fast`)."""

import hashlib

import numpy as np
import pytest

from lossless_bpg.codec import compress, decompress
from lossless_bpg.residual import load_model
from lossless_bpg.residual.registry import DEFAULT_MODEL
from lossless_bpg.threads import torch_threads

from .conftest import decoded_sha256_in_fresh_process


def _image(rng):
    base = np.linspace(0, 255, 96)[None, :, None] * np.ones((72, 1, 3))
    return np.clip(base + rng.normal(0, 6, (72, 96, 3)), 0, 255).astype(np.uint8)


SHIPPED = [DEFAULT_MODEL, "fast"]


@pytest.mark.parametrize("name", SHIPPED)
def test_decode_in_fresh_processes_at_other_thread_counts(name, rng, tmp_path):
    image = _image(rng)
    with torch_threads(1):
        data = compress(image, load_model(name)).data  # default settings: Q search, fine-tuning
    path = tmp_path / "x.lbpg"
    path.write_bytes(data)
    for threads in (1, 3):
        assert decoded_sha256_in_fresh_process(path, threads) == hashlib.sha256(image.tobytes()).hexdigest()


@pytest.mark.parametrize("name", SHIPPED)
def test_decode_at_other_thread_counts_in_process(name, rng):
    image = _image(rng)
    model = load_model(name)
    data = compress(image, model, quality=22).data
    for threads in (1, 4):
        with torch_threads(threads):
            assert np.array_equal(decompress(data, model)[0], image)
