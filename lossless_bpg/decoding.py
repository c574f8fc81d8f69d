"""Decoding .lbpg files: whole or band by band, with every check, and the preview.

Kept apart from :mod:`lossless_bpg.codec` so that decoding a file of the sequential coder never
imports torch (about 0.9 s per process): the parallel network's decoder is imported only for
the files that need it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from .container import SEQUENTIAL_VERSION, AnyHeader, LbpgFile, PixelChecksum, TiledFile, unpack
from .errors import ChecksumError, FormatError, ModelMismatchError
from .lossy import backend_name_from_id, get_lossy_codec
from .memory import check_decode_memory
from .metadata import Metadata
from .sequential import SequentialModel
from .sequential import by_id as sequential_by_id
from .sequential import layer as sequential_layer

if TYPE_CHECKING:
    from .residual import LoadedModel

#: A residual mode's model: the sequential coder's parameter set, or a parallel network.
AnyModel: TypeAlias = "SequentialModel | LoadedModel"


def _find_shipped_network(model_id: bytes) -> LoadedModel:
    from .residual import find_model_by_id

    return find_model_by_id(model_id)


def _model_threads(model: AnyModel, workers: int) -> contextlib.AbstractContextManager[None]:
    """With several tile workers each network runs on one thread (their threads would contend
    for the same cores); the sequential coder uses no torch threads."""
    if isinstance(model, SequentialModel):
        return contextlib.nullcontext()
    from .threads import torch_threads

    return torch_threads(1 if workers > 1 else None)


def _decode_whole(f: LbpgFile, model: AnyModel) -> np.ndarray:
    """The pixels of one whole-image file (or tile), checked against its checksum."""
    if (f.header.version == SEQUENTIAL_VERSION) != isinstance(model, SequentialModel):
        raise FormatError("the file's residual layer and the model it names are of different kinds: the file is "
                          "damaged")
    if isinstance(model, SequentialModel):
        return sequential_layer.decode_image(f, get_lossy_codec(backend_name_from_id(f.header.backend_id)), model)
    from .codec import decode_parallel_whole

    return decode_parallel_whole(f, model)


def _check_greyscale(rows: np.ndarray) -> None:
    if not (np.array_equal(rows[..., 0], rows[..., 1]) and np.array_equal(rows[..., 0], rows[..., 2])):
        raise FormatError("header says greyscale, but the decoded channels differ: the file is damaged")


@dataclass
class DecodedBands:
    """A file being decoded: its header, and its pixels as bands of whole rows, top to bottom
    (one band for a whole-image file, one per row of tiles for a tiled one). The file's
    checksum is compared after the last band: a consumer must not keep its output unless the
    iteration ended without an error. ``metadata``: the PNG ancillary chunks the file keeps."""

    header: AnyHeader
    bands: Iterator[np.ndarray]
    metadata: Metadata = ()


def decode_bands(
    data: bytes,
    model: AnyModel | None = None,
    workers: int = 1,
    tile_progress: Callable[[int, int], None] | None = None,
    find_model: Callable[[bytes], LoadedModel] | None = None,
) -> DecodedBands:
    """Start decoding an .lbpg file. The structure, the model and the memory needed are checked
    here, before any pixel is decoded; the pixels come as the bands are iterated, so a tiled
    image never needs to be whole in memory. ``model`` defaults to the model whose id the file
    records, as ``find_model`` finds it (by default, among the shipped models)."""
    f = unpack(data)
    h = f.header
    if model is None:
        model = sequential_by_id(h.model_id) or (find_model or _find_shipped_network)(h.model_id)
    elif model.model_id != h.model_id:
        raise ModelMismatchError(
            f"file was written with residual model {h.model_id.hex()}, but model "
            f"{model.name!r} ({model.model_id_hex}) was given"
        )
    check_decode_memory(h, workers)
    if isinstance(f, LbpgFile):
        return DecodedBands(f.header, _whole_bands(f, model), f.metadata)
    return DecodedBands(f.header, _tiled_bands(f, model, workers, tile_progress), f.metadata)


def _whole_bands(f: LbpgFile, model: AnyModel) -> Iterator[np.ndarray]:
    image = _decode_whole(f, model)
    if f.header.greyscale and not f.header.max_error:  # near-lossless channels may differ within the bound
        _check_greyscale(image)
    yield image


def _tiled_bands(
    f: TiledFile, model: AnyModel, workers: int, tile_progress: Callable[[int, int], None] | None
) -> Iterator[np.ndarray]:
    h = f.header
    grid = h.tiles
    checksum = PixelChecksum()
    done = 0
    with _model_threads(model, workers):
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
        try:
            i = 0
            while i < len(grid):
                row = [j for j in range(i, len(grid)) if grid[j].top == grid[i].top]
                band = np.empty((grid[i].height, h.width, 3), np.uint8)
                decoded = (pool.map(lambda j: _decode_whole(f.tiles[j], model), row) if pool
                           else (_decode_whole(f.tiles[j], model) for j in row))
                for j, pixels in zip(row, decoded):
                    band[:, grid[j].left : grid[j].right] = pixels
                    done += 1
                    if tile_progress:
                        tile_progress(done, len(grid))
                if h.greyscale and not any(f.tiles[j].header.max_error for j in row):
                    _check_greyscale(band)
                checksum.update(band)
                i += len(row)
                if i == len(grid) and checksum.digest() != h.checksum:
                    raise ChecksumError(
                        "decoded pixels do not match the checksum stored in the file: the file is damaged; "
                        "no output written"
                    )
                yield band
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)


def decompress(
    data: bytes, model: AnyModel | None = None, workers: int = 1,
    tile_progress: Callable[[int, int], None] | None = None,
    find_model: Callable[[bytes], LoadedModel] | None = None,
) -> tuple[np.ndarray, AnyHeader]:
    """Decode an .lbpg file to its exact (H, W, 3) uint8 pixels; verify the stored checksum.

    ``model`` defaults to the model whose id the file records (see :func:`decode_bands`);
    ``workers`` threads decode the tiles of a tiled file.
    """
    decoding = decode_bands(data, model, workers, tile_progress, find_model)
    h = decoding.header
    bands = iter(decoding.bands)
    first = next(bands)
    if first.shape[0] == h.height:
        for _ in bands:  # runs the final checks
            pass
        return first, h
    image = np.empty((h.height, h.width, 3), np.uint8)
    image[: first.shape[0]] = first
    top = first.shape[0]
    for band in bands:
        image[top : top + band.shape[0]] = band
        top += band.shape[0]
    return image, h




def preview(data: bytes) -> tuple[np.ndarray, AnyHeader]:
    """The lossy layer's reconstruction alone, no residual decoded: a quick approximate view of
    any .lbpg file (the lossy layer is always its first section). Not checked against the
    pixel checksum, which is the exact image's."""
    f = unpack(data)
    return _preview_image(f), f.header


def preview_bands(data: bytes) -> DecodedBands:
    """:func:`preview` as one band, with the file's metadata."""
    f = unpack(data)
    return DecodedBands(f.header, iter([_preview_image(f)]), f.metadata)


def _preview_image(f: LbpgFile | TiledFile) -> np.ndarray:
    h = f.header
    lossy = get_lossy_codec(backend_name_from_id(h.backend_id))
    parts = [(None, f)] if isinstance(f, LbpgFile) else list(zip(f.header.tiles, f.tiles))
    image = np.empty((h.height, h.width, 3), np.uint8)
    for tile, t in parts:
        size = (t.header.height, t.header.width)
        try:
            pixels = lossy.decode(t.lossy, size=size)
        except ValueError as exc:
            raise FormatError(f"lossy layer does not decode: {exc}") from exc
        if pixels.shape != (*size, 3):
            raise FormatError("lossy layer decodes to another size than the header's")
        if tile is None:
            image = pixels
        else:
            image[tile.top : tile.bottom, tile.left : tile.right] = pixels
    return image
