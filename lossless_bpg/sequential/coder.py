"""Checked wrapper of the compiled sequential coder (``_seqcore``, built at install from
seqcore.c): numpy arrays in, bytes out, errors as the package's own."""

from __future__ import annotations

import numpy as np

from ..container import MAX_ERROR
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


def _recon(recon: np.ndarray | None, model: SequentialModel) -> np.ndarray | None:
    """The reconstruction the core reads: None for a model that does not read one."""
    if not model.uses_recon:
        return None
    if recon is None:
        raise ValueError(f"sequential model {model.name} reads the lossy reconstruction; none given")
    return _pixels(recon, "reconstruction")


def encode(image: np.ndarray, recon: np.ndarray | None, model: SequentialModel, max_error: int = 0) -> bytes:
    """The residual stream of ``image`` given the lossy layer's ``recon`` (ignored, and may be
    None, when the model does not read it); ``max_error`` T > 0: near-lossless, every decoded
    subpixel within T of the original."""
    return encode_with_stats(image, recon, model, max_error)[0]


def encode_with_stats(
    image: np.ndarray, recon: np.ndarray | None, model: SequentialModel, max_error: int = 0,
) -> tuple[bytes, tuple[int, int, int], np.ndarray]:
    """:func:`encode`, also returning how many of the stream's bytes each channel (R, G, B)
    pushed out of the arithmetic coder (they sum to its length) and the image the decoder will
    give (``image`` itself when lossless)."""
    pixels = _pixels(image, "image")
    r = _recon(recon, model)
    if r is not None and r.shape != pixels.shape:
        raise ValueError("reconstruction and image differ in size")
    check_max_error(max_error)
    data, by_channel, rec = _core().encode_stats(pixels, r, pixels.shape[0], pixels.shape[1], model.params,
                                                 max_error)
    decoded = pixels if rec is None else np.frombuffer(rec, np.uint8).reshape(pixels.shape)
    return data, tuple(by_channel), decoded


def check_max_error(max_error: int) -> None:
    """ValueError unless ``max_error`` is an integer error bound the coder takes (0..MAX_ERROR)."""
    if isinstance(max_error, bool) or not isinstance(max_error, (int, np.integer)) or not 0 <= max_error <= MAX_ERROR:
        raise ValueError(f"max_error must be an integer in 0..{MAX_ERROR}, not {max_error!r}")


def decode(data: bytes, recon: np.ndarray | None, height: int, width: int, model: SequentialModel,
           max_error: int = 0) -> np.ndarray:
    """Inverse of :func:`encode` (with the same ``max_error``). A damaged stream raises
    FormatError or gives wrong pixels (the file's checksum catches those); it never reads out
    of bounds or loops."""
    r = _recon(recon, model)
    try:
        raw = _core().decode(data, r, height, width, model.params, max_error)
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
