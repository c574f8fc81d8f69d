import math

import pytest
import torch

from lossless_bpg.residual.mixture import CDF_TOTAL, code_length_bits, integer_cdf, log_prob


def _random_mixture(m, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(k, m, generator=g),
        torch.randn(k, m, generator=g) * 5,
        torch.randn(k, m, generator=g).clamp(-3, 4),
    )


@pytest.mark.parametrize("lo,hi", [(-3, 2), (-255, 255), (0, 1), (-40, 60)])
def test_integer_cdf_is_valid_for_the_coder(lo, hi):
    logits, means, log_scales = _random_mixture(500)
    cdf = integer_cdf(logits, means, log_scales, lo, hi).to(torch.int32) & 0xFFFF
    levels = hi - lo + 1
    assert cdf.shape == (500, levels + 1)
    assert (cdf[:, 0] == 0).all()
    body = cdf[:, :levels]
    assert (body[:, 1:] > body[:, :-1]).all(), "CDF must be strictly increasing"
    assert (body[:, -1] < CDF_TOTAL).all(), "last symbol needs room below 2**16"


def test_discrete_probabilities_sum_to_one_over_the_range():
    logits, means, log_scales = (t.view(4, 1, 1, 1) for t in _random_mixture(1))
    symbols = torch.arange(-20, 21, dtype=torch.float32).view(-1, 1, 1)
    p = torch.cat(
        [log_prob(logits.view(1, 4, 1, 1), means.view(1, 4, 1, 1), log_scales.view(1, 4, 1, 1),
                  s.view(1, 1, 1), -20, 20) for s in symbols]
    ).exp()
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-4)


def test_integer_cdf_code_length_matches_the_float_model():
    m = 2000
    logits, means, log_scales = _random_mixture(m, seed=3)
    lo, hi = -30, 30
    g = torch.Generator().manual_seed(9)
    cdf = integer_cdf(logits, means, log_scales, lo, hi)
    # Draw typical symbols from the coded distribution itself.
    body = (cdf.to(torch.int32) & 0xFFFF)[:, : hi - lo + 1].contiguous()
    u = torch.randint(0, CDF_TOTAL, (m, 1), generator=g, dtype=torch.int32)
    symbols = torch.searchsorted(body, u, right=True).squeeze(1) - 1
    exact = code_length_bits(cdf, symbols)
    lp = log_prob(logits.T.reshape(m, 4, 1, 1), means.T.reshape(m, 4, 1, 1),
                  log_scales.T.reshape(m, 4, 1, 1), (symbols + lo).float().view(m, 1, 1), lo, hi)
    model_bits = float(-lp.sum() / math.log(2))
    assert abs(exact - model_bits) / model_bits < 0.02


def test_integer_cdf_is_bit_identical_across_thread_counts():
    logits, means, log_scales = _random_mixture(70000, seed=5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = integer_cdf(logits, means, log_scales, -50, 50)
        torch.set_num_threads(max(2, before))
        b = integer_cdf(logits, means, log_scales, -50, 50)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(a, b)
