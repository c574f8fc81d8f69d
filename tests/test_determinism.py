"""Decoding gives identical pixels in a fresh process and at other thread counts."""

import os
import subprocess
import sys

import numpy as np
import torch

from lossless_bpg.codec import compress, decompress

from .conftest import ROOT

_DECODE = """
import sys, hashlib, torch
torch.set_num_threads(int(sys.argv[2]))
from lossless_bpg.codec import decompress
img, _ = decompress(open(sys.argv[1], 'rb').read())
print(hashlib.sha256(img.tobytes()).hexdigest())
"""


def _image(rng):
    base = np.linspace(0, 255, 96)[None, :, None] * np.ones((72, 1, 3))
    return np.clip(base + rng.normal(0, 6, (72, 96, 3)), 0, 255).astype(np.uint8)


def test_decode_in_fresh_processes_at_other_thread_counts(model, rng, tmp_path):
    import hashlib

    image = _image(rng)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = compress(image, model, quality=26).data
    finally:
        torch.set_num_threads(before)
    path = tmp_path / "x.lbpg"
    path.write_bytes(data)
    want = hashlib.sha256(image.tobytes()).hexdigest()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for threads in (1, 3):
        out = subprocess.run([sys.executable, "-c", _DECODE, str(path), str(threads)],
                             capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == want


def test_decode_at_other_thread_counts_in_process(model, rng):
    image = _image(rng)
    data = compress(image, model, quality=22).data
    before = torch.get_num_threads()
    try:
        for threads in (1, 4):
            torch.set_num_threads(threads)
            assert np.array_equal(decompress(data, model)[0], image)
    finally:
        torch.set_num_threads(before)
