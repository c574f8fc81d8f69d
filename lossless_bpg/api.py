"""The Python API for pipelines: :func:`compress` an 8-bit RGB or greyscale image (a NumPy array
or a PIL image) to the bytes of an ``.lbpg`` file, and :func:`decompress` such bytes back to a
NumPy array with exactly the original pixels.

Inputs are checked as strictly as the command line's (:mod:`lossless_bpg.imageio`): only
single-frame images with 8-bit samples, RGB or greyscale, are taken; anything else (other
dtypes, shapes or modes, alpha, palettes, 16-bit files that Pillow opened as 'RGB') raises
:class:`~lossless_bpg.errors.UnsupportedImageError` rather than being converted. torch is
imported on the first call, not with the package; the residual model is loaded once per process
(per model name) and kept.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from .container import DEFAULT_TILE_SIZE
from .effort import ADAPT_MODES, DEFAULT_EFFORT, EFFORT_SEARCH
from .errors import UnsupportedImageError
from .metadata import Chunk, Metadata

if TYPE_CHECKING:
    from PIL import Image

    from .container import AnyHeader
    from .residual import LoadedModel
    from .sequential import SequentialModel

#: What :func:`compress` takes: an (H, W, 3) or (H, W) uint8 array, or a PIL image.
ImageLike: TypeAlias = "np.ndarray | Image.Image"
#: What :func:`decompress` takes: the bytes of an ``.lbpg`` file.
BytesLike: TypeAlias = "bytes | bytearray | memoryview"

_SUPPORTED_ARRAYS = (
    "a NumPy array of dtype uint8 shaped (H, W, 3) for RGB or (H, W) for greyscale, or a PIL "
    "image of mode 'RGB' or 'L'"
)

_models: dict[str, LoadedModel] = {}
_models_lock = threading.Lock()


def _model(name: str) -> LoadedModel:
    """The residual model called ``name`` (a shipped model or a ``.pt`` path), loaded once."""
    with _models_lock:
        if name not in _models:
            from .residual import load_model

            _models[name] = load_model(name)
        return _models[name]


#: The names that choose the sequential coder at the effort asked for (the default since 0.6.0);
#: "parallel" chooses the registry's default network.
SEQUENTIAL_NAMES = ("default", "sequential")
PARALLEL_NAME = "parallel"


def coding_model(name: str, backend: str, effort: int) -> LoadedModel | SequentialModel:
    """The model ``compress`` codes with for the name the user gave: the sequential coder's set
    for ``effort`` (by default), a sequential set by its name, or a parallel network (by name,
    path, or "parallel" for the registry's default; a lossy layer's paired network for it)."""
    from . import sequential
    from .lossy import residual_model_name

    if name in SEQUENTIAL_NAMES:
        return sequential.for_effort(effort)
    named = sequential.by_name(name)
    if named is not None:
        return named
    return _model(residual_model_name("default" if name == PARALLEL_NAME else name, backend))


def _decoding_model(name: str) -> LoadedModel | SequentialModel:
    """The model a user names for decoding (checked against the file's id by the decoder)."""
    from . import sequential

    return sequential.by_name(name) or _model(name)


def _model_for(model_id: bytes) -> LoadedModel:
    """The shipped network with id ``model_id``, from the cache when one loaded there has it
    (the decoder looks sequential ids up itself)."""
    with _models_lock:
        for loaded in _models.values():
            if loaded.model_id == model_id:
                return loaded
        from .residual import find_model_by_id

        loaded = find_model_by_id(model_id)
        _models.setdefault(loaded.name, loaded)
        return loaded


def _pil_problem(im: Image.Image) -> str | None:
    """Why a PIL image cannot be stored exactly, or None: the checks of
    :func:`lossless_bpg.imageio.load_image`, including the sample depth of the file it was
    opened from (Pillow calls a 16-bit RGB PNG 'RGB')."""
    from .imageio import image_problem

    if im.format is None:  # made in memory (fromarray, new, convert): its samples are 8-bit
        return image_problem(im, None)
    head = _file_head(im)
    if head is None and im.format in ("PNG", "PPM"):
        return image_problem(im, None) or (
            f"a {im.format} image whose file can no longer be read to check its sample "
            f"depth; pass the path's pixels through lossless_bpg.imageio.load_image")
    return image_problem(im, head or b"")


def _file_head(im: Image.Image) -> bytes | None:
    """The first 4 kB of the file ``im`` was opened from, or None when it cannot be reread."""
    filename = getattr(im, "filename", None)
    if filename:
        try:
            with open(filename, "rb") as fh:
                return fh.read(4096)
        except OSError:
            pass
    fp = getattr(im, "fp", None)
    if fp is not None:
        try:
            where = fp.tell()
            try:
                fp.seek(0)
                return fp.read(4096)
            finally:
                fp.seek(where)
        except (OSError, ValueError, AttributeError):
            pass
    return None


def as_rgb(image: ImageLike) -> tuple[np.ndarray, bool]:
    """Check ``image`` and return its pixels as a contiguous (H, W, 3) uint8 array, and whether
    it is greyscale (then all three channels are equal); raise UnsupportedImageError for
    anything that is not exactly 8-bit RGB or greyscale."""
    if isinstance(image, np.ndarray):
        arr, greyscale = image, image.ndim == 2
        if arr.dtype != np.uint8:
            raise UnsupportedImageError(
                f"array of dtype {arr.dtype}; only uint8 samples are stored (convert with "
                f".astype(np.uint8) only if every value is 0-255). Supported: {_SUPPORTED_ARRAYS}"
            )
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
            hint = " (alpha is not supported)" if arr.ndim == 3 and arr.shape[2] == 4 else ""
            raise UnsupportedImageError(
                f"array of shape {arr.shape}{hint}. Supported: {_SUPPORTED_ARRAYS}"
            )
    else:
        from PIL import Image

        if not isinstance(image, Image.Image):
            raise UnsupportedImageError(
                f"cannot compress an object of type {type(image).__name__}. Supported: {_SUPPORTED_ARRAYS}"
            )
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            raise UnsupportedImageError(
                f"the image holds {frames} frames or pages; only single images are supported. "
                f"Supported: {_SUPPORTED_ARRAYS}"
            )
        problem = _pil_problem(image)
        if problem:
            raise UnsupportedImageError(f"{problem}. Supported: {_SUPPORTED_ARRAYS}")
        greyscale = image.mode == "L"
        arr = np.asarray(image, dtype=np.uint8)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UnsupportedImageError(f"empty image of shape {arr.shape}")
    if greyscale:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr), greyscale


def compress(
    image: ImageLike,
    *,
    quality: int | None = None,
    effort: int = DEFAULT_EFFORT,
    model: str = "default",
    backend: str = "hevc",
    tile_size: int | None = DEFAULT_TILE_SIZE,
    workers: int = 1,
    adapt: str = "auto",
    max_error: int = 0,
    metadata: Sequence[Chunk] = (),
) -> bytes:
    """Losslessly compress ``image`` and return the bytes of an ``.lbpg`` file.

    ``image``: an (H, W, 3) uint8 NumPy array (RGB), an (H, W) uint8 array (greyscale), or a
    PIL image of mode 'RGB' or 'L' with one frame. Greyscale is stored as such and decodes back
    to (H, W). Anything else raises :class:`~lossless_bpg.errors.UnsupportedImageError`.

    ``quality`` forces the lossy layer's Q (HEVC QP, 0-51); by default Q is searched per image
    with ``effort`` 1 (none: the model's preferred Q; fastest), 2 (default) or 3 (widest).
    ``model`` names a shipped residual model or a ``.pt`` file; ``backend`` the lossy layer
    (``"hevc"``; ``"lic"``, the learned one, whose own residual model is then the default;
    ``"bpg"`` when libbpg's tools are installed). The model is loaded once per
    process. An image with a side longer than ``tile_size`` is coded in independent tiles of
    about that side (memory is bounded by the tile; None codes every image whole), by
    ``workers`` threads (the bytes do not depend on their number). ``adapt="none"`` turns off
    the per-image fine-tuning of the residual model. ``max_error`` T > 0 stores the image
    near-losslessly: every decoded subpixel is within T of the original (the sequential coder;
    the file records T and the checksum of what it decodes to). ``metadata``: PNG ancillary
    chunks to keep beside the pixels (e.g. :func:`image_metadata` of the source file); the
    ``decompress`` command writes them into its PNG, :func:`read_metadata` gives them back.
    Errors the user can act on are subclasses of
    :class:`~lossless_bpg.errors.LosslessBpgError`; invalid arguments raise ValueError.
    """
    from .codec import compress as _compress

    if effort not in EFFORT_SEARCH:
        raise ValueError(f"effort must be one of {sorted(EFFORT_SEARCH)}, not {effort!r}")
    if adapt not in ADAPT_MODES:
        raise ValueError(f"adapt must be one of {', '.join(ADAPT_MODES)}, not {adapt!r}")
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, (int, np.integer))):
        raise ValueError(f"quality must be an integer Q or None, not {quality!r}")
    pixels, greyscale = as_rgb(image)
    result = _compress(pixels, coding_model(model, backend, effort), backend=backend, greyscale=greyscale,
                       quality=None if quality is None else int(quality), effort=effort,
                       tile_size=tile_size, workers=workers, adapt=adapt, max_error=max_error,
                       metadata=metadata)
    return result.data


def decompress(data: BytesLike, *, model: str | None = None, workers: int = 1) -> np.ndarray:
    """Decode the bytes of an ``.lbpg`` file to its exact pixels: an (H, W, 3) uint8 array, or
    (H, W) for a file made from a greyscale image.

    The residual model is the shipped one whose id the file records (or ``model``, by name).
    A damaged, truncated or foreign file raises a subclass of
    :class:`~lossless_bpg.errors.LosslessBpgError` (FormatError, VersionError, ChecksumError,
    ModelMismatchError, ...): every decode is checked against the file's pixel checksum, so
    the result is exact or an error. ``workers`` threads decode the tiles of a tiled file.
    """
    return decode(data, model=model, workers=workers)[0]


def decode(data: BytesLike, *, model: str | None = None, workers: int = 1) -> tuple[np.ndarray, AnyHeader]:
    """:func:`decompress`, also returning the file's parsed header."""
    from .decoding import decompress as _decompress

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decompress takes the bytes of an .lbpg file, not {type(data).__name__}")
    loaded = _decoding_model(model) if model is not None else None
    image, header = _decompress(bytes(data), loaded, workers=workers, find_model=_model_for)
    if header.greyscale:
        image = np.ascontiguousarray(image[..., 0])
    return image, header


def read_header(data: BytesLike) -> AnyHeader:
    """Parse and check the container of an ``.lbpg`` file (no decoding): its size
    (``width``, ``height``), ``greyscale``, model id, and Q (a whole-image file's
    :class:`~lossless_bpg.container.Header`) or tile size (a tiled file's
    :class:`~lossless_bpg.container.TiledHeader`, whose tiles each have their own Q). Raises
    FormatError / VersionError."""
    from .container import unpack

    return unpack(bytes(data)).header


def read_metadata(data: BytesLike) -> Metadata:
    """The metadata an ``.lbpg`` file keeps (no decoding): its PNG ancillary chunks (ICC
    profile as iCCP, EXIF as eXIf, XMP and text as iTXt / tEXt / zTXt, ...) in their order;
    empty for a file without. Raises FormatError / VersionError."""
    from .container import unpack

    return unpack(bytes(data)).metadata


def image_metadata(path: str | Path) -> Metadata:
    """The metadata of the image file ``path`` that ``compress`` keeps from it, as PNG ancillary
    chunks (a PNG's own, or a JPEG's, TIFF's or WebP's mapped to them); empty when none."""
    from .imagemeta import read_image_metadata

    return read_image_metadata(path).chunks
