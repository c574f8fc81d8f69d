"""The fuzz target of the container parser and the decoder, shared by tests/test_fuzz.py (short
Hypothesis runs in CI) and scripts/fuzz_decoder.py (long runs).

A mutation starts from a valid file, split into its fields by an independent reading of
docs/format.md (:class:`Parts`), and produces bytes: field overwrites (absurd sizes, ranges,
counts, non-canonical varints), bit flips, truncations and overwrites of any field or payload
section, then optionally valid lengths and CRCs, so that damage reaches the lossy decoder and
the arithmetic decoder instead of stopping at a CRC; or raw damage of the whole file
(truncation, bit flips, inserted / deleted / overwritten bytes, random bytes). Choices come from
a :class:`Source`: Hypothesis (which shrinks failures) or a seeded ``random.Random``.

The oracle (:func:`check_unpack`, :func:`check_decode`): every input ends in a subclass of
LosslessBpgError or in the exact original pixels; any other exception or wrong pixels is a
failure.
"""

from __future__ import annotations

import functools
import random
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from lossless_bpg.container import (
    CHECKSUM_BYTES,
    FLAG_METADATA,
    MAX_ADAPTATION,
    MAX_HALF_WIDTH,
    MAX_SIDE,
    MAX_STREAMS,
    MIN_TILE_SIZE,
    MODEL_ID_BYTES,
    SEQUENTIAL_VERSION,
    SUPPORTED_VERSIONS,
    TILE_VERSIONS,
    TILED_VERSION,
    UPDATE_VERSION,
    VERSION,
    LbpgFile,
    TiledFile,
    pack,
    pack_tiled,
    unpack,
    with_metadata,
)
from lossless_bpg.errors import FormatError, LosslessBpgError
from lossless_bpg.metadata import Chunk
from lossless_bpg.varint import read_varint

from .residual.helpers import file_with_update, random_update

DATA = Path(__file__).resolve().parent / "data"


class Source(Protocol):
    def int(self, lo: int, hi: int) -> int: ...

    def bytes(self, n: int) -> bytes: ...


class RandomSource:
    """Choices from a seeded ``random.Random`` (the long runs)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)


def varint(value: int) -> bytes:
    """LEB128 of any non-negative integer (no 64-bit limit: the reader must refuse those)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def zvarint(value: int) -> bytes:
    return varint((value << 1) if value >= 0 else ((-value << 1) - 1))


def _varint_fields(data: bytes, pos: int, n: int) -> tuple[list[bytes], int]:
    """The raw bytes of ``n`` varints from ``pos``, and where they end."""
    fields = []
    for _ in range(n):
        _, end = read_varint(data, pos)
        fields.append(data[pos:end])
        pos = end
    return fields, pos


def _varint_values(data: bytes, pos: int, n: int) -> tuple[list[int], int]:
    """The values of ``n`` varints from ``pos``, and where they end."""
    values = []
    for _ in range(n):
        value, pos = read_varint(data, pos)
        values.append(value)
    return values, pos


def _metadata_field(data: bytes, pos: int) -> tuple[bytes, int]:
    """The raw metadata field at ``pos`` (its length and section) when the flags byte says
    there is one, else nothing; and where it ends."""
    if not data[5] & FLAG_METADATA:
        return b"", pos
    length, end = read_varint(data, pos)
    return data[pos : end + length], end + length


def _sealed(head: bytes, sections: list[bytes], lengths: list[bytes] | None, trailer: bytes,
            crcs: tuple[bytes, bytes] | None) -> bytes:
    """A whole-image file from its fields: ``head``, the section lengths (the real ones unless
    given), ``trailer`` (the fields up to the checksum), the CRCs (correct unless given), the
    sections."""
    head += b"".join(lengths if lengths is not None else [varint(len(s)) for s in sections]) + trailer
    payload = b"".join(sections)
    if crcs is not None:
        return head + crcs[0] + crcs[1] + payload
    head += zlib.crc32(payload).to_bytes(4, "big")
    return head + zlib.crc32(head).to_bytes(4, "big") + payload


@dataclass
class Parts:
    """A file as its fields' bytes, in file order (docs/format.md). ``lengths`` None: the
    sections' real lengths; ``crcs`` None: correct CRCs."""

    magic: bytes
    version: bytes
    flags: bytes
    backend: bytes
    q: bytes
    model_id: bytes
    height: bytes
    width: bytes
    ranges: list[bytes]
    n_streams: bytes
    adaptations: list[bytes]
    half_widths: bytes
    checksum: bytes
    sections: list[bytes]
    lengths: list[bytes] | None = None
    crcs: tuple[bytes, bytes] | None = None
    metadata: bytes = b""  # the raw field: the section's length and bytes

    @classmethod
    def of(cls, data: bytes) -> Parts:
        """Split a valid whole-image file (version 2, 3 or 5) into its fields."""
        fields, pos = _varint_fields(data, 8 + MODEL_ID_BYTES, 2 + 6 + 1)
        n = read_varint(fields[-1], 0)[0]
        lengths, pos = _varint_values(data, pos, 1 + 2 * n + (data[4] == UPDATE_VERSION))
        adaptations = []
        for _ in range(n):
            size = 1 if data[4] == 2 else 1 + data[pos]
            adaptations.append(data[pos : pos + size])
            pos += size
        half_widths = data[pos : pos + n]
        pos += n
        metadata, pos = _metadata_field(data, pos)
        checksum = data[pos : pos + CHECKSUM_BYTES]
        pos += CHECKSUM_BYTES + 8
        sections = []
        for length in lengths:
            sections.append(data[pos : pos + length])
            pos += length
        assert pos == len(data)
        return cls(data[:4], data[4:5], data[5:6], data[6:7], data[7:8], data[8 : 8 + MODEL_ID_BYTES],
                   fields[0], fields[1], fields[2:8], fields[8], adaptations, half_widths, checksum, sections,
                   metadata=metadata)

    def to_bytes(self) -> bytes:
        head = b"".join([self.magic, self.version, self.flags, self.backend, self.q, self.model_id,
                         self.height, self.width, *self.ranges, self.n_streams])
        trailer = b"".join(self.adaptations) + self.half_widths + self.metadata + self.checksum
        return _sealed(head, self.sections, self.lengths, trailer, self.crcs)


@dataclass
class SeqParts:
    """A sequential (version 6) whole-image file as its fields' bytes; ``lengths`` None: the
    sections' real lengths; ``crcs`` None: correct CRCs."""

    magic: bytes
    version: bytes
    flags: bytes
    backend: bytes
    q: bytes
    max_error: bytes
    model_id: bytes
    height: bytes
    width: bytes
    checksum: bytes
    sections: list[bytes]  # the lossy layer, the residual stream
    lengths: list[bytes] | None = None
    crcs: tuple[bytes, bytes] | None = None
    metadata: bytes = b""  # the raw field: the section's length and bytes

    @classmethod
    def of(cls, data: bytes) -> SeqParts:
        fields, pos = _varint_fields(data, 9 + MODEL_ID_BYTES, 2)
        lengths, pos = _varint_values(data, pos, 2)
        metadata, pos = _metadata_field(data, pos)
        checksum = data[pos : pos + CHECKSUM_BYTES]
        pos += CHECKSUM_BYTES + 8
        sections = [data[pos : pos + lengths[0]], data[pos + lengths[0] : pos + lengths[0] + lengths[1]]]
        assert pos + sum(lengths) == len(data)
        return cls(data[:4], data[4:5], data[5:6], data[6:7], data[7:8], data[8:9], data[9 : 9 + MODEL_ID_BYTES],
                   fields[0], fields[1], checksum, sections, metadata=metadata)

    def to_bytes(self) -> bytes:
        head = b"".join([self.magic, self.version, self.flags, self.backend, self.q, self.max_error, self.model_id,
                         self.height, self.width])
        return _sealed(head, self.sections, self.lengths, self.metadata + self.checksum, self.crcs)


WholeParts = Parts | SeqParts


def whole_parts_of(data: bytes) -> WholeParts:
    """The fields of a valid whole-image file of any version."""
    return SeqParts.of(data) if data[4] == SEQUENTIAL_VERSION else Parts.of(data)


@dataclass
class TiledParts:
    """A tiled (version 4) file as its fields' bytes; ``count``/``lengths`` None: the real
    ones; ``crc`` None: the correct header CRC."""

    prefix: bytes  # magic, version, flags, backend, reserved byte, model id
    height: bytes
    width: bytes
    tile_size: bytes
    checksum: bytes
    tiles: list[bytes]
    count: bytes | None = None
    lengths: list[bytes] | None = None
    crc: bytes | None = None
    metadata: bytes = b""  # the raw field: the section's length and bytes

    @classmethod
    def of(cls, data: bytes) -> TiledParts:
        fields, pos = _varint_fields(data, 8 + MODEL_ID_BYTES, 3)
        count, pos = read_varint(data, pos)
        lengths, pos = _varint_values(data, pos, count)
        metadata, pos = _metadata_field(data, pos)
        checksum = data[pos : pos + CHECKSUM_BYTES]
        pos += CHECKSUM_BYTES + 4
        tiles = []
        for length in lengths:
            tiles.append(data[pos : pos + length])
            pos += length
        assert pos == len(data)
        return cls(data[: 8 + MODEL_ID_BYTES], *fields, checksum, tiles, metadata=metadata)

    def to_bytes(self) -> bytes:
        head = self.prefix + self.height + self.width + self.tile_size
        head += self.count if self.count is not None else varint(len(self.tiles))
        lengths = self.lengths if self.lengths is not None else [varint(len(t)) for t in self.tiles]
        head += b"".join(lengths) + self.metadata + self.checksum
        crc = self.crc if self.crc is not None else zlib.crc32(head).to_bytes(4, "big")
        return head + crc + b"".join(self.tiles)


def parts_of(data: bytes) -> WholeParts | TiledParts:
    """The fields of a valid file of any version."""
    return TiledParts.of(data) if data[4] == TILED_VERSION else whole_parts_of(data)


#: Integers that break careless readers: zero, byte and word edges, 2**31, 2**32, 2**63, 2**64,
#: more than 64 bits.
INTERESTING = (0, 1, 2, 3, 7, 8, 15, 16, 47, 48, 49, 63, 64, 127, 128, 255, 256, 257, 511, 512,
               4095, 65535, 65536, 1 << 20, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32,
               (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64, 1 << 70, 1 << 200)


def _integer(src: Source) -> int:
    if src.int(0, 2):
        return INTERESTING[src.int(0, len(INTERESTING) - 1)]
    return src.int(0, 1 << src.int(1, 40))


def _varint_value(src: Source) -> bytes:
    """A varint field's new bytes: an interesting or random value, maybe non-canonical
    (padded with 0x80 continuation bytes), or a varint cut short."""
    kind = src.int(0, 5)
    if kind == 0:  # non-canonical: value with padding continuation bytes
        raw = bytearray(varint(src.int(0, 300)))
        raw[-1] |= 0x80
        return bytes(raw) + b"\x80" * src.int(0, 12) + b"\x00"
    if kind == 1:  # continuation bit with nothing after it
        return b"\x80" * src.int(1, 12)
    if kind == 2:
        return zvarint(src.int(-600, 600))
    return varint(_integer(src))


def _flip_bits(blob: bytes, src: Source, max_flips: int = 4) -> bytes:
    if not blob:
        return blob
    out = bytearray(blob)
    for _ in range(src.int(1, max_flips)):
        i = src.int(0, len(out) * 8 - 1)
        out[i >> 3] ^= 1 << (i & 7)
    return bytes(out)


def _damage(blob: bytes, src: Source) -> bytes:
    """Bit flips, a truncation, an overwritten run, an inserted or deleted run, or new bytes."""
    kind = src.int(0, 5)
    n = len(blob)
    if kind == 5 or not n:
        return src.bytes(src.int(0, 64))
    if kind == 0:
        return _flip_bits(blob, src)
    if kind == 1:
        return blob[: src.int(0, n - 1)]
    i = src.int(0, n - 1)
    if kind == 2:
        run = src.bytes(src.int(1, 8))
        return blob[:i] + run + blob[i + len(run) :]
    if kind == 3:
        return blob[:i] + src.bytes(src.int(1, 8)) + blob[i:]
    return blob[:i] + blob[i + src.int(1, 8) :]


#: Field changes that leave the container valid more often than not, so the decoders see them:
#: flags, Q, residual ranges, adaptation parameters, half-widths, payload sections.
DEEP = (1, 3, 7, 10, 11, 13, 14, 15, 16)


def mutate_fields(parts: WholeParts | TiledParts, src: Source, deep: bool = False) -> WholeParts | TiledParts:
    """One to three field-level changes of ``parts`` (a copy); ``deep``: only changes that
    leave the container valid more often than not (DEEP; for a tiled file, changes inside its
    tiles), always with valid lengths and CRCs. A file with metadata may also get its
    metadata section damaged, behind a valid length or not."""
    if isinstance(parts, TiledParts):
        changed: WholeParts | TiledParts = _mutate_tiled(parts, src, deep)
    else:
        changed = _mutate_whole(parts, src, deep)
    if parts.metadata and not deep and src.int(0, 2) == 0:
        changed.metadata = mutate_metadata(parts.metadata, src)
    return changed


def mutate_metadata(field: bytes, src: Source) -> bytes:
    """A damaged metadata field: its section damaged (bit flips reach entry types, lengths and
    the version byte) behind its new length, or the raw field damaged, or a forged length."""
    _, start = read_varint(field, 0)
    kind = src.int(0, 2)
    if kind == 0:
        section = _damage(field[start:], src)
        return varint(len(section)) + section
    if kind == 1:
        return _damage(field, src)
    return _varint_value(src) + field[start:]


def _mutate_tiled(parts: TiledParts, src: Source, deep: bool) -> TiledParts:
    p = replace(parts, tiles=list(parts.tiles), lengths=None if parts.lengths is None else list(parts.lengths))
    n = len(p.tiles)
    for _ in range(src.int(1, 3)):
        which = src.int(8, 9) if deep else src.int(0, 11)
        if which == 0:  # version, flags, backend, reserved byte
            raw = bytearray(p.prefix)
            raw[src.int(4, 7)] = src.int(0, 255) if src.int(0, 1) else src.int(0, 4)
            p.prefix = bytes(raw)
        elif which == 1:
            p.prefix = p.prefix[:8] + _flip_bits(p.prefix[8:], src, 1)
        elif which in (2, 3):  # absurd or slightly wrong sizes
            old = parts.height if which == 2 else parts.width  # the valid original
            value = _varint_value(src) if src.int(0, 1) else varint(max(0, read_varint(old, 0)[0] + src.int(-300, 300)))
            if which == 2:
                p.height = value
            else:
                p.width = value
        elif which == 4:
            p.tile_size = _varint_value(src) if src.int(0, 1) else varint(MIN_TILE_SIZE + 64 * src.int(-2, 4))
        elif which == 5:
            p.count = _varint_value(src) if src.int(0, 1) else varint(max(0, n + src.int(-2, 2)))
        elif which == 6:
            if p.lengths is None:
                p.lengths = [varint(len(t)) for t in p.tiles]
            i = src.int(0, n - 1)
            p.lengths[i] = _varint_value(src) if src.int(0, 1) else varint(max(0, len(p.tiles[i]) + src.int(-3, 3)))
        elif which == 7:
            p.checksum = _flip_bits(p.checksum, src, 1)
        elif which == 8:  # a tile's own fields: damage that reaches the tile's decoders
            i = src.int(0, n - 1)
            try:
                tile = whole_parts_of(p.tiles[i])
            except (ValueError, AssertionError, IndexError):  # damaged by an earlier change
                p.tiles[i] = _damage(p.tiles[i], src)
            else:
                p.tiles[i] = _mutate_whole(tile, src, deep).to_bytes()
        elif which == 9:  # swap two tiles, or copy one over another
            i, j = src.int(0, n - 1), src.int(0, n - 1)
            if src.int(0, 1):
                p.tiles[i], p.tiles[j] = p.tiles[j], p.tiles[i]
            else:
                p.tiles[i] = p.tiles[j]
        elif which == 10:
            i = src.int(0, n - 1)
            p.tiles[i] = _damage(p.tiles[i], src)
        elif n > 1:  # a tile dropped or repeated
            i = src.int(0, n - 1)
            p.tiles[i : i + 1] = [] if src.int(0, 1) else [p.tiles[i]] * 2
            n = len(p.tiles)
            p.lengths = None
    if not deep and src.int(0, 5) == 0:
        p.crc = src.bytes(4)
    return p


def _mutate_head(p: WholeParts, parts: WholeParts, which: int, src: Source, newest_version: int) -> bool:
    """Change the header field ``which`` names where both whole-image layouts have it (0
    version, up to ``newest_version`` when plausible; 1 flags; 2 backend; 4 model id; 5, 6
    absurd or slightly wrong sizes, from the valid ``parts``); False for the other fields."""
    if which == 0:
        p.version = bytes([src.int(0, 255) if src.int(0, 1) else src.int(1, newest_version)])
    elif which == 1:
        p.flags = bytes([src.int(0, 255) if src.int(0, 1) else 1 - (p.flags[0] & 1)])
    elif which == 2:
        p.backend = bytes([src.int(0, 255) if src.int(0, 2) else 2])
    elif which == 4:
        p.model_id = _flip_bits(p.model_id, src, 1)
    elif which in (5, 6):
        value = _varint_value(src) if src.int(0, 1) else varint(max(0, read_varint(parts.height if which == 5 else parts.width, 0)[0] + src.int(-2, 2)))
        if which == 5:
            p.height = value
        else:
            p.width = value
    else:
        return False
    return True


#: The changes of a sequential file that leave its container valid more often than not.
SEQ_DEEP = (1, 3, 13, 14, 15, 16)


def _mutate_seq(parts: SeqParts, src: Source, deep: bool) -> SeqParts:
    p = replace(parts, sections=list(parts.sections), lengths=None if parts.lengths is None else list(parts.lengths))
    for _ in range(src.int(1, 3)):
        which = SEQ_DEEP[src.int(0, len(SEQ_DEEP) - 1)] if deep else src.int(0, 16)
        if _mutate_head(p, parts, which, src, SEQUENTIAL_VERSION):
            continue
        if which == 3:
            if src.int(0, 1):
                p.q = bytes([src.int(0, 255)])
            else:  # another error bound: the stream decodes to other values, or the bound is refused
                p.max_error = bytes([src.int(0, 3) if src.int(0, 1) else src.int(0, 255)])
        elif which in (7, 8, 9):
            if p.lengths is None:
                p.lengths = [varint(len(s)) for s in p.sections]
            i = src.int(0, 1)
            p.lengths[i] = _varint_value(src) if src.int(0, 1) else varint(max(0, len(p.sections[i]) + src.int(-3, 3)))
        elif which in (10, 11, 12):
            p.checksum = _flip_bits(p.checksum, src, 1)
        elif which in (13, 14, 15):  # damage inside the lossy layer or the residual stream
            i = 0 if which == 13 else 1
            p.sections[i] = _damage(p.sections[i], src)
        else:
            p.sections.reverse()
    if not deep and src.int(0, 5) == 0:
        p.crcs = (src.bytes(4), src.bytes(4))
    return p


def _mutate_whole(parts: WholeParts, src: Source, deep: bool) -> WholeParts:
    if isinstance(parts, SeqParts):
        return _mutate_seq(parts, src, deep)
    p = replace(parts, ranges=list(parts.ranges), adaptations=list(parts.adaptations),
                sections=list(parts.sections), lengths=None if parts.lengths is None else list(parts.lengths))
    n = len(p.sections)
    for _ in range(src.int(1, 3)):
        which = DEEP[src.int(0, len(DEEP) - 1)] if deep else src.int(0, 16)
        if _mutate_head(p, parts, which, src, 4):
            continue
        if which == 3:
            p.q = bytes([src.int(0, 255)])
        elif which == 7:
            i = src.int(0, 5)
            p.ranges[i] = zvarint(src.int(-300, 300)) if src.int(0, 1) else _varint_value(src)
        elif which == 8:
            p.n_streams = varint(src.int(0, 2 * MAX_STREAMS)) if src.int(0, 1) else _varint_value(src)
        elif which == 9:
            if p.lengths is None:
                p.lengths = [varint(len(s)) for s in p.sections]
            i = src.int(0, len(p.lengths) - 1)
            p.lengths[i] = _varint_value(src) if src.int(0, 1) else varint(max(0, len(p.sections[i]) + src.int(-3, 3)))
        elif which == 10 and p.adaptations:
            i = src.int(0, len(p.adaptations) - 1)
            count = src.int(0, 2 * MAX_ADAPTATION) if src.int(0, 1) else src.int(0, 12)
            p.adaptations[i] = bytes([count]) + src.bytes(count if src.int(0, 3) else src.int(0, count))
        elif which == 11 and p.half_widths:
            hw = bytearray(p.half_widths)
            hw[src.int(0, len(hw) - 1)] = src.int(0, MAX_HALF_WIDTH)
            p.half_widths = bytes(hw)
        elif which == 12:
            p.checksum = _flip_bits(p.checksum, src, 1)
        elif which in (13, 14, 15):  # damage inside a payload section: the decoders see it
            i = 0 if which == 13 else src.int(0, n - 1)
            p.sections[i] = _damage(p.sections[i], src)
        else:  # swap two sections (same CRC over a different order)
            i, j = src.int(0, n - 1), src.int(0, n - 1)
            p.sections[i], p.sections[j] = p.sections[j], p.sections[i]
    if not deep and src.int(0, 5) == 0:
        p.crcs = (src.bytes(4), src.bytes(4))
    return p


def mutate(data: bytes, parts: WholeParts | TiledParts, src: Source) -> bytes:
    """A damaged version of the valid file ``data`` (split as ``parts``)."""
    kind = src.int(0, 9)
    if kind <= 5:  # fields, then valid lengths and CRCs unless the mutation set them
        return mutate_fields(parts, src).to_bytes()
    if kind == 6:  # fields, then raw damage on top
        return _damage(mutate_fields(parts, src).to_bytes(), src)
    if kind == 7:  # random bytes, often behind a valid magic and version
        prefix = data[:5] if src.int(0, 1) else b""
        return prefix + src.bytes(src.int(0, 200))
    return _damage(data, src)


def _check_whole(f: LbpgFile, data: bytes) -> None:
    """The invariants of a parsed whole-image file (or tile) whose bytes end ``data``."""
    h = f.header
    n = len(f.residual_streams)
    assert h.version in SUPPORTED_VERSIONS and 1 <= n <= MAX_STREAMS
    assert 1 <= h.height <= MAX_SIDE and 1 <= h.width <= MAX_SIDE
    assert len(h.model_id) == MODEL_ID_BYTES and len(h.checksum) == CHECKSUM_BYTES
    if h.version == SEQUENTIAL_VERSION:
        assert n == 1 and not f.escape_streams and not f.adaptations and not f.half_widths and not f.model_update
        assert not h.residual_ranges and not h.error_feedback and 0 <= h.max_error <= 127
        assert data.endswith(f.lossy + f.residual_streams[0])
        return
    assert len(f.escape_streams) == len(f.adaptations) == len(f.half_widths) == n
    assert 1 <= h.height <= MAX_SIDE and 1 <= h.width <= MAX_SIDE
    assert len(h.model_id) == MODEL_ID_BYTES and len(h.checksum) == CHECKSUM_BYTES
    assert all(-255 <= lo <= hi <= 255 for lo, hi in h.residual_ranges)
    assert all(len(a) <= MAX_ADAPTATION and all(-128 <= v < 128 for v in a) for a in f.adaptations)
    assert all(0 <= v <= MAX_HALF_WIDTH for v in f.half_widths)
    assert (h.version == UPDATE_VERSION) == bool(f.model_update)
    sections = (f.lossy, *f.residual_streams, *f.escape_streams, f.model_update)
    assert data.endswith(b"".join(sections))


def check_unpack(data: bytes) -> LbpgFile | TiledFile | None:
    """Parse ``data``: a FormatError (or subclass), or a file that satisfies the format's
    invariants and packs back to an equal parse. Anything else raises AssertionError (or
    escapes as the unexpected exception it is)."""
    try:
        f = unpack(data)
    except FormatError:
        return None
    if isinstance(f, TiledFile):
        h = f.header
        grid = h.tiles
        assert 1 <= h.height <= MAX_SIDE and 1 <= h.width <= MAX_SIDE and len(f.tiles) == len(grid)
        for tile, t in zip(grid, f.tiles):
            assert t.header.version in TILE_VERSIONS and (t.header.height, t.header.width) == (tile.height, tile.width)
            assert (t.header.backend_id, t.header.model_id, t.header.greyscale) == (h.backend_id, h.model_id, h.greyscale)
            _check_whole(t, pack(t))
        assert unpack(pack_tiled(f)) == f
        return f
    _check_whole(f, data)
    # version 2 is read, never written
    written = SEQUENTIAL_VERSION if f.header.version == SEQUENTIAL_VERSION else UPDATE_VERSION if f.model_update else VERSION
    assert unpack(pack(f)) == replace(f, header=replace(f.header, version=written))
    return f


def check_decode(data: bytes, original: np.ndarray, decode) -> LosslessBpgError | None:
    """Decode ``data`` with ``decode`` (bytes -> pixels): returns the LosslessBpgError it
    raised, or None when it gave exactly ``original``; wrong pixels raise AssertionError.

    One change of a greyscale file gives more than its pixels back and is no error: with its
    greyscale flag cleared (and valid CRCs) it is a valid file of the RGB image whose three
    channels are that greyscale image (the checksum covers all three channels)."""
    try:
        out = decode(data)
    except LosslessBpgError as exc:
        return exc
    if original.ndim == 2 and out.ndim == 3:
        original = np.repeat(original[..., None], 3, axis=2)
    assert out.dtype == original.dtype and out.shape == original.shape, (out.dtype, out.shape, original.shape)
    assert np.array_equal(out, original), "decoded pixels differ from the original"
    return None


@dataclass(frozen=True)
class Sample:
    """A valid file, its fields and the pixels it decodes to (as lossless_bpg.decompress gives
    them: (H, W) for greyscale)."""

    name: str
    data: bytes
    pixels: np.ndarray
    parts: WholeParts | TiledParts = field(repr=False)


def _small_image(seed: int, height: int = 16, width: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width)[None, :, None] + np.linspace(-40, 40, height)[:, None, None]
    return np.clip(ramp + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


def _installed(data: bytes) -> bool:
    """Whether this installation has the residual model the file names (decoding finds it by id)."""
    from lossless_bpg.residual.registry import Registry

    return Registry().by_id(unpack(data).header.model_id) is not None


#: The metadata of the samples that carry some: a profile, EXIF and text.
METADATA = (Chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(bytes(64))), Chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\0"),
            Chunk(b"tEXt", b"Title\0a sample"))


@functools.cache
def samples() -> tuple[Sample, ...]:
    """Small valid files, made once per process: with the parallel model, RGB 16x16 at Q 30
    (residuals escape their windows), greyscale 16x16 at Q 40, a tiled 16x300 RGB file (two
    tiles), the RGB image again with a model update (version 5), and the stored files with the
    error feedback (128x128) and of version 2 (both written with `fast`) while a shipped model
    decodes them; then the same RGB, greyscale and tiled images with the sequential coder; then
    the parallel and sequential RGB files and the sequential tiled file with :data:`METADATA`."""
    import lossless_bpg
    from lossless_bpg.api import _model

    rgb = _small_image(1)
    grey = _small_image(2)[..., 0].copy()
    strip = _small_image(3, 16, 300)
    out = [
        ("rgb16", lossless_bpg.compress(rgb, quality=30, model="parallel"), rgb),
        ("grey16", lossless_bpg.compress(grey, quality=40, model="parallel"), grey),
        ("tiled", lossless_bpg.compress(strip, quality=30, tile_size=MIN_TILE_SIZE, model="parallel"), strip),
        ("update", file_with_update(_model("default"), rgb, 30, random_update(_model("default"), 1, 2)), rgb),
    ]
    feedback = (DATA / "feedback_sample.lbpg").read_bytes()
    if _installed(feedback):
        from .residual.test_backward import _textured

        out.append(("feedback", feedback, _textured()))
    v2 = (DATA / "v2_sample.lbpg").read_bytes()
    if _installed(v2):
        from PIL import Image

        out.append(("v2", v2, np.asarray(Image.open(DATA / "v2_sample.png").convert("RGB"))))
    out += [
        ("seq_rgb16", lossless_bpg.compress(rgb, quality=30), rgb),
        ("seq_grey16", lossless_bpg.compress(grey, quality=40), grey),
        ("seq_tiled", lossless_bpg.compress(strip, quality=30, tile_size=MIN_TILE_SIZE), strip),
    ]
    # the same files carrying metadata, in each layout
    out += [(f"{name}_meta", with_metadata(data, METADATA), pixels) for name, data, pixels in out
            if name in ("rgb16", "seq_rgb16", "seq_tiled")]
    return tuple(Sample(name, data, pixels, parts_of(data)) for name, data, pixels in out)
