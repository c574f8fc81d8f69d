"""Reading an input's metadata as PNG chunks: a PNG's own byte for byte and in order, other
formats' mapped to their PNG equivalents, and what is not kept named."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from lossless_bpg.imagemeta import ICC_PROFILE_NAME, read_image_metadata
from lossless_bpg.metadata import XMP_KEYWORD, Chunk, exif_orientation

PIXELS = np.full((8, 8, 3), 90, np.uint8)
PROFILE = b"an ICC profile, as far as these tests care" * 20
XMP = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>caf\xc3\xa9</x:xmpmeta>"


def _exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera"
    return exif


def _png_chunks(path) -> list[tuple[bytes, bytes]]:
    """Every chunk of a PNG file after IHDR and before IDAT: (type, payload)."""
    data = path.read_bytes()
    pos, out = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        out.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _icc(chunk: Chunk) -> bytes:
    name, rest = chunk.data.split(b"\0", 1)
    assert name == ICC_PROFILE_NAME and rest[0] == 0
    return zlib.decompress(rest[1:])


def test_a_pngs_chunks_are_kept_byte_for_byte_in_file_order(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "A title")
    info.add_text("Author", "Someone", zip=True)
    info.add_itxt("Description", "déjà vu", lang="fr")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add(b"gAMA", struct.pack(">I", 45455))
    info.add(b"cHRM", bytes(range(32)))
    info.add(b"tIME", b"\x07\xe8\x02\x1d\x0c\x22\x38")
    path = tmp_path / "rich.png"
    Image.fromarray(PIXELS).save(path, pnginfo=info, icc_profile=PROFILE, exif=_exif().tobytes(), dpi=(300, 300))
    expected = [Chunk(kind, data) for kind, data in _png_chunks(path) if kind not in (b"IHDR", b"IDAT", b"IEND")]
    meta = read_image_metadata(path)
    assert list(meta.chunks) == expected
    assert {c.kind for c in meta.chunks} == {b"iCCP", b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"gAMA", b"cHRM", b"tIME",
                                             b"pHYs"}
    assert meta.not_kept == ()


def _with_chunk(path, kind: bytes, payload: bytes, crc: int | None = None) -> None:
    """Insert a chunk right after IHDR (its CRC right unless given)."""
    data = path.read_bytes()
    chunk = struct.pack(">I", len(payload)) + kind + payload
    chunk += struct.pack(">I", zlib.crc32(kind + payload) if crc is None else crc)
    path.write_bytes(data[:33] + chunk + data[33:])


def test_chunks_of_other_kinds_and_damaged_ones_are_named_not_kept(tmp_path):
    path = tmp_path / "odd.png"
    Image.fromarray(PIXELS).save(path)
    _with_chunk(path, b"vpAg", bytes(9))
    _with_chunk(path, b"bKGD", bytes(6))
    _with_chunk(path, b"tEXt", b"Title\0damaged", crc=0)
    meta = read_image_metadata(path)
    assert meta.chunks == ()
    assert meta.not_kept == ("the tEXt chunk (damaged: CRC mismatch)", "PNG chunks bKGD, vpAg (kinds not kept)")


def test_a_jpegs_profile_exif_xmp_resolution_and_comment_become_png_chunks(tmp_path):
    path = tmp_path / "photo.jpg"
    exif = _exif()
    Image.fromarray(PIXELS).save(path, "JPEG", quality=95, icc_profile=PROFILE, exif=exif.tobytes(), xmp=XMP,
                                 dpi=(300, 300), comment=b"shot on a tripod")
    chunks = {c.kind: c for c in read_image_metadata(path).chunks}
    assert list(chunks) == [b"iCCP", b"pHYs", b"eXIf", b"iTXt", b"tEXt"]
    assert _icc(chunks[b"iCCP"]) == PROFILE
    assert chunks[b"eXIf"].data == exif.tobytes()[len(b"Exif\0\0") :]
    assert exif_orientation(chunks[b"eXIf"].data) == 6
    assert chunks[b"iTXt"].data == XMP_KEYWORD + b"\0\0\0\0\0" + XMP
    assert chunks[b"pHYs"].data == struct.pack(">IIB", 11811, 11811, 1)
    assert chunks[b"tEXt"].data == b"Comment\0shot on a tripod"


def test_a_webps_profile_exif_and_xmp_become_png_chunks(tmp_path):
    path = tmp_path / "photo.webp"
    Image.fromarray(PIXELS).save(path, "WEBP", lossless=True, icc_profile=PROFILE, exif=_exif(3).tobytes(), xmp=XMP)
    chunks = {c.kind: c for c in read_image_metadata(path).chunks}
    assert list(chunks) == [b"iCCP", b"eXIf", b"iTXt"]
    assert _icc(chunks[b"iCCP"]) == PROFILE
    assert chunks[b"eXIf"].data[:4] in (b"MM\0*", b"II*\0") and exif_orientation(chunks[b"eXIf"].data) == 3
    assert chunks[b"iTXt"].data.endswith(XMP)


def test_a_tiffs_descriptive_tags_profile_and_xmp_are_kept_but_not_its_layout(tmp_path):
    path = tmp_path / "scan.tif"
    Image.fromarray(PIXELS).save(path, "TIFF", icc_profile=PROFILE, dpi=(600, 600),
                                 tiffinfo={700: XMP, 270: "a scan", 0x0112: 8, 33432: "(c) someone"})
    chunks = {c.kind: c for c in read_image_metadata(path).chunks}
    assert list(chunks) == [b"iCCP", b"pHYs", b"eXIf", b"iTXt"]
    assert _icc(chunks[b"iCCP"]) == PROFILE
    exif = Image.Exif()
    exif.load(b"Exif\0\0" + chunks[b"eXIf"].data)
    assert dict(exif) == {270: "a scan", 0x0112: 8, 33432: "(c) someone"}  # no strip offsets, sizes, ...
    assert chunks[b"iTXt"].data.endswith(XMP)


def test_a_comment_that_is_not_ascii_goes_to_itxt_and_one_with_nul_is_named(tmp_path):
    accents, nul = tmp_path / "accents.jpg", tmp_path / "nul.jpg"
    Image.fromarray(PIXELS).save(accents, "JPEG", comment="café".encode())
    Image.fromarray(PIXELS).save(nul, "JPEG", comment=b"a\0b")
    assert read_image_metadata(accents).chunks == (Chunk(b"iTXt", b"Comment\0\0\0\0\0caf\xc3\xa9"),)
    meta = read_image_metadata(nul)
    assert meta.chunks == () and meta.not_kept == ("the comment (holds NUL bytes, which PNG text cannot)",)


@pytest.mark.parametrize("name, content", [("plain.png", None), ("junk.png", b"not an image"),
                                           ("cut.png", b"\x89PNG\r\n\x1a\n\0\0")])
def test_files_without_readable_metadata_have_none(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        Image.fromarray(PIXELS).save(path)
    else:
        path.write_bytes(content)
    assert read_image_metadata(path).chunks == () and read_image_metadata(path).not_kept == ()
