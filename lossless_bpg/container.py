"""The .lbpg container: read and write, with every check a damaged file should fail.

Two layouts: a whole-image file (version 6 with the sequential residual coder; version 3, or 5
when it carries a per-image change of the parallel residual model; version 2 is still read)
and a tiled file (version 4) whose tiles are each a complete whole-image file of one rectangle
of the image.
The byte layout is documented in docs/format.md; keep the two in step.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, replace

import numpy as np

from .errors import FormatError, VersionError
from .metadata import MAX_METADATA_BYTES, Metadata, decode_section, encode_section
from .varint import read_varint, write_varint

MAGIC = b"LBPG"
#: Whole-image files; version 2 differs only in sending one log-scale offset per stream.
VERSION = 3
#: Tiled files: a header, then one version-3 (or -5) file per tile.
TILED_VERSION = 4
#: Whole-image files with a model update: version 3 plus one more payload section.
UPDATE_VERSION = 5
#: Whole-image files whose residual layer is one stream of the sequential coder (0.6.0).
SEQUENTIAL_VERSION = 6
SUPPORTED_VERSIONS = (2, 3, 4, 5, 6)
#: Versions a tile of a tiled file may have.
TILE_VERSIONS = (VERSION, UPDATE_VERSION, SEQUENTIAL_VERSION)
#: Versions this build recognises but can no longer decode, with the reason.
RETIRED_VERSIONS = {
    1: "version 1 files were coded with floating-point model inference (lossless_bpg 0.1); "
    "decode them with that release",
}
FLAG_GREYSCALE = 0x01
#: Whole-image files only: the residual means are corrected by the backward error feedback
#: (residual.backward). Readers before it refuse such files as having unknown flags.
FLAG_ERROR_FEEDBACK = 0x02
#: Every layout: a metadata section (metadata.py) lies just before the pixel checksum. Never
#: set on a tile of a tiled file (the tiled header holds the image's metadata once). Readers
#: before it refuse such files as having unknown flags; files without metadata are unchanged.
FLAG_METADATA = 0x04
KNOWN_FLAGS = FLAG_GREYSCALE | FLAG_ERROR_FEEDBACK | FLAG_METADATA
KNOWN_SEQUENTIAL_FLAGS = FLAG_GREYSCALE | FLAG_METADATA
KNOWN_TILED_FLAGS = FLAG_GREYSCALE | FLAG_METADATA
CHECKSUM_BYTES = 16
MODEL_ID_BYTES = 8
#: Residual streams: three (R, G, B) per coding pass of the residual model.
MAX_STREAMS = 48
#: Largest window half-width of a residual stream (one byte).
MAX_HALF_WIDTH = 255
#: Most adaptation parameters one residual stream may carry.
MAX_ADAPTATION = 32
#: A tiled file's nominal tile side: a multiple of TILE_ALIGN in this range.
MIN_TILE_SIZE = 256
MAX_TILE_SIZE = 1 << 15
TILE_ALIGN = 64
#: Tile boundaries fall on multiples of this many pixels (the lossy layer's coding-block grid).
TILE_STEP_ALIGN = 8
#: The encoder's nominal tile side: an image with a longer side is coded as tiles of about this
#: side (one of 1024x1024 pixels codes in about 1 GB); a smaller image is coded whole.
DEFAULT_TILE_SIZE = 1024
#: Largest image side a file may declare; bounds what a forged header can ask a reader to plan.
MAX_SIDE = 1 << 20


class PixelChecksum:
    """The pixel checksum, fed whole rows in order: first 16 bytes of SHA-256 over the
    (H, W, 3) uint8 pixels in row-major RGB order."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def update(self, rows: np.ndarray) -> None:
        # hashed through the buffer: a large image is not copied
        self._sha.update(np.ascontiguousarray(rows, dtype=np.uint8).data)

    def digest(self) -> bytes:
        return self._sha.digest()[:CHECKSUM_BYTES]


def pixel_checksum(image: np.ndarray) -> bytes:
    """The checksum of a whole (H, W, 3) uint8 image (see PixelChecksum)."""
    checksum = PixelChecksum()
    checksum.update(image)
    return checksum.digest()


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
    error_feedback: bool = False
    version: int = VERSION
    #: Version 6 only: 0 lossless; T > 0 near-lossless (every subpixel within T of the
    #: original, and ``checksum`` is of the decoded image).
    max_error: int = 0


@dataclass(frozen=True)
class LbpgFile:
    """A parsed file. Per residual stream (see residual.layer): the coded window symbols, the
    coded escapes, the signed adaptation parameters and the window half-width the encoder
    chose; ``model_update``: the per-image change of the residual model (residual.finetune),
    empty for none; ``metadata``: the image's PNG ancillary chunks (none in a tile)."""

    header: Header
    lossy: bytes
    residual_streams: tuple[bytes, ...]
    escape_streams: tuple[bytes, ...]
    adaptations: tuple[tuple[int, ...], ...]
    half_widths: tuple[int, ...]
    model_update: bytes = b""
    metadata: Metadata = ()


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


@dataclass(frozen=True)
class Tile:
    """One rectangle of a tiled image: rows ``top:bottom``, columns ``left:right``."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def of(self, image: np.ndarray) -> np.ndarray:
        """This tile's pixels of ``image`` (a view)."""
        return image[self.top : self.bottom, self.left : self.right]


def _cuts(n: int, tile_size: int) -> list[tuple[int, int]]:
    """Split ``n`` pixels into the fewest pieces of at most ``tile_size``, as even as the
    TILE_STEP_ALIGN grid allows (only the last piece may be shorter)."""
    count = -(-n // tile_size)
    step = -(-n // count)
    step = -(-step // TILE_STEP_ALIGN) * TILE_STEP_ALIGN
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def tile_grid(height: int, width: int, tile_size: int) -> tuple[Tile, ...]:
    """The tiles of a ``height`` x ``width`` image with nominal side ``tile_size``, row-major.
    Encoder and decoder both derive the grid here; the file stores only ``tile_size``."""
    if tile_size % TILE_ALIGN or not MIN_TILE_SIZE <= tile_size <= MAX_TILE_SIZE:
        raise ValueError(f"tile size must be a multiple of {TILE_ALIGN} in [{MIN_TILE_SIZE}, {MAX_TILE_SIZE}]")
    return tuple(
        Tile(top, bottom, left, right)
        for top, bottom in _cuts(height, tile_size)
        for left, right in _cuts(width, tile_size)
    )


@dataclass(frozen=True)
class TiledHeader:
    """The header of a tiled (version 4) file; each tile's own header holds its Q."""

    backend_id: int
    model_id: bytes
    height: int
    width: int
    greyscale: bool
    tile_size: int
    checksum: bytes
    version: int = TILED_VERSION

    @property
    def tiles(self) -> tuple[Tile, ...]:
        return tile_grid(self.height, self.width, self.tile_size)


@dataclass(frozen=True)
class TiledFile:
    """A parsed tiled file: its header, each tile's file in the order of ``header.tiles``, and
    the image's metadata."""

    header: TiledHeader
    tiles: tuple[LbpgFile, ...]
    metadata: Metadata = ()


#: The header of a file of either layout (both have the image's size, greyscale flag, backend,
#: model id and pixel checksum).
AnyHeader = Header | TiledHeader


def qs_of(f: LbpgFile | TiledFile) -> tuple[int, ...]:
    """The lossy layer's Q of every tile, in the grid's order (one for a whole-image file)."""
    return (f.header.q,) if isinstance(f, LbpgFile) else tuple(t.header.q for t in f.tiles)


def pack(f: LbpgFile) -> bytes:
    """Write a whole-image file (version 6 for the sequential coder; else version 3, or 5 with a
    model update)."""
    h = f.header
    if len(h.model_id) != MODEL_ID_BYTES or len(h.checksum) != CHECKSUM_BYTES:
        raise ValueError("model id / checksum have the wrong length")
    if h.version == SEQUENTIAL_VERSION:
        return _pack_sequential(f)
    if len(h.residual_ranges) != 3 or not 1 <= len(f.residual_streams) <= MAX_STREAMS:
        raise ValueError("three residual ranges and 1..MAX_STREAMS residual streams are stored")
    out = bytearray(MAGIC)
    flags = (FLAG_GREYSCALE if h.greyscale else 0) | (FLAG_ERROR_FEEDBACK if h.error_feedback else 0)
    flags |= FLAG_METADATA if f.metadata else 0
    out += bytes([UPDATE_VERSION if f.model_update else VERSION, flags, h.backend_id, h.q])
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
    if f.model_update:
        out += write_varint(len(f.model_update))
        sections += (f.model_update,)
    for params in f.adaptations:
        out += bytes([len(params), *(v & 0xFF for v in params)])
    out += bytes(f.half_widths)
    out += _metadata_field(f.metadata) + h.checksum
    return _sealed(out, b"".join(sections))


#: Largest near-lossless error bound a file may record (one byte; seqcore.h's SEQ_MAX_ERROR).
MAX_ERROR = 127


def sequential_file(backend_id: int, q: int, model_id: bytes, height: int, width: int, greyscale: bool,
                    checksum: bytes, lossy: bytes, residual: bytes, max_error: int = 0) -> LbpgFile:
    """A version-6 file: the lossy layer and the sequential coder's one residual stream;
    ``checksum`` is of the decoded image (the original when ``max_error`` is 0)."""
    header = Header(backend_id, q, model_id, height, width, greyscale, (), checksum, version=SEQUENTIAL_VERSION,
                    max_error=max_error)
    return LbpgFile(header, lossy, (residual,), (), (), ())


def _pack_sequential(f: LbpgFile) -> bytes:
    h = f.header
    if h.error_feedback or f.model_update or len(f.residual_streams) != 1 or f.escape_streams:
        raise ValueError("a version-6 file holds exactly one residual stream and nothing else")
    if not 0 <= h.max_error <= MAX_ERROR:
        raise ValueError(f"max_error must be in 0..{MAX_ERROR}")
    out = bytearray(MAGIC)
    flags = (FLAG_GREYSCALE if h.greyscale else 0) | (FLAG_METADATA if f.metadata else 0)
    out += bytes([SEQUENTIAL_VERSION, flags, h.backend_id, h.q, h.max_error])
    out += h.model_id
    out += write_varint(h.height) + write_varint(h.width)
    out += write_varint(len(f.lossy)) + write_varint(len(f.residual_streams[0]))
    out += _metadata_field(f.metadata) + h.checksum
    return _sealed(out, f.lossy + f.residual_streams[0])


def _unpack_sequential(data: bytes) -> LbpgFile:
    flags, backend_id, q, max_error = data[5], data[6], data[7], data[8]
    if flags & ~KNOWN_SEQUENTIAL_FLAGS:
        raise FormatError(f"unknown header flags 0x{flags:02x} (file corrupted or newer)")
    if max_error > MAX_ERROR:
        raise FormatError(f"header holds an impossible error bound {max_error} (at most {MAX_ERROR})")
    try:
        pos = 9 + MODEL_ID_BYTES
        height, pos = read_varint(data, pos)
        width, pos = read_varint(data, pos)
        lossy_len, pos = read_varint(data, pos)
        residual_len, pos = read_varint(data, pos)
        section, pos = _metadata_bytes(data, pos, flags)
    except ValueError as exc:
        raise FormatError(f"file is truncated or corrupted in its header ({exc})") from exc
    checksum, payload_crc, pos = _read_seal(data, pos)
    _check_length(data, pos + lossy_len + residual_len)
    _check_payload(data, pos, payload_crc)
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise FormatError(f"header holds an impossible image size {width}x{height}")
    f = sequential_file(backend_id, q, bytes(data[9 : 9 + MODEL_ID_BYTES]), height, width,
                        bool(flags & FLAG_GREYSCALE), checksum, bytes(data[pos : pos + lossy_len]),
                        bytes(data[pos + lossy_len :]), max_error)
    return replace(f, metadata=_metadata_of(section))


def pack_tiled(f: TiledFile) -> bytes:
    """Write a tiled (version 4) file from its header and its tiles' files."""
    h = f.header
    if len(h.model_id) != MODEL_ID_BYTES or len(h.checksum) != CHECKSUM_BYTES:
        raise ValueError("model id / checksum have the wrong length")
    grid = h.tiles
    if len(f.tiles) != len(grid):
        raise ValueError(f"the grid has {len(grid)} tiles, {len(f.tiles)} given")
    for tile, t in zip(grid, f.tiles):
        th = t.header
        if (th.height, th.width) != (tile.height, tile.width) or th.backend_id != h.backend_id \
                or th.model_id != h.model_id or th.greyscale != h.greyscale:
            raise ValueError("a tile's file does not match the tiled header")
    if any(t.metadata for t in f.tiles):
        raise ValueError("a tiled file holds its metadata once, in its own header, not in its tiles")
    blobs = [pack(t) for t in f.tiles]
    out = bytearray(MAGIC)
    flags = (FLAG_GREYSCALE if h.greyscale else 0) | (FLAG_METADATA if f.metadata else 0)
    out += bytes([TILED_VERSION, flags, h.backend_id, 0])
    out += h.model_id
    out += write_varint(h.height) + write_varint(h.width) + write_varint(h.tile_size)
    out += write_varint(len(blobs))
    for blob in blobs:
        out += write_varint(len(blob))
    out += _metadata_field(f.metadata) + h.checksum
    out += zlib.crc32(bytes(out)).to_bytes(4, "big")
    return bytes(out) + b"".join(blobs)


def with_metadata(data: bytes, metadata: Metadata) -> bytes:
    """The file ``data`` (as this build writes it) carrying ``metadata`` instead of its own;
    every other byte of its layers is kept."""
    f = unpack(data)
    if isinstance(f, TiledFile):
        return pack_tiled(replace(f, metadata=metadata))
    return pack(replace(f, metadata=metadata))


#: Bytes :func:`check_head` needs: magic, version and the fixed header fields.
HEAD_BYTES = 16


def check_head(head: bytes) -> None:
    """Raise FormatError (or VersionError) unless ``head``, a file's first :data:`HEAD_BYTES`
    bytes, starts a file this build reads: checked before a large file is read whole."""
    _check_version(head)


def _check_version(data: bytes) -> int:
    if len(data) < 4 or data[:4] != MAGIC:
        raise FormatError("not an lbpg file (bad magic; expected the bytes 'LBPG')")
    if len(data) < HEAD_BYTES:
        raise FormatError("file is truncated (header incomplete)")
    version = data[4]
    if version in RETIRED_VERSIONS:
        raise VersionError(f"lbpg container version {version} is no longer supported: {RETIRED_VERSIONS[version]}")
    if version not in SUPPORTED_VERSIONS:
        raise VersionError(
            f"lbpg container version {version} is not supported by this build (reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}); use a lossless_bpg release that does"
        )
    return version


def _sealed(head: bytearray, payload: bytes) -> bytes:
    """A whole-image file: ``head`` (ending with the pixel checksum), the payload's CRC, the
    CRC of every header byte before it, then the payload."""
    head += zlib.crc32(payload).to_bytes(4, "big")
    head += zlib.crc32(bytes(head)).to_bytes(4, "big")
    return bytes(head) + payload


def _read_seal(data: bytes, pos: int) -> tuple[bytes, int, int]:
    """The end of a whole-image file's header at ``pos`` (see :func:`_sealed`): the pixel
    checksum, the payload's CRC and where the payload starts; the header CRC is checked."""
    checksum = bytes(data[pos : pos + CHECKSUM_BYTES])
    pos += CHECKSUM_BYTES
    if len(data) < pos + 8:
        raise FormatError("file is truncated (header incomplete)")
    payload_crc = int.from_bytes(data[pos : pos + 4], "big")
    if zlib.crc32(data[: pos + 4]) != int.from_bytes(data[pos + 4 : pos + 8], "big"):
        raise FormatError("header is corrupted (header CRC mismatch)")
    return checksum, payload_crc, pos + 8


def _metadata_field(metadata: Metadata) -> bytes:
    """The header's metadata field: the section's length and bytes, or nothing for none."""
    if not metadata:
        return b""
    section = encode_section(metadata)
    return write_varint(len(section)) + section


def _metadata_bytes(data: bytes, pos: int, flags: int) -> tuple[bytes | None, int]:
    """The metadata section's bytes at ``pos`` (None when ``flags`` say there is none) and
    where it ends; ValueError when the length is impossible. Decoded (:func:`_metadata_of`)
    only once the header CRC has passed, so that damage is not taken for a newer version."""
    if not flags & FLAG_METADATA:
        return None, pos
    length, pos = read_varint(data, pos)
    if length > MAX_METADATA_BYTES or length > len(data) - pos:
        raise ValueError(f"impossible metadata section length {length:,}")
    return bytes(data[pos : pos + length]), pos + length


def _metadata_of(section: bytes | None) -> Metadata:
    return () if section is None else decode_section(section)


def _check_payload(data: bytes, pos: int, payload_crc: int) -> None:
    if zlib.crc32(data[pos:]) != payload_crc:
        raise FormatError("payload is corrupted (payload CRC mismatch)")


def _check_length(data: bytes, expected: int) -> None:
    """The file must end exactly where its header says."""
    if len(data) < expected:
        raise FormatError(f"file is truncated: {len(data)} bytes, header says {expected}")
    if len(data) > expected:
        raise FormatError(f"file has {len(data) - expected} unexpected trailing bytes")


def unpack(data: bytes) -> LbpgFile | TiledFile:
    """Parse and verify the structure of an .lbpg file of any supported version (every tile's
    too); raise FormatError on any damage."""
    if _check_version(data) == TILED_VERSION:
        return _unpack_tiled(data)
    return _unpack_whole(data)


def _unpack_tiled(data: bytes) -> TiledFile:
    flags, backend_id = data[5], data[6]
    if flags & ~KNOWN_TILED_FLAGS or data[7]:
        raise FormatError(f"unknown header flags 0x{flags:02x} (file corrupted or newer)")
    try:
        pos = 8 + MODEL_ID_BYTES
        height, pos = read_varint(data, pos)
        width, pos = read_varint(data, pos)
        tile_size, pos = read_varint(data, pos)
        count, pos = read_varint(data, pos)
        # every tile takes at least one byte per length: a forged count cannot outgrow the file
        if count > len(data) - pos:
            raise ValueError(f"impossible tile count {count}")
        lengths = []
        for _ in range(count):
            n, pos = read_varint(data, pos)
            lengths.append(n)
        section, pos = _metadata_bytes(data, pos, flags)
    except ValueError as exc:
        raise FormatError(f"file is truncated or corrupted in its header ({exc})") from exc
    checksum = data[pos : pos + CHECKSUM_BYTES]
    pos += CHECKSUM_BYTES
    if len(data) < pos + 4:
        raise FormatError("file is truncated (header incomplete)")
    if zlib.crc32(data[:pos]) != int.from_bytes(data[pos : pos + 4], "big"):
        raise FormatError("header is corrupted (header CRC mismatch)")
    pos += 4
    _check_length(data, pos + sum(lengths))
    metadata = _metadata_of(section)
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise FormatError(f"header holds an impossible image size {width}x{height}")
    try:
        grid = tile_grid(height, width, tile_size)
    except ValueError as exc:
        raise FormatError(f"header holds an impossible tile size {tile_size} ({exc})") from exc
    if len(grid) != count:
        raise FormatError(f"header lists {count} tiles, a {width}x{height} image in tiles of {tile_size} has {len(grid)}")
    header = TiledHeader(backend_id, bytes(data[8 : 8 + MODEL_ID_BYTES]), height, width,
                         bool(flags & FLAG_GREYSCALE), tile_size, bytes(checksum))
    tiles = []
    for i, (tile, n) in enumerate(zip(grid, lengths)):
        blob = data[pos : pos + n]
        pos += n
        if _check_version(blob) not in TILE_VERSIONS:
            raise FormatError(f"tile {i} is not a whole-image file (versions {', '.join(map(str, TILE_VERSIONS))})")
        t = _unpack_whole(blob)
        th = t.header
        if (th.height, th.width) != (tile.height, tile.width):
            raise FormatError(f"tile {i} is {th.width}x{th.height}, the grid says {tile.width}x{tile.height}")
        if (th.backend_id, th.model_id, th.greyscale) != (header.backend_id, header.model_id, header.greyscale):
            raise FormatError(f"tile {i}'s backend, model or greyscale flag differs from the file's header")
        if t.metadata:
            raise FormatError(f"tile {i} holds metadata; a tiled file holds it once, in its own header: the file is "
                              "damaged")
        tiles.append(t)
    return TiledFile(header, tuple(tiles), metadata)


def _unpack_whole(data: bytes) -> LbpgFile:
    version = data[4]
    if version == SEQUENTIAL_VERSION:
        return _unpack_sequential(data)
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
        for _ in range(1 + 2 * n_streams + (version == UPDATE_VERSION)):
            n, pos = read_varint(data, pos)
            lengths.append(n)
        adaptations, pos = _read_adaptations(data, pos, n_streams, version)
        if len(data) < pos + n_streams:
            raise ValueError("data ends inside the window half-widths")
        half_widths = tuple(data[pos : pos + n_streams])
        pos += n_streams
        section, pos = _metadata_bytes(data, pos, flags)
    except ValueError as exc:
        raise FormatError(f"file is truncated or corrupted in its header ({exc})") from exc
    checksum, payload_crc, pos = _read_seal(data, pos)
    _check_length(data, pos + sum(lengths))
    if version == UPDATE_VERSION and not lengths[-1]:
        raise FormatError("a version-5 file must carry a model update; its section is empty")
    _check_payload(data, pos, payload_crc)
    if height < 1 or width < 1:
        raise FormatError("header holds an empty image size")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise FormatError(f"header holds an impossible image size {width}x{height}")
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
        error_feedback=bool(flags & FLAG_ERROR_FEEDBACK),
        version=version,
    )
    return LbpgFile(
        header, sections[0], tuple(sections[1 : 1 + n_streams]), tuple(sections[1 + n_streams : 1 + 2 * n_streams]),
        adaptations, half_widths, sections[1 + 2 * n_streams] if version == UPDATE_VERSION else b"",
        _metadata_of(section),
    )
