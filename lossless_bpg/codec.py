"""compress / decompress: lossy layer + residual layer + container, with Q chosen per image
(or per tile: an image larger than the tile size is coded as independent tiles)."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from .container import (
    DEFAULT_TILE_SIZE,
    Header,
    LbpgFile,
    Tile,
    TiledFile,
    TiledHeader,
    pack,
    pack_tiled,
    pixel_checksum,
    tile_grid,
    with_metadata,
)
from .decoding import AnyModel, DecodedBands, decode_bands, decompress, preview  # noqa: F401  (the codec's API)
from .effort import DEFAULT_EFFORT, EFFORT_SEARCH, OWN_SEARCH_EFFORT, PerImageLearning, QSearch
from .errors import (
    ChecksumError,
    FormatError,
    LosslessBpgError,
)
from .lossy import LossyCodec, backend_name_from_id, get_lossy_codec
from .memory import (
    ENCODE_BYTES_PER_PIXEL,
    FIT_BESIDE_BYTES_PER_PIXEL,
    TILED_ENCODE_BYTES_PER_PIXEL,
    can_spare,
    check_memory,
    release_freed_memory,
)
from .metadata import Chunk
from .residual import (
    LoadedModel,
    ResidualEstimate,
    ResidualStreams,
    decode_residual,
    encode_residual,
    estimate_residual,
)
from .residual.exact import ExactResidualModel
from .residual.finetune import HeadUpdate, apply_update, fit_update, read_update
from .residual.layer import PassMemo, hidden_bytes_per_pixel, memo_bytes_per_pixel, memo_from_hidden
from .search import scan_and_refine
from .sequential import SequentialModel
from .sequential import layer as sequential_layer
from .sequential.coder import check_max_error
from .threads import Background, torch_threads

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")

#: Where the Q search starts and the range it may move in (HEVC QP units), for a model whose
#: metadata does not say.
Q_START = 24
Q_SEARCH_MIN = 8
Q_SEARCH_MAX = 44
#: How far above the highest Q its model was trained on the search may go. The estimate is the
#: model's own code length at that Q, so a Q the model extrapolates to badly costs more and is
#: not chosen. Q curves of the default model (trained on Q 12-40): on 42 training crops, 5 had
#: their best Q at 41-44 (0.10-0.42 % below their best up to 40); on the 58 validation crops, 7
#: at 41-43 (0.02-0.30 %), and the search's mean loss against each crop's best Q fell from
#: 0.065 % to 0.059 % for 0.3 more trials on average.
Q_ABOVE_TRAINED = 6

#: At effort 2, an image of at least 4x this many pixels searches Q on a sample of about this
#: many (SAMPLE_TILE-square tiles on a regular lattice, put together), then codes the whole
#: image once at the Q found. Measured on a 2048x2048 photograph (not Kodak): the Q found on a
#: 1 Mpx sample costs 0.003 % over the whole-image search's, on 0.5 Mpx 0.03 %, 0.26 Mpx 0.13 %.
SAMPLE_PIXELS = 1 << 20
SAMPLE_TILE = 64


@dataclass
class CompressionResult:
    data: bytes
    q: int
    lossy_bytes: int
    residual_bytes: int
    header_bytes: int
    #: Estimated total bits for every Q the search tried (of the search's sample, for a large
    #: image; empty where each tile searched its own).
    q_trials: dict[int, float] = field(default_factory=dict)
    #: The Q of every tile, in the grid's order (one for a whole image); ``q`` is the commonest.
    tile_qs: tuple[int, ...] = ()
    #: The per-subpixel error bound (0: lossless).
    max_error: int = 0

    def bits_per_subpixel(self, height: int, width: int) -> float:
        return 8.0 * len(self.data) / (height * width * 3)


@dataclass(frozen=True)
class QTrial:
    """The lossy layer at one Q and the model's estimate of the total size with it."""

    q: int
    total_bits: float
    lossy_payload: bytes
    recon: np.ndarray
    #: The lossy layer's decoder features, where the model reads them.
    side: torch.Tensor | None
    residual: ResidualEstimate
    #: The estimate's pass parameters, for the coding of this trial (None: memory is short).
    memo: PassMemo | None


def side_features(lossy: LossyCodec, payload: bytes, model: LoadedModel) -> torch.Tensor | None:
    """The lossy layer's decoder features of ``payload`` where ``model`` reads them, else None."""
    return lossy.side_features(payload) if model.exact.config.side_channels else None


def _pass_memo(image: np.ndarray, exact: ExactResidualModel, at_once: int = 1) -> PassMemo | None:
    """A memo for the sweeps of one input of ``image``, where memory allows ``at_once`` of them."""
    return PassMemo() if can_spare(image.shape[0] * image.shape[1], at_once * memo_bytes_per_pixel(exact)) else None


def try_q(image: np.ndarray, q: int, lossy: LossyCodec, model: LoadedModel, gather_fit_samples: bool = True) -> QTrial:
    """Encode the lossy layer at ``q`` and estimate the residual layer's size (without the
    error feedback: it hardly moves the best Q, and the search tries many), gathering the
    recalibration's samples on the way if asked (see :func:`trial_samples_used`)."""
    payload = lossy.encode(image, q)
    return _estimate_trial(image, q, payload, lossy.decode(payload), lossy, model, gather_fit_samples)


def _estimate_trial(
    image: np.ndarray, q: int, payload: bytes, recon: np.ndarray, lossy: LossyCodec, model: LoadedModel,
    gather_fit_samples: bool,
) -> QTrial:
    side = side_features(lossy, payload, model)
    memo = _pass_memo(image, model.exact, at_once=2)  # the search's best trial's and this one's
    residual = estimate_residual(model.exact, image, recon, q, gather_fit_samples, side=side, memo=memo)
    return QTrial(q, 8 * len(payload) + residual.bits, payload, recon, side, residual, memo)


def searcher(model: LoadedModel, effort: int) -> LoadedModel:
    """The model whose estimates the Q search at ``effort`` uses: below OWN_SEARCH_EFFORT the
    cheaper one ``model``'s card names, if any (its total-size curve has its minimum at the
    same Q), else ``model`` itself."""
    return model.search if model.search is not None and effort < OWN_SEARCH_EFFORT else model


def for_model(image: np.ndarray, trial: QTrial, lossy: LossyCodec, model: LoadedModel, searched_with: LoadedModel,
              gather_fit_samples: bool) -> QTrial:
    """``trial`` (estimated by ``searched_with``) as ``model`` estimates it, to be coded with it:
    the same lossy layer, no second encode."""
    if searched_with is model:
        return trial
    if trial.memo is not None:
        trial.memo.release()
    return _estimate_trial(image, trial.q, trial.lossy_payload, trial.recon, lossy, model, gather_fit_samples)


def choose_q(
    image: np.ndarray,
    lossy: LossyCodec,
    model: LoadedModel,
    start: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    effort: int = DEFAULT_EFFORT,
    gather_fit_samples: bool = True,
) -> tuple[QTrial, dict[int, float]]:
    """Search integer Q for the smallest estimated total size, inside the Q range the model was
    trained on, around the model's preferred Q (or ``start``); ``effort`` picks the search (see
    EFFORT_SEARCH; 6-9 HEVC encodes at the default). Returns the best trial (kept whole, so that
    its lossy layer is not encoded twice) and the estimated total bits of every Q tried.
    """
    if start is None:
        start = Q_START if model.q_start is None else model.q_start
    search = EFFORT_SEARCH[effort]
    best, costs = _search_q(image, lossy, model, [start + d for d in search.scan], search, {}, progress,
                            gather_fit_samples)
    assert best is not None  # the scan evaluates at least one Q
    return best, costs


def refine_q(
    image: np.ndarray, lossy: LossyCodec, model: LoadedModel, start: int, known: dict[int, float], effort: int,
    gather_fit_samples: bool = True,
) -> tuple[QTrial | None, dict[int, float]]:
    """Continue a search of ``image`` that saw the costs ``known``: the pattern search of
    ``effort`` from ``start``. Returns the cheapest of the Qs it newly tried (None if it tried
    none; it may cost more than the best of ``known``) and every cost seen."""
    # Steps only: the tile's own search, whose costs are ``known``, already took the vertices.
    return _search_q(image, lossy, model, [start], EFFORT_SEARCH[effort]._replace(parabola=False), known, None,
                     gather_fit_samples)


def trial_samples_used(model: LoadedModel, learning: PerImageLearning) -> bool:
    """Whether the coding of a trial fits the recalibration to the samples its estimate
    gathered: only without the error feedback (which estimates again, with and without it)."""
    return not (learning.error_feedback and model.exact.steps > 1)


def q_search_range(model: LoadedModel, lossy: LossyCodec) -> tuple[int, int]:
    """The Qs the search may try: those the model was trained on, and Q_ABOVE_TRAINED more at
    the top (coarser lossy layers), within the lossy codec's range."""
    if model.q_range is None:
        lo, hi = Q_SEARCH_MIN, Q_SEARCH_MAX
    else:
        lo, hi = model.q_range[0], model.q_range[1] + Q_ABOVE_TRAINED
    return max(lossy.q_min, lo), min(lossy.q_max, hi)


def _search_q(
    image: np.ndarray,
    lossy: LossyCodec,
    model: LoadedModel,
    scan: list[int],
    search: QSearch,
    known: dict[int, float],
    progress: Callable[[int, float], None] | None,
    gather_fit_samples: bool,
) -> tuple[QTrial | None, dict[int, float]]:
    lo, hi = q_search_range(model, lossy)
    best: QTrial | None = None  # of the Qs tried here

    def cost(q: int) -> float:
        nonlocal best
        trial = try_q(image, q, lossy, model, gather_fit_samples)
        if progress:
            progress(q, trial.total_bits)
        if best is None or trial.total_bits < best.total_bits:
            best = trial
        return trial.total_bits

    _, costs = scan_and_refine(cost, scan, lo, hi, search.steps, known, search.parabola)
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


def _whole_image_file(
    image: np.ndarray, model: LoadedModel, lossy: LossyCodec, trial: QTrial, greyscale: bool, learning: PerImageLearning
) -> LbpgFile:
    """The whole-image file of ``image`` with the lossy layer of ``trial``, the residual
    model fine-tuned to the image (``learning.finetune_steps`` steps of the fit) and the
    error feedback each where it pays."""

    # The fit runs the model over every pass anyway: where memory allows, it keeps the heads'
    # last hidden activations, from which the fine-tuned model's first sweep needs only its
    # changed last layers (0.5 s less per Kodak image; the same file).
    pixels = image.shape[0] * image.shape[1]
    hidden: dict[int, torch.Tensor] | None = None
    if can_spare(pixels, hidden_bytes_per_pixel(model.exact) + memo_bytes_per_pixel(model.exact)):
        hidden = {}

    def fit() -> tuple[HeadUpdate, float] | None:
        if not learning.finetune_steps or model.exact.steps == 1:
            return None
        return fit_update(model.exact, image, trial.recon, trial.q, learning.finetune_steps, trial.side, hidden)

    # The fit runs on one thread (see fit_update): where torch has more and memory allows, the
    # image is coded without the update meanwhile (measured: 1.7 s less per Kodak image; the
    # file is the same either way).
    beside = torch.get_num_threads() > 1 and can_spare(pixels, FIT_BESIDE_BYTES_PER_PIXEL)
    fitting = Background(fit) if beside else None
    base = trial.residual
    if not trial_samples_used(model, learning):
        base = estimate_residual(model.exact, image, trial.recon, trial.q, error_feedback=True, side=trial.side,
                                 memo=trial.memo)
    feedback, samples = base.choose_error_feedback()
    streams = encode_residual(model.exact, image, trial.recon, trial.q, fit_samples=samples, error_feedback=feedback,
                              side=trial.side, memo=trial.memo)
    if trial.memo is not None:
        trial.memo.release()  # the fine-tuned model's sweeps have parameters of their own
    fitted = fitting.result() if fitting else fit()
    update = b""
    if fitted is not None:
        adapted = apply_update(model.model, model.exact, fitted[0])
        if hidden:
            memo: PassMemo | None = memo_from_hidden(adapted, trial.recon, trial.q, trial.side, hidden)
        else:
            memo = _pass_memo(image, adapted)
        hidden = None  # the memo holds what the sweeps need: free the activations now
        estimate = estimate_residual(adapted, image, trial.recon, trial.q, error_feedback=learning.error_feedback,
                                     side=trial.side, memo=memo)
        candidate = fitted[0].pack()
        # The fit predicted its saving on a sample, without the per-stream recalibration
        # that may recover part of it; and the estimates can be a few percent off the coded
        # sizes where the residual is nearly all zeros: the coded sizes decide.
        if estimate.bits + 8 * len(candidate) < base.bits:
            feedback, samples = estimate.choose_error_feedback()
            tuned = encode_residual(adapted, image, trial.recon, trial.q, fit_samples=samples,
                                    error_feedback=feedback, side=trial.side, memo=memo)
            if tuned.coded_bytes + len(candidate) < streams.coded_bytes:
                streams, update = tuned, candidate
    header = Header(
        backend_id=lossy.backend_id,
        q=trial.q,
        model_id=model.model_id,
        height=image.shape[0],
        width=image.shape[1],
        greyscale=greyscale,
        error_feedback=streams.error_feedback,
        residual_ranges=streams.ranges,
        checksum=pixel_checksum(image),
    )
    return LbpgFile(header, trial.lossy_payload, streams.streams, streams.escapes, streams.adaptations,
                    streams.half_widths, update)


def _code_image(
    image: np.ndarray,
    model: LoadedModel,
    lossy: LossyCodec,
    q: int | None,
    effort: int,
    greyscale: bool,
    learning: PerImageLearning,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[LbpgFile, dict[int, float]]:
    """Code one image (or tile) whole: at ``q``, or at the Q that ``effort``'s search finds on it."""
    if q is None:
        search_model = searcher(model, effort)
        gather = trial_samples_used(model, learning)
        trial, q_trials = choose_q(image, lossy, search_model, progress=progress, effort=effort,
                                   gather_fit_samples=gather and search_model is model)
        trial = for_model(image, trial, lossy, model, search_model, gather)
    else:
        trial, q_trials = try_q(image, q, lossy, model, trial_samples_used(model, learning)), {}
    release_freed_memory()
    return _whole_image_file(image, model, lossy, trial, greyscale, learning), q_trials


def _q_of_sample(
    image: np.ndarray,
    lossy: LossyCodec,
    model: LoadedModel,
    quality: int | None,
    effort: int,
    progress: Callable[[int, float], None] | None,
) -> tuple[int | None, dict[int, float]]:
    """(``quality``, {}) unless effort 2 searches Q on a sample of this large image: then the Q
    found and the estimated bits of every Q tried."""
    if quality is not None or effort != 2:
        return quality, {}
    sample = search_sample(image)
    if sample is None:
        return None, {}
    trial, q_trials = choose_q(sample, lossy, searcher(model, effort), progress=progress, effort=effort,
                               gather_fit_samples=False)
    del sample  # only its Q is needed
    q = trial.q
    del trial
    release_freed_memory()
    return q, q_trials


def _layer_bytes(f: LbpgFile) -> tuple[int, int]:
    """(lossy layer, residual layer) bytes of one whole-image file (the model update counts as
    residual)."""
    return len(f.lossy), sum(map(len, f.residual_streams)) + sum(map(len, f.escape_streams)) + len(f.model_update)


def _result(data: bytes, tiles: Sequence[LbpgFile], q_trials: dict[int, float], max_error: int = 0) -> CompressionResult:
    """The result of a file ``data`` made of ``tiles`` (one for a whole image): the rate split
    and the Qs (the commonest one as ``q``)."""
    lossy_bytes, residual_bytes = (sum(x) for x in zip(*map(_layer_bytes, tiles)))
    tile_qs = tuple(t.header.q for t in tiles)
    return CompressionResult(
        data=data,
        q=collections.Counter(tile_qs).most_common(1)[0][0],
        lossy_bytes=lossy_bytes,
        residual_bytes=residual_bytes,
        header_bytes=len(data) - lossy_bytes - residual_bytes,
        q_trials=q_trials,
        tile_qs=tile_qs,
        max_error=max_error,
    )


def _map_tiles(
    fn: Callable[[_Job], _Result],
    jobs: Sequence[_Job],
    workers: int,
    progress: Callable[[int, int], None] | None,
    done_before: int = 0,
) -> list[_Result]:
    """``fn`` over ``jobs`` on ``workers`` threads, results in order; ``progress(done, total)``
    as each ends, counting ``done_before`` jobs of an earlier round."""
    results: list[_Result] = []

    def finished(result: _Result) -> None:
        results.append(result)
        if progress:
            progress(done_before + len(results), done_before + len(jobs))

    if workers == 1:
        for result in map(fn, jobs):
            finished(result)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for result in pool.map(fn, jobs):
                finished(result)
    return results


def compress(
    image: np.ndarray,
    model: AnyModel,
    backend: str = "hevc",
    quality: int | None = None,
    greyscale: bool = False,
    progress: Callable[[int, float], None] | None = None,
    effort: int = DEFAULT_EFFORT,
    tile_size: int | None = DEFAULT_TILE_SIZE,
    workers: int = 1,
    tile_progress: Callable[[int, int], None] | None = None,
    adapt: str = "auto",
    max_error: int = 0,
    metadata: Sequence[Chunk] = (),
) -> CompressionResult:
    """Losslessly compress an (H, W, 3) uint8 RGB image (or, with ``max_error`` T > 0 and the
    sequential coder, near-losslessly: every decoded subpixel within T of the original).

    ``quality`` forces the lossy layer's Q; otherwise Q is searched with ``effort`` 1 (no
    search), 2 (on a sample of the image when it is large, see SAMPLE_PIXELS) or 3 (wider,
    always on the whole image or tile; slower). ``greyscale`` records that the source had one
    channel (all three equal) so decode can give it back.

    An image with a side longer than ``tile_size`` is coded in independent tiles of about that
    side (a version-4 file), so memory is bounded by the tile; None codes every image whole.
    Tiles are coded by ``workers`` threads (the file is the same for any number);
    ``tile_progress(done, total)`` is called as tiles finish.

    ``adapt`` "auto" fine-tunes the residual model to the image (or tile) where that saves more
    than it costs to send (the fit's length grows with ``effort``, see FINETUNE_STEPS) and
    turns on the backward error feedback where it saves bits; "none" does neither (the
    per-stream recalibration stays).

    ``metadata``: PNG ancillary chunks the file keeps beside the pixels (metadata.py); a file
    without them is byte for byte what it was before metadata was kept.
    """
    result = _compress_pixels(image, model, backend, quality, greyscale, progress, effort, tile_size, workers,
                              tile_progress, adapt, max_error)
    if metadata:
        pixels_only = len(result.data)
        result.data = with_metadata(result.data, tuple(metadata))
        result.header_bytes += len(result.data) - pixels_only
    return result


def _compress_pixels(
    image: np.ndarray,
    model: AnyModel,
    backend: str,
    quality: int | None,
    greyscale: bool,
    progress: Callable[[int, float], None] | None,
    effort: int,
    tile_size: int | None,
    workers: int,
    tile_progress: Callable[[int, int], None] | None,
    adapt: str,
    max_error: int,
) -> CompressionResult:
    """:func:`compress` without the metadata."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("image must be (H, W, 3) uint8")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    height, width = image.shape[:2]
    lossy = get_lossy_codec(backend)
    if quality is not None:
        lossy.check_q(quality)
    if isinstance(model, SequentialModel):
        check_max_error(max_error)
        return _compress_sequential(image, model, lossy, quality, greyscale, progress, effort, tile_size, workers,
                                    tile_progress, max_error)
    if max_error:
        raise ValueError("a per-subpixel error bound (near-lossless) needs the sequential coder, "
                         f"not the parallel model {model.name}")
    learning = PerImageLearning.of(adapt, effort)
    reads = model.exact.config.side_channels
    if reads and reads != lossy.side_channels:
        raise ValueError(f"residual model {model.name} reads {reads} channels of its lossy layer's decoder features; "
                         f"backend {backend} gives {lossy.side_channels or 'none'} (use the backend it was trained with)")
    if tile_size is None or (height <= tile_size and width <= tile_size):
        return _compress_whole(image, model, lossy, quality, greyscale, progress, effort, learning)
    grid = tile_grid(height, width, tile_size)
    largest = max(t.height * t.width for t in grid)
    check_memory(largest * workers, ENCODE_BYTES_PER_PIXEL, "compress", height * width * TILED_ENCODE_BYTES_PER_PIXEL,
                 (height, width))
    # a large image: one Q for every tile, searched on a sample of the whole image
    q, q_trials = _q_of_sample(image, lossy, model, quality, effort, progress)

    def code_tile(tile: Tile) -> tuple[LbpgFile, dict[int, float]]:
        return _code_image(np.ascontiguousarray(tile.of(image)), model, lossy, q, effort, greyscale, learning)

    def recode_tile(job: tuple[Tile, LbpgFile, dict[int, float], int]) -> LbpgFile:
        tile, coded, costs, start = job
        pixels = np.ascontiguousarray(tile.of(image))
        search_model, gather = searcher(model, effort), trial_samples_used(model, learning)
        trial, _ = refine_q(pixels, lossy, search_model, start, costs, effort, gather and search_model is model)
        if trial is None or trial.total_bits >= min(costs.values()):
            return coded
        trial = for_model(pixels, trial, lossy, model, search_model, gather)
        return _whole_image_file(pixels, model, lossy, trial, greyscale, learning)

    # With several tile workers, each runs its model on one thread (their threads would
    # otherwise contend for the same cores).
    with torch_threads(1 if workers > 1 else None):
        searched = _map_tiles(code_tile, grid, workers, tile_progress)
        tiles = [f for f, _ in searched]
        if q is None:
            # Each tile searched its own Q, and a search can stop on a plateau of the estimate
            # far from its neighbours' choice: tiles that did not try the tiles' median Q
            # search again from there, so that no tile is dearer there than at the common choice.
            median_q = sorted(f.header.q for f in tiles)[(len(tiles) - 1) // 2]
            redo = [i for i, (_, costs) in enumerate(searched) if median_q not in costs]
            jobs = [(grid[i], *searched[i], median_q) for i in redo]
            for i, f in zip(redo, _map_tiles(recode_tile, jobs, workers, tile_progress, len(grid))):
                tiles[i] = f
    header = TiledHeader(lossy.backend_id, model.model_id, height, width, greyscale, tile_size, pixel_checksum(image))
    return _result(pack_tiled(TiledFile(header, tuple(tiles))), tiles, q_trials)


def _compress_whole(
    image: np.ndarray,
    model: LoadedModel,
    lossy: LossyCodec,
    quality: int | None,
    greyscale: bool,
    progress: Callable[[int, float], None] | None,
    effort: int,
    learning: PerImageLearning,
) -> CompressionResult:
    """A whole-image file: Q searched on the image, or on a sample of it when it
    is large (effort 2), then the image coded once at that Q."""
    height, width = image.shape[:2]
    check_memory(height * width, ENCODE_BYTES_PER_PIXEL, "compress", 0, (height, width))
    q, q_trials = _q_of_sample(image, lossy, model, quality, effort, progress)
    if q_trials:
        f, _ = _code_image(image, model, lossy, q, effort, greyscale, learning)
    else:
        f, q_trials = _code_image(image, model, lossy, q, effort, greyscale, learning, progress)
    return _result(pack(f), [f], q_trials)


def _compress_sequential(
    image: np.ndarray,
    model: SequentialModel,
    lossy: LossyCodec,
    quality: int | None,
    greyscale: bool,
    progress: Callable[[int, float], None] | None,
    effort: int,
    tile_size: int | None,
    workers: int,
    tile_progress: Callable[[int, int], None] | None,
    max_error: int,
) -> CompressionResult:
    """:func:`compress` with the sequential coder: a whole-image version-6 file, or a tiled
    file of version-6 tiles coded at one Q (searched on a sample of the image, or on its
    first tile when the image is too small to need a sample)."""
    height, width = image.shape[:2]
    if tile_size is None or (height <= tile_size and width <= tile_size):
        f, q_trials, decoded = sequential_layer.code_image(image, lossy, model, quality, effort, greyscale, progress,
                                                           max_error=max_error)
        tiles: tuple[LbpgFile, ...] = (f,)
        data = pack(f)
    else:
        grid = tile_grid(height, width, tile_size)
        q, q_trials = quality, {}
        if q is None:
            sample = search_sample(image)
            target = sample if sample is not None else np.ascontiguousarray(grid[0].of(image))
            q, q_trials, _ = sequential_layer.search_q(target, lossy, model, effort, progress, max_error)
        decoded = image if not max_error else np.empty_like(image)

        def code_tile(tile: Tile) -> LbpgFile:
            f, _, tile_decoded = sequential_layer.code_image(np.ascontiguousarray(tile.of(image)), lossy, model, q,
                                                             effort, greyscale, alternatives=False,
                                                             max_error=max_error)
            if max_error:
                decoded[tile.top : tile.bottom, tile.left : tile.right] = tile_decoded
            return f

        tiles = tuple(_map_tiles(code_tile, grid, workers, tile_progress))
        # the checksum of what the decoder gives: the near-lossless reconstruction, put together
        header = TiledHeader(lossy.backend_id, model.model_id, height, width, greyscale, tile_size,
                             pixel_checksum(decoded))
        data = pack_tiled(TiledFile(header, tiles))
    return _result(data, tiles, q_trials, max_error)


def decode_parallel_whole(f: LbpgFile, model: LoadedModel) -> np.ndarray:
    """The exact pixels of one whole-image file (or tile) of the parallel network (versions
    2, 3, 5), checked against its checksum (lossless_bpg.decoding dispatches here)."""
    h = f.header
    lossy = get_lossy_codec(backend_name_from_id(h.backend_id))
    reads = model.exact.config.side_channels
    if reads and reads != lossy.side_channels:
        # The encoder never writes such a pair (compress refuses it): a damaged header.
        raise FormatError(f"the file's residual model {model.name} reads {reads} channels of its lossy layer's "
                          f"decoder features, and its lossy layer ({lossy.name}) gives "
                          f"{lossy.side_channels or 'none'}: the file is damaged")
    try:
        recon = lossy.decode(f.lossy, size=(h.height, h.width))
        side = side_features(lossy, f.lossy, model)
    except ValueError as exc:
        raise FormatError(f"lossy layer does not decode: {exc}") from exc
    if recon.shape != (h.height, h.width, 3):
        raise FormatError(
            f"lossy layer decodes to {recon.shape[1]}x{recon.shape[0]}, header says "
            f"{h.width}x{h.height}"
        )
    try:
        exact = model.exact
        if f.model_update:
            exact = apply_update(model.model, exact, read_update(model.model, f.model_update))
        residual = decode_residual(
            exact, recon, h.q,
            ResidualStreams(h.residual_ranges, f.residual_streams, f.escape_streams, f.adaptations, f.half_widths,
                            h.error_feedback),
            side,
        )
    except LosslessBpgError:
        raise
    except Exception as exc:  # the arithmetic decoder fails in many ways on damaged input
        raise FormatError(f"residual layer does not decode: {exc}") from exc
    image = recon.astype(np.int16) + residual
    del recon, residual, side
    if image.min() < 0 or image.max() > 255 or pixel_checksum(image.astype(np.uint8)) != h.checksum:
        raise ChecksumError(
            "decoded pixels do not match the checksum stored in the file: the file is damaged "
            "or was not written by this build's residual model; no output written"
        )
    return image.astype(np.uint8)
