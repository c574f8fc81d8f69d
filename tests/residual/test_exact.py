"""The integer network: exact by construction, and as good as the float network it copies."""

import copy

import numpy as np
import pytest
import torch

from lossless_bpg.residual.config import ResidualModelConfig
from lossless_bpg.residual.exact import FLOAT32, ExactResidualModel, IntConv
from lossless_bpg.residual.exact_cdf import channel_params
from lossless_bpg.residual.model import ResidualModel, pad_to_multiple, pass_lattice


def _inputs(rng, h=40, w=56):
    recon = torch.from_numpy(rng.integers(0, 256, (1, 3, h, w))).float()
    residual = torch.from_numpy(rng.integers(-40, 41, (1, 3, h, w))).float()
    return pad_to_multiple(recon), pad_to_multiple(residual)


def _in_float64(model: ExactResidualModel) -> ExactResidualModel:
    """The same integer weights evaluated in float64: any rounding in float32 would show."""
    twin = copy.deepcopy(model)
    twin.fmt = type(model.fmt)(torch.float64, model.fmt.accumulator_bits, model.fmt.act_bits)
    stack = [twin.__dict__]
    while stack:
        for value in stack.pop().values():
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, IntConv):
                    item.weight, item.bias = item.weight.double(), item.bias.double()
                elif isinstance(item, (list, tuple)):
                    stack.append({0: item})
    return twin


def _outputs(model, recon, residual, q=30):
    features = model.features(recon, q)
    out = [features]
    for s in range(model.steps):
        params = model.pass_params(features, s, residual)
        out += [t for t in vars(params).values() if isinstance(t, torch.Tensor)]
        if params.refiner is not None:  # generation 2: G's and B's channel networks too
            target = pass_lattice(residual, s, model.steps)
            out += [t for c in (1, 2) for t in channel_params(params, c, target)]
    return out


def test_float32_arithmetic_is_exact(model, rng):
    """Every sum stays within float32's exact integer range, so float32 and float64 agree to
    the last bit: the result cannot depend on summation order, threads or instruction set."""
    recon, residual = _inputs(rng)
    a = _outputs(model.exact, recon, residual)
    b = _outputs(_in_float64(model.exact), recon, residual)
    assert all(torch.equal(x.double(), y.double()) for x, y in zip(a, b))


def test_outputs_do_not_depend_on_the_thread_count(model, rng):
    recon, residual = _inputs(rng, 96, 128)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = _outputs(model.exact, recon, residual)
        torch.set_num_threads(4)
        b = _outputs(model.exact, recon, residual)
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_every_architecture_has_an_exact_twin_close_to_it(rng):
    recon, residual = _inputs(rng, 32, 32)
    for steps in (1, 4, 16):
        torch.manual_seed(0)
        net = ResidualModel(ResidualModelConfig(context_steps=steps, half_blocks=1)).eval()
        exact = ExactResidualModel(net, FLOAT32)
        with torch.no_grad():
            want = net.pass_params(net.features(recon, torch.tensor([30])), steps - 1, residual)
        got = exact.pass_params(exact.features(recon, 30), steps - 1, residual).as_float()
        assert np.allclose(got.means.numpy(), want.means.numpy(), atol=0.05)
        assert np.allclose(got.log_scales.numpy(), want.log_scales.numpy(), atol=0.05)


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_outputs_do_not_depend_on_the_convolution_implementation(model, rng):
    """oneDNN off means PyTorch's own im2col + GEMM path: other blocking, other sum order."""
    recon, residual = _inputs(rng, 64, 64)
    a = _outputs(model.exact, recon, residual)
    with torch.backends.mkldnn.flags(enabled=False):
        b = _outputs(model.exact, recon, residual)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


GENERATION_2 = {"context_net_channels": 16, "context_net_blocks": 1, "channel_net_channels": 8}


@pytest.mark.parametrize("extra", [{}, GENERATION_2], ids=["generation1", "generation2"])
def test_exact_even_for_extreme_weights_and_inputs(rng, extra):
    """Huge weights saturate every activation clamp and extreme inputs maximise every sum: the
    bound that sizes the integer grids must still hold (float32 == float64, bit for bit)."""
    torch.manual_seed(1)
    net = ResidualModel(ResidualModelConfig(context_steps=16, half_blocks=0, **extra)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(50.0)
    exact = ExactResidualModel(net, FLOAT32)
    recon = torch.zeros(1, 3, 32, 32)
    recon[..., ::2, 1::2] = 255.0
    residual = torch.where(torch.rand(1, 3, 32, 32) < 0.5, -255.0, 255.0)
    a = _outputs(exact, recon, residual)
    b = _outputs(_in_float64(exact), recon, residual)
    assert all(torch.equal(x.double(), y.double()) for x, y in zip(a, b))
