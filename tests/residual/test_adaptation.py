import math

import pytest
import torch

from lossless_bpg.residual import adaptation
from lossless_bpg.residual.exact import OUTPUT_FRACTION_BITS as P
from lossless_bpg.residual.exact_cdf import LOG_SCALE_HI, LOG_SCALE_LO, MEAN_BITS

from .helpers import random_mixtures

K = 4


def _exact(m=500, seed=0):
    (logits, means, log_scales), _ = random_mixtures(m, K, seed)
    return logits, means, log_scales


def test_no_parameters_change_nothing():
    logits, means, log_scales = _exact()
    for params in ((), (0,), (0,) * adaptation.parameter_count(K)):
        out = adaptation.apply_exact(logits, means, log_scales, params)
        assert all(torch.equal(a, b) for a, b in zip(out, (logits, means, log_scales)))


def test_a_lone_offset_shifts_the_log_scales_as_version_2_did():
    logits, means, log_scales = _exact()
    _, _, shifted = adaptation.apply_exact(logits, means, log_scales, (-20,))
    expected = (log_scales - (20 << (P - 5))).clamp(LOG_SCALE_LO << P, LOG_SCALE_HI << P)
    assert torch.equal(shifted, expected)


def test_exact_and_float_recalibrations_agree_to_the_grid():
    logits, means, log_scales = _exact(seed=3)
    params = (9, -13, 40, 5, -7, 3, -2, 0, 11)
    exact = adaptation.apply_exact(logits, means, log_scales, params)
    real = adaptation.apply_float(
        logits.double() / (1 << P), means.double() / (1 << MEAN_BITS), log_scales.double() / (1 << P),
        torch.tensor(params, dtype=torch.float64).unsqueeze(1),
    )
    for got, want, grid in zip(exact, real, (P, MEAN_BITS, P)):
        assert torch.allclose(got.double() / (1 << grid), want, atol=2.0 / (1 << grid))


def test_too_many_parameters_for_the_model_are_refused():
    logits, means, log_scales = _exact()
    with pytest.raises(ValueError, match="at most"):
        adaptation.apply_exact(logits, means, log_scales, (1,) * (adaptation.parameter_count(K) + 1))


def _stream(scale_factor: float, mean_gain: float, m: int, seed: int = 0) -> adaptation.StreamSample:
    """A one-component model that predicts N(mean, s); the data are drawn around mean * gain
    with scales * ``scale_factor``: a miscalibration the fit should find."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(1, m, generator=g) * 8
    log_scales = torch.full((1, m), 0.5)
    u = torch.rand(m, generator=g).clamp(1e-6, 1 - 1e-6)
    target = (means[0] * mean_gain + math.exp(0.5) * scale_factor * torch.log(u / (1 - u))).round().clamp(-60, 60)
    pad = torch.zeros(K - 1, m)
    logits = torch.cat([torch.zeros(1, m), pad - 30])  # components 1.. carry no weight
    return adaptation.StreamSample(
        logits, torch.cat([means, pad]), torch.cat([log_scales, pad]), target, -60, 60, m
    )


def test_fit_finds_a_miscalibration_and_pays_for_its_parameters():
    wide = _stream(scale_factor=2.0, mean_gain=0.75, m=4000)
    fitted = adaptation.fit([wide])[0]
    assert len(fitted) == adaptation.parameter_count(K)
    offset = fitted[adaptation.LOG_SCALE_OFFSET] + 0.5 * 32 * fitted[adaptation.LOG_SCALE_GAIN] / 32
    assert offset / 32 == pytest.approx(math.log(2.0), abs=0.1)
    assert (1 + fitted[adaptation.MEAN_GAIN] / 32) == pytest.approx(0.75, abs=0.05)


def test_a_tiny_stream_sends_fewer_parameters_than_a_large_one():
    tiny, large = _stream(2.0, 0.75, m=12, seed=1), _stream(2.0, 0.75, m=4000, seed=2)
    fitted = adaptation.fit([tiny, large])
    assert len(fitted[0]) < len(fitted[1])


def test_the_fit_sample_spreads_over_rows_and_columns():
    """A large stream is sampled on a grid: a few whole rows of a big image can be atypical
    (all sky), and a fit to them once made a 2048x2048 photograph 18 % larger."""
    h, w = 512, 512
    rows = torch.arange(h).view(1, h, 1).expand(1, h, w).float()
    cols = torch.arange(w).view(1, 1, w).expand(1, h, w).float()
    mixture = [torch.zeros(1, K, h, w)] * 3
    sample = adaptation.StreamSample.of(*mixture, rows, -255, 255, 2048)
    assert 1500 <= sample.target.numel() <= 2048 and sample.count == h * w
    assert len(set(sample.target.tolist())) >= 40  # distinct rows
    sample = adaptation.StreamSample.of(*mixture, cols, -255, 255, 2048)
    assert len(set(sample.target.tolist())) >= 40  # distinct columns


def test_parameters_that_only_suit_the_fit_sample_are_not_sent():
    """The candidates are judged on other subpixels of the stream: a fit to an atypical sample
    (here the sampled grid is all zeros, the rest is noise) must not be sent."""
    h = w = 64
    g = torch.Generator().manual_seed(5)
    u = torch.rand(1, h, w, generator=g).clamp(1e-6, 1 - 1e-6)
    target = (3 * math.exp(0.5) * torch.log(u / (1 - u))).round().clamp(-60, 60)
    target[:, ::2, ::2] = 0
    logits = torch.zeros(1, K, h, w)
    logits[:, 1:] = -30
    log_scales = torch.full((1, K, h, w), 0.5 + math.log(3))
    stream = (logits, torch.zeros(1, K, h, w), log_scales, target, -60, 60, 1024)
    sample = adaptation.StreamSample.of(*stream)
    check = adaptation.StreamSample.of(*stream, interleaved=True)
    assert set(sample.target.tolist()) == {0.0} and len(set(check.target.tolist())) > 10
    overfit = adaptation.fit([sample])[0]
    assert overfit and overfit[adaptation.LOG_SCALE_OFFSET] < -32  # much narrower
    assert adaptation.fit([sample], [check])[0] == ()


def test_lbfgs_finds_the_minimum_of_a_smooth_function():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 6, generator=g, dtype=torch.float64)
    b = torch.randn(20, generator=g, dtype=torch.float64)
    best = torch.linalg.lstsq(a, b.unsqueeze(1)).solution[:, 0]
    x = adaptation.lbfgs(lambda v: ((a @ v - b) ** 2).sum() + 0.1 * torch.cosh(v - best).sum(),
                         torch.zeros(6, dtype=torch.float64), 40)
    assert torch.allclose(x, best, atol=1e-4)
