"""Input images: what the codec can store exactly is read exactly; everything else is refused
with a message, judged by the file's real sample depth and frame count, not Pillow's mode."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lossless_bpg.errors import UnsupportedImageError
from lossless_bpg.imageio import load_image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _scanlines(samples: np.ndarray, bit_depth: int) -> bytes:
    if bit_depth == 16:
        rows = [row.astype(">u2").tobytes() for row in samples]
    elif bit_depth == 8:
        rows = [row.astype(np.uint8).tobytes() for row in samples]
    else:
        rows = [np.packbits(np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, -bit_depth:]).tobytes()
                for row in samples]
    return b"".join(b"\0" + r for r in rows)


def png_bytes(samples: np.ndarray, bit_depth: int, colour_type: int, interlaced: bool = False,
              keep_bytes: int | None = None) -> bytes:
    """A valid PNG written by hand (Pillow cannot write 16-bit RGB, 2-bit grey or Adam7);
    ``keep_bytes``: only the first that many bytes of the scanlines, as one complete zlib stream."""
    h, w = samples.shape[:2]
    if interlaced:
        raw = b"".join(_scanlines(samples[y0::dy, x0::dx], bit_depth) for x0, y0, dx, dy in ADAM7
                       if samples[y0::dy, x0::dx].size)
    else:
        raw = _scanlines(samples, bit_depth)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, int(interlaced))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw[:keep_bytes])) + _png_chunk(b"IEND", b""))


@pytest.fixture
def rgb8(rng):
    return rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)


@pytest.fixture
def rgb16(rng):
    return rng.integers(0, 65536, (12, 17, 3), dtype=np.uint16)


def _refused(path, *words):
    with pytest.raises(UnsupportedImageError) as exc:
        load_image(path)
    message = str(exc.value)
    assert "Supported:" in message
    for word in words:
        assert word in message, message
    return message


def test_a_16_bit_rgb_png_is_refused_although_pillow_opens_it_as_rgb(tmp_path, rgb16):
    path = tmp_path / "deep.png"
    path.write_bytes(png_bytes(rgb16, 16, 2))
    assert Image.open(path).mode == "RGB"  # the trap: Pillow keeps only the high byte
    _refused(path, "16-bit", "8-bit")


def test_low_bit_depth_png_is_refused_rather_than_rescaled(tmp_path, rng):
    path = tmp_path / "two_bit.png"
    path.write_bytes(png_bytes(rng.integers(0, 4, (8, 16), dtype=np.uint8), 2, 0))
    _refused(path, "2-bit")


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_a_16_bit_rgb_tiff_is_refused(tmp_path, rgb16, planar):
    import imagecodecs

    path = tmp_path / "deep.tif"
    data = rgb16 if planar == "contig" else np.ascontiguousarray(rgb16.transpose(2, 0, 1))
    path.write_bytes(imagecodecs.tiff_encode(data, planarconfig=planar))
    _refused(path, "16/16/16-bit", "BitsPerSample")


@pytest.mark.parametrize("maxval", [1023, 65535, 127])
def test_pnm_files_whose_maximum_is_not_255_are_refused(tmp_path, rng, maxval):
    samples = rng.integers(0, maxval + 1, (6, 7, 3))
    body = samples.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    path = tmp_path / "x.ppm"
    path.write_bytes(b"P6\n# a comment\n7 6\n%d\n" % maxval + body)
    _refused(path, f"maximum value {maxval}")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_multi_frame_files_are_refused_not_cut_to_their_first_frame(tmp_path, rgb8, fmt):
    path = tmp_path / f"anim.{fmt.lower()}"
    frames = [Image.fromarray(rgb8), Image.fromarray(255 - rgb8)]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], lossless=True)
    _refused(path, "2 frames or pages")


def test_float_tiff_is_refused(tmp_path, rgb16):
    import imagecodecs

    path = tmp_path / "float.tif"
    path.write_bytes(imagecodecs.tiff_encode(rgb16[..., 0].astype(np.float32)))
    _refused(path)


@pytest.mark.parametrize("suffix", ["png", "ppm", "bmp", "tif", "webp"])
def test_8_bit_rgb_files_are_read_exactly(tmp_path, rgb8, suffix):
    path = tmp_path / f"x.{suffix}"
    Image.fromarray(rgb8).save(path, lossless=True)
    pixels, greyscale = load_image(path)
    assert not greyscale and np.array_equal(pixels, rgb8)


@pytest.mark.parametrize("suffix", ["png", "pgm", "tif"])
def test_8_bit_greyscale_is_read_as_three_equal_channels(tmp_path, rgb8, suffix):
    path = tmp_path / f"g.{suffix}"
    Image.fromarray(rgb8[..., 1], "L").save(path)
    pixels, greyscale = load_image(path)
    assert greyscale and np.array_equal(pixels, np.repeat(rgb8[..., 1:2], 3, axis=2))


def test_a_hand_written_8_bit_png_is_read_exactly(tmp_path, rgb8):
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(rgb8, 8, 2))
    assert np.array_equal(load_image(path)[0], rgb8)


@pytest.mark.parametrize("interlaced", [False, True])
def test_a_png_whose_image_data_ends_early_is_refused_not_filled_with_black(tmp_path, rgb8, interlaced):
    """Pillow reads such a file without complaint and zeroes the missing rows."""
    whole = png_bytes(rgb8, 8, 2, interlaced)
    path = tmp_path / "whole.png"
    path.write_bytes(whole)
    assert np.array_equal(load_image(path)[0], rgb8)
    needed = len(zlib.decompress(whole[8 + 25 + 8:-12 - 4]))
    short = tmp_path / "short.png"
    kept = needed - (1 + 17 * 3)  # without the last full-width row (Adam7's last pass has them)
    short.write_bytes(png_bytes(rgb8, 8, 2, interlaced, keep_bytes=kept))
    with Image.open(short) as im:  # what this guards against: Pillow accepts it, rows zeroed
        assert not np.asarray(im.convert("RGB"))[-1].any()
    _refused(short, "image data ends early", f"{kept:,} of the {needed:,} bytes", "17x12")


def test_a_greyscale_png_with_all_its_rows_is_read(tmp_path, rgb8):
    path = tmp_path / "grey.png"
    path.write_bytes(png_bytes(rgb8[..., 0], 8, 0))
    pixels, greyscale = load_image(path)
    assert greyscale and np.array_equal(pixels[..., 2], rgb8[..., 0])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` 8-bit RGB pixels and holds almost none."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 7))
            + _png_chunk(b"IEND", b""))


def test_images_larger_than_pillows_bomb_limit_are_judged_by_memory_not_refused_by_pillow(tmp_path, monkeypatch):
    from lossless_bpg import memory
    from lossless_bpg.errors import ImageTooLargeError

    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(20000, 10000))  # 200 Mpx: Pillow alone raises a bomb error
    monkeypatch.setattr(memory, "_available_memory", lambda: 1 << 30)
    with pytest.raises(ImageTooLargeError, match="20000x10000 image needs about .* to read"):
        load_image(path)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own limit is back for everyone else


def test_sides_beyond_the_format_are_refused_before_reading(tmp_path):
    path = tmp_path / "wide.png"
    path.write_bytes(_png_header_only((1 << 20) + 1, 1))
    _refused(path, "sides up to 1048576 pixels")
