"""A residual model may read the lossy layer's own decoder features besides x~ (DLPR's
conditioning; the lic layer gives its synthesis's activations): grown in at zero without
changing what the model computes, exact in integer inference, and refused clearly where the
features are missing or do not fit."""

import dataclasses

import numpy as np
import pytest
import torch

from lossless_bpg.residual import ResidualModel, decode_residual, encode_residual
from lossless_bpg.residual.exact import ExactResidualModel
from lossless_bpg.residual.layer import residual_bits
from lossless_bpg.threads import torch_threads

from .test_exact import _in_float64, _inputs

SIDE = 8


def _with_side(fast: ResidualModel, weight: float = 0.0, seed: int = 0) -> ResidualModel:
    """``fast`` grown to read SIDE channels of features; ``weight`` > 0 gives the new
    convolution random weights (as after training)."""
    grown = ResidualModel(dataclasses.replace(fast.config, side_channels=SIDE))
    missing, unexpected = grown.load_state_dict(fast.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == ["side_in.bias", "side_in.weight"]
    if weight:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            grown.side_in.weight.copy_(torch.randn(grown.side_in.weight.shape, generator=g) * weight)
    return grown.eval()


def _side(rng: np.random.Generator, h: int, w: int) -> torch.Tensor:
    """Integer activations as the lic synthesis gives them, over a padded (larger) image."""
    return torch.from_numpy(rng.integers(-200, 300, (1, SIDE, h // 4 + 2, w // 4 + 3))).float()


def test_the_option_leaves_earlier_configs_and_ids_unchanged(model):
    assert "side_channels" not in model.model.config.to_dict()
    assert dataclasses.replace(model.model.config, side_channels=SIDE).to_dict()["side_channels"] == SIDE


def test_a_model_grown_to_read_features_computes_what_it_did(model, rng):
    recon, residual = _inputs(rng)
    side = _side(rng, *recon.shape[-2:])
    grown = _with_side(model.model)
    q = torch.tensor([30.0])
    with torch.no_grad():
        assert torch.equal(residual_bits(grown, recon, q, residual, side), residual_bits(model.model, recon, q, residual))
    exact = ExactResidualModel(grown)
    features = exact.features(recon, 30, side)
    assert torch.equal(features, model.exact.features(recon, 30))
    for step in range(exact.steps):
        a, b = exact.pass_params(features, step, residual), model.exact.pass_params(features, step, residual)
        assert torch.equal(a.means, b.means) and torch.equal(a.log_scales, b.log_scales)


def test_the_features_change_the_mixtures_and_stay_exact(model, rng):
    recon, _ = _inputs(rng)
    side = _side(rng, *recon.shape[-2:])
    grown = _with_side(model.model, weight=0.05)
    exact = ExactResidualModel(grown)
    with torch_threads(1):
        one = exact.features(recon, 30, side)
    with torch_threads(2):
        two = exact.features(recon, 30, side)
    assert torch.equal(one, two)
    assert torch.equal(_in_float64(exact).features(recon, 30, side).float(), one)  # no rounding in float32
    assert not torch.equal(exact.features(recon, 30, side * 0), one)  # the features are read
    with torch.no_grad():  # the integer twin follows the float network (activations: grid 2**-6)
        real = grown.features(recon, torch.tensor([30.0]), side * 2.0**-6)
    cq = grown.config.quarter_channels  # (the model's own error on such noise inputs: ~5 %)
    assert (one[:, :cq] * 2.0**-6 - real[:, :cq]).abs().mean() < 0.1 * real[:, :cq].abs().mean()


def test_a_residual_coded_with_features_decodes_exactly_only_with_them(model, rng):
    exact = ExactResidualModel(_with_side(model.model, weight=0.05))
    image = rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)
    recon = np.clip(image.astype(int) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    side = _side(rng, 40, 52)
    streams = encode_residual(exact, image, recon, 30, side=side)
    decoded = decode_residual(exact, recon, 30, streams, side)
    np.testing.assert_array_equal(decoded, image.astype(np.int16) - recon)
    with pytest.raises(ValueError, match="decoder features"):
        decode_residual(exact, recon, 30, streams)
    with pytest.raises(ValueError, match="do not fit"):
        decode_residual(exact, recon, 30, streams, side[:, :3])
