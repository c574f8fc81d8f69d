import pytest
import torch

from lossless_bpg.residual import coder
from lossless_bpg.residual.mixture import integer_cdf


def test_round_trip_of_random_symbols():
    m, lo, hi = 5000, -12, 12
    g = torch.Generator().manual_seed(0)
    cdf = integer_cdf(torch.randn(3, m, generator=g), torch.randn(3, m, generator=g) * 3,
                      torch.zeros(3, m), lo, hi)
    symbols = torch.randint(0, hi - lo + 1, (m,), generator=g, dtype=torch.int16)
    data = coder.encode(cdf, symbols)
    assert torch.equal(coder.decode(cdf, data), symbols)


def test_symbols_outside_the_alphabet_are_refused():
    cdf = integer_cdf(torch.zeros(1, 4), torch.zeros(1, 4), torch.zeros(1, 4), 0, 2)
    with pytest.raises(ValueError, match="outside"):
        coder.encode(cdf, torch.tensor([0, 1, 2, 3], dtype=torch.int16))


def test_a_well_predicted_sequence_codes_small():
    m = 10000
    cdf = integer_cdf(torch.zeros(1, m), torch.zeros(1, m), torch.full((1, m), -2.0), -5, 5)
    data = coder.encode(cdf, torch.full((m,), 5, dtype=torch.int16))
    assert len(data) < m / 8 * 0.2
