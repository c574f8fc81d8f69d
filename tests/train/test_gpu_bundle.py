"""The GPU window's data path: originals bundled as lossless WebP, reconstructions made by an
x265 command line into a pack the training loop reads like the full one."""

import shutil
import stat

import numpy as np
import pytest
from PIL import Image

from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.train.data import read_pack
from lossless_bpg.train.gpu_bundle import main, x265_reconstruction

FAKE_X265 = """#!/usr/bin/env bash
# stands in for x265: the 'reconstruction' is the input planes themselves
while [ $# -gt 0 ]; do case "$1" in --recon) recon=$2; shift;; esac; shift; done
cat > "$recon"
"""


def _images(folder, rng, n=3):
    folder.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)).save(folder / f"src{i}_0000_0.png")
    return folder


def test_bundle_then_reconstruct_gives_a_full_pack(tmp_path, rng):
    data = _images(tmp_path / "imgs", rng)
    fake = tmp_path / "x265"
    fake.write_text(FAKE_X265)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert main(["make", "--data", str(data), "--out", str(tmp_path / "bundle"), "--max-mb", "1"]) == 0
    pack = tmp_path / "pack.npz"
    assert main(["reconstruct", str(tmp_path / "bundle"), "--x265", str(fake), "--qs", "24", "32",
                 "--out", str(pack), "--workers", "1"]) == 0
    got = read_pack(pack, (24, 32))
    assert got["recs"].shape == (3, 2, 64, 72, 3) and got["qs"].tolist() == [[24, 32]] * 3
    originals = {p.name: np.asarray(Image.open(p)) for p in data.iterdir()}
    for name, image in zip(got["names"], got["images"]):
        assert np.array_equal(image, originals[str(name)])  # lossless WebP


def test_bundle_refuses_kodak(tmp_path, rng):
    with pytest.raises(ValueError, match="Kodak"):
        main(["make", "--data", str(_images(tmp_path / "kodak", rng)), "--out", str(tmp_path / "b")])


@pytest.mark.skipif(shutil.which("x265") is None, reason="no x265 command line here")
def test_x265_reconstruction_is_the_codecs(train_dir):
    from lossless_bpg.imageio import load_rgb

    image = load_rgb(train_dir / "usc_0000_0.png")[:64, :64]
    codec = get_lossy_codec("hevc")
    assert np.array_equal(x265_reconstruction("x265", image, 32), codec.decode(codec.encode(image, 32)))
