"""The repository stays small to clone: only shipped weights (each with its model card) may be
large; training checkpoints stay out of git (training_runs/README.md says where they are)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The largest tracked file allowed outside the shipped weights.
LIMIT = 2_000_000
WEIGHTS = "lossless_bpg/weights/"


def _tracked_sizes() -> dict[str, int]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--stage"], cwd=ROOT, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing to measure")
    entries = [line.split("\t", 1) for line in out.decode().split("\0") if line]
    blobs = {path: meta.split()[1] for meta, path in entries}
    sizes = subprocess.run(["git", "cat-file", "--batch-check=%(objectsize)"], cwd=ROOT, check=True,
                           capture_output=True, input="\n".join(blobs.values()).encode()).stdout.decode().split()
    return {path: int(size) for path, size in zip(blobs, sizes) if size.isdigit()}


def test_no_tracked_file_outside_the_shipped_weights_is_over_2_mb():
    sizes = _tracked_sizes()
    assert sizes, "git listed no files"
    large = {p: n for p, n in sizes.items() if n > LIMIT and not p.startswith(WEIGHTS)}
    assert not large, f"tracked files over {LIMIT} bytes outside {WEIGHTS} (keep checkpoints out of git): {large}"


def test_training_checkpoints_are_ignored():
    out = subprocess.run(["git", "check-ignore", "-q", "training_runs/lic_cpu/checkpoint.pt"], check=False, cwd=ROOT)
    if out.returncode == 128:
        pytest.skip("not a git checkout")
    assert out.returncode == 0
