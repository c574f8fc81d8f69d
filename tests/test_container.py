from dataclasses import replace

import numpy as np
import pytest

from lossless_bpg.container import (
    FLAG_ERROR_FEEDBACK,
    FLAG_METADATA,
    MIN_TILE_SIZE,
    Header,
    LbpgFile,
    TiledFile,
    TiledHeader,
    pack,
    pack_tiled,
    pixel_checksum,
    sequential_file,
    tile_grid,
    unpack,
    with_metadata,
)
from lossless_bpg.errors import FormatError, VersionError
from lossless_bpg.metadata import SECTION_VERSION, Chunk
from lossless_bpg.varint import write_varint


def _sample() -> LbpgFile:
    header = Header(
        backend_id=1, q=27, model_id=bytes(range(8)), height=512, width=768, greyscale=False,
        residual_ranges=((-40, 37), (-255, 255), (0, 0)),
        checksum=pixel_checksum(np.zeros((2, 2, 3), np.uint8)),
    )
    return LbpgFile(header, b"lossy-bytes" * 5, (b"r" * 7, b"g" * 3, b""), (b"e", b"", b""),
                    ((-64,), (5, -3, 0, 127, -128, 1, 2, 3, 4, 5), ()), (12, 0, 255))


def test_pack_unpack_round_trip():
    f = _sample()
    assert unpack(pack(f)) == f


def test_the_error_feedback_flag_round_trips():
    f = _sample()
    flagged = replace(f, header=replace(f.header, error_feedback=True))
    data = pack(flagged)
    assert data[5] & FLAG_ERROR_FEEDBACK
    assert unpack(data) == flagged


def test_every_truncation_is_detected():
    data = pack(_sample())
    for n in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:n])


def test_every_single_byte_corruption_is_detected():
    data = pack(_sample())
    for i in range(len(data)):
        broken = bytearray(data)
        broken[i] ^= 0x5A
        with pytest.raises(FormatError):
            unpack(bytes(broken))


def test_trailing_bytes_are_rejected():
    with pytest.raises(FormatError, match="trailing"):
        unpack(pack(_sample()) + b"\x00")


def test_unknown_version_says_which_versions_are_readable():
    data = bytearray(pack(_sample()))
    data[4] = 9
    with pytest.raises(VersionError, match="version 9 is not supported.*reads versions 2, 3"):
        unpack(bytes(data))


def test_version_1_files_get_a_clear_retirement_message():
    data = bytearray(pack(_sample()))
    data[4] = 1
    with pytest.raises(VersionError, match="version 1 is no longer supported.*floating-point"):
        unpack(bytes(data))


def test_out_of_range_stream_parameters_are_not_written():
    import dataclasses

    with pytest.raises(ValueError, match="half-width"):
        pack(dataclasses.replace(_sample(), half_widths=(12, 0, 256)))


def test_out_of_range_adaptation_parameters_are_not_written():
    import dataclasses

    with pytest.raises(ValueError, match="adaptation"):
        pack(dataclasses.replace(_sample(), adaptations=((128,), (), ())))
    with pytest.raises(ValueError, match="adaptation"):
        pack(dataclasses.replace(_sample(), adaptations=((0,) * 33, (), ())))


def test_version_2_files_read_as_one_log_scale_offset_per_stream():
    """Version 2 stored one signed byte per stream (the log-scale shift) where version 3 stores
    a count and that many bytes; a v2 file reads as offset-only adaptations."""
    from tests.conftest import ROOT

    f = unpack((ROOT / "tests" / "data" / "v2_sample.lbpg").read_bytes())
    assert f.header.version == 2
    assert all(len(a) == 1 for a in f.adaptations) and any(a != (0,) for a in f.adaptations)


def test_not_an_lbpg_file():
    with pytest.raises(FormatError, match="not an lbpg file"):
        unpack(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


METADATA = (Chunk(b"iCCP", b"ICC Profile\0\0" + bytes(40)), Chunk(b"eXIf", b"MM\0*" + bytes(20)),
            Chunk(b"tEXt", b"Title\0x"))


def _sequential(height: int = 16, width: int = 20) -> LbpgFile:
    return sequential_file(1, 30, bytes(range(8)), height, width, False, bytes(16), b"lossy" * 3, b"residual")


def _tiled() -> TiledFile:
    grid = tile_grid(16, 300, MIN_TILE_SIZE)
    header = TiledHeader(1, bytes(range(8)), 16, 300, False, MIN_TILE_SIZE, bytes(16))
    return TiledFile(header, tuple(_sequential(t.height, t.width) for t in grid))


def _packed(f: LbpgFile | TiledFile) -> bytes:
    return pack_tiled(f) if isinstance(f, TiledFile) else pack(f)


LAYOUTS = {"v3": _sample, "v6": _sequential, "v4 tiled": _tiled}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_metadata_round_trips_in_every_layout_under_its_flag(layout):
    f = replace(LAYOUTS[layout](), metadata=METADATA)
    data = _packed(f)
    assert data[5] & FLAG_METADATA
    assert unpack(data) == f


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_file_without_metadata_has_neither_flag_nor_section(layout):
    f = LAYOUTS[layout]()
    data = _packed(f)
    assert not data[5] & FLAG_METADATA
    assert with_metadata(with_metadata(data, METADATA), ()) == data


def test_a_tiled_file_holds_its_metadata_once_in_its_own_header():
    data = with_metadata(_packed(_tiled()), METADATA)
    f = unpack(data)
    assert isinstance(f, TiledFile) and f.metadata == METADATA
    assert not any(t.metadata for t in f.tiles)
    assert data.count(b"Title\0x") == 1


def test_a_tile_carrying_metadata_is_refused_both_ways():
    from tests.fuzzing import TiledParts

    f = _tiled()
    flagged = replace(f, tiles=(replace(f.tiles[0], metadata=METADATA), *f.tiles[1:]))
    with pytest.raises(ValueError, match="not in its tiles"):
        pack_tiled(flagged)
    parts = TiledParts.of(pack_tiled(f))  # rebuilt around the flagged tile, with valid lengths and CRC
    parts.tiles[0] = pack(flagged.tiles[0])
    with pytest.raises(FormatError, match="tile 0 holds metadata"):
        unpack(parts.to_bytes())


@pytest.mark.parametrize("layout", ["v3", "v6"])
def test_every_truncation_and_byte_corruption_of_a_file_with_metadata_is_detected(layout):
    data = _packed(replace(LAYOUTS[layout](), metadata=METADATA))
    for n in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:n])
    for i in range(len(data)):
        broken = bytearray(data)
        broken[i] ^= 0x5A
        with pytest.raises(FormatError):
            unpack(bytes(broken))


def test_a_newer_metadata_section_behind_a_valid_header_crc_is_a_version_error(monkeypatch):
    import lossless_bpg.metadata

    monkeypatch.setattr(lossless_bpg.metadata, "SECTION_VERSION", SECTION_VERSION + 1)
    newer = pack(replace(_sequential(), metadata=METADATA))
    monkeypatch.undo()
    with pytest.raises(VersionError, match=f"metadata section version {SECTION_VERSION + 1} is not supported"):
        unpack(newer)


def test_a_forged_metadata_length_is_refused_without_reading_on():
    data = bytearray(pack(replace(_sequential(), metadata=METADATA)))
    at = data.index(bytes([SECTION_VERSION]) + b"iCCP") - 1  # the one-byte length before the section
    for forged in (write_varint(1 << 40), write_varint(len(data))):
        with pytest.raises(FormatError, match="impossible metadata section length"):
            unpack(bytes(data[:at]) + forged + bytes(data[at + 1 :]))
