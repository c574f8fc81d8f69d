"""The metadata an .lbpg file keeps beside its pixels: PNG ancillary chunks (colour space,
EXIF, XMP, text, resolution, time), stored in one section of the container and written back
into the decoded PNG unchanged; and what they say, in words, for ``info`` and warnings.

Every input format's metadata is kept in its PNG form (a JPEG's ICC profile as an iCCP chunk,
its EXIF as eXIf, ...; see :mod:`lossless_bpg.imagemeta`), so a file stores one kind of thing
and the decoder needs no conversion. The section's byte layout is in docs/format.md.
"""

from __future__ import annotations

import datetime
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .errors import FormatError, VersionError
from .varint import read_varint, write_varint


@dataclass(frozen=True)
class Chunk:
    """One PNG ancillary chunk: its type (e.g. ``b"iCCP"``) and its payload, as a PNG file
    holds them (without the length and CRC)."""

    kind: bytes
    data: bytes


#: The metadata of an image, in the order its file held it.
Metadata: TypeAlias = tuple[Chunk, ...]

#: Chunk types the encoder keeps from a PNG input. The decoder writes back whatever ancillary
#: chunk a file holds: a later encoder may keep more without a new section version.
KEPT_CHUNKS = frozenset({
    b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"mDCV", b"cLLI",  # how the pixels are meant to look
    b"eXIf", b"iTXt", b"tEXt", b"zTXt", b"pHYs", b"tIME",
})
#: The section's own format version (its first byte).
SECTION_VERSION = 1
#: Largest section a file may hold (and the encoder keeps): bounds what a forged length can ask.
MAX_METADATA_BYTES = 1 << 26
#: The iTXt keyword under which XMP is kept (the XMP specification's, part 3).
XMP_KEYWORD = b"XML:com.adobe.xmp"
#: EXIF/TIFF tag of the orientation a viewer applies when showing the pixels.
ORIENTATION_TAG = 0x0112


def is_ancillary(kind: bytes) -> bool:
    """Whether ``kind`` names a PNG ancillary chunk: four ASCII letters, the first lower case
    (ancillary) and the third upper case (the reserved bit clear)."""
    return (len(kind) == 4 and kind.isascii() and kind.isalpha() and kind[:1].islower()
            and kind[2:3].isupper())


def encode_section(chunks: Sequence[Chunk]) -> bytes:
    """The section's bytes for one or more chunks (ValueError if a type is not ancillary or
    the section would exceed MAX_METADATA_BYTES)."""
    if not chunks:
        raise ValueError("a metadata section holds at least one chunk")
    out = bytearray([SECTION_VERSION])
    for chunk in chunks:
        if not is_ancillary(chunk.kind):
            raise ValueError(f"{chunk.kind!r} is not a PNG ancillary chunk type")
        out += chunk.kind + write_varint(len(chunk.data)) + chunk.data
    if len(out) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata of {len(out):,} bytes; at most {MAX_METADATA_BYTES:,} are stored")
    return bytes(out)


def decode_section(section: bytes) -> Metadata:
    """The chunks of a section (its bytes, as the header's length delimits them); FormatError
    if it is damaged, VersionError if a newer build wrote it."""
    if not section:
        raise FormatError("the header's metadata flag is set but its metadata section is empty")
    if section[0] != SECTION_VERSION:
        raise VersionError(f"metadata section version {section[0]} is not supported by this build (reads version "
                           f"{SECTION_VERSION}); use a lossless_bpg release that does")
    chunks: list[Chunk] = []
    pos = 1
    while pos < len(section):
        kind = bytes(section[pos : pos + 4])
        if not is_ancillary(kind):
            raise FormatError(f"metadata entry {len(chunks)} has type {kind!r}, not a PNG ancillary chunk type: "
                              "the file is damaged")
        try:
            length, pos = read_varint(section, pos + 4)
        except ValueError as exc:
            raise FormatError(f"metadata entry {len(chunks)} is cut short ({exc}): the file is damaged") from exc
        if length > len(section) - pos:
            raise FormatError(f"metadata entry {len(chunks)} claims {length:,} bytes, its section has "
                              f"{len(section) - pos:,} left: the file is damaged")
        chunks.append(Chunk(kind, bytes(section[pos : pos + length])))
        pos += length
    if not chunks:
        raise FormatError("the metadata section lists no chunk: the file is damaged")
    return tuple(chunks)


def text_keyword(chunk: Chunk) -> str | None:
    """The keyword of a tEXt, zTXt or iTXt chunk (Latin-1, before its first NUL), else None."""
    if chunk.kind not in (b"tEXt", b"zTXt", b"iTXt"):
        return None
    return chunk.data.split(b"\0", 1)[0].decode("latin-1")


def exif_orientation(exif: bytes) -> int | None:
    """The orientation tag of an EXIF block (TIFF structure: byte order, IFD0), or None when
    it has none or cannot be read."""
    if exif[:4] not in (b"II*\0", b"MM\0*"):
        return None
    order: Literal["little", "big"] = "little" if exif[:2] == b"II" else "big"

    def number(at: int, size: int) -> int:
        return int.from_bytes(exif[at : at + size], order)

    ifd = number(4, 4)
    if ifd + 2 > len(exif):
        return None
    for i in range(number(ifd, 2)):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(exif):
            return None
        if number(entry, 2) == ORIENTATION_TAG and number(entry + 2, 2) == 3:  # SHORT
            return number(entry + 8, 2)
    return None


def itxt_chunk(keyword: bytes, text: bytes) -> Chunk:
    """An uncompressed iTXt chunk of the UTF-8 ``text``, without language tag or translated
    keyword."""
    return Chunk(b"iTXt", keyword + b"\0\0\0\0\0" + text)


def _itxt_text(data: bytes) -> bytes:
    """The text of an iTXt payload: after the keyword, NUL, two flag bytes, the language tag
    and the translated keyword (each ended by a NUL)."""
    rest = data[data.find(b"\0") + 3 :]
    return rest.split(b"\0", 2)[-1]


def icc_profile(chunk: Chunk) -> bytes | None:
    """The ICC profile an iCCP chunk holds (name, NUL, method 0, zlib stream), or None when it
    cannot be read or inflates beyond MAX_METADATA_BYTES (so a forged stream cannot make it
    allocate more)."""
    try:
        name_end = chunk.data.index(b"\0")
        inflate = zlib.decompressobj()
        profile = inflate.decompress(chunk.data[name_end + 2 :], MAX_METADATA_BYTES)
    except (ValueError, zlib.error):
        return None
    return profile if inflate.eof and chunk.data[name_end + 1 : name_end + 2] == b"\0" else None


def _chunk_words(chunk: Chunk) -> str:
    """One chunk other than text, in words."""
    kind, data = chunk.kind, chunk.data
    if kind == b"iCCP":
        profile = icc_profile(chunk)
        return f"ICC profile ({len(profile):,} bytes)" if profile is not None else f"ICC profile (unreadable, {len(data):,} bytes)"
    if kind == b"eXIf":
        orientation = exif_orientation(data)
        return f"EXIF (orientation {orientation})" if orientation is not None else f"EXIF ({len(data):,} bytes)"
    if kind == b"gAMA" and len(data) == 4:
        return f"gamma {int.from_bytes(data, 'big') / 100000:g}"
    if kind == b"pHYs" and len(data) == 9:
        x, y = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
        if data[8] == 1:  # pixels per metre
            return f"resolution {x * 0.0254:.0f}x{y * 0.0254:.0f} dpi"
        return f"pixel aspect {x}:{y}"
    if kind == b"tIME" and len(data) == 7:
        try:
            return f"time {datetime.datetime(int.from_bytes(data[:2], 'big'), *data[2:]).isoformat(' ')}"
        except ValueError:
            pass
    return _NAMES.get(kind) or f"{kind.decode('ascii')} chunk ({len(data):,} bytes)"


#: What ``info`` calls the chunks it says nothing more of.
_NAMES = {b"sRGB": "sRGB", b"cHRM": "chromaticities", b"cICP": "cICP colour space", b"mDCV": "mastering display",
          b"cLLI": "content light level"}


def describe_metadata(chunks: Sequence[Chunk]) -> str:
    """What ``chunks`` hold, in one line: e.g. ``ICC profile (3,144 bytes), EXIF (orientation
    6), XMP (1,020 bytes), text: Title, Author``; ``none`` for no chunk."""
    words, keywords = [], []
    for chunk in chunks:
        keyword = text_keyword(chunk)
        if keyword is None:
            words.append(_chunk_words(chunk))
        elif chunk.kind == b"iTXt" and keyword.encode("latin-1") == XMP_KEYWORD:
            words.append(f"XMP ({len(_itxt_text(chunk.data)):,} bytes)")
        else:
            keywords.append(keyword)
    if keywords:
        words.append("text: " + ", ".join(keywords))
    return ", ".join(words) or "none"
