"""The built benchmark image, run as `make docker-bench` runs it (docker/run_bench.sh, no network)
on two small images. Builds nothing: it skips, saying why, where no engine answers or the image
(`make docker`) is absent."""

import csv
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT

IMAGE = os.environ.get("LBPG_DOCKER_IMAGE", "lossless-bpg")


def _skip_unless_image_present() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine (make docker installs and starts an engine)")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no Docker engine answers (docker/engine.sh starts one)")
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"the image {IMAGE} is not built (make docker)")


def test_image_benchmarks_a_folder_without_network_and_every_file_is_exact(tmp_path, rng):
    _skip_unless_image_present()
    images = tmp_path / "images"
    images.mkdir()
    y, x = np.mgrid[0:48, 0:64]
    smooth = np.stack([x * 3, y * 4, (x + y) * 2], axis=2).astype(np.uint8)
    Image.fromarray(smooth).save(images / "smooth.png")
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(images / "noise.png")
    out = tmp_path / "results"
    env = dict(os.environ, BENCH_ARGS="--workers 1 --codecs lbpg,flif,bpg-lossless,png --no-plots")
    run = subprocess.run([str(ROOT / "docker" / "run_bench.sh"), str(images), str(out), IMAGE],
                         capture_output=True, text=True, env=env, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["codec"], r["image"]) for r in rows} == {
        (c, i) for c in ("lbpg", "flif", "bpg-lossless", "png") for i in ("smooth.png", "noise.png")}
    assert all(r["exact"] == "True" for r in rows), rows
    assert (out / "summary.md").is_file()
