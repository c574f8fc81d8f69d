import pytest
import torch

from lossless_bpg.residual import coder
from lossless_bpg.residual.exact_cdf import window_cdf

from .helpers import random_mixtures


def _cdf(m, half_width=6, spread=3.0, log_scale=None):
    _, mix = random_mixtures(m, k=3, spread=spread, log_scale=log_scale)
    return window_cdf(mix, torch.zeros(m, dtype=torch.long), half_width, -100, 100)


def test_round_trip_of_random_symbols():
    m = 5000
    cdf = _cdf(m)
    g = torch.Generator().manual_seed(1)
    symbols = torch.randint(0, cdf.shape[1] - 1, (m,), generator=g, dtype=torch.int16)
    assert torch.equal(coder.decode(cdf, coder.encode(cdf, symbols)), symbols)


def test_symbols_outside_the_alphabet_are_refused():
    cdf = _cdf(4, half_width=1)  # 5 symbols
    with pytest.raises(ValueError, match="outside"):
        coder.encode(cdf, torch.tensor([0, 1, 2, 5], dtype=torch.int16))


def test_a_well_predicted_sequence_codes_small():
    m = 10000
    cdf = _cdf(m, spread=0.0, log_scale=-2.0)
    centre = (cdf.shape[1] - 1) // 2
    data = coder.encode(cdf, torch.full((m,), centre, dtype=torch.int16))
    assert len(data) < m / 8 * 0.1
    assert coder.code_length_bits(cdf, torch.full((m,), centre)) == pytest.approx(8 * len(data), rel=0.05)
