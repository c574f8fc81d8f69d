"""Reading input images strictly: anything that cannot be stored losslessly as 8-bit RGB is
rejected with a message naming what is wrong and what is supported.

Pillow's mode alone does not say whether a file's samples are 8-bit: it opens a 16-bit RGB PNG
or TIFF as mode 'RGB' (keeping the high byte) and rescales PNM files whose maximum is not 255.
So the file's own header is read for its real sample depth, and a file holding several frames
or pages is refused rather than reduced to its first one.
"""

from __future__ import annotations

import re
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, TiffImagePlugin, UnidentifiedImageError

from .errors import InputError, UnsupportedImageError
from .fileio import check_input

SUPPORTED = (
    "single-frame images with 8-bit samples, RGB or greyscale (PNG, PPM/PGM, BMP, TIFF, "
    "WebP, JPEG); greyscale is stored as RGB with three equal channels and decodes back to "
    "greyscale"
)
# File name endings of the formats above: what `compress` picks up in a folder it is given.
IMAGE_SUFFIXES = frozenset({".png", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff", ".webp", ".jpg", ".jpeg"})

# Modes whose pixels map to 8-bit RGB without loss.
_RGB_EXACT = {"RGB", "L"}
# Pillow's raw BMP layouts that carry 8 bits per sample (24-bit, 32-bit with a padding byte,
# 8-bit with a grey palette); 15/16-bit BMPs are widened by Pillow and so refused.
_BMP_EXACT_RAWMODES = {"BGR", "BGRX", "XBGR", "RGB", "RGBX", "XRGB", "L"}
# Magic, width, height and (but for bitmaps) maxval, separated by whitespace or comments.
_PNM_SEP = rb"(?:\s|#[^\n]*\n)+"
_PNM_HEADER = re.compile(rb"P([1-6])" + _PNM_SEP + rb"(\d+)" + _PNM_SEP + rb"(\d+)"
                         + rb"(?:" + _PNM_SEP + rb"(\d+))?")


#: Peak bytes per pixel of reading an image: Pillow's 4-byte RGB pixels, its bytes export and
#: the array (measured: a 10240x8000 PNG peaked at about this, over the process's base).
LOAD_BYTES_PER_PIXEL = 11

_PILLOW_LIMIT = threading.Lock()


@contextmanager
def size_checked_here() -> Iterator[None]:
    """Lift Pillow's decompression-bomb limit (89 Mpx warns, 179 Mpx fails) while a file is
    read: a camera or scanner original may be larger, and load_image checks the size against
    the format's limit and the memory available instead."""
    with _PILLOW_LIMIT:
        before = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = before


def _size_problem(width: int, height: int) -> str | None:
    from .container import MAX_SIDE

    if width > MAX_SIDE or height > MAX_SIDE:
        return f"the image is {width}x{height}; sides up to {MAX_SIDE} pixels are supported"
    return None


def load_rgb(path: str | Path) -> np.ndarray:
    """Read ``path`` into an (H, W, 3) uint8 array, or raise UnsupportedImageError."""
    return load_image(path)[0]


def _png_bit_depth(head: bytes) -> int | None:
    """Bits per sample from a PNG's IHDR (always the first chunk), None if unreadable."""
    if len(head) >= 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[24]
    return None


def _pnm_maxval(head: bytes) -> int | None:
    """The largest sample value a PNM file declares (1 for bitmaps), None if unreadable."""
    match = _PNM_HEADER.match(head)
    if not match:
        return None
    if match.group(1) in (b"1", b"4"):
        return 1
    return int(match.group(4)) if match.group(4) else None


def _depth_problem(im: ImageFile.ImageFile, head: bytes) -> str | None:
    """Why this file's samples are not exactly what an 8-bit array holds, or None."""
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        return (f"the file holds {frames} frames or pages; only single images are supported "
                f"(store each frame as a file of its own)")
    fmt = im.format
    if fmt == "PNG":
        depth = _png_bit_depth(head)
        if depth != 8:
            return f"{depth}-bit samples (PNG bit depth {depth}); only 8-bit samples are stored"
    elif isinstance(im, TiffImagePlugin.TiffImageFile):
        bits = im.tag_v2.get(258, (1,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        if any(b != 8 for b in bits):
            return f"{'/'.join(map(str, bits))}-bit samples (TIFF BitsPerSample); only 8-bit samples are stored"
        sample_format = im.tag_v2.get(339, (1,))
        sample_format = sample_format if isinstance(sample_format, tuple) else (sample_format,)
        if any(f != 1 for f in sample_format):
            return "samples that are not unsigned integers (TIFF SampleFormat); only 8-bit unsigned samples are stored"
    elif fmt == "PPM":
        maxval = _pnm_maxval(head)
        if maxval is None:
            return "a PNM header this reader cannot check"
        if maxval != 255:
            return (f"samples with maximum value {maxval} (PNM maxval); only 8-bit samples "
                    f"(maxval 255) are stored exactly")
    elif fmt == "BMP":
        rawmodes = {tile.args[0] if isinstance(tile.args, tuple) else tile.args for tile in im.tile}
        if not rawmodes <= _BMP_EXACT_RAWMODES:
            return f"a BMP layout without 8 bits per sample ({', '.join(map(str, rawmodes))})"
    elif fmt not in ("WEBP", "JPEG"):
        return f"the {fmt} format is not supported"
    return None


#: Samples per pixel of each PNG colour type (grey, RGB, palette, grey + alpha, RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7's passes: first column, first row, column step, row step.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_row_bytes(width: int, height: int, channels: int, depth: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines (a filter byte per row) the PNG's image data must inflate to."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        cols, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if cols > 0 and rows > 0:
            total += rows * (1 + -(-cols * channels * depth // 8))
    return total


def _png_data_problem(path: Path) -> str | None:
    """Why the image data of a PNG Pillow has read without complaint is incomplete, or None.

    Pillow fills the rows that a PNG's image data does not reach with zeros and says nothing
    when the data ends as a complete zlib stream (a writer that stopped early, or an edited
    file); libpng calls that "not enough image data". The scanlines are counted here by
    inflating the IDAT chunks once more (~0.1 s per 24 Mpx); a damaged stream cannot pass this
    far (zlib's checksum fails while Pillow reads).
    """
    with open(path, "rb") as fh:
        fh.seek(8)
        header = fh.read(8 + 13)
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[8:21])
        fh.seek(4, 1)  # IHDR's CRC
        needed = _png_row_bytes(width, height, _PNG_CHANNELS.get(colour, 4), depth, interlace == 1)
        inflate = zlib.decompressobj()
        inflated = 0
        while inflated < needed:
            chunk_header = fh.read(8)
            if len(chunk_header) < 8:
                break
            length, kind = struct.unpack(">I4s", chunk_header)
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                fh.seek(length + 4, 1)
                continue
            remaining = length
            while remaining and inflated < needed:
                data = fh.read(min(remaining, 1 << 20))
                remaining -= len(data)
                if not data:
                    break
                while data and inflated < needed and not inflate.eof:
                    inflated += len(inflate.decompress(data, 1 << 22))
                    data = inflate.unconsumed_tail
            fh.seek(remaining + 4, 1)
    if inflated >= needed:
        return None
    row = needed / height
    return (f"the PNG's image data ends early: it holds {inflated:,} of the {needed:,} bytes its "
            f"{width}x{height} pixels need (about {int(inflated / row):,} of {height:,} rows; Pillow would "
            f"fill the rest with black); the file is damaged or was cut short when it was written")


def image_problem(im: Image.Image, head: bytes | None) -> str | None:
    """Why the pixels of ``im`` cannot be stored exactly, or None. ``head``: the first bytes of
    the file it was opened from, whose header tells the real sample depth; None for an image
    made in memory (whose samples are 8-bit when its mode says so)."""
    mode = im.mode
    if mode == "P":
        return "palette image ('P' mode); convert it to RGB first"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        return f"image has an alpha channel ({mode}); alpha is not supported"
    if mode not in _RGB_EXACT:
        return f"unsupported pixel mode {mode!r} (e.g. 16-bit, CMYK, float, 1-bit)"
    if head is None or not isinstance(im, ImageFile.ImageFile):
        return None
    return _depth_problem(im, head)


def load_image(path: str | Path) -> tuple[np.ndarray, bool]:
    """Read ``path`` into (H, W, 3) uint8 pixels and whether the source was greyscale ('L',
    whose three channels are then equal), or raise InputError (no regular file there) or
    UnsupportedImageError."""
    path = Path(path)
    try:
        check_input(path)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        with size_checked_here(), Image.open(path) as im:
            mode = im.mode
            problem = image_problem(im, head) or _size_problem(*im.size)
            if problem:
                raise UnsupportedImageError(f"{path}: {problem}. Supported: {SUPPORTED}")
            from .memory import check_memory

            width, height = im.size
            check_memory(width * height, LOAD_BYTES_PER_PIXEL, f"read {path}", 0, (height, width))
            im.load()
            if im.format == "PNG" and (problem := _png_data_problem(path)):
                raise UnsupportedImageError(f"{path}: {problem}. Supported: {SUPPORTED}")
            arr = np.asarray(im.convert("RGB") if mode == "L" else im, dtype=np.uint8)
    except UnsupportedImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnsupportedImageError(
            f"{path}: cannot read image ({exc}). Supported: {SUPPORTED}"
        ) from exc
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UnsupportedImageError(f"{path}: unexpected image shape {arr.shape}")
    return np.ascontiguousarray(arr), mode == "L"
