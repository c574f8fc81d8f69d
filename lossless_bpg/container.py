"""The .lbpg container: read and write, with every check a damaged file should fail.

The byte layout is documented in docs/format.md; keep the two in step.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import FormatError, VersionError
from .varint import read_varint, write_varint

MAGIC = b"LBPG"
VERSION = 3
#: Version 2 differs only in sending one log-scale offset per stream (see docs/format.md).
SUPPORTED_VERSIONS = (2, 3)
#: Versions this build recognises but can no longer decode, with the reason.
RETIRED_VERSIONS = {
    1: "version 1 files were coded with floating-point model inference (lossless_bpg 0.1); "
    "decode them with that release",
}
FLAG_GREYSCALE = 0x01
KNOWN_FLAGS = FLAG_GREYSCALE
CHECKSUM_BYTES = 16
MODEL_ID_BYTES = 8
#: Residual streams: three (R, G, B) per coding pass of the residual model.
MAX_STREAMS = 48
#: Largest window half-width of a residual stream (one byte).
MAX_HALF_WIDTH = 255
#: Most adaptation parameters one residual stream may carry.
MAX_ADAPTATION = 32


def pixel_checksum(image: np.ndarray) -> bytes:
    """First 16 bytes of SHA-256 over the (H, W, 3) uint8 pixels in row-major RGB order."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).digest()[
        :CHECKSUM_BYTES
    ]


def _zigzag(v: int) -> int:
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def _unzigzag(v: int) -> int:
    return (v >> 1) if not v & 1 else -((v + 1) >> 1)


@dataclass(frozen=True)
class Header:
    backend_id: int
    q: int
    model_id: bytes
    height: int
    width: int
    greyscale: bool
    residual_ranges: tuple[tuple[int, int], ...]
    checksum: bytes
    version: int = VERSION


@dataclass(frozen=True)
class LbpgFile:
    """A parsed file. Per residual stream (see residual.layer): the coded window symbols, the
    coded escapes, the signed adaptation parameters and the window half-width the encoder
    chose."""

    header: Header
    lossy: bytes
    residual_streams: tuple[bytes, ...]
    escape_streams: tuple[bytes, ...]
    adaptations: tuple[tuple[int, ...], ...]
    half_widths: tuple[int, ...]


def _signed(b: int) -> int:
    return b - 256 if b >= 128 else b


def _read_adaptations(data: bytes, pos: int, n_streams: int, version: int) -> tuple[tuple[tuple[int, ...], ...], int]:
    """Per stream: version 3, a count byte then that many signed bytes; version 2, exactly one
    signed byte (the log-scale offset)."""
    if version == 2:
        if len(data) < pos + n_streams:
            raise ValueError("data ends inside the per-stream scale shifts")
        return tuple((_signed(b),) for b in data[pos : pos + n_streams]), pos + n_streams
    out = []
    for _ in range(n_streams):
        if len(data) <= pos:
            raise ValueError("data ends inside the adaptation parameters")
        count = data[pos]
        if count > MAX_ADAPTATION or len(data) < pos + 1 + count:
            raise ValueError(f"impossible adaptation parameter count {count}")
        out.append(tuple(_signed(b) for b in data[pos + 1 : pos + 1 + count]))
        pos += 1 + count
    return tuple(out), pos


def pack(f: LbpgFile) -> bytes:
    h = f.header
    if len(h.model_id) != MODEL_ID_BYTES or len(h.checksum) != CHECKSUM_BYTES:
        raise ValueError("model id / checksum have the wrong length")
    if len(h.residual_ranges) != 3 or not 1 <= len(f.residual_streams) <= MAX_STREAMS:
        raise ValueError("three residual ranges and 1..MAX_STREAMS residual streams are stored")
    out = bytearray(MAGIC)
    out += bytes([VERSION, FLAG_GREYSCALE if h.greyscale else 0, h.backend_id, h.q])
    out += h.model_id
    out += write_varint(h.height) + write_varint(h.width)
    for lo, hi in h.residual_ranges:
        out += write_varint(_zigzag(lo)) + write_varint(_zigzag(hi))
    n = len(f.residual_streams)
    if not len(f.escape_streams) == len(f.adaptations) == len(f.half_widths) == n:
        raise ValueError("one escape stream, adaptation and half-width per residual stream")
    if any(len(a) > MAX_ADAPTATION or any(not -128 <= v < 128 for v in a) for a in f.adaptations):
        raise ValueError("adaptation parameters out of range")
    if any(not 0 <= v <= MAX_HALF_WIDTH for v in f.half_widths):
        raise ValueError("half-width out of range")
    sections = (f.lossy, *f.residual_streams, *f.escape_streams)
    out += write_varint(n)
    for s in sections:
        out += write_varint(len(s))
    for params in f.adaptations:
        out += bytes([len(params), *(v & 0xFF for v in params)])
    out += bytes(f.half_widths)
    out += h.checksum
    payload = b"".join(sections)
    out += zlib.crc32(payload).to_bytes(4, "big")
    out += zlib.crc32(bytes(out)).to_bytes(4, "big")
    return bytes(out) + payload


def unpack(data: bytes) -> LbpgFile:
    """Parse and verify the structure of an .lbpg file; raise FormatError on any damage."""
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError("not an lbpg file (bad magic; expected the bytes 'LBPG')")
    if len(data) < 16:
        raise FormatError("file is truncated (header incomplete)")
    version = data[4]
    if version in RETIRED_VERSIONS:
        raise VersionError(f"lbpg container version {version} is no longer supported: {RETIRED_VERSIONS[version]}")
    if version not in SUPPORTED_VERSIONS:
        raise VersionError(
            f"lbpg container version {version} is not supported by this build (reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}); use a lossless_bpg release that does"
        )
    flags, backend_id, q = data[5], data[6], data[7]
    if flags & ~KNOWN_FLAGS:
        raise FormatError(f"unknown header flags 0x{flags:02x} (file corrupted or newer)")
    try:
        pos = 8
        model_id = data[pos : pos + MODEL_ID_BYTES]
        pos += MODEL_ID_BYTES
        height, pos = read_varint(data, pos)
        width, pos = read_varint(data, pos)
        ranges = []
        for _ in range(3):
            lo, pos = read_varint(data, pos)
            hi, pos = read_varint(data, pos)
            ranges.append((_unzigzag(lo), _unzigzag(hi)))
        n_streams, pos = read_varint(data, pos)
        if not 1 <= n_streams <= MAX_STREAMS:
            raise ValueError(f"impossible residual stream count {n_streams}")
        lengths = []
        for _ in range(1 + 2 * n_streams):
            n, pos = read_varint(data, pos)
            lengths.append(n)
        adaptations, pos = _read_adaptations(data, pos, n_streams, version)
        if len(data) < pos + n_streams:
            raise ValueError("data ends inside the window half-widths")
        half_widths = tuple(data[pos : pos + n_streams])
        pos += n_streams
    except ValueError as exc:
        raise FormatError(f"file is truncated or corrupted in its header ({exc})") from exc
    checksum = data[pos : pos + CHECKSUM_BYTES]
    pos += CHECKSUM_BYTES
    if len(data) < pos + 8:
        raise FormatError("file is truncated (header incomplete)")
    payload_crc = int.from_bytes(data[pos : pos + 4], "big")
    header_crc = int.from_bytes(data[pos + 4 : pos + 8], "big")
    if zlib.crc32(data[: pos + 4]) != header_crc:
        raise FormatError("header is corrupted (header CRC mismatch)")
    pos += 8
    expected = pos + sum(lengths)
    if len(data) < expected:
        raise FormatError(f"file is truncated: {len(data)} bytes, header says {expected}")
    if len(data) > expected:
        raise FormatError(f"file has {len(data) - expected} unexpected trailing bytes")
    if zlib.crc32(data[pos:]) != payload_crc:
        raise FormatError("payload is corrupted (payload CRC mismatch)")
    if height < 1 or width < 1:
        raise FormatError("header holds an empty image size")
    if any(not -255 <= lo <= hi <= 255 for lo, hi in ranges):
        raise FormatError("header holds an impossible residual range")
    sections = []
    for n in lengths:
        sections.append(data[pos : pos + n])
        pos += n
    header = Header(
        backend_id=backend_id,
        q=q,
        model_id=bytes(model_id),
        height=height,
        width=width,
        greyscale=bool(flags & FLAG_GREYSCALE),
        residual_ranges=tuple(ranges),
        checksum=bytes(checksum),
        version=version,
    )
    return LbpgFile(
        header, sections[0], tuple(sections[1 : 1 + n_streams]), tuple(sections[1 + n_streams :]), adaptations, half_widths
    )
