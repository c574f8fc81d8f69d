"""Checked wrapper of the compiled sequential coder (``_seqcore``, built at install from
seqcore.c): numpy arrays in, bytes out, errors as the package's own."""

from __future__ import annotations

import numpy as np

from ..errors import BackendUnavailableError, FormatError
from .model import SequentialModel


def _core():
    try:
        from . import _seqcore
    except ImportError as exc:  # an install that skipped the build
        raise BackendUnavailableError(
            f"the sequential coder's compiled module is missing ({exc}); reinstall the package "
            f"('make install' or 'pip install -e .'), which builds it"
        ) from exc
    return _seqcore


def _pixels(image: np.ndarray, what: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must be (H, W, 3) uint8")
    return np.ascontiguousarray(image)


def encode(image: np.ndarray, recon: np.ndarray | None, model: SequentialModel) -> bytes:
    """The residual stream of ``image`` given the lossy layer's ``recon`` (ignored, and may be
    None, when the model does not read it)."""
    pixels = _pixels(image, "image")
    r = _pixels(recon, "reconstruction") if model.uses_recon and recon is not None else None
    if model.uses_recon and r is None:
        raise ValueError(f"sequential model {model.name} reads the lossy reconstruction; none given")
    if r is not None and r.shape != pixels.shape:
        raise ValueError("reconstruction and image differ in size")
    return _core().encode(pixels, r, pixels.shape[0], pixels.shape[1], model.params)


def decode(data: bytes, recon: np.ndarray | None, height: int, width: int, model: SequentialModel) -> np.ndarray:
    """Inverse of :func:`encode`. A damaged stream raises FormatError or gives wrong pixels
    (the file's checksum catches those); it never reads out of bounds or loops."""
    r = _pixels(recon, "reconstruction") if model.uses_recon and recon is not None else None
    if model.uses_recon and r is None:
        raise ValueError(f"sequential model {model.name} reads the lossy reconstruction; none given")
    try:
        raw = _core().decode(data, r, height, width, model.params)
    except ValueError as exc:
        raise FormatError(f"residual layer does not decode: {exc}") from exc
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def warm_up() -> None:
    """Check that the compiled coder loads and codes (run at install)."""
    from .model import models

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for m in models():
        assert np.array_equal(decode(encode(image, image, m), image, 5, 7, m), image)
