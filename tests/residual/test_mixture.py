import math

import torch

from lossless_bpg.residual.mixture import log_prob


def test_discrete_probabilities_sum_to_one_over_the_range():
    g = torch.Generator().manual_seed(0)
    logits, means, log_scales = torch.randn(4, generator=g), torch.randn(4, generator=g) * 5, torch.randn(4, generator=g)
    shape = (1, 4, 1, 1)
    p = torch.cat([
        log_prob(logits.view(shape), means.view(shape), log_scales.view(shape), torch.full((1, 1, 1), float(s)), -20, 20)
        for s in range(-20, 21)
    ]).exp()
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-4)
