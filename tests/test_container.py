from dataclasses import replace

import numpy as np
import pytest

from lossless_bpg.container import FLAG_ERROR_FEEDBACK, Header, LbpgFile, pack, pixel_checksum, unpack
from lossless_bpg.errors import FormatError, VersionError


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
