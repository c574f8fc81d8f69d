"""Reading an input image's metadata as the PNG ancillary chunks an .lbpg file keeps.

A PNG's own chunks are read by walking the file (each CRC checked; the image data is skipped,
not read), so their payloads are kept byte for byte and in file order; Pillow's ``info`` would
decode and re-encode them. A JPEG's, TIFF's or WebP's metadata is mapped to the PNG equivalent:
the ICC profile to iCCP, EXIF to eXIf (the TIFF structure without JPEG's ``Exif\\0\\0``), XMP to
an iTXt chunk, the resolution to pHYs and a JPEG comment to a text chunk. What a file carries
that is not kept is named in words, for the warning ``compress`` prints.
"""

from __future__ import annotations

import numbers
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from .imageio import size_checked_here
from .metadata import KEPT_CHUNKS, MAX_METADATA_BYTES, ORIENTATION_TAG, XMP_KEYWORD, Chunk, Metadata, itxt_chunk
from .pngwrite import SIGNATURE

#: The profile name an iCCP chunk made from another format's ICC profile carries (Pillow's).
ICC_PROFILE_NAME = b"ICC Profile"
#: The PNG keyword of a JPEG comment.
COMMENT_KEYWORD = b"Comment"
#: Tags of a TIFF's first IFD that describe the image rather than lay out its data: kept as its
#: EXIF (with the EXIF and GPS sub-IFDs); the resolution goes to pHYs.
_TIFF_EXIF_TAGS = (0x010E, 0x010F, 0x0110, ORIENTATION_TAG, 0x0131, 0x0132, 0x013B, 0x8298)
_TIFF_SUB_IFDS = (0x8769, 0x8825)
_TIFF_XMP_TAG = 700
#: TIFF tags of IPTC and Photoshop data, which have no PNG equivalent.
_TIFF_NOT_KEPT = {33723: "IPTC data", 34377: "Photoshop data"}
_EXIF_PREFIX = b"Exif\0\0"
#: Bytes a chunk takes in the metadata section beside its payload, at most: its type and length.
_ENTRY_OVERHEAD = 4 + 10
_METRES_PER_INCH = 0.0254


@dataclass(frozen=True)
class ImageMetadata:
    """An image file's metadata: the chunks kept, and what is not kept, in words."""

    chunks: Metadata = ()
    not_kept: tuple[str, ...] = ()


def read_image_metadata(path: str | Path) -> ImageMetadata:
    """The metadata of the image file ``path`` (nothing for a file that cannot be read: its
    pixels are checked, and refused, elsewhere)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(len(SIGNATURE)) == SIGNATURE:
                return _png_metadata(fh)
        with size_checked_here(), Image.open(path) as im:
            return _pillow_metadata(im)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError, struct.error):
        return ImageMetadata()


def _png_metadata(stream: BinaryIO) -> ImageMetadata:
    """Walk the chunks of a PNG file open after its signature."""
    chunks: list[Chunk] = []
    not_kept: list[str] = []
    skipped: list[str] = []
    total = 1  # the section's version byte
    while len(head := stream.read(8)) == 8:
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            break
        name = kind.decode("latin-1")
        if kind not in KEPT_CHUNKS:
            if kind[:1].islower() and name not in skipped:  # critical chunks are the pixels'
                skipped.append(name)
            stream.seek(length + 4, 1)
        elif total + _ENTRY_OVERHEAD + length > MAX_METADATA_BYTES:
            not_kept.append(f"the {name} chunk (beyond the {MAX_METADATA_BYTES:,} bytes of metadata a file holds)")
            stream.seek(length + 4, 1)
        else:
            data = stream.read(length)
            crc = stream.read(4)
            if len(crc) < 4 or zlib.crc32(kind + data) != int.from_bytes(crc, "big"):
                not_kept.append(f"the {name} chunk (damaged: CRC mismatch)")
                continue
            chunks.append(Chunk(kind, data))
            total += _ENTRY_OVERHEAD + length
    if skipped:
        not_kept.append(f"PNG chunks {', '.join(skipped)} (kinds not kept)")
    return ImageMetadata(tuple(chunks), tuple(not_kept))


def _iccp_chunk(profile: bytes) -> Chunk:
    """An iCCP chunk holding the ICC ``profile``."""
    return Chunk(b"iCCP", ICC_PROFILE_NAME + b"\0\0" + zlib.compress(profile, 9))


def _text_chunk(keyword: bytes, text: bytes) -> Chunk | None:
    """A tEXt chunk for ASCII ``text``, an iTXt chunk for other UTF-8; None for text with NULs
    (which neither can hold)."""
    if b"\0" in text:
        return None
    if text.isascii():
        return Chunk(b"tEXt", keyword + b"\0" + text)
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return Chunk(b"tEXt", keyword + b"\0" + text)  # read as Latin-1, tEXt's own encoding
    return itxt_chunk(keyword, text)


def _phys_chunk(dpi: object) -> Chunk | None:
    """A pHYs chunk (pixels per metre) for Pillow's ``dpi`` pair, None where it has none."""
    # a TIFF's values are Pillow's IFDRational, a Real but no float
    if not (isinstance(dpi, tuple) and len(dpi) == 2 and all(isinstance(v, numbers.Real) and float(v) > 0 for v in dpi)):
        return None
    x, y = (int(float(v) / _METRES_PER_INCH + 0.5) for v in dpi)
    if max(x, y) >= 1 << 31:  # PNG's four-byte limit
        return None
    return Chunk(b"pHYs", struct.pack(">IIB", x, y, 1))


def _tiff_exif(im: TiffImagePlugin.TiffImageFile) -> bytes | None:
    """The descriptive tags of a TIFF's first IFD and its EXIF and GPS sub-IFDs, as EXIF."""
    source = im.getexif()
    exif = Image.Exif()
    for tag in _TIFF_EXIF_TAGS:
        if tag in source:
            exif[tag] = source[tag]
    for tag in _TIFF_SUB_IFDS:
        if sub := source.get_ifd(tag):
            exif[tag] = dict(sub)
    return exif.tobytes() if len(exif) else None


def _pillow_metadata(im: Image.Image) -> ImageMetadata:
    """A JPEG's, TIFF's or WebP's metadata, mapped to PNG chunks."""
    info = im.info
    not_kept = []
    exif: bytes | None = info.get("exif") or None
    xmp: bytes | None = info.get("xmp") or None
    if isinstance(im, TiffImagePlugin.TiffImageFile):
        exif = _tiff_exif(im)
        xmp = im.tag_v2.get(_TIFF_XMP_TAG) or None
        not_kept += [words for tag, words in _TIFF_NOT_KEPT.items() if tag in im.tag_v2]
    if info.get("photoshop"):
        not_kept.append("Photoshop / IPTC data (APP13)")
    chunks: list[Chunk | None] = [
        _iccp_chunk(info["icc_profile"]) if info.get("icc_profile") else None,
        _phys_chunk(info.get("dpi")),
        Chunk(b"eXIf", exif.removeprefix(_EXIF_PREFIX)) if exif else None,
        itxt_chunk(XMP_KEYWORD, xmp) if isinstance(xmp, bytes) else None,  # as the XMP specification puts it in a PNG
    ]
    comment = info.get("comment")
    if isinstance(comment, bytes) and comment:
        chunks.append(_text_chunk(COMMENT_KEYWORD, comment))
        if chunks[-1] is None:
            not_kept.append("the comment (holds NUL bytes, which PNG text cannot)")
    kept = tuple(c for c in chunks if c is not None)
    if 1 + sum(_ENTRY_OVERHEAD + len(c.data) for c in kept) > MAX_METADATA_BYTES:
        return ImageMetadata((), (f"the metadata (more than the {MAX_METADATA_BYTES:,} bytes a file holds)",
                                  *not_kept))
    return ImageMetadata(kept, tuple(not_kept))
