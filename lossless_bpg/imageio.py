"""Reading input images strictly: anything that cannot be stored losslessly as 8-bit RGB is
rejected with a message naming what is wrong and what is supported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import UnsupportedImageError

SUPPORTED = (
    "8-bit RGB images (PNG, PPM, BMP, TIFF, lossless WebP ...); 8-bit greyscale ('L') is "
    "stored as RGB with three equal channels and decodes to RGB"
)

# Modes whose pixels map to 8-bit RGB without loss.
_RGB_EXACT = {"RGB", "L"}


def load_rgb(path: str | Path) -> np.ndarray:
    """Read ``path`` into an (H, W, 3) uint8 array, or raise UnsupportedImageError."""
    return load_image(path)[0]


def load_image(path: str | Path) -> tuple[np.ndarray, bool]:
    """Read ``path`` into (H, W, 3) uint8 pixels and whether the source was greyscale ('L',
    whose three channels are then equal), or raise UnsupportedImageError."""
    path = Path(path)
    if not path.is_file():
        raise UnsupportedImageError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                raise UnsupportedImageError(
                    f"{path}: palette image ('P' mode); convert it to RGB first. "
                    f"Supported: {SUPPORTED}"
                )
            if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
                raise UnsupportedImageError(
                    f"{path}: image has an alpha channel ({mode}); alpha is not supported. "
                    f"Supported: {SUPPORTED}"
                )
            if mode not in _RGB_EXACT:
                raise UnsupportedImageError(
                    f"{path}: unsupported pixel mode {mode!r} (e.g. 16-bit, CMYK, float, "
                    f"1-bit). Supported: {SUPPORTED}"
                )
            arr = np.asarray(im.convert("RGB") if mode == "L" else im, dtype=np.uint8)
    except UnsupportedImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImageError(
            f"{path}: cannot read image ({exc}). Supported: {SUPPORTED}"
        ) from exc
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UnsupportedImageError(f"{path}: unexpected image shape {arr.shape}")
    return np.ascontiguousarray(arr), mode == "L"
