import numpy as np
import pytest

from lossless_bpg.residual import decode_residual, encode_residual, estimate_bits


def _round_trip(model, image, recon, q=24, adapt=True):
    streams = encode_residual(model.exact, image, recon, q, adapt)
    residual = decode_residual(model.exact, recon, q, streams)
    assert np.array_equal(residual, image.astype(np.int16) - recon.astype(np.int16))
    return streams


def test_residuals_at_both_extremes_round_trip(model):
    image = np.zeros((8, 12, 3), np.uint8)
    recon = np.zeros_like(image)
    image[::2] = 255  # residual +255 on even rows
    recon[1::2] = 255  # residual -255 on odd rows
    streams = _round_trip(model, image, recon)
    assert streams.ranges == ((-255, 255),) * 3


def test_constant_residual_channels_cost_no_bytes(model):
    image = np.full((16, 16, 3), 100, np.uint8)
    streams = _round_trip(model, image, image.copy())
    assert streams.ranges == ((0, 0),) * 3 and set(streams.streams) == {b""}


def _noisy_pair(rng):
    recon = rng.integers(60, 200, (64, 64, 3)).astype(np.uint8)
    image = np.clip(recon.astype(int) + rng.integers(-6, 7, recon.shape), 0, 255).astype(np.uint8)
    return image, recon


def test_estimate_is_close_to_the_real_size(model, rng):
    image, recon = _noisy_pair(rng)
    streams = _round_trip(model, image, recon, adapt=False)
    assert set(streams.adaptations) == {()}
    real = 8 * (sum(map(len, streams.streams)) + sum(map(len, streams.escapes)))
    assert real == pytest.approx(estimate_bits(model.exact, image, recon, 24), rel=0.03)


def test_per_image_adaptation_round_trips_and_saves_more_than_it_costs(model, rng):
    image, recon = _noisy_pair(rng)  # uniform noise: far from what the model expects
    fixed = _round_trip(model, image, recon, adapt=False)
    adapted = _round_trip(model, image, recon, adapt=True)
    assert {len(a) for a in adapted.adaptations} > {0}, "some stream should send parameters"
    coded = [sum(map(len, s.streams)) + sum(map(len, s.escapes)) + sum(map(len, s.adaptations))
             for s in (fixed, adapted)]
    assert coded[1] < coded[0]


def test_values_outside_narrow_windows_round_trip_as_escapes(model, rng, monkeypatch):
    from lossless_bpg.residual import layer

    monkeypatch.setattr(layer, "_choose_half_width", lambda distance, span: 1)
    recon = rng.integers(60, 200, (40, 44, 3)).astype(np.uint8)
    image = np.clip(recon.astype(int) + rng.integers(-40, 41, recon.shape), 0, 255).astype(np.uint8)
    streams = _round_trip(model, image, recon)
    assert set(streams.half_widths) == {1}
    assert all(streams.escapes), "every stream should have escapes both below and above"


def test_half_width_trades_window_rows_for_escape_rows():
    import torch

    from lossless_bpg.residual.layer import MAX_HALF_WIDTH, _choose_half_width

    near = torch.zeros(10000, dtype=torch.long)
    assert _choose_half_width(near, 500) == 1
    near[:3] = 200  # three outliers: cheaper as escapes than a 200-wide window for everyone
    assert _choose_half_width(near, 500) < 8
    assert _choose_half_width(torch.full((100,), 5), 500) == 6  # the first window holding all
    assert _choose_half_width(torch.full((100,), 300), 511) <= MAX_HALF_WIDTH


def test_all_passes_at_once_equal_pass_by_pass(model, rng):
    """The stacked form the trainer uses on a GPU computes what the coder computes per pass."""
    import torch

    recon = torch.from_numpy(rng.integers(0, 256, (2, 3, 32, 48))).float()
    residual = torch.from_numpy(rng.integers(-30, 31, (2, 3, 32, 48))).float()
    net = model.model
    with torch.no_grad():
        features = net.features(recon, torch.tensor([20, 36]))
        stacked = net._all_passes_at_once(features, residual)
        for step, params in enumerate(stacked):
            want = net.pass_params(features, step, residual)
            for name in ("logits", "means", "log_scales", "coupling"):
                assert torch.allclose(getattr(params, name), getattr(want, name), atol=1e-4), (step, name)


def test_fit_samples_gathered_by_the_estimate_code_the_same_streams(model, rng):
    from lossless_bpg.residual import estimate_residual

    image, recon = _noisy_pair(rng)
    estimate = estimate_residual(model.exact, image, recon, 24)
    assert estimate.bits == pytest.approx(estimate_bits(model.exact, image, recon, 24))
    own_sweep = encode_residual(model.exact, image, recon, 24)
    reused = encode_residual(model.exact, image, recon, 24, fit_samples=estimate.fit_samples)
    assert reused == own_sweep and {len(a) for a in reused.adaptations} > {0}


def test_a_pass_memo_replays_the_first_sweep_and_changes_no_byte(model, rng, monkeypatch):
    from lossless_bpg.residual import estimate_residual
    from lossless_bpg.residual.layer import PassMemo

    image, recon = _noisy_pair(rng)
    plain = estimate_residual(model.exact, image, recon, 24, error_feedback=True)
    without_feedback = estimate_residual(model.exact, image, recon, 24).bits
    expected = encode_residual(model.exact, image, recon, 24, error_feedback=True)
    memo = PassMemo()
    estimate = estimate_residual(model.exact, image, recon, 24, error_feedback=True, memo=memo)
    assert memo.complete and estimate.bits == plain.bits

    def no_network(*args, **kwargs):
        raise AssertionError("a replayed sweep must not run the network")

    monkeypatch.setattr(model.exact, "features", no_network)
    monkeypatch.setattr(model.exact, "pass_params", no_network)
    assert encode_residual(model.exact, image, recon, 24, error_feedback=True, memo=memo) == expected
    assert estimate_residual(model.exact, image, recon, 24, memo=memo).bits == without_feedback
    with pytest.raises(ValueError, match="one model, reconstruction"):
        estimate_residual(model.exact, image, recon.copy(), 24, memo=memo)  # another input
    with pytest.raises(ValueError, match="one model, reconstruction"):
        estimate_residual(model.exact, image, recon, 25, memo=memo)


def test_the_fine_tuned_models_memo_made_from_the_fits_hidden_activations_changes_no_byte(model, rng, monkeypatch):
    from lossless_bpg.residual.finetune import apply_update, fit_update
    from lossless_bpg.residual.layer import memo_from_hidden

    image, recon = _noisy_pair(rng)
    hidden: dict = {}
    fitted = fit_update(model.exact, image, recon, 24, 10, hidden=hidden)
    assert fitted is not None and sorted(hidden) == list(range(model.exact.steps))
    adapted = apply_update(model.model, model.exact, fitted[0])
    expected = encode_residual(adapted, image, recon, 24)
    memo = memo_from_hidden(adapted, recon, 24, None, hidden)

    def no_network(*args, **kwargs):
        raise AssertionError("a sweep made from the hidden activations must not run the network")

    monkeypatch.setattr(adapted, "features", no_network)
    monkeypatch.setattr(adapted, "head_hidden_and_output", no_network)
    assert encode_residual(adapted, image, recon, 24, memo=memo) == expected
    with pytest.raises(ValueError, match="one model, reconstruction"):
        encode_residual(model.exact, image, recon, 24, memo=memo)  # the model the activations came from
