import numpy as np

from lossless_bpg.lossy.color import rgb_to_ycbcr, ycbcr_to_rgb


def test_colour_transform_is_close_to_identity_on_all_grey_levels():
    grey = np.repeat(np.arange(256, dtype=np.uint8), 3).reshape(1, 256, 3)
    back = ycbcr_to_rgb(rgb_to_ycbcr(grey))
    assert np.abs(back.astype(int) - grey).max() <= 1


def test_colour_transform_error_is_small_on_random_colours(rng):
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    back = ycbcr_to_rgb(rgb_to_ycbcr(img))
    assert np.abs(back.astype(int) - img).max() <= 3


def test_colour_transform_is_pure_integer_and_repeatable(rng):
    planes = rng.integers(0, 256, (3, 17, 23), dtype=np.uint8)
    a, b = ycbcr_to_rgb(planes), ycbcr_to_rgb(planes.copy())
    assert a.dtype == np.uint8 and np.array_equal(a, b)
