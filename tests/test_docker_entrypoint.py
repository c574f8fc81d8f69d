"""The Docker image's entrypoint script, run outside Docker (no engine on these machines)."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from .conftest import ROOT

SCRIPT = ROOT / "docker" / "entrypoint.sh"


def _run(args, tmp_path, **env):
    full = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT), RESULTS=str(tmp_path / "res"), **env)
    return subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, text=True, env=full)


def test_entrypoint_benchmarks_a_mounted_folder(tmp_path, rng):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(data / "a.png")
    out = _run([str(data)], tmp_path, BENCH_ARGS="--codecs png,webp --no-plots")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "res" / "summary.md").exists()


def test_entrypoint_without_a_dataset_says_how_to_mount_one(tmp_path):
    out = _run([str(tmp_path / "missing")], tmp_path)
    assert out.returncode == 2 and "mount one" in out.stderr
