"""Integer mixture CDFs: what the coder needs, what the model means, the same everywhere."""

import math

import numpy as np
import pytest
import torch

from lossless_bpg.residual import exact_cdf
from lossless_bpg.residual.coder import CDF_TOTAL, code_length_bits
from lossless_bpg.residual.exact_cdf import MEAN_BITS, escape_cdf, window_cdf
from lossless_bpg.residual.mixture import log_prob

from .helpers import UNIT, random_mixtures


def test_shipped_tables_equal_their_definition():
    shipped = exact_cdf.tables()
    for name, table in exact_cdf.generate_tables().items():
        assert np.array_equal(shipped[name].numpy(), table), name


def test_tables_are_monotone_where_the_functions_are():
    t = exact_cdf.tables()
    assert (t["sigmoid"].diff() >= 0).all() and (t["tanh"].diff() >= 0).all()
    assert (t["inv_scale"].diff() <= 0).all() and (t["exp_neg"].diff() <= 0).all()


def _valid(cdf: torch.Tensor, symbols: int) -> None:
    c = cdf.to(torch.int32) & 0xFFFF
    assert c.shape[1] == symbols + 1
    assert (c[:, 0] == 0).all()
    body = c[:, :symbols]
    assert (body[:, 1:] > body[:, :-1]).all(), "CDF must be strictly increasing"
    assert (body[:, -1] < CDF_TOTAL).all(), "last symbol needs room below 2**16"


@pytest.mark.parametrize("lo,hi,half_width", [(-3, 2, 1), (-255, 255, 16), (0, 1, 4), (-40, 60, 255)])
def test_window_cdfs_are_valid_for_the_coder(lo, hi, half_width):
    _, mix = random_mixtures(500, spread=20)
    centers = mix.centers(lo, hi)
    assert ((centers >= lo) & (centers <= hi)).all()
    _valid(window_cdf(mix, centers, half_width, lo, hi), 2 * half_width + 3)


@pytest.mark.parametrize("below", [True, False])
def test_escape_cdfs_are_valid_for_the_coder(below):
    _, mix = random_mixtures(300, spread=20)
    lo, hi, half_width = -60, 70, 3
    centers = mix.centers(lo, hi)
    side = torch.full((300,), below)
    _valid(escape_cdf(mix, centers, side, half_width, lo, hi, 80), 80)


def _sample(params, lo, hi):
    """Values drawn from the mixtures themselves (typical symbols, as in real coding)."""
    logits, means, log_scales = params
    g = torch.Generator().manual_seed(9)
    k = torch.multinomial(torch.softmax(logits.T.double() / UNIT, 1), 1, generator=g)
    u = torch.rand(k.shape, generator=g, dtype=torch.float64).clamp(1e-9, 1 - 1e-9)
    mean = means.T.gather(1, k).double() / (1 << MEAN_BITS)
    scale = torch.exp(log_scales.T.gather(1, k).double() / UNIT)
    x = mean + scale * torch.log(u / (1 - u))
    return torch.round(x).clamp(lo, hi).long().view(-1)


def _float_bits(params, symbols_values, lo, hi):
    logits, means, log_scales = params
    m = logits.shape[1]
    view = lambda t: t.T.reshape(m, -1, 1, 1).double()
    lp = log_prob(view(logits) / UNIT, view(means) / (1 << MEAN_BITS), view(log_scales) / UNIT,
                  symbols_values.double().view(m, 1, 1), lo, hi)
    return float(-lp.sum() / math.log(2))


def test_window_plus_escape_code_length_matches_the_float_model():
    """Coding each value as a window symbol and, outside the window, an escape costs what the
    mixture says the value costs (the escape is coded conditioned on its side)."""
    m, lo, hi, half_width = 4000, -30, 30, 2
    params, mix = random_mixtures(m, seed=3, spread=8)
    values = _sample(params, lo, hi)
    centers = mix.centers(lo, hi)
    symbols = (values - centers + half_width + 1).clamp(0, 2 * half_width + 2)
    bits = code_length_bits(window_cdf(mix, centers, half_width, lo, hi), symbols)
    out = (symbols == 0) | (symbols == 2 * half_width + 2)
    below = symbols[out] == 0
    c = centers[out]
    esc = torch.where(below, values[out] - lo, values[out] - c - half_width - 1)
    bits += code_length_bits(escape_cdf(mix.select(torch.nonzero(out).view(-1)), c, below, half_width, lo, hi, 61), esc)
    model = _float_bits(params, values, lo, hi)
    assert abs(bits - model) / model < 0.01


def test_cdfs_are_bit_identical_across_thread_counts():
    _, mix = random_mixtures(70000, seed=5, spread=10)
    centers = mix.centers(-50, 50)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = window_cdf(mix, centers, 20, -50, 50)
        torch.set_num_threads(4)
        b = window_cdf(mix, centers, 20, -50, 50)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(a, b)


def test_window_centres_follow_the_first_heaviest_component_on_ties():
    from lossless_bpg.residual.exact_cdf import MEAN_BITS, Mixtures

    _, mix = random_mixtures(5000, 5, seed=4)
    weights = mix.weights.clone()
    weights[3, ::7] = weights[1, ::7]  # ties between two components
    weights[4, ::11] = weights.max(0).values[::11]  # a later component ties the heaviest
    mix = Mixtures(weights, mix.means, mix.inv_scales)
    first = weights.argmax(0, keepdim=True)  # torch documents: the first maximal index
    expected = torch.floor(mix.means.gather(0, first)[0] * 2.0**-MEAN_BITS + 0.5).long().clamp_(-255, 255)
    assert torch.equal(mix.centers(-255, 255), expected)
