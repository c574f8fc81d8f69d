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
