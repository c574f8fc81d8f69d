"""Files written by earlier releases keep decoding, bit for bit, forever."""

import hashlib

import numpy as np
import pytest
from PIL import Image

import lossless_bpg
from lossless_bpg import decompress
from lossless_bpg.container import FLAG_METADATA, unpack, with_metadata

from .conftest import ROOT

DATA = ROOT / "tests" / "data"
#: tests/data/v3_fast_sample.*: written by lossless_bpg 0.3.2 with its default model
#: (scripts/make_compat_sample.py; a 64x64 crop at (96, 96) of the training crop usc_0000_0.png).
V3_MODEL_ID = "2c7ee67f527c3930"
V3_CROP_SHA256 = "84bf1264b48e262eb612b375b013c4859854ef8139409d9e897b02f6e712f939"


def test_a_file_written_by_0_3_2_still_decodes_exactly():
    data = (DATA / "v3_fast_sample.lbpg").read_bytes()
    header = unpack(data).header
    assert (header.version, header.model_id.hex(), header.width, header.height) == (3, V3_MODEL_ID, 64, 64)
    pixels = decompress(data)  # the model is found by the id in the file
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == V3_CROP_SHA256
    assert np.array_equal(pixels, np.asarray(Image.open(DATA / "v3_fast_sample.png").convert("RGB")))


def test_the_0_3_model_is_selectable_as_fast():
    data = (DATA / "v3_fast_sample.lbpg").read_bytes()
    assert hashlib.sha256(decompress(data, model="fast").tobytes()).hexdigest() == V3_CROP_SHA256


def test_a_file_with_a_model_update_as_first_written_still_decodes_exactly():
    # tests/data/v5_update_sample.lbpg: the same crop, written when container version 5 was
    # introduced (tests/residual/helpers.py:file_with_update, a random update of seed 11, |v| <= 2)
    data = (DATA / "v5_update_sample.lbpg").read_bytes()
    f = unpack(data)
    assert (f.header.version, f.header.model_id.hex()) == (5, V3_MODEL_ID) and f.model_update
    assert hashlib.sha256(decompress(data).tobytes()).hexdigest() == V3_CROP_SHA256


def test_a_file_with_error_feedback_as_first_written_still_decodes_exactly():
    # tests/data/feedback_sample.lbpg: tests/residual/test_backward.py's 128x128 textured image
    # (seed 3) at Q 24, written when the error feedback (header flag bit 1) was introduced; it
    # also carries a model update
    data = (DATA / "feedback_sample.lbpg").read_bytes()
    f = unpack(data)
    assert f.header.error_feedback and f.model_update and f.header.model_id.hex() == V3_MODEL_ID
    assert hashlib.sha256(decompress(data).tobytes()).hexdigest() == (
        "67e4faa8f890d88fabdd3e0ab31b9ae00c84c869f5450352aa38c8c08508d853"
    )


@pytest.mark.parametrize("name, q, model_id, lic_id", [
    # tests/data/v5_lic_sample.lbpg: the same crop, written by 0.4.0 with `--backend lic` at q 40
    # (scripts/make_compat_sample.py --backend lic --q 40)
    ("v5_lic_sample", 40, "dd8a40e781312328", "4c5c8bbea4d93575"),
    # tests/data/v5_lic041_sample.lbpg: the same crop, written by 0.4.1 (its retrained pair) at q 46
    ("v5_lic041_sample", 46, "c82794c56b51e745", "254bdead9e09c186"),
    # tests/data/v5_lic042_sample.lbpg: the same crop, written by 0.4.2 (d4d4527) at q 46
    ("v5_lic042_sample", 46, "3564e5bc31be1815", "5e9cec1dc97d4227"),
    # tests/data/v5_lic043_sample.lbpg: the same crop, written by 0.4.3 (a0eeee8) at q 46
    ("v5_lic043_sample", 46, "2d8b8700c064f7f5", "cd5701ce21823001"),
])
def test_files_written_with_earlier_learned_lossy_layers_still_decode_exactly(name, q, model_id, lic_id):
    # every release's lic model and residual model stay shipped under their ids when newer ones
    # are trained
    data = (DATA / f"{name}.lbpg").read_bytes()
    f = unpack(data)
    assert (f.header.backend_id, f.header.q, f.header.model_id.hex()) == (3, q, model_id)
    assert f.lossy[:8].hex() == lic_id  # the lic model's id leads its payload
    assert hashlib.sha256(decompress(data).tobytes()).hexdigest() == V3_CROP_SHA256


@pytest.mark.parametrize("name, model_id", [
    # tests/data/v6_seq1_sample.lbpg, v6_seq2_sample.lbpg: the same crop, written by 0.6.0's
    # sequential coder at Q 51 (scripts/make_compat_sample.py --q 51 --model seq1 / seq2);
    # v6_seq3_sample.lbpg: with the set seq3 itself (sequential.layer.code_image at Q 51 without
    # its alternative). The sequential coder's model is its C code: these fail when seqcore.c
    # changes the coded bytes without a new CORE_VERSION (and new sets).
    ("v6_seq1_sample", "8fe0059b6071c49a"),
    ("v6_seq2_sample", "8d88b17674b5dbbd"),
    ("v6_seq3_sample", "73dacbd527edeb6c"),
])
def test_files_of_the_sequential_coder_as_first_written_still_decode_exactly(name, model_id):
    data = (DATA / f"{name}.lbpg").read_bytes()
    header = unpack(data).header
    assert (header.version, header.q, header.model_id.hex(), header.width, header.height) == (6, 51, model_id, 64, 64)
    pixels = decompress(data)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == V3_CROP_SHA256


def test_files_without_metadata_are_what_0_6_0_wrote_byte_for_byte():
    # keeping metadata changed nothing for a file without any: the crop (v3_fast_sample.png), coded
    # as v6_seq1_sample / v6_seq2_sample were, gives the very same bytes
    crop = np.asarray(Image.open(DATA / "v3_fast_sample.png").convert("RGB"))
    for name in ("seq1", "seq2"):
        data = lossless_bpg.compress(crop, quality=51, model=name)
        assert not data[5] & FLAG_METADATA
        assert data == (DATA / f"v6_{name}_sample.lbpg").read_bytes()


def test_a_file_with_metadata_as_first_written_still_decodes_exactly():
    # tests/data/v6_metadata_sample.lbpg: v6_seq2_sample's crop with seven chunks of metadata
    # (an sRGB profile, gamma, EXIF, XMP, text, compressed text, time), written when files first
    # kept metadata (scripts/make_compat_sample.py --q 51 --model seq2 --metadata)
    data = (DATA / "v6_metadata_sample.lbpg").read_bytes()
    f = unpack(data)
    assert f.header.version == 6 and data[5] & FLAG_METADATA
    assert [c.kind for c in f.metadata] == [b"iCCP", b"gAMA", b"eXIf", b"iTXt", b"tEXt", b"zTXt", b"tIME"]
    assert hashlib.sha256(b"".join(c.kind + c.data for c in f.metadata)).hexdigest() == (
        "ce19bdfd4b008fd7099bf1704669eb9727da83f2d3016b243b0b6ea972eebb8a"
    )
    assert hashlib.sha256(decompress(data).tobytes()).hexdigest() == V3_CROP_SHA256
    assert with_metadata(data, ()) == (DATA / "v6_seq2_sample.lbpg").read_bytes()  # the same layers
