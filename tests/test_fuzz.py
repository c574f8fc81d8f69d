"""Fuzzing the container parser and the decoder with Hypothesis (the fuzz target and oracle are
in tests/fuzzing.py): every damaged file must end in a LosslessBpgError or in the exact
original pixels.

CI runs the default profile: derandomized (the same inputs every run), a few seconds. A long
run: ``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/test_fuzz.py`` (random seeds,
many more inputs), or scripts/fuzz_decoder.py for counted runs of 100,000 inputs and more.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import lossless_bpg
from lossless_bpg.container import MAX_SIDE, unpack
from lossless_bpg.errors import (
    ChecksumError,
    FormatError,
    ImageTooLargeError,
    LosslessBpgError,
)
from lossless_bpg.varint import read_varint

from .fuzzing import (
    Parts,
    check_decode,
    check_unpack,
    mutate,
    mutate_fields,
    mutate_metadata,
    parts_of,
    samples,
    varint,
)

settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long", derandomize=False, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
settings.load_profile("long" if LONG else "ci")
#: The small RGB and greyscale files of both residual modes, which the decoder fuzz tests damage.
SMALL = ("rgb16", "grey16", "seq_rgb16", "seq_grey16")
#: Inputs per test: the parser is fast, a full decode of a 16x16 file takes about half a second.
UNPACK_EXAMPLES = 20_000 if LONG else 400
DECODE_EXAMPLES = 500 if LONG else 20


class HypothesisSource:
    """tests.fuzzing.Source drawing from Hypothesis, which then shrinks a failing input."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def bytes(self, n: int) -> bytes:
        return self.data.draw(st.binary(min_size=n, max_size=n))


@pytest.fixture(scope="module")
def files():
    return samples()


@settings(max_examples=UNPACK_EXAMPLES)
@given(st.data())
def test_parser_ends_every_damaged_file_in_a_format_error_or_a_consistent_parse(data):
    files = samples()
    sample = files[data.draw(st.integers(0, len(files) - 1))]
    parsed = check_unpack(mutate(sample.data, sample.parts, HypothesisSource(data)))
    event("parsed" if parsed is not None else "FormatError")


@settings(max_examples=UNPACK_EXAMPLES // 4)
@given(st.data())
def test_a_damaged_metadata_section_ends_in_a_format_error_or_a_consistent_parse(data):
    """Every layout's metadata section damaged behind a valid header CRC (and often a valid
    length): a FormatError (VersionError for another section version) or a parse that packs
    back the same."""
    with_metadata = [s for s in samples() if s.name.endswith("_meta")]
    sample = with_metadata[data.draw(st.integers(0, len(with_metadata) - 1))]
    parts = parts_of(sample.data)
    parts.metadata = mutate_metadata(parts.metadata, HypothesisSource(data))
    event("parsed" if check_unpack(parts.to_bytes()) is not None else "FormatError")


@settings(max_examples=UNPACK_EXAMPLES // 4)
@given(st.binary(max_size=300), st.booleans())
def test_parser_on_random_bytes(blob, with_magic):
    check_unpack((b"LBPG\x03" if with_magic else b"") + blob)


@settings(max_examples=DECODE_EXAMPLES)
@given(st.data())
def test_decoder_ends_every_damaged_file_in_an_error_or_the_exact_pixels(data):
    """Damage behind valid lengths and CRCs, so that it reaches the lossy and arithmetic
    decoders (16x16 files: each decode is fast)."""
    small = [s for s in samples() if s.name in SMALL]
    sample = small[data.draw(st.integers(0, len(small) - 1))]
    damaged = mutate_fields(sample.parts, HypothesisSource(data), deep=True).to_bytes()
    error = check_decode(damaged, sample.pixels, lossless_bpg.decompress)
    event("exact" if error is None else type(error).__name__)  # --hypothesis-show-statistics


@settings(max_examples=DECODE_EXAMPLES // 2)
@given(st.data())
def test_decoder_ends_every_damaged_tiled_file_in_an_error_or_the_exact_pixels(data):
    """Damage inside the tiles of a tiled file (two 16x150 tiles; both residual modes), tiles
    swapped, copied, dropped or repeated, behind a valid tiled header."""
    tiled = [s for s in samples() if s.name in ("tiled", "seq_tiled")]
    sample = tiled[data.draw(st.integers(0, len(tiled) - 1))]
    damaged = mutate_fields(sample.parts, HypothesisSource(data), deep=True).to_bytes()
    error = check_decode(damaged, sample.pixels, lossless_bpg.decompress)
    event("exact" if error is None else type(error).__name__)


def test_seed_files_decode_exactly(files):
    assert {"tiled", "seq_tiled", "rgb16_meta", "seq_rgb16_meta", "seq_tiled_meta", *SMALL} <= {s.name for s in files}
    for sample in files:
        assert check_decode(sample.data, sample.pixels, lossless_bpg.decompress) is None
        assert parts_of(sample.data).to_bytes() == sample.data  # the fuzzer's writer is faithful


def _with(sample, **changes) -> bytes:
    parts = parts_of(sample.data)
    for name, value in changes.items():
        setattr(parts, name, value)
    return parts.to_bytes()


def _named(files, name):
    return next(s for s in files if s.name == name)


BOTH_MODES = pytest.mark.parametrize("name", ["rgb16", "seq_rgb16"])


@BOTH_MODES
def test_absurd_sizes_are_refused_without_allocating(files, name):
    rgb = _named(files, name)
    for height, width in [(1 << 40, 1 << 40), (1, 1 << 62), (1 << 63, 1), (100_000, 100_000)]:
        with pytest.raises(LosslessBpgError):
            lossless_bpg.decompress(_with(rgb, height=varint(height), width=varint(width)))
    for value in (1 << 64, (1 << 70) - 1):  # 10-byte varints: parsed, then refused as too large
        with pytest.raises(FormatError, match="impossible image size"):
            lossless_bpg.decompress(_with(rgb, height=varint(value)))
    with pytest.raises(ImageTooLargeError):  # the largest side a header may declare
        lossless_bpg.decompress(_with(rgb, height=varint(MAX_SIDE), width=varint(MAX_SIDE)))
    with pytest.raises(FormatError, match="varint too long"):
        unpack(_with(rgb, height=varint(1 << 200)))
    with pytest.raises(FormatError, match="stores a 16x16 picture, expected 17x16"):
        lossless_bpg.decompress(_with(rgb, width=varint(17)))


def test_sections_swapped_behind_valid_crcs_are_caught(files):
    rgb = files[0]
    parts = Parts.of(rgb.data)
    coded = [i for i, s in enumerate(parts.sections) if s and i > 0]
    parts.sections[coded[0]], parts.sections[coded[1]] = parts.sections[coded[1]], parts.sections[coded[0]]
    with pytest.raises(LosslessBpgError):
        lossless_bpg.decompress(parts.to_bytes())
    seq = parts_of(_named(files, "seq_rgb16").data)
    seq.sections.reverse()  # the residual stream where the lossy layer belongs
    with pytest.raises(LosslessBpgError):
        lossless_bpg.decompress(seq.to_bytes())


@BOTH_MODES
def test_greyscale_flag_on_a_colour_file_is_an_error_not_one_channel(files, name):
    """Found by the fuzzer: a colour file whose header claims greyscale (with valid CRCs) used to
    decode to its red channel alone; the checksum covers all three channels, which differ."""
    rgb = _named(files, name)
    forged = _with(rgb, flags=b"\x01")
    with pytest.raises(FormatError, match="greyscale"):
        lossless_bpg.decompress(forged)
    from lossless_bpg.codec import decompress as codec_decompress

    with pytest.raises(FormatError, match="greyscale"):
        codec_decompress(forged)


@BOTH_MODES
def test_a_damaged_residual_stream_is_an_error(files, name):
    parts = parts_of(_named(files, name).data)
    longest = max(range(1, len(parts.sections)), key=lambda i: len(parts.sections[i]))
    section = bytearray(parts.sections[longest])
    section[len(section) // 2] ^= 0x10
    parts.sections[longest] = bytes(section)
    with pytest.raises((ChecksumError, FormatError)):
        lossless_bpg.decompress(parts.to_bytes())


@BOTH_MODES
def test_a_lossy_picture_larger_than_the_header_says_is_refused_before_it_is_decoded(files, name):
    from lossless_bpg.lossy import get_lossy_codec

    hidden = get_lossy_codec("hevc").encode(np.full((1024, 1024, 3), 128, np.uint8), 51)
    _, pos = read_varint(hidden, 0)
    _, pos = read_varint(hidden, pos)
    parts = parts_of(_named(files, name).data)
    parts.sections[0] = varint(16) + varint(16) + hidden[pos:]  # stored size: the header's 16x16
    with pytest.raises(FormatError, match="does not decode"):  # FFmpeg's max_pixels refuses it
        lossless_bpg.decompress(parts.to_bytes())
    parts.sections[0] = hidden  # stored size 1024x1024, header 16x16: refused before decoding
    with pytest.raises(FormatError, match="expected 16x16"):
        lossless_bpg.decompress(parts.to_bytes())
