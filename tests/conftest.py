"""Shared fixtures: dataset paths (skipped cleanly when ../shared is absent) and the model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
KODAK = DATASETS / "kodak"
TRAIN = DATASETS / "train"


def need_dir(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"dataset folder {path} is absent (expected ../shared/datasets beside the repo)")
    return path


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    return need_dir(KODAK)


@pytest.fixture(scope="session")
def train_dir() -> Path:
    return need_dir(TRAIN)


@pytest.fixture(scope="session")
def model():
    """The fast model: the codec's behaviour does not depend on which model codes, and it keeps
    the suite quick. The shipped default is exercised by name where it matters
    (test_determinism, residual/test_registry)."""
    from lossless_bpg.residual import load_model

    return load_model("fast")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def kodak_crop(kodak: Path, index: int, y: int, x: int, h: int, w: int) -> np.ndarray:
    from lossless_bpg.imageio import load_rgb

    return load_rgb(kodak / f"kodim{index:02d}.png")[y : y + h, x : x + w].copy()


_DECODE = """
import sys, hashlib, torch
torch.set_num_threads(int(sys.argv[2]))
from lossless_bpg.codec import decompress
img, _ = decompress(open(sys.argv[1], 'rb').read())
print(hashlib.sha256(img.tobytes()).hexdigest())
"""


def decoded_sha256_in_fresh_process(path: Path, threads: int) -> str:
    """SHA-256 of the pixels a new Python process decodes from ``path`` on ``threads`` threads."""
    out = subprocess.run([sys.executable, "-c", _DECODE, str(path), str(threads)], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    return out.stdout.strip()
