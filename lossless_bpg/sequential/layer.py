"""A whole image (or tile) with the sequential residual coder: the lossy layer at a Q searched
on the coder's real bits, the residual stream given its reconstruction, and the decode.
Lossless, or near-lossless with a guaranteed per-subpixel error bound (``max_error``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..container import LbpgFile, pixel_checksum, sequential_file
from ..effort import SEQUENTIAL_SEARCH
from ..errors import ChecksumError, FormatError
from ..lossy import LossyCodec
from ..search import scan_and_refine
from . import coder
from .model import SequentialModel, candidates


@dataclass(frozen=True)
class Trial:
    """The two layers of an image at one Q, and the image a decoder gets from them (the
    original itself when lossless)."""

    lossy: bytes
    residual: bytes
    decoded: np.ndarray
    model: SequentialModel
    #: The lossy layer's reconstruction, where the model read it (None: not decoded).
    recon: np.ndarray | None = None

    @property
    def bits(self) -> float:
        return 8.0 * (len(self.lossy) + len(self.residual))


def _trial(image: np.ndarray, q: int, lossy: LossyCodec, model: SequentialModel, max_error: int) -> Trial:
    payload = lossy.encode(image, q)
    recon = lossy.decode(payload, size=image.shape[:2]) if model.uses_recon else None
    residual, _, decoded = coder.encode_with_stats(image, recon, model, max_error)
    return Trial(payload, residual, decoded, model, recon)


def search_q(
    image: np.ndarray, lossy: LossyCodec, model: SequentialModel, effort: int,
    progress: Callable[[int, float], None] | None = None, max_error: int = 0,
) -> tuple[int, dict[int, float], dict[int, Trial]]:
    """The Q with the fewest total bits among those ``effort``'s search tries (each one coded
    for real); returns it, the bits of every Q tried, and the trials by Q."""
    trials: dict[int, Trial] = {}

    def cost(q: int) -> float:
        trials[q] = _trial(image, q, lossy, model, max_error)
        if progress:
            progress(q, trials[q].bits)
        return trials[q].bits

    search = SEQUENTIAL_SEARCH[effort]
    best, costs = scan_and_refine(cost, [lossy.q_max + d for d in search.scan], lossy.q_min, lossy.q_max,
                                  search.steps)
    return best, costs, trials


def code_image(
    image: np.ndarray, lossy: LossyCodec, model: SequentialModel, q: int | None, effort: int, greyscale: bool,
    progress: Callable[[int, float], None] | None = None, alternatives: bool = True, max_error: int = 0,
) -> tuple[LbpgFile, dict[int, float], np.ndarray]:
    """A version-6 file of ``image`` (at ``q``, or at the Q ``effort``'s search finds), the
    bits of every Q tried, and the image the file decodes to. With ``alternatives`` the image
    is also coded with each of the model's alternative sets, the smallest kept (the tiles of one
    file share one set: they do not)."""
    if q is None:
        q, costs, trials = search_q(image, lossy, model, effort, progress, max_error)
        best = trials[q]
    else:
        costs = {}
        best = _trial(image, q, lossy, model, max_error)
    others = candidates(model)[1:] if alternatives else ()
    if others:
        recon = best.recon if best.recon is not None else lossy.decode(best.lossy, size=image.shape[:2])
        for other in others:
            residual, _, decoded = coder.encode_with_stats(image, recon, other, max_error)
            if len(residual) < len(best.residual):
                best = Trial(best.lossy, residual, decoded, other, recon)
    height, width = image.shape[:2]
    f = sequential_file(lossy.backend_id, q, best.model.model_id, height, width, greyscale,
                        pixel_checksum(best.decoded), best.lossy, best.residual, max_error)
    return f, costs, best.decoded


def decode_image(f: LbpgFile, lossy: LossyCodec, model: SequentialModel) -> np.ndarray:
    """The pixels of a version-6 file (or tile) — exact, or within its error bound — checked
    against its checksum."""
    h = f.header
    # decoded (and checked) even for a model that does not read it: every file's preview must work
    try:
        recon = lossy.decode(f.lossy, size=(h.height, h.width))
    except ValueError as exc:
        raise FormatError(f"lossy layer does not decode: {exc}") from exc
    if recon.shape != (h.height, h.width, 3):
        raise FormatError(f"lossy layer decodes to {recon.shape[1]}x{recon.shape[0]}, header says "
                          f"{h.width}x{h.height}")
    image = coder.decode(f.residual_streams[0], recon, h.height, h.width, model, h.max_error)
    if pixel_checksum(image) != h.checksum:
        raise ChecksumError(
            "decoded pixels do not match the checksum stored in the file: the file is damaged "
            "or was not written by this build's sequential coder; no output written"
        )
    return image
