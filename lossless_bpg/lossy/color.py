"""Integer RGB <-> YCbCr (BT.601 full range, 8-bit fixed point).

Done in the project, not by a library, so that the lossy reconstruction depends only on the
HEVC decoder's output planes and this exact integer arithmetic.
"""

import numpy as np


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) uint8 Y, Cb, Cr planes."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    y = (77 * r + 150 * g + 29 * b + 128) >> 8
    cb = ((-43 * r - 85 * g + 128 * b + 128) >> 8) + 128
    cr = ((128 * r - 107 * g - 21 * b + 128) >> 8) + 128
    return np.clip(np.stack([y, cb, cr]), 0, 255).astype(np.uint8)


def ycbcr_to_rgb(planes: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 Y, Cb, Cr planes -> (H, W, 3) uint8 RGB."""
    y, cb, cr = (planes[i].astype(np.int32) for i in range(3))
    cb -= 128
    cr -= 128
    r = y + ((359 * cr + 128) >> 8)
    g = y - ((88 * cb + 183 * cr + 128) >> 8)
    b = y + ((454 * cb + 128) >> 8)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
