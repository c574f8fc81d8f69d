"""Exact round trips through the whole codec, on synthetic images and Kodak crops."""

import numpy as np
import pytest

from lossless_bpg.codec import EFFORT_SEARCH, choose_q, compress, decompress, q_search_range
from lossless_bpg.container import pack, unpack
from lossless_bpg.errors import ChecksumError, ModelMismatchError
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import ResidualModel, ResidualModelConfig, wrap

from .conftest import kodak_crop


def _round_trip(model, image, **kw):
    result = compress(image, model, **kw)
    out, header = decompress(result.data, model)
    assert out.dtype == np.uint8 and np.array_equal(out, image)
    return result, header


def _synthetic(name, rng):
    if name == "1x1":
        return rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)
    if name == "1xN":
        return rng.integers(0, 256, (1, 37, 3), dtype=np.uint8)
    if name == "Nx1":
        return rng.integers(0, 256, (29, 1, 3), dtype=np.uint8)
    if name == "33x65":
        base = np.linspace(0, 255, 65)[None, :, None] * np.ones((33, 1, 3))
        return np.clip(base + rng.normal(0, 8, (33, 65, 3)), 0, 255).astype(np.uint8)
    if name == "flat":
        return np.full((40, 24, 3), (12, 200, 77), np.uint8)
    if name == "noise":
        return rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    if name == "edges":  # max-contrast checkerboard: huge residuals at coarse Q
        yy, xx = np.indices((32, 40))
        return (((yy + xx) % 2) * 255).astype(np.uint8)[..., None].repeat(3, 2)
    raise KeyError(name)


@pytest.mark.parametrize("name", ["1x1", "1xN", "Nx1", "33x65", "flat", "noise", "edges"])
def test_synthetic_images_round_trip_exactly(model, rng, name):
    _round_trip(model, _synthetic(name, rng), quality=30)


def test_max_contrast_at_coarsest_q_reaches_large_residuals(model):
    image = _synthetic("edges", None)
    _, header = _round_trip(model, image, quality=51)
    assert max(hi - lo for lo, hi in header.residual_ranges) > 200


@pytest.mark.parametrize("index,y,x,h,w", [(1, 100, 200, 64, 96), (5, 0, 0, 48, 48), (13, 300, 500, 37, 71),
                                           (20, 200, 100, 80, 64), (23, 10, 10, 64, 64)])
def test_kodak_crops_round_trip_exactly(model, kodak_dir, index, y, x, h, w):
    _round_trip(model, kodak_crop(kodak_dir, index, y, x, h, w), quality=28)


def test_q_search_picks_the_best_of_the_tried_q(model, kodak_dir):
    image = kodak_crop(kodak_dir, 3, 100, 100, 64, 64)
    best, trials = choose_q(image, get_lossy_codec("hevc"), model)
    assert best.q == min(trials, key=trials.get) and len(trials) >= 3
    assert best.total_bits == trials[best.q]
    result, header = _round_trip(model, image)
    assert header.q == result.q == best.q


def test_greyscale_flag_is_recorded(model, rng):
    grey = rng.integers(0, 256, (20, 20), dtype=np.uint8)[..., None].repeat(3, 2)
    _, header = _round_trip(model, grey, quality=30, greyscale=True)
    assert header.greyscale


def test_other_model_is_refused(model, rng):
    data = compress(_synthetic("noise", rng), model, quality=30).data
    other = wrap("other", ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8,
                                                            quarter_blocks=1, mixtures=2)))
    with pytest.raises(ModelMismatchError, match="was written with residual model"):
        decompress(data, other)


def test_wrong_pixels_fail_the_checksum(model, rng):
    image = _synthetic("33x65", rng)
    f = unpack(compress(image, model, quality=30).data)
    # A structurally valid file (CRCs recomputed by pack) whose residual range claims one less:
    # decoding yields pixels off by one, which only the pixel checksum can catch.
    lo, hi = f.header.residual_ranges[0]
    import dataclasses

    bad = dataclasses.replace(f.header, residual_ranges=((lo - 1, hi - 1),) + f.header.residual_ranges[1:])
    with pytest.raises(ChecksumError, match="do not match the checksum"):
        decompress(pack(dataclasses.replace(f, header=bad)), model)


def test_effort_1_takes_the_models_q_without_search(model, rng):
    result, header = _round_trip(model, _synthetic("33x65", rng), effort=1)
    assert header.q == (model.q_start or 24) and set(result.q_trials) == {header.q}


@pytest.mark.parametrize("effort", [2, 3])
def test_higher_effort_scans_wider_then_refines(model, rng, effort):
    result, header = _round_trip(model, _synthetic("33x65", rng), effort=effort)
    start = model.q_start or 24
    lo, hi = q_search_range(model, get_lossy_codec("hevc"))
    scanned = {min(max(start + d, lo), hi) for d in EFFORT_SEARCH[effort][0]}
    assert len(scanned) == len(EFFORT_SEARCH[effort][0]) >= 3
    assert scanned <= set(result.q_trials) and len(result.q_trials) > len(scanned)
    assert header.q == min(result.q_trials, key=result.q_trials.get)


def test_version_2_files_still_decode_exactly(model):
    """A file written by lossless_bpg 0.2 (container version 2, one log-scale shift per
    stream) with the model it names."""
    from PIL import Image

    from .conftest import ROOT

    data = (ROOT / "tests" / "data" / "v2_sample.lbpg").read_bytes()
    if unpack(data).header.model_id != model.model_id:
        with pytest.raises(ModelMismatchError):
            decompress(data)
        pytest.skip("the shipped model changed; the v2 sample names the one it was written with")
    out, header = decompress(data, model)
    assert header.version == 2
    assert np.array_equal(out, np.asarray(Image.open(ROOT / "tests" / "data" / "v2_sample.png").convert("RGB")))


def test_an_image_too_large_for_the_machine_is_refused_before_any_work(model, rng, monkeypatch):
    from lossless_bpg import memory
    from lossless_bpg.errors import ImageTooLargeError

    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = compress(image, model, quality=30).data
    monkeypatch.setattr(memory, "_available_memory", lambda: 256 << 20)
    with pytest.raises(ImageTooLargeError, match=r"64x64 image needs about 0\.\d GB .* has 0\.2 GB"):
        compress(image, model, quality=30)
    with pytest.raises(ImageTooLargeError, match="to decompress"):
        decompress(data, model)


def test_large_images_search_q_on_a_sample_of_tiles(monkeypatch):
    from lossless_bpg import codec

    monkeypatch.setattr(codec, "SAMPLE_PIXELS", 64 * 64)
    image = np.arange(320 * 256 * 3, dtype=np.uint32).reshape(320, 256, 3).astype(np.uint8)
    sample = codec.search_sample(image)
    # 5 x 4 tiles, every 4th from the middle of the first 4 x 4 block: tile (2, 2) alone.
    assert np.array_equal(sample, image[128:192, 128:192])
    assert codec.search_sample(image[:64, :64]) is None  # small: the whole image is searched
    strip = np.zeros((40, 4096, 3), np.uint8)  # no whole tile row
    assert codec.search_sample(strip) is None
    # One tile row: all the thinning is along it (128 tiles, 11 x 11 -> every 121st).
    thin = np.arange(64 * 8192 * 3, dtype=np.uint32).reshape(64, 8192, 3).astype(np.uint8)
    assert np.array_equal(codec.search_sample(thin), thin[:, 60 * 64 : 61 * 64])
    assert codec.search_sample(thin.transpose(1, 0, 2)).shape == (64, 64, 3)


def test_a_sampled_search_codes_the_whole_image_at_the_q_it_found(model, rng, monkeypatch):
    from lossless_bpg import codec

    monkeypatch.setattr(codec, "SAMPLE_PIXELS", 16 * 16)
    monkeypatch.setattr(codec, "SAMPLE_TILE", 16)
    image = _synthetic("33x65", rng)
    assert codec.search_sample(image).shape == (16, 32, 3)  # tiles (1, 1) and (1, 3)
    searched = []
    real_choose_q = codec.choose_q
    monkeypatch.setattr(codec, "choose_q", lambda img, *a, **k: searched.append(img.shape) or real_choose_q(img, *a, **k))
    result, header = _round_trip(model, image)
    assert searched == [codec.search_sample(image).shape]
    assert header.q == min(result.q_trials, key=result.q_trials.get)
    # Effort 3 always searches the whole image.
    _round_trip(model, image, effort=3)
    assert searched[-1] == image.shape


def test_the_memory_check_counts_what_is_available_now_not_what_is_installed():
    import os

    from lossless_bpg import memory

    available = memory._available_memory()
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert available is not None and 0 < available <= physical


def test_the_search_may_go_a_little_above_the_models_trained_qs_within_the_lossy_codecs_range(model):
    from lossless_bpg.codec import Q_ABOVE_TRAINED

    hevc = get_lossy_codec("hevc")
    lo, hi = q_search_range(model, hevc)
    assert model.q_range is not None  # the shipped model records the Qs it was trained on
    assert (lo, hi) == (max(hevc.q_min, model.q_range[0]), min(hevc.q_max, model.q_range[1] + Q_ABOVE_TRAINED))
    assert hi > model.q_range[1]


def _coding_model_with_search_model(search_model):
    """A small model (different weights, a different id) whose card names ``search_model``
    for its Q search."""
    import torch

    torch.manual_seed(3)
    tiny = ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8, quarter_blocks=1, mixtures=2))
    coding = wrap("tiny", tiny)
    coding.search = search_model
    return coding


def test_below_the_highest_effort_the_search_model_picks_q_and_the_coding_model_codes(model, rng):
    image = _synthetic("33x65", rng)
    coding = _coding_model_with_search_model(model)
    result, header = _round_trip(coding, image)
    by_search_model = compress(image, model)
    # the estimates the search saw are the search model's own, the file is the coding model's
    assert result.q_trials == by_search_model.q_trials and header.q == by_search_model.q
    assert header.model_id == coding.model_id != model.model_id
    assert unpack(result.data).residual_streams != unpack(by_search_model.data).residual_streams


def test_at_the_highest_effort_the_coding_model_searches_q_itself(model, rng):
    image = _synthetic("33x65", rng)
    coding = _coding_model_with_search_model(model)
    result, _ = _round_trip(coding, image, effort=3)
    own = wrap("tiny", coding.model)  # the same weights, no search model
    assert result.q_trials == compress(image, own, effort=3).q_trials
    assert result.q_trials != compress(image, model, effort=3).q_trials


def test_tiles_and_samples_search_with_the_search_model_too(model, rng, monkeypatch):
    from lossless_bpg import codec
    from lossless_bpg.container import MIN_TILE_SIZE, tile_grid

    image = np.clip(np.linspace(0, 255, 96)[None, :, None] + rng.normal(0, 6, (320, 96, 3)), 0, 255).astype(np.uint8)
    tiles = len(tile_grid(320, 96, MIN_TILE_SIZE))
    coding = _coding_model_with_search_model(model)
    seen = []
    real_estimate = codec._estimate_trial
    monkeypatch.setattr(codec, "_estimate_trial", lambda img, q, p, r, lossy, m, g: seen.append(m.name)
                        or real_estimate(img, q, p, r, lossy, m, g))
    _round_trip(coding, image, tile_size=MIN_TILE_SIZE)  # tiles each searching its own Q
    assert tiles > 1 and set(seen) == {model.name, coding.name}
    assert seen.count(coding.name) >= tiles  # at least once per tile (a tile may search again)
    seen.clear()
    monkeypatch.setattr(codec, "SAMPLE_PIXELS", 16 * 16)
    monkeypatch.setattr(codec, "SAMPLE_TILE", 16)
    _round_trip(coding, image, tile_size=None)  # Q searched on a sample, then coded at it
    assert seen.count(coding.name) == 1 and seen.count(model.name) >= 3
