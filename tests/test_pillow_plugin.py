"""The Pillow plugin: PIL.Image.open reads .lbpg files (mode, size, exact pixels, clear errors)
and Image.save writes them."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import lossless_bpg
from lossless_bpg.container import MAX_SIDE
from lossless_bpg.errors import (
    ChecksumError,
    FormatError,
    ImageTooLargeError,
    VersionError,
)

from .conftest import ROOT
from .fuzzing import Parts, samples, varint


@pytest.fixture(scope="module")
def files():
    lossless_bpg.register_pillow()
    return samples()


def test_open_gives_mode_size_and_exact_pixels(tmp_path, files):
    for sample in files[:2]:
        path = tmp_path / f"{sample.name}.lbpg"
        path.write_bytes(sample.data)
        with Image.open(path) as im:
            assert im.format == "LBPG" and im.size == (16, 16)
            assert im.mode == ("L" if sample.pixels.ndim == 2 else "RGB")
            assert im.info["lbpg_q"] == lossless_bpg.read_header(sample.data).q
            assert np.array_equal(np.asarray(im), sample.pixels)


def test_open_offers_the_files_metadata_and_save_takes_it(tmp_path, files):
    from .fuzzing import METADATA

    sample = next(s for s in files if s.name == "seq_rgb16_meta")
    with Image.open(io.BytesIO(sample.data)) as im:
        assert im.info["lbpg_metadata"] == METADATA
        assert im.info["icc_profile"] == bytes(64) and im.info["exif"] == b"Exif\0\0" + METADATA[1].data
        Image.fromarray(np.asarray(im)).save(tmp_path / "again.lbpg", quality=30, metadata=im.info["lbpg_metadata"])
    assert lossless_bpg.read_metadata((tmp_path / "again.lbpg").read_bytes()) == METADATA


def test_open_from_a_stream_and_with_the_format_named(files):
    rgb = files[0]
    with Image.open(io.BytesIO(rgb.data), formats=["LBPG"]) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), rgb.pixels)


def test_a_non_square_image_keeps_width_and_height_apart(tmp_path):
    pixels = np.random.default_rng(5).integers(0, 256, (5, 11, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.lbpg", quality=34)
    with Image.open(tmp_path / "x.lbpg") as im:
        assert im.size == (11, 5)
        assert np.array_equal(np.asarray(im), pixels)


def test_damage_surfaces_as_the_codecs_errors(files):
    rgb = files[0]
    with pytest.raises(FormatError, match="truncated"):
        Image.open(io.BytesIO(rgb.data[:-3]))
    with pytest.raises(VersionError, match="version 9"):
        parts = Parts.of(rgb.data)
        parts.version = b"\x09"
        Image.open(io.BytesIO(parts.to_bytes()))
    parts = Parts.of(rgb.data)
    parts.checksum = bytes(16)  # a valid container whose pixels do not match its checksum
    with Image.open(io.BytesIO(parts.to_bytes())) as im:
        assert im.size == (16, 16)
        with pytest.raises(ChecksumError):
            im.load()


def test_an_absurd_size_is_refused_before_pillow_allocates_it(files, monkeypatch):
    parts = Parts.of(files[0].data)
    parts.height = parts.width = varint(MAX_SIDE)  # the largest a header may declare
    forged = parts.to_bytes()
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(forged))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(io.BytesIO(forged)) as im:
        assert im.size == (MAX_SIDE, MAX_SIDE)
        with pytest.raises(ImageTooLargeError):
            im.load()


def test_other_files_are_left_to_other_plugins(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as im:
        assert im.format == "PNG"


def test_save_refuses_what_compress_refuses(tmp_path):
    with pytest.raises(lossless_bpg.errors.UnsupportedImageError, match="alpha"):
        Image.new("RGBA", (4, 4)).save(tmp_path / "x.lbpg")


def test_importing_the_plugin_registers_it():
    code = ("import lossless_bpg.pillow_plugin; from PIL import Image; "
            "assert 'LBPG' in Image.OPEN and Image.EXTENSION['.lbpg'] == 'LBPG' and 'LBPG' in Image.SAVE; "
            "import sys; assert 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
