"""Generation 2 residual model: a shared context network over every decoded residual and
channel networks for G and B; grown from the shipped model without changing what it computes,
and exact in integer inference like generation 1."""

import dataclasses

import numpy as np
import pytest
import torch

from lossless_bpg.residual import ResidualModel, decode_residual, encode_residual
from lossless_bpg.residual.config import ResidualModelConfig
from lossless_bpg.residual.exact import FLOAT32, ExactResidualModel
from lossless_bpg.residual.exact_cdf import channel_params
from lossless_bpg.residual.layer import residual_bits
from lossless_bpg.residual.model import grow_state_dict, pass_lattice

from .test_exact import _in_float64, _inputs

V2 = {"context_net_channels": 32, "context_net_blocks": 1, "channel_net_channels": 32}


def _grown(fast: ResidualModel, perturb: float = 0.0, seed: int = 0) -> ResidualModel:
    """Generation 2 grown from ``fast``; ``perturb`` > 0 gives its new parts random weights
    (as after training) so that they are exercised."""
    with torch.random.fork_rng():  # the new parts' initial weights: the same in any test order
        torch.manual_seed(seed)
        v2 = ResidualModel(dataclasses.replace(fast.config, **V2))
    state, _ = grow_state_dict(v2, fast.state_dict())
    v2.load_state_dict(state)
    if perturb:
        g = torch.Generator().manual_seed(seed)
        old = fast.state_dict()
        with torch.no_grad():
            for name, p in v2.named_parameters():
                noise = torch.randn(p.shape, generator=g) * perturb
                if name not in old:
                    p.add_(noise)
                elif p.shape != old[name].shape:  # the grown head inputs
                    keep = torch.zeros_like(p, dtype=torch.bool)
                    keep[tuple(slice(0, n) for n in old[name].shape)] = True
                    p.add_(noise.masked_fill(keep, 0.0))
    return v2.eval()


def _channels(model, recon, residual, q=30):
    """Every pass's and channel's integer (logits, means, log_scales) and the features."""
    features = model.features(recon, q)
    out = [features]
    for s in range(model.steps):
        params = model.pass_params(features, s, residual)
        target = pass_lattice(residual, s, model.steps)
        for c in range(3):
            out.extend(channel_params(params, c, target))
    return out


def test_generation_1_config_and_id_unchanged_by_the_new_options(model):
    assert model.model.config.generation == 1
    assert set(model.model.config.to_dict()) == {
        "half_channels", "quarter_channels", "quarter_blocks", "half_blocks", "mixtures",
        "context_steps", "context_channels", "head_channels"}
    assert ResidualModelConfig.from_dict({**model.model.config.to_dict(), **V2}).generation == 2
    with pytest.raises(ValueError, match="context_steps 16"):
        ResidualModelConfig(context_steps=4, context_net_channels=8)


def test_grown_from_the_shipped_model_it_computes_the_same_distributions(model, rng):
    """Function-preserving growth: float bits equal, integer mixtures identical bit for bit."""
    v2 = _grown(model.model)
    recon, residual = _inputs(rng, 48, 64)
    q = torch.tensor([30])
    with torch.no_grad():
        a, b = residual_bits(model.model, recon, q, residual), residual_bits(v2, recon, q, residual)
    assert float(b) == pytest.approx(float(a), rel=1e-6)
    exact = ExactResidualModel(v2)
    ours, theirs = _channels(exact, recon, residual), _channels(model.exact, recon, residual)
    assert all(torch.equal(x, y) for x, y in zip(ours[1:], theirs[1:]))


def test_all_passes_at_once_equals_pass_by_pass(model, rng):
    v2 = _grown(model.model, perturb=0.05)
    recon, residual = _inputs(rng, 32, 48)
    q = torch.tensor([28])
    with torch.no_grad():
        together = v2(recon, q, residual)
        features = v2.features(recon, q)
        for s, params in enumerate(together):
            alone = v2.pass_params(features, s, residual)
            target = pass_lattice(residual, s, 16)
            for c in range(3):
                for x, y in zip(params.channel(c, target), alone.channel(c, target)):
                    assert torch.allclose(x, y, atol=1e-4)


def test_the_context_network_reads_only_earlier_passes(model, rng):
    v2 = _grown(model.model, perturb=0.05)
    recon, residual = _inputs(rng, 32, 32)
    q = torch.tensor([28])
    changed = residual.clone()
    changed[..., 1::4, 1::4] += 7  # pass 4's position and no other
    with torch.no_grad():
        a, b = v2(recon, q, residual), v2(recon, q, changed)
    for s in range(16):
        same = torch.equal(a[s].means, b[s].means)
        assert same == (s <= 4), s


def test_exact_twin_is_close_to_the_float_model(rng):
    """As generation 1's test (test_exact.py): a freshly initialised network, its zero-initialised
    outputs given random weights, within the same tolerance, G and B with their channel nets."""
    torch.manual_seed(0)
    net = ResidualModel(ResidualModelConfig(context_steps=16, half_blocks=1, **V2)).eval()
    with torch.no_grad():
        for p in net.channel_nets.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        for first, _, _ in net.head_convs():
            first.weight[:, -V2["context_net_channels"]:].normal_(0.0, 0.05)
    exact = ExactResidualModel(net, FLOAT32)
    recon, residual = _inputs(rng, 32, 32)
    residual = residual.clamp(-4, 4)  # the linear R -> G -> B coupling's own rounding stays small
    with torch.no_grad():
        features = net.features(recon, torch.tensor([30]))
        ef = exact.features(recon, 30)
        for s in (0, 7, 15):
            want, got = net.pass_params(features, s, residual), exact.pass_params(ef, s, residual).as_float()
            target = pass_lattice(residual, s, 16)
            for c in range(3):
                (wl, wm, ws), (gl, gm, gs) = want.channel(c, target), got.channel(c, target)
                assert not torch.equal(ws, want.log_scales[:, c]) or c == 0  # the channel net acts
                # G's and B's means carry the coupling's tanh table (generation 1: up to 0.06 here)
                assert np.allclose(gm.numpy(), wm.numpy(), atol=0.05 if c == 0 else 0.1)
                assert np.allclose(gs.numpy(), ws.numpy(), atol=0.05)
                assert np.allclose(gl.numpy(), wl.numpy(), atol=0.05)


def test_exact_twin_is_exact_in_float32_and_at_any_thread_count(model, rng):
    exact = ExactResidualModel(_grown(model.model, perturb=0.05))
    recon, residual = _inputs(rng, 64, 96)
    a = _channels(exact, recon, residual)
    assert all(torch.equal(x.double(), y.double()) for x, y in zip(a, _channels(_in_float64(exact), recon, residual)))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _channels(exact, recon, residual)
        torch.set_num_threads(2)
        two = _channels(exact, recon, residual)
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(x, y) for x, y in zip(one, two))
    assert all(torch.equal(x, y) for x, y in zip(one, a))


def test_residual_layer_round_trip_with_a_generation_2_model(model, rng):
    exact = ExactResidualModel(_grown(model.model, perturb=0.05))
    image = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    recon = np.clip(image.astype(np.int16) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    layer = encode_residual(exact, image, recon, 30)
    residual = decode_residual(exact, recon, 30, layer)
    assert np.array_equal(residual, image.astype(np.int16) - recon.astype(np.int16))


def test_a_fine_tuned_generation_2_model_codes_the_same_from_the_fits_hidden_activations(model, rng):
    from lossless_bpg.residual.finetune import apply_update, fit_update
    from lossless_bpg.residual.layer import memo_from_hidden

    torch.manual_seed(0)  # the grown model's new layers start from torch's own initialisation
    grown = _grown(model.model, perturb=0.05)
    exact = ExactResidualModel(grown)
    recon = rng.integers(60, 200, (64, 72, 3)).astype(np.uint8)  # flat noise the update can learn
    image = np.clip(recon.astype(int) + rng.integers(-6, 7, recon.shape), 0, 255).astype(np.uint8)
    hidden: dict = {}
    fitted = fit_update(exact, image, recon, 30, 8, hidden=hidden)
    assert fitted is not None
    adapted = apply_update(grown, exact, fitted[0])
    layer = encode_residual(adapted, image, recon, 30)
    assert encode_residual(adapted, image, recon, 30, memo=memo_from_hidden(adapted, recon, 30, None, hidden)) == layer
    residual = decode_residual(adapted, recon, 30, layer)
    assert np.array_equal(residual, image.astype(np.int16) - recon.astype(np.int16))
