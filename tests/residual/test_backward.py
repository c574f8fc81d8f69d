"""Backward error feedback: both sides learn, from the passes already coded, to predict the
model's error at a subpixel from the errors around it, and shift the means by it. Nothing is
sent but a flag, so decoder and encoder must compute the same integers everywhere."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from lossless_bpg.codec import compress, decompress
from lossless_bpg.container import FLAG_ERROR_FEEDBACK, pack, unpack
from lossless_bpg.effort import ERROR_FEEDBACK_EFFORT
from lossless_bpg.errors import ChecksumError, FormatError
from lossless_bpg.residual.backward import MIN_SAMPLES, ErrorFeedback, _solve, mixture_means
from lossless_bpg.residual.exact_cdf import MEAN_BITS, P
from lossless_bpg.residual.model import PASS_OFFSETS, pass_extent
from lossless_bpg.threads import torch_threads

from ..conftest import decoded_sha256_in_fresh_process


def _textured(seed: int = 3, height: int = 128, width: int = 128) -> np.ndarray:
    """Shading under spatially correlated grain (blurred noise): the model's errors at
    neighbouring pixels move together, which is what the feedback learns."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 0.6 + 60, yy * 0.7 + 50, (xx + yy) * 0.3 + 70], -1)
    noise = rng.normal(0, 25, (height + 2, width + 2, 1))
    blurred = sum(noise[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)) / 3
    return np.clip(base + blurred, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def textured() -> np.ndarray:
    return _textured()


@pytest.fixture(scope="module")
def with_feedback(model, textured) -> bytes:
    data = compress(textured, model, quality=24, effort=ERROR_FEEDBACK_EFFORT).data
    assert unpack(data).header.error_feedback, "the encoder should choose the feedback for correlated grain"
    return data


def test_the_solver_solves_a_symmetric_positive_definite_system():
    rng = random.Random(1)
    n = 9
    a = [[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]
    matrix = [[sum(a[k][i] * a[k][j] for k in range(n)) + (n if i == j else 0) for j in range(n)] for i in range(n)]
    rhs = [rng.uniform(-5, 5) for _ in range(n)]
    expected = np.linalg.solve(np.array(matrix), np.array(rhs))
    assert np.allclose(_solve(matrix, rhs), expected, rtol=1e-10, atol=1e-10)


def test_the_mixture_mean_weights_components_by_their_integer_softmax():
    one = 1 << MEAN_BITS
    means = torch.tensor([[2 * one], [6 * one]])
    assert mixture_means(torch.tensor([[0], [0]]), means).item() == pytest.approx(4 * one, abs=2)
    heavy_first = torch.tensor([[20 << P], [0]])
    assert mixture_means(heavy_first, means).item() == pytest.approx(2 * one, abs=2)


def _run_passes(feedback: ErrorFeedback, field: np.ndarray, steps: int = 16) -> list[float]:
    """Feed a residual ``field`` (H, W, 3) through the feedback with model means of zero; per
    pass, the mean squared error left after the shift, relative to without it."""
    height, width = field.shape[:2]
    ratios = []
    for step in range(steps):
        dy, dx = PASS_OFFSETS[steps][step]
        h, w = pass_extent(step, steps, height, width)
        before = after = 0.0
        for c in range(3):
            truth = torch.from_numpy(field[dy::4, dx::4, c][:h, :w].reshape(-1).astype(np.int64))
            logits = torch.zeros(1, h * w, dtype=torch.int64)
            shift = feedback.shift(step, c, (h, w), logits, torch.zeros(1, h * w, dtype=torch.int64))
            predicted = shift.double() * 2.0**-MEAN_BITS
            before += float((truth.double() ** 2).sum())
            after += float(((truth.double() - predicted) ** 2).sum())
            feedback.record(truth)
        ratios.append(after / before)
    return ratios


def test_the_feedback_learns_to_predict_errors_from_their_neighbours():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 8, (130, 130, 1))
    field = sum(noise[dy : dy + 128, dx : dx + 128] for dy in range(3) for dx in range(3)) / 3
    field = np.round(field + rng.normal(0, 1, (128, 128, 3))).astype(np.int64)
    ratios = _run_passes(ErrorFeedback(128, 128, 16), field)
    assert ratios[0] == 1.0  # nothing known yet: no shift
    assert max(ratios[8:]) < 0.5  # the last passes have close neighbours: most of the error is predicted


def test_the_feedback_stays_silent_on_errors_it_cannot_predict():
    rng = np.random.default_rng(1)
    field = rng.integers(-20, 21, (256, 256, 3))
    ratios = _run_passes(ErrorFeedback(256, 256, 16), field)
    assert max(ratios) < 1.005


def test_the_feedback_waits_for_enough_samples():
    feedback = ErrorFeedback(16, 16, 16)
    field = np.ones((16, 16, 3), np.int64) * 5
    # 16 x 16 has 16 subpixels per pass and channel: the whole image is fewer than MIN_SAMPLES
    assert 16 * 16 < MIN_SAMPLES
    assert all(r == 1.0 for r in _run_passes(feedback, field))


def test_record_needs_a_shift_first():
    with pytest.raises(RuntimeError):
        ErrorFeedback(8, 8, 16).record(torch.zeros(4, dtype=torch.int64))


def test_a_file_with_feedback_decodes_exactly(model, textured, with_feedback):
    decoded, header = decompress(with_feedback, model)
    assert header.error_feedback
    assert np.array_equal(decoded, textured)


def test_the_feedback_saves_bits_on_correlated_grain(model, textured, with_feedback):
    plain = compress(textured, model, quality=24, adapt="none").data
    assert not unpack(plain).header.error_feedback
    assert len(with_feedback) < 0.99 * len(plain)


def test_a_file_with_feedback_decodes_identically_at_any_thread_count(model, with_feedback):
    results = []
    for threads in (1, 2):
        with torch_threads(threads):
            results.append(decompress(with_feedback, model)[0])
    assert np.array_equal(results[0], results[1])


def test_a_file_with_feedback_decodes_identically_in_a_fresh_process(model, textured, with_feedback, tmp_path):
    path = tmp_path / "feedback.lbpg"
    path.write_bytes(with_feedback)
    assert decoded_sha256_in_fresh_process(path, 1) == hashlib.sha256(textured.tobytes()).hexdigest()


def test_each_image_starts_from_a_blank_state(model, textured, with_feedback):
    # decoding another image first must not leave anything behind
    decompress(compress(_textured(seed=9, height=64, width=64), model, quality=24).data, model)
    assert np.array_equal(decompress(with_feedback, model)[0], textured)


def test_the_flag_is_what_decides_how_the_residual_is_read(model, with_feedback):
    # the same streams read without the feedback give other pixels: the checksum catches it
    data = bytearray(with_feedback)
    assert data[5] & FLAG_ERROR_FEEDBACK
    f = unpack(bytes(data))
    cleared = pack(replace(f, header=replace(f.header, error_feedback=False)))
    with pytest.raises((ChecksumError, FormatError)):
        decompress(cleared, model)
