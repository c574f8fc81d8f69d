"""A whole image (or tile) with the sequential residual coder: the lossy layer at a Q searched
on the coder's real bits, the residual stream given its reconstruction, and the decode."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..container import LbpgFile, pixel_checksum, sequential_file
from ..effort import SEQUENTIAL_SEARCH
from ..errors import ChecksumError, FormatError
from ..lossy import LossyCodec
from ..search import scan_and_refine
from . import coder
from .model import SequentialModel, candidates


def _trial(image: np.ndarray, q: int, lossy: LossyCodec, model: SequentialModel) -> tuple[bytes, bytes]:
    payload = lossy.encode(image, q)
    recon = lossy.decode(payload, size=image.shape[:2]) if model.uses_recon else None
    return payload, coder.encode(image, recon, model)


def search_q(
    image: np.ndarray, lossy: LossyCodec, model: SequentialModel, effort: int,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[int, dict[int, float], dict[int, tuple[bytes, bytes]]]:
    """The Q with the fewest total bits among those ``effort``'s search tries (each one coded
    for real); returns it, the bits of every Q tried, and the coded layers by Q."""
    coded: dict[int, tuple[bytes, bytes]] = {}

    def cost(q: int) -> float:
        coded[q] = _trial(image, q, lossy, model)
        bits = 8.0 * sum(map(len, coded[q]))
        if progress:
            progress(q, bits)
        return bits

    search = SEQUENTIAL_SEARCH[effort]
    best, costs = scan_and_refine(cost, [lossy.q_max + d for d in search.scan], lossy.q_min, lossy.q_max,
                                  search.steps)
    return best, costs, coded


def code_image(
    image: np.ndarray, lossy: LossyCodec, model: SequentialModel, q: int | None, effort: int, greyscale: bool,
    progress: Callable[[int, float], None] | None = None, alternatives: bool = True,
) -> tuple[LbpgFile, dict[int, float]]:
    """A version-6 file of ``image``: at ``q``, or at the Q ``effort``'s search finds; with
    ``alternatives``, coded with each of the model's alternative sets too, the smallest kept
    (the tiles of one file share one set: they do not)."""
    if q is None:
        q, costs, coded = search_q(image, lossy, model, effort, progress)
        payload, residual = coded[q]
    else:
        costs = {}
        payload, residual = _trial(image, q, lossy, model)
    chosen = model
    others = candidates(model)[1:] if alternatives else ()
    if others:
        recon = lossy.decode(payload, size=image.shape[:2])
        for other in others:
            coded_other = coder.encode(image, recon, other)
            if len(coded_other) < len(residual):
                chosen, residual = other, coded_other
    height, width = image.shape[:2]
    f = sequential_file(lossy.backend_id, q, chosen.model_id, height, width, greyscale, pixel_checksum(image),
                        payload, residual)
    return f, costs


def decode_image(f: LbpgFile, lossy: LossyCodec, model: SequentialModel) -> np.ndarray:
    """The exact pixels of a version-6 file (or tile), checked against its checksum."""
    h = f.header
    # decoded (and checked) even for a model that does not read it: every file's preview must work
    try:
        recon = lossy.decode(f.lossy, size=(h.height, h.width))
    except ValueError as exc:
        raise FormatError(f"lossy layer does not decode: {exc}") from exc
    if recon.shape != (h.height, h.width, 3):
        raise FormatError(f"lossy layer decodes to {recon.shape[1]}x{recon.shape[0]}, header says "
                          f"{h.width}x{h.height}")
    image = coder.decode(f.residual_streams[0], recon, h.height, h.width, model)
    if pixel_checksum(image) != h.checksum:
        raise ChecksumError(
            "decoded pixels do not match the checksum stored in the file: the file is damaged "
            "or was not written by this build's sequential coder; no output written"
        )
    return image
