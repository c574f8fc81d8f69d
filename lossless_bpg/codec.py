"""compress / decompress: lossy layer + residual layer + container, with Q chosen per image."""

from __future__ import annotations

import ctypes
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .container import Header, LbpgFile, pack, pixel_checksum, unpack
from .errors import (
    ChecksumError,
    FormatError,
    ImageTooLargeError,
    LosslessBpgError,
    ModelMismatchError,
)
from .lossy import LossyCodec, backend_name_from_id, get_lossy_codec
from .residual import (
    LoadedModel,
    ResidualEstimate,
    ResidualStreams,
    decode_residual,
    encode_residual,
    estimate_residual,
    find_model_by_id,
)
from .search import scan_and_refine

#: Where the Q search starts and the range it may move in (HEVC QP units), for a model whose
#: metadata does not say.
Q_START = 24
Q_SEARCH_MIN = 8
Q_SEARCH_MAX = 44
#: Encoder effort -> the Q search: points scanned (offsets from the model's starting Q), then
#: the pattern-search steps from the best of them. Effort 1 takes the starting Q. Chosen on the
#: validation crops' full Q curves (loss against each crop's best Q / HEVC encodes per image):
#: scan (-8, 0, 8) + step 1: 0.08 % / 6.1; scan (-12, -6, 0, 6, 12) + steps 2, 1: 0.03 % / 8.5;
#: the previous search (steps 2, 1 from the starting Q alone): 0.32 % / 6.3.
EFFORT_SEARCH = {1: ((0,), ()), 2: ((-8, 0, 8), (1,)), 3: ((-12, -6, 0, 6, 12), (2, 1))}
DEFAULT_EFFORT = 2

#: At effort 2, an image of at least 4x this many pixels searches Q on a sample of about this
#: many (SAMPLE_TILE-square tiles on a regular lattice, put together), then codes the whole
#: image once at the Q found. Measured on a 2048x2048 photograph (not Kodak): the Q found on a
#: 1 Mpx sample costs 0.003 % over the whole-image search's, on 0.5 Mpx 0.03 %, 0.26 Mpx 0.13 %.
SAMPLE_PIXELS = 1 << 20
SAMPLE_TILE = 64


#: Peak memory of a whole command (RSS), an upper bound of every peak measured on this
#: project's machine: 450 MiB plus this many bytes per pixel. Compress (default effort; B/px
#: over the base): 1 Mpx 444, 4 Mpx 400, 12 Mpx 446, 24 Mpx 463 (10.8 GB, issue 15's run;
#: measured before one malloc arena; with it: 4 Mpx 1.69 GB, 6000x4000 5.49 GB = 214 B/px).
#: Decompress: 1 Mpx 276, 4 Mpx 236.
ENCODE_BYTES_PER_PIXEL = 500
DECODE_BYTES_PER_PIXEL = 320
BASE_BYTES = 450 << 20


def _available_memory() -> int | None:
    """Memory this process can still take: the kernel's MemAvailable (free plus reclaimable
    cache), less still under a container's cgroup limit; the physical memory where neither is
    readable; None where nothing is (then nothing is refused)."""
    limits = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) << 10)
    except (OSError, ValueError, IndexError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            limits.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not limits:
        try:
            limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(limits)


def release_freed_memory() -> None:
    """Give memory freed by the last phase back to the system (glibc keeps freed tensors'
    memory in fragments the next phase's differently sized ones do not fit, and the peak then
    adds up over phases: +470 MB on a 2048x2048 image). A no-op where there is no glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def use_one_malloc_arena() -> None:
    """Have every thread allocate from glibc's main arena. By default each thread that
    allocates gets an arena of its own, and freed tensor memory then sits in several arenas at
    once: a 2048x2048 compress (command-line worker thread plus torch's) peaked at 1.95 GB
    with the default and 1.67 GB with one arena, in the same time. For a process that codes
    images (the command line), not for a library's host; a no-op without glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 1)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def check_memory(height: int, width: int, bytes_per_pixel: int, what: str) -> None:
    """Refuse, before any work, an image whose coding would need more memory than is available:
    the whole image is coded at once (there is no tiling yet), and running out of memory
    midway would end in a crash instead of a message."""
    available = _available_memory()
    needed = BASE_BYTES + bytes_per_pixel * height * width
    if available is not None and needed > available:
        raise ImageTooLargeError(
            f"a {width}x{height} image needs about {needed / 2**30:.1f} GB of memory to {what}; this "
            f"machine has {available / 2**30:.1f} GB available (lossless_bpg codes whole images, without tiling)"
        )


@dataclass
class CompressionResult:
    data: bytes
    q: int
    lossy_bytes: int
    residual_bytes: int
    header_bytes: int
    #: Estimated total bits for every Q the search tried (of the search's sample, for a large
    #: image).
    q_trials: dict[int, float] = field(default_factory=dict)

    def bits_per_subpixel(self, height: int, width: int) -> float:
        return 8.0 * len(self.data) / (height * width * 3)


@dataclass(frozen=True)
class QTrial:
    """The lossy layer at one Q and the model's estimate of the total size with it."""

    q: int
    total_bits: float
    lossy_payload: bytes
    recon: np.ndarray
    residual: ResidualEstimate


def try_q(image: np.ndarray, q: int, lossy: LossyCodec, model: LoadedModel) -> QTrial:
    """Encode the lossy layer at ``q`` and estimate the residual layer's size."""
    payload = lossy.encode(image, q)
    recon = lossy.decode(payload)
    residual = estimate_residual(model.exact, image, recon, q)
    return QTrial(q, 8 * len(payload) + residual.bits, payload, recon, residual)


def choose_q(
    image: np.ndarray,
    lossy: LossyCodec,
    model: LoadedModel,
    start: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    effort: int = DEFAULT_EFFORT,
) -> tuple[QTrial, dict[int, float]]:
    """Search integer Q for the smallest estimated total size, inside the Q range the model was
    trained on, around the model's preferred Q (or ``start``); ``effort`` picks the search (see
    EFFORT_SEARCH; 6-9 HEVC encodes at the default). Returns the best trial (kept whole, so that
    its lossy layer is not encoded twice) and the estimated total bits of every Q tried.
    """
    q_lo, q_hi = model.q_range or (Q_SEARCH_MIN, Q_SEARCH_MAX)
    lo, hi = max(lossy.q_min, q_lo), min(lossy.q_max, q_hi)
    if start is None:
        start = Q_START if model.q_start is None else model.q_start
    best: QTrial | None = None  # one trial at least: the scan is never empty

    def cost(q: int) -> float:
        nonlocal best
        trial = try_q(image, q, lossy, model)
        if progress:
            progress(q, trial.total_bits)
        if best is None or trial.total_bits < best.total_bits:
            best = trial
        return trial.total_bits

    offsets, steps = EFFORT_SEARCH[effort]
    _, costs = scan_and_refine(cost, [start + d for d in offsets], lo, hi, steps)
    assert best is not None  # the scan evaluates at least one Q
    return best, costs


def search_sample(image: np.ndarray) -> np.ndarray | None:
    """The tiles of ``image`` that the Q search of a large image looks at, put together in
    their own arrangement (every k-th tile of every k-th tile row, from the middle of the
    first k x k block; about SAMPLE_PIXELS in all), or None when the image is too small to
    need a sample."""
    height, width = image.shape[:2]
    stride = math.isqrt(height * width // SAMPLE_PIXELS)
    t = SAMPLE_TILE
    rows, cols = height // t, width // t
    if stride < 2 or not rows or not cols:
        return None
    # stride x stride thinning, taken along the other side where one side has too few tiles
    row_step = min(stride, rows)
    col_step = min(cols, stride * stride // row_step)
    row_step = min(rows, stride * stride // col_step)
    band = [image[r * t : (r + 1) * t] for r in range(row_step // 2, rows, row_step)]
    return np.ascontiguousarray(np.concatenate(
        [np.concatenate([b[:, c * t : (c + 1) * t] for c in range(col_step // 2, cols, col_step)], 1) for b in band]
    ))


def compress(
    image: np.ndarray,
    model: LoadedModel,
    backend: str = "hevc",
    quality: int | None = None,
    greyscale: bool = False,
    progress: Callable[[int, float], None] | None = None,
    effort: int = DEFAULT_EFFORT,
) -> CompressionResult:
    """Losslessly compress an (H, W, 3) uint8 RGB image.

    ``quality`` forces the lossy layer's Q; otherwise Q is searched per image with ``effort``
    1 (no search), 2 (on a sample of the image when it is large, see SAMPLE_PIXELS) or 3
    (wider, always on the whole image; slower). ``greyscale``
    records that the source had one channel (all three equal) so decode can give it back.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("image must be (H, W, 3) uint8")
    check_memory(image.shape[0], image.shape[1], ENCODE_BYTES_PER_PIXEL, "compress")
    lossy = get_lossy_codec(backend)
    sample = search_sample(image) if quality is None and effort == 2 else None
    if sample is not None:
        sample_trial, q_trials = choose_q(sample, lossy, model, progress=progress, effort=effort)
        found_q = sample_trial.q
        del sample, sample_trial  # only its Q is needed
        release_freed_memory()
        trial = try_q(image, found_q, lossy, model)
    elif quality is None:
        trial, q_trials = choose_q(image, lossy, model, progress=progress, effort=effort)
    else:
        lossy.check_q(quality)
        trial, q_trials = try_q(image, quality, lossy, model), {}
    q, lossy_payload = trial.q, trial.lossy_payload
    release_freed_memory()
    streams = encode_residual(model.exact, image, trial.recon, q, fit_samples=trial.residual.fit_samples)
    header = Header(
        backend_id=lossy.backend_id,
        q=q,
        model_id=model.model_id,
        height=image.shape[0],
        width=image.shape[1],
        greyscale=greyscale,
        residual_ranges=streams.ranges,
        checksum=pixel_checksum(image),
    )
    data = pack(LbpgFile(header, lossy_payload, streams.streams, streams.escapes, streams.adaptations,
                         streams.half_widths))
    residual_bytes = sum(map(len, streams.streams)) + sum(map(len, streams.escapes))
    return CompressionResult(
        data=data,
        q=q,
        lossy_bytes=len(lossy_payload),
        residual_bytes=residual_bytes,
        header_bytes=len(data) - len(lossy_payload) - residual_bytes,
        q_trials=q_trials,
    )


def decompress(data: bytes, model: LoadedModel | None = None) -> tuple[np.ndarray, Header]:
    """Decode an .lbpg file to its exact (H, W, 3) uint8 pixels; verify the stored checksum.

    ``model`` defaults to the shipped model whose id the file records.
    """
    f = unpack(data)
    h = f.header
    check_memory(h.height, h.width, DECODE_BYTES_PER_PIXEL, "decompress")
    if model is None:
        model = find_model_by_id(h.model_id)
    elif model.model_id != h.model_id:
        raise ModelMismatchError(
            f"file was written with residual model {h.model_id.hex()}, but model "
            f"{model.name!r} ({model.model_id_hex}) was given"
        )
    lossy = get_lossy_codec(backend_name_from_id(h.backend_id))
    try:
        recon = lossy.decode(f.lossy, size=(h.height, h.width))
    except ValueError as exc:
        raise FormatError(f"lossy layer does not decode: {exc}") from exc
    if recon.shape != (h.height, h.width, 3):
        raise FormatError(
            f"lossy layer decodes to {recon.shape[1]}x{recon.shape[0]}, header says "
            f"{h.width}x{h.height}"
        )
    try:
        residual = decode_residual(
            model.exact, recon, h.q,
            ResidualStreams(h.residual_ranges, f.residual_streams, f.escape_streams, f.adaptations, f.half_widths),
        )
    except LosslessBpgError:
        raise
    except Exception as exc:  # the arithmetic decoder fails in many ways on damaged input
        raise FormatError(f"residual layer does not decode: {exc}") from exc
    image = recon.astype(np.int16) + residual
    if image.min() < 0 or image.max() > 255 or pixel_checksum(image.astype(np.uint8)) != h.checksum:
        raise ChecksumError(
            "decoded pixels do not match the checksum stored in the file: the file is damaged "
            "or was not written by this build's residual model; no output written"
        )
    image = image.astype(np.uint8)
    if h.greyscale and not (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])):
        raise FormatError("header says greyscale, but the decoded channels differ: the file is damaged")
    return image, h
