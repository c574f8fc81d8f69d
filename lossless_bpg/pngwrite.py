"""A PNG writer fed bands of rows, so that a decoded image never has to be whole in memory
(Pillow writes only whole images). 8-bit RGB or greyscale, non-interlaced; each row gets the
filter whose output has the smallest sum of absolute (signed) bytes, as libpng and Pillow
choose, and the filtered rows go through one zlib stream into IDAT chunks."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from .metadata import Chunk

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: IDAT chunks are written once this many compressed bytes are waiting.
CHUNK_BYTES = 1 << 20


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def filter_rows(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """Filtered scanlines (filter byte first) of ``rows`` ((n, row bytes) uint8), given the row
    above the first one (zeros at the top of the image)."""
    x = rows.astype(np.int16)
    b = np.concatenate([above[None].astype(np.int16), x[:-1]])
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    candidates = np.stack([x, x - a, x - b, x - ((a + b) >> 1), x - _paeth(a, b, c)]).astype(np.uint8)
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
    choice = cost.argmin(axis=0)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(rows.shape[0])]
    return out


class PngWriter:
    """Write an image of known size to ``fh`` band by band: ``write(rows)`` with (n, W, 3)
    uint8 rows (or (n, W) for greyscale) top to bottom, then ``close()``, which checks that
    every row came. ``ancillary`` chunks are written in their order right after IHDR, before
    the image data, where the PNG specification allows each of them."""

    def __init__(self, fh: BinaryIO, width: int, height: int, greyscale: bool = False, level: int = 6,
                 ancillary: Sequence[Chunk] = ()) -> None:
        self._fh, self.width, self.height, self.greyscale = fh, width, height, greyscale
        self._bpp = 1 if greyscale else 3
        self._above = np.zeros(width * self._bpp, np.uint8)
        self._rows = 0
        self._zlib = zlib.compressobj(level)
        self._pending = bytearray()
        fh.write(SIGNATURE)
        fh.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0 if greyscale else 2, 0, 0, 0)))
        fh.writelines(_chunk(chunk.kind, chunk.data) for chunk in ancillary)

    def write(self, rows: np.ndarray) -> None:
        expected = (self.width,) if self.greyscale else (self.width, 3)
        if rows.dtype != np.uint8 or rows.shape[1:] != expected:
            raise ValueError(f"rows must be uint8 of shape (n, {', '.join(map(str, expected))})")
        if self._rows + rows.shape[0] > self.height:
            raise ValueError("more rows than the image has")
        flat = rows.reshape(rows.shape[0], -1)
        for start in range(0, flat.shape[0], 256):  # bounded temporaries for tall bands
            part = flat[start : start + 256]
            self._pending += self._zlib.compress(filter_rows(part, self._above, self._bpp).tobytes())
            self._above = part[-1].copy()
            self._flush(final=False)
        self._rows += rows.shape[0]

    def _flush(self, final: bool) -> None:
        if self._pending and (final or len(self._pending) >= CHUNK_BYTES):
            self._fh.write(_chunk(b"IDAT", bytes(self._pending)))
            self._pending.clear()

    def close(self) -> None:
        if self._rows != self.height:
            raise ValueError(f"{self._rows} rows written of {self.height}")
        self._pending += self._zlib.flush()
        self._flush(final=True)
        self._fh.write(_chunk(b"IEND", b""))
