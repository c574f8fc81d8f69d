import numpy as np
import pytest

from lossless_bpg.lossy import get_lossy_codec


@pytest.fixture(scope="module")
def hevc():
    return get_lossy_codec("hevc")


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (33, 65), (64, 64), (70, 130)])
def test_any_size_decodes_to_the_same_size(hevc, rng, shape):
    img = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    out = hevc.decode(hevc.encode(img, 24))
    assert out.shape == img.shape and out.dtype == np.uint8


def test_reconstruction_is_close_at_fine_q(hevc, rng):
    img = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1))[..., None].repeat(3, 2)
    out = hevc.decode(hevc.encode(img, 4))
    assert np.abs(out.astype(int) - img).mean() < 2


def test_decode_is_deterministic(hevc, rng):
    img = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    data = hevc.encode(img, 30)
    assert np.array_equal(hevc.decode(data), hevc.decode(data))


def test_stream_has_no_x265_info_sei(hevc, rng):
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert b"x265" not in hevc.encode(img, 40)


def test_higher_q_gives_fewer_bytes(hevc, rng):
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(hevc.encode(img, 40)) < len(hevc.encode(img, 10))


def test_q_outside_range_is_rejected(hevc, rng):
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="quality"):
        hevc.encode(img, 52)


def test_garbage_stream_is_a_value_error(hevc):
    with pytest.raises(ValueError):
        hevc.decode(b"\x08\x08" + b"\x00\x00\x01garbage" * 3)
