"""The Python API: lossless_bpg.compress / decompress on arrays and PIL images, its input checks,
lazy imports, the per-process model cache, and the README's examples run as written."""

from __future__ import annotations

import io
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

import lossless_bpg
from lossless_bpg import api
from lossless_bpg.errors import FormatError, UnsupportedImageError

from .conftest import ROOT
from .fuzzing import samples
from .test_imageio import png_bytes


@pytest.fixture(scope="module")
def files():
    """16x16 RGB (Q 30) and greyscale (Q 40) files made through lossless_bpg.compress."""
    return samples()


def test_rgb_and_greyscale_arrays_round_trip_exactly(files):
    rgb, grey = files[0], files[1]
    assert rgb.pixels.shape == (16, 16, 3) and grey.pixels.shape == (16, 16)
    for sample in (rgb, grey):
        out = lossless_bpg.decompress(sample.data)
        assert out.dtype == np.uint8 and out.shape == sample.pixels.shape
        assert np.array_equal(out, sample.pixels)
    header = lossless_bpg.read_header(grey.data)
    assert (header.width, header.height, header.greyscale, header.q) == (16, 16, True, 40)


def test_pil_images_give_the_same_file_as_their_arrays(files):
    rgb, grey = (next(s for s in files if s.name == name) for name in ("seq_rgb16", "seq_grey16"))
    assert lossless_bpg.compress(Image.fromarray(rgb.pixels), quality=30) == rgb.data
    assert lossless_bpg.compress(Image.fromarray(grey.pixels, "L"), quality=40) == grey.data


def test_the_api_writes_what_the_codec_writes(files):
    from lossless_bpg.codec import compress

    rgb = files[0]
    assert compress(rgb.pixels, api._model("default"), quality=30).data == rgb.data


def test_metadata_given_to_compress_is_kept_and_read_back(files):
    rgb = next(s for s in files if s.name == "seq_rgb16")
    chunks = (lossless_bpg.Chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(b"a profile")),
              lossless_bpg.Chunk(b"tEXt", b"Title\0A title"))
    data = lossless_bpg.compress(rgb.pixels, quality=30, metadata=chunks)
    assert lossless_bpg.read_metadata(data) == chunks
    assert np.array_equal(lossless_bpg.decompress(data), rgb.pixels)
    assert lossless_bpg.read_metadata(rgb.data) == ()  # none given: none kept, the file as before


def test_image_metadata_gives_what_compress_keeps_from_a_file(tmp_path, files):
    path = tmp_path / "shot.jpg"
    Image.fromarray(files[0].pixels).save(path, "JPEG", icc_profile=b"a profile", comment=b"a comment")
    chunks = lossless_bpg.image_metadata(path)
    assert [c.kind for c in chunks] == [b"iCCP", b"tEXt"] and chunks[1].data == b"Comment\0a comment"


def test_non_contiguous_arrays_and_bytes_like_inputs(files):
    rgb = files[0]
    flipped = rgb.pixels[:, ::-1]
    assert not flipped.flags.c_contiguous
    pixels, greyscale = api.as_rgb(flipped)
    assert pixels.flags.c_contiguous and not greyscale and np.array_equal(pixels, flipped)
    for data in (bytearray(rgb.data), memoryview(rgb.data)):
        assert np.array_equal(lossless_bpg.decompress(data), rgb.pixels)
    with pytest.raises(TypeError, match="bytes"):
        lossless_bpg.decompress("photo.lbpg")


def test_pil_images_from_files_are_read_exactly(tmp_path, files):
    rgb, grey = files[0].pixels, files[1].pixels
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(grey).save(tmp_path / "g.png")
    with Image.open(tmp_path / "a.png") as im:
        pixels, greyscale = api.as_rgb(im)
    assert not greyscale and np.array_equal(pixels, rgb)
    with Image.open(io.BytesIO((tmp_path / "g.png").read_bytes())) as im:
        pixels, greyscale = api.as_rgb(im)
    assert greyscale and np.array_equal(pixels, np.repeat(grey[..., None], 3, 2))


@pytest.mark.parametrize("array,words", [
    (np.zeros((8, 8, 3), np.uint16), "uint16"),
    (np.zeros((8, 8, 3), np.float32), "float32"),
    (np.zeros((8, 8, 3), bool), "bool"),
    (np.zeros((8, 8, 3), np.int64), "int64"),
    (np.zeros((8, 8, 4), np.uint8), "alpha"),
    (np.zeros((8, 8, 1), np.uint8), r"\(8, 8, 1\)"),
    (np.zeros((8, 8, 2), np.uint8), r"\(8, 8, 2\)"),
    (np.zeros(8, np.uint8), r"\(8,\)"),
    (np.zeros((2, 8, 8, 3), np.uint8), r"\(2, 8, 8, 3\)"),
    (np.zeros((0, 8, 3), np.uint8), "empty"),
    (np.zeros((8, 0), np.uint8), "empty"),
])
def test_arrays_that_are_not_8_bit_rgb_or_greyscale_are_refused(array, words):
    with pytest.raises(UnsupportedImageError, match=words):
        lossless_bpg.compress(array)


@pytest.mark.parametrize("mode,words", [
    ("RGBA", "alpha"), ("LA", "alpha"), ("P", "palette"), ("I;16", "I;16"), ("I", "'I'"),
    ("F", "'F'"), ("1", "'1'"), ("CMYK", "CMYK"), ("YCbCr", "YCbCr"),
])
def test_pil_modes_other_than_rgb_and_l_are_refused(mode, words):
    with pytest.raises(UnsupportedImageError, match=words):
        lossless_bpg.compress(Image.new(mode, (8, 8)))


def test_pil_images_with_transparency_or_several_frames_are_refused(tmp_path):
    im = Image.new("L", (8, 8))
    im.info["transparency"] = 0
    with pytest.raises(UnsupportedImageError, match="alpha"):
        lossless_bpg.compress(im)
    path = tmp_path / "two.tiff"
    Image.new("RGB", (8, 8)).save(path, save_all=True, append_images=[Image.new("RGB", (8, 8), "red")])
    with Image.open(path) as im, pytest.raises(UnsupportedImageError, match="2 frames"):
        lossless_bpg.compress(im)


def test_a_16_bit_png_that_pillow_calls_rgb_is_refused(tmp_path, rng):
    data = png_bytes(rng.integers(0, 65536, (6, 7, 3), dtype=np.uint16), 16, 2)
    (tmp_path / "deep.png").write_bytes(data)
    for source in (tmp_path / "deep.png", io.BytesIO(data)):
        with Image.open(source) as im:
            assert im.mode == "RGB"
            with pytest.raises(UnsupportedImageError, match="16-bit"):
                lossless_bpg.compress(im)


def test_other_objects_and_arguments_are_refused():
    with pytest.raises(UnsupportedImageError, match="list"):
        lossless_bpg.compress([[0, 0, 0]])
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="effort"):
        lossless_bpg.compress(image, effort=5)
    with pytest.raises(ValueError, match="quality"):
        lossless_bpg.compress(image, quality=28.5)
    with pytest.raises(ValueError, match="quality 99"):
        lossless_bpg.compress(image, quality=99)


def test_damaged_bytes_raise_a_format_error(files):
    with pytest.raises(FormatError, match="magic"):
        lossless_bpg.decompress(b"not an lbpg file")
    with pytest.raises(FormatError, match="truncated"):
        lossless_bpg.decompress(files[0].data[:-1])


def test_importing_the_package_loads_neither_torch_nor_numpy():
    code = ("import sys, lossless_bpg; assert 'torch' not in sys.modules and 'numpy' not in sys.modules; "
            "lossless_bpg.compress; lossless_bpg.decompress; assert 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_models_are_loaded_once_per_name(monkeypatch):
    from lossless_bpg import residual

    calls = []

    def fake_load(name):
        calls.append(name)
        return object()

    monkeypatch.setattr(api, "_models", {})
    monkeypatch.setattr(residual, "load_model", fake_load)
    first = api._model("default")
    assert api._model("default") is first and calls == ["default"]
    api._model("other")
    assert calls == ["default", "other"]
