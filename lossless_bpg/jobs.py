"""The per-file work of ``compress`` and ``decompress``: plain top-level functions that every
engine (:mod:`lossless_bpg.engines`) calls, in this process or in a worker, so that the files
written do not depend on where they were made.

Each takes one picklable job (input, output, options) and returns a :class:`FileResult`; a
file that cannot be done is a result with ``status="failed"`` and the message for the user,
never an exception, so one bad file never stops the others.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from .container import DEFAULT_TILE_SIZE
from .effort import DEFAULT_EFFORT
from .engines import report_status
from .errors import LosslessBpgError, OutputExistsError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .decoding import DecodedBands
    from .imagemeta import ImageMetadata
    from .residual import LoadedModel
    from .sequential import SequentialModel

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class CompressOptions:
    model: str = "default"
    backend: str = "hevc"
    quality: int | None = None
    effort: int = DEFAULT_EFFORT
    verify: bool = False
    force: bool = False
    skip_existing: bool = False
    tile_size: int | None = DEFAULT_TILE_SIZE  # None: every image whole
    tile_workers: int = 1
    adapt: str = "auto"
    #: 0: lossless; T > 0: near-lossless, every subpixel within T (the sequential coder).
    max_error: int = 0
    #: Store the pixels only, none of the image's metadata.
    strip: bool = False


@dataclass(frozen=True)
class DecompressOptions:
    model: str | None = None  # None: the shipped model the file names
    force: bool = False
    skip_existing: bool = False
    tile_workers: int = 1
    #: Write the lossy layer's reconstruction only (approximate; no residual decoded).
    preview: bool = False


@dataclass(frozen=True)
class CompressJob:
    src: Path
    dst: Path
    options: CompressOptions


@dataclass(frozen=True)
class DecompressJob:
    src: Path
    dst: Path
    options: DecompressOptions


@dataclass(frozen=True)
class CompressStats:
    """What the report table shows of one compressed image."""

    width: int
    height: int
    q: int
    total_bytes: int
    lossy_bytes: int
    residual_bytes: int
    encode_s: float
    decode_s: float  # NaN without --verify
    #: The error bound asked for, and the largest |decoded - original| --verify measured (-1: not verified).
    max_error: int = 0
    measured_error: int = -1


@dataclass(frozen=True)
class FileResult:
    src: Path
    dst: Path
    status: Status
    error: str = ""  # the message for the user when failed
    traceback: str = ""  # for failures nobody planned for (a bug): where it happened
    stats: CompressStats | None = None
    #: What the user should know although the file is done (e.g. metadata that was not kept).
    warnings: tuple[str, ...] = ()


def _skipped(src: Path, dst: Path) -> FileResult:
    return FileResult(src, dst, "skipped")


def _unexpected(src: Path, dst: Path, exc: Exception) -> FileResult:
    return FileResult(src, dst, "failed", f"{src}: unexpected {type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())


def _exists_and_not_wanted(dst: Path, force: bool) -> None:
    if dst.exists() and not force:
        raise OutputExistsError(f"{dst} exists; use --force to overwrite it")


def compress_file(job: CompressJob) -> FileResult:
    """Compress the image ``job.src`` to ``job.dst`` (atomically; an existing output is an
    error without ``force``, or skipped with ``skip_existing``), verifying it first when asked."""
    from .api import coding_model
    from .codec import compress
    from .fileio import write_bytes_atomic
    from .imageio import load_image
    from .imagemeta import read_image_metadata

    src, dst, options = job.src, job.dst, job.options
    if options.skip_existing and dst.exists():
        return _skipped(src, dst)
    report_status(src.name)
    try:
        _exists_and_not_wanted(dst, options.force)
        model = coding_model(options.model, options.backend, options.effort)
        image, greyscale = load_image(src)
        metadata = read_image_metadata(src)
        tried: list[str] = []  # a large image takes minutes: show where the Q search is

        def show_trial(q: int, _bits: float) -> None:
            tried.append(str(q))
            report_status(f"{src.name}: Q {', '.join(tried)} tried")

        def show_tiles(done: int, total: int, what: str = "coded") -> None:
            report_status(f"{src.name}: {done}/{total} tiles {what}")

        t0 = time.perf_counter()
        result = compress(image, model, backend=options.backend, quality=options.quality,
                          greyscale=greyscale, effort=options.effort, progress=show_trial,
                          tile_size=options.tile_size, workers=options.tile_workers, tile_progress=show_tiles, adapt=options.adapt,
                          max_error=options.max_error, metadata=() if options.strip else metadata.chunks)
        encode_s = time.perf_counter() - t0
        decode_s, measured = float("nan"), -1
        if options.verify:
            t0 = time.perf_counter()
            measured = _verify(src, image, result.data, model, options.tile_workers, partial(show_tiles, what="verified"),
                               options.max_error)
            decode_s = time.perf_counter() - t0
        write_bytes_atomic(dst, result.data, force=options.force)
    except OutputExistsError as exc:
        if options.skip_existing:  # written by someone else meanwhile
            return _skipped(src, dst)
        return FileResult(src, dst, "failed", str(exc))
    except (LosslessBpgError, OSError, ValueError) as exc:
        return FileResult(src, dst, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 (reported with its traceback; the other files go on)
        return _unexpected(src, dst, exc)
    h, w = image.shape[:2]
    return FileResult(src, dst, "done", stats=CompressStats(
        width=w, height=h, q=result.q, total_bytes=len(result.data), lossy_bytes=result.lossy_bytes,
        residual_bytes=result.residual_bytes, encode_s=encode_s, decode_s=decode_s, max_error=options.max_error,
        measured_error=measured), warnings=_not_stored(src, metadata, options.strip))


def _not_stored(src: Path, metadata: ImageMetadata, strip: bool) -> tuple[str, ...]:
    """The warning naming what ``src`` carries that its .lbpg file does not keep, if anything."""
    from .metadata import describe_metadata, exif_orientation

    dropped = list(metadata.not_kept)
    if strip and metadata.chunks:
        turned = [o for c in metadata.chunks if c.kind == b"eXIf" and (o := exif_orientation(c.data)) not in (None, 1)]
        dropped[:0] = [describe_metadata(metadata.chunks)] + [
            f"viewers will not rotate or mirror the decoded PNG as they do the source (orientation {o})" for o in turned]
    if not dropped:
        return ()
    return (f"{src}: not stored{' (--strip)' if strip else ''}: {'; '.join(dropped)}",)


def _verify(src: Path, image: np.ndarray, data: bytes, model: LoadedModel | SequentialModel, workers: int,
            progress: Callable[[int, int], None], max_error: int = 0) -> int:
    """Decode ``data`` band by band (no second copy of a large image) and compare with
    ``image``: equal, or every subpixel within ``max_error``. Returns the largest error seen."""
    from .decoding import decode_bands

    top, worst = 0, 0
    for band in decode_bands(data, model, workers, progress).bands:
        original = image[top : top + band.shape[0]]
        top += band.shape[0]
        if max_error == 0:
            if not np.array_equal(band, original):
                raise LosslessBpgError(f"{src}: verification failed (decoded pixels differ)")
            continue
        worst = max(worst, int(np.abs(band.astype(np.int16) - original).max(initial=0)))
        if worst > max_error:
            raise LosslessBpgError(f"{src}: verification failed (a decoded subpixel is {worst} from the original, "
                                   f"more than the bound {max_error})")
    return worst


def write_png(path: Path, decoding: DecodedBands) -> None:
    """Write a file being decoded as a PNG, band by band as its rows come (a tiled image is
    never whole in memory): one channel when the source was greyscale. Raises, leaving a
    partial file for the caller to remove, if any check of the decoding fails."""
    from .pngwrite import PngWriter

    h = decoding.header
    with open(path, "wb") as fh:
        writer = PngWriter(fh, h.width, h.height, greyscale=h.greyscale, ancillary=decoding.metadata)
        for band in decoding.bands:
            writer.write(band[..., 0] if h.greyscale else band)
        writer.close()


def decompress_file(job: DecompressJob) -> FileResult:
    """Decode the ``.lbpg`` file ``job.src`` to the PNG ``job.dst`` (same rules for outputs as
    :func:`compress_file`)."""
    from .api import _decoding_model, _model_for
    from .container import HEAD_BYTES, check_head
    from .decoding import decode_bands, preview_bands
    from .fileio import read_input, write_atomic

    src, dst, options = job.src, job.dst, job.options
    if options.skip_existing and dst.exists():
        return _skipped(src, dst)
    report_status(src.name)
    try:
        _exists_and_not_wanted(dst, options.force)
        data = read_input(src, check_head, HEAD_BYTES)
        if options.preview:
            decoding = preview_bands(data)
        else:
            model = _decoding_model(options.model) if options.model else None
            decoding = decode_bands(data, model, options.tile_workers,
                                    lambda done, total: report_status(f"{src.name}: {done}/{total} tiles decoded"),
                                    find_model=_model_for)
        del data  # the parsed file holds what decoding needs
        write_atomic(dst, partial(write_png, decoding=decoding), force=options.force)
    except OutputExistsError as exc:
        if options.skip_existing:
            return _skipped(src, dst)
        return FileResult(src, dst, "failed", f"{src}: {exc}")
    except (LosslessBpgError, OSError) as exc:
        return FileResult(src, dst, "failed", f"{src}: {exc}")
    except Exception as exc:  # noqa: BLE001 (reported with its traceback; the other files go on)
        return _unexpected(src, dst, exc)
    return FileResult(src, dst, "done")
