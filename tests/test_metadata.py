"""The metadata section: PNG ancillary chunks, stored exactly, refused when damaged or newer;
and what ``info`` says of them."""

import zlib

import pytest
from PIL import Image

from lossless_bpg.errors import FormatError, VersionError
from lossless_bpg.metadata import (
    MAX_METADATA_BYTES,
    SECTION_VERSION,
    Chunk,
    decode_section,
    describe_metadata,
    encode_section,
    exif_orientation,
)
from lossless_bpg.varint import write_varint

CHUNKS = (
    Chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(b"p" * 3144)),
    Chunk(b"eXIf", Image.Exif().tobytes()[6:]),
    Chunk(b"tEXt", b"Title\0A title"),
    Chunk(b"zTXt", b"Author\0\0" + zlib.compress(b"Someone")),
    Chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + b"x" * 1020),
    Chunk(b"tEXt", b""),  # an empty payload is a payload too
)


def _exif(orientation: int, little_endian: bool = False) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera"
    data = exif.tobytes()[6:]  # without JPEG's "Exif\0\0"
    if little_endian:  # Pillow writes big-endian; the same IFD, written as Intel order
        data = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0" + bytes([orientation, 0, 0, 0]) + b"\0\0\0\0"
    return data


def test_chunks_round_trip_in_order_with_identical_payloads():
    section = encode_section(CHUNKS)
    assert section[0] == SECTION_VERSION
    assert decode_section(section) == CHUNKS


def test_a_newer_section_version_is_a_version_error():
    section = bytearray(encode_section(CHUNKS))
    section[0] = SECTION_VERSION + 1
    with pytest.raises(VersionError, match=f"metadata section version {SECTION_VERSION + 1} is not supported"):
        decode_section(bytes(section))


@pytest.mark.parametrize("section, message", [
    (b"", "metadata section is empty"),
    (bytes([SECTION_VERSION]), "lists no chunk"),
    (bytes([SECTION_VERSION]) + b"IDAT" + write_varint(0), "not a PNG ancillary chunk type"),
    (bytes([SECTION_VERSION]) + b"tE1t" + write_varint(0), "not a PNG ancillary chunk type"),
    (bytes([SECTION_VERSION]) + b"text" + write_varint(0), "not a PNG ancillary chunk type"),  # reserved bit set
    (bytes([SECTION_VERSION]) + b"tEXt", "cut short"),
    (bytes([SECTION_VERSION]) + b"tEXt" + write_varint(5) + b"abcd", "claims 5 bytes"),
    (bytes([SECTION_VERSION]) + b"tEXt" + write_varint(1 << 62) + b"abcd", "claims"),
    (bytes([SECTION_VERSION]) + b"tEXt" + write_varint(1) + b"ab", "not a PNG ancillary"),  # trailing junk
])
def test_damaged_sections_are_format_errors(section, message):
    with pytest.raises(FormatError, match=message):
        decode_section(section)


def test_the_writer_refuses_what_the_reader_would():
    with pytest.raises(ValueError, match="at least one chunk"):
        encode_section(())
    with pytest.raises(ValueError, match="not a PNG ancillary chunk type"):
        encode_section((Chunk(b"IDAT", b""),))
    with pytest.raises(ValueError, match="at most"):
        encode_section((Chunk(b"zTXt", bytes(MAX_METADATA_BYTES)),))


def test_info_summary_names_profile_size_orientation_xmp_and_text_keywords():
    chunks = (CHUNKS[0], Chunk(b"eXIf", _exif(6)), *CHUNKS[2:5])
    assert describe_metadata(chunks) == (
        "ICC profile (3,144 bytes), EXIF (orientation 6), XMP (1,020 bytes), text: Title, Author")
    assert describe_metadata(()) == "none"


def test_info_summary_of_colour_resolution_and_time_chunks():
    chunks = (Chunk(b"sRGB", b"\0"), Chunk(b"gAMA", (45455).to_bytes(4, "big")), Chunk(b"cHRM", bytes(32)),
              Chunk(b"pHYs", (11811).to_bytes(4, "big") * 2 + b"\x01"), Chunk(b"tIME", b"\x07\xe8\x02\x1d\x0c\x22\x38"),
              Chunk(b"sBIT", b"\x08\x08\x08"), Chunk(b"iCCP", b"name\0\0not zlib"))
    assert describe_metadata(chunks) == (
        "sRGB, gamma 0.45455, chromaticities, resolution 300x300 dpi, time 2024-02-29 12:34:56, "
        "sBIT chunk (3 bytes), ICC profile (unreadable, 14 bytes)")


@pytest.mark.parametrize("little_endian", [False, True])
def test_exif_orientation_is_read_in_either_byte_order(little_endian):
    assert exif_orientation(_exif(6, little_endian)) == 6


@pytest.mark.parametrize("exif", [b"", b"junk", b"MM\0*\xff\xff\xff\xff", b"II*\0\x08\0\0\0\x05\0", Image.Exif().tobytes()[6:]])
def test_exif_without_a_readable_orientation_has_none(exif):
    assert exif_orientation(exif) is None
