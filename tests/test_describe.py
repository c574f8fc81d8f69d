"""What ``info`` prints about a file."""

from lossless_bpg.container import unpack
from lossless_bpg.describe import describe

from .conftest import ROOT

DATA = ROOT / "tests" / "data"


def test_info_says_when_a_file_uses_the_error_feedback():
    with_feedback = unpack((DATA / "feedback_sample.lbpg").read_bytes())
    assert "  error feedback     on" in describe(with_feedback, 0)
    without = unpack((DATA / "v3_fast_sample.lbpg").read_bytes())
    assert "  error feedback     off" in describe(without, 0)


def test_info_names_the_residual_model_or_says_this_installation_lacks_it():
    import dataclasses

    f = unpack((DATA / "v3_fast_sample.lbpg").read_bytes())
    assert "  residual model     2c7ee67f527c3930 (fast)" in describe(f, 0)
    other = dataclasses.replace(f, header=dataclasses.replace(f.header, model_id=bytes.fromhex("0123456789abcdef")))
    assert "  residual model     0123456789abcdef (not in this installation)" in describe(other, 0)
