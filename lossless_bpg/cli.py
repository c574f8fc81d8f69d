"""Command line: ``python -m lossless_bpg compress|decompress|info|bench|train``.

``main(argv)`` returns the exit status (0 success, 1 some file failed, 2 usage error) so it can
be tested without a subprocess.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from . import __version__
from .container import DEFAULT_TILE_SIZE
from .effort import ADAPT_MODES, DEFAULT_EFFORT, EFFORT_SEARCH
from .engines import Engine, EngineUnavailableError, add_engine_arguments, engine_from_args
from .errors import LosslessBpgError
from .imageio import IMAGE_SUFFIXES
from .jobs import FileResult

__all__ = ["build_parser", "main"]

LBPG_SUFFIX = ".lbpg"


def _expand(paths: list[str], suffixes: AbstractSet[str]) -> list[Path]:
    """Files as given, and the matching files inside any directory given (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
        else:
            out.append(p)
    return out


def _output_path(src: Path, out_dir: str | None, suffix: str) -> Path:
    return (Path(out_dir) if out_dir else src.parent) / (src.stem + suffix)


def _output_file(output: str | None, suffix: str, n_inputs: int) -> Path | None:
    """The file ``-o`` names, or None when it names a folder: ``-o`` is the output file itself
    when it ends in the output's suffix (``.lbpg`` for compress, ``.png`` for decompress) and is
    not an existing folder, which needs exactly one input. A name ending in another image or
    ``.lbpg`` suffix is refused rather than made a folder of that name."""
    if output is None or Path(output).is_dir():
        return None
    ext = Path(output).suffix.lower()
    if ext == Path("x" + suffix).suffix:
        if n_inputs != 1:
            raise UsageError(f"-o {output} names one {suffix} file but {n_inputs} inputs were given; "
                             f"give a folder (-o DIR) for several")
        return Path(output)
    if ext in IMAGE_SUFFIXES | {LBPG_SUFFIX}:
        raise UsageError(f"-o {output}: this command writes {suffix} files; give a {suffix} file name "
                         f"(one input) or a folder")
    return None


class UsageError(LosslessBpgError):
    """The command line asks for something that cannot be done as asked (exit status 2)."""


def _plan_outputs(files: list[Path], output: str | None, suffix: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs, ``output`` being ``-o`` (a folder, or the one output file); an
    output that is an input, and two inputs that would write the same output (a/x.png and
    b/x.png into one folder, or x.png beside x.tif), are refused before any work is done."""
    from .fileio import outputs_that_are_inputs

    single = _output_file(output, suffix, len(files))
    pairs = [(files[0], single)] if single else [(src, _output_path(src, output, suffix)) for src in files]
    inputs_hit = outputs_that_are_inputs(files, [dst for _, dst in pairs])
    if inputs_hit:
        raise UsageError(
            "the output would replace an input (same file, hard link or symbolic link): "
            + ", ".join(map(str, inputs_hit))
            + ". Inputs are never overwritten, even with --force; choose another folder (-o)."
        )
    by_output: dict[Path, list[Path]] = {}
    for src, dst in pairs:
        by_output.setdefault(dst.resolve(), []).append(src)
    clashes = [f"{', '.join(map(str, srcs))} -> {dst}" for dst, srcs in by_output.items() if len(srcs) > 1]
    if clashes:
        raise UsageError(
            "several inputs would be written to the same output file: " + "; ".join(clashes)
            + ". Compress them in separate runs or into separate folders (-o)."
        )
    return pairs


def _error(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    cells = [headers] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _compress_report(results: list[FileResult], verified: bool) -> str:
    """Per-image table (bpsp split into lossy and residual layers, seconds) and a summary."""
    lines, bpsp, subpixels, bits = [], [], 0, 0
    stats = [r.stats for r in results if r.stats is not None]
    for r in results:
        s = r.stats
        if s is None:
            continue
        per_byte = 8.0 / (s.width * s.height * 3)
        bpsp.append(s.total_bytes * per_byte)
        subpixels += s.width * s.height * 3
        bits += 8 * s.total_bytes
        lines.append((
            r.src.name, f"{s.width}x{s.height}", s.q,
            f"{s.lossy_bytes * per_byte:.3f}", f"{s.residual_bytes * per_byte:.3f}",
            f"{bpsp[-1]:.3f}", f"{s.encode_s:.2f}", f"{s.decode_s:.2f}" if verified else "-",
            ("ok" if not s.max_error else f"max error {s.measured_error}") if verified else "-",
        ))
    table = _table(lines, ("image", "size", "Q", "lossy bpsp", "residual bpsp", "bpsp", "enc s", "dec s", "verified"))
    summary = (f"{len(lines)} images: mean bpsp {np.mean(bpsp):.4f}, total-bits bpsp {bits / subpixels:.4f}, "
               f"mean encode {np.mean([s.encode_s for s in stats]):.2f} s")
    if verified:
        summary += f", mean decode {np.mean([s.decode_s for s in stats]):.2f} s"
        bounds = {s.max_error for s in stats}
        summary += (", all verified bit-exact" if bounds == {0} else
                    f", all verified within the bound (largest error {max(s.measured_error for s in stats)})")
    return table + "\n" + summary


def _counts(results: list[FileResult]) -> str:
    """``8 files: 6 done, 1 skipped (output exists), 1 failed``."""
    n = collections.Counter(r.status for r in results)
    text = f"{len(results)} file{'s' if len(results) != 1 else ''}: {n['done']} done"
    if n["skipped"]:
        text += f", {n['skipped']} skipped (output exists)"
    if n["failed"]:
        text += f", {n['failed']} failed"
    return text


class _FileJob(Protocol):
    @property
    def src(self) -> Path: ...

    @property
    def dst(self) -> Path: ...


FileJob = TypeVar("FileJob", bound=_FileJob)


def _run_jobs(args: argparse.Namespace, engine: Engine, what: str, fn: Callable[[FileJob], FileResult],
              jobs: Sequence[FileJob]) -> list[FileResult]:
    """Every job on ``engine``, with a progress bar over files done; failures are named on
    stderr as they come. Results in the order of ``jobs``."""
    from tqdm import tqdm

    from .fileio import remove_temporaries_of

    results: dict[int, FileResult] = {}
    where = engine.describe()
    if jobs and where and not args.quiet:
        print(f"{what}: {len(jobs)} file(s) on the {where}", file=sys.stderr)
    with engine, tqdm(total=len(jobs), desc=what, unit="img", disable=args.quiet) as bar:
        for outcome in engine.run(fn, jobs, status=bar.set_postfix_str,
                                  on_abandon=lambda job: remove_temporaries_of(job.dst)):
            job = jobs[outcome.index]
            result = outcome.value
            if result is None:  # the job did not return: its worker died, or the engine failed
                result = FileResult(job.src, job.dst, "failed", f"{job.src}: {outcome.error}")
            if result.status == "failed":
                _error(result.error)
                if result.traceback:
                    print(result.traceback, file=sys.stderr, end="")
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            results[outcome.index] = result
            bar.set_postfix_str(result.src.name)
            bar.update(1)
    return [results[i] for i in sorted(results)]


def _worklist(pairs: list[tuple[Path, Path]], skip_existing: bool) -> tuple[list[tuple[Path, Path]], list[FileResult]]:
    """The pairs to do, and (with ``skip_existing``) those skipped because their output exists
    already: finished outputs are complete files (written atomically), so an interrupted
    dataset run resumes where it stopped."""
    if not skip_existing:
        return pairs, []
    todo = [(src, dst) for src, dst in pairs if not dst.exists()]
    return todo, [FileResult(src, dst, "skipped") for src, dst in pairs if dst.exists()]


def _engine(args: argparse.Namespace) -> Engine:
    """The engine the arguments ask for (checked before any work)."""
    from .memory import use_one_malloc_arena

    if args.force and args.skip_existing:
        raise UsageError("--force overwrites existing outputs and --skip-existing keeps them: give one of them")

    return engine_from_args(args, threads=args.threads, worker_setup=use_one_malloc_arena)


def cmd_compress(args: argparse.Namespace) -> int:
    from .api import coding_model
    from .jobs import CompressJob, CompressOptions, compress_file

    engine = _engine(args)
    files = _expand(args.inputs, IMAGE_SUFFIXES)
    if not files:
        _error("no input images found")
        return 1
    todo, skipped = _worklist(_plan_outputs(files, args.output, LBPG_SUFFIX), args.skip_existing)
    options = CompressOptions(model=args.model, backend=args.backend, quality=args.quality, effort=args.effort,
                              verify=args.verify, force=args.force, skip_existing=args.skip_existing,
                              tile_size=args.tile_size or None, tile_workers=args.tile_workers,
                              adapt=args.adapt, max_error=args.max_error, strip=args.strip)
    if todo:  # a model that does not load is one error, not one per file
        coding_model(args.model, args.backend, args.effort)
    results = skipped + _run_jobs(args, engine, "compress", compress_file,
                                  [CompressJob(src, dst, options) for src, dst in todo])
    if not args.quiet:
        if any(r.stats for r in results):
            print(_compress_report(results, args.verify))
        if len(results) > 1:
            print(f"compress: {_counts(results)}")
    return 1 if any(r.status == "failed" for r in results) else 0


#: What ``decompress --preview`` names its outputs: never the exact decode's name.
PREVIEW_SUFFIX = ".preview.png"


def cmd_decompress(args: argparse.Namespace) -> int:
    from .api import _decoding_model
    from .jobs import DecompressJob, DecompressOptions, decompress_file

    engine = _engine(args)
    files = _expand(args.inputs, {LBPG_SUFFIX})
    if not files:
        _error("no .lbpg files found")
        return 1
    suffix = PREVIEW_SUFFIX if args.preview else ".png"
    todo, skipped = _worklist(_plan_outputs(files, args.output, suffix), args.skip_existing)
    if todo and args.model and not args.preview:
        _decoding_model(args.model)
    options = DecompressOptions(model=args.model, force=args.force, skip_existing=args.skip_existing,
                                tile_workers=args.tile_workers, preview=args.preview)
    results = skipped + _run_jobs(args, engine, "decompress", decompress_file,
                                  [DecompressJob(src, dst, options) for src, dst in todo])
    if not args.quiet and len(results) > 1:
        print(f"decompress: {_counts(results)}")
    return 1 if any(r.status == "failed" for r in results) else 0


def cmd_info(args: argparse.Namespace) -> int:
    from .container import HEAD_BYTES, check_head, unpack
    from .describe import describe
    from .fileio import read_input

    files = _expand(args.inputs, {LBPG_SUFFIX})
    if not files:
        _error("no .lbpg files found")
        return 1
    failures = 0
    for src in files:
        try:
            data = read_input(src, check_head, HEAD_BYTES)
            f = unpack(data)
        except (LosslessBpgError, OSError) as exc:
            failures += 1
            _error(f"{src}: {exc}")
            continue
        print(src)
        print("\n".join(describe(f, len(data))))
    return 1 if failures else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.runner import run_bench

    return run_bench(args)


def cmd_train(args: argparse.Namespace) -> int:
    from .train.cli import run_train

    return run_train(args)


def _threads(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_threads, metavar="N",
                   help="CPU threads for the model (default: torch's, usually one per core); use 1 "
                        "when running several processes at once. Files decode identically at any N.")


def _tile_size(text: str) -> int:
    from .container import tile_grid

    n = int(text)
    if n:
        try:
            tile_grid(1, 1, n)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}, or 0 to code every image whole") from None
    return n


def _max_error(text: str) -> int:
    """--max-error: an integer 0..127 (a usage error, status 2, otherwise)."""
    from .container import MAX_ERROR

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer error bound 0..{MAX_ERROR}, not {text!r}") from None
    if not 0 <= value <= MAX_ERROR:
        raise argparse.ArgumentTypeError(f"the error bound must be in 0..{MAX_ERROR}, not {value}")
    return value


def _add_tile_workers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tile-workers", type=_threads, default=1, metavar="N",
                   help="threads coding the tiles of a large image, each running the model on one "
                        "CPU thread (default 1; more use more memory, one tile each). The bytes do not depend on N.")


def _add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    add_engine_arguments(p)
    p.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose output exists already (to resume an interrupted run; "
                        "outputs are written atomically, so an existing one is complete); not with --force")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lossless_bpg",
        description="Lossless image compression: HEVC-intra lossy layer + learned residual coder.",
    )
    parser.add_argument("--version", action="version", version=f"lossless_bpg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compress", help="compress images (files or folders) to .lbpg")
    p.add_argument("inputs", nargs="+", help="image files or folders of images")
    p.add_argument("-o", "--output", help="output folder (default: beside each input), or for one input "
                                          "the .lbpg file to write")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("-q", "--quality", type=int, help="force the lossy layer's Q (default: searched per image)")
    p.add_argument("--max-error", type=_max_error, default=0, metavar="T",
                   help="near-lossless: every decoded subpixel within T of the original (1-127; default 0: lossless)")
    p.add_argument("-e", "--effort", type=int, choices=tuple(EFFORT_SEARCH), default=DEFAULT_EFFORT,
                   help="Q search effort: 1 = the model's usual Q (fastest), 2 = default, 3 = widest")
    p.add_argument("--adapt", choices=ADAPT_MODES, default="auto",
                   help="auto (default): fine-tune the residual model to each image where that saves "
                        "more than it costs to send (longer fit at higher effort; at -e 3 also the "
                        "backward error feedback where it pays); none: never")
    p.add_argument("--backend", default="hevc", help="lossy layer: hevc (default), lic (the learned one; its own residual model "
                        "is then the default) or bpg (needs libbpg's tools)")
    p.add_argument("--model", default="default",
                   help="residual model: default (generation 2), fast (the 0.2-0.4 model: about a fifth "
                        "less encode time, a third less decode time, ~0.4 %% more bits), another registered "
                        "name, or a .pt path")
    p.add_argument("--verify", action="store_true", help="decode each file again and compare pixels")
    p.add_argument("--strip", action="store_true",
                   help="store the pixels only: drop the image's ICC profile, EXIF, XMP, text and other "
                        "metadata (by default kept and written back into the decoded PNG)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    p.add_argument("--tile-size", type=_tile_size, default=DEFAULT_TILE_SIZE, metavar="N",
                   help=f"code an image with a side longer than N in independent tiles of about N "
                        f"(default {DEFAULT_TILE_SIZE}: memory bounded by the tile; 0: every image whole)")
    _add_tile_workers(p)
    _add_threads(p)
    _add_dataset_arguments(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decompress .lbpg files to PNG")
    p.add_argument("inputs", nargs="+", help=".lbpg files or folders")
    p.add_argument("-o", "--output", help="output folder (default: beside each input), or for one input "
                                          "the .png file to write")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--model", help="residual model (default: the one the file names)")
    p.add_argument("--preview", action="store_true",
                   help=f"decode the lossy layer only (fast, approximate: not the exact image) to NAME{PREVIEW_SUFFIX}")
    p.add_argument("--quiet", action="store_true")
    _add_tile_workers(p)
    _add_threads(p)
    _add_dataset_arguments(p)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("info", help="print the header and rate split of .lbpg files")
    p.add_argument("inputs", nargs="+")
    p.set_defaults(func=cmd_info)

    from .bench.runner import add_bench_arguments
    from .train.cli import add_train_arguments

    add_bench_arguments(sub.add_parser("bench", help="benchmark against PNG, WebP, ... on folders"))
    sub.choices["bench"].set_defaults(func=cmd_bench)
    add_train_arguments(sub.add_parser("train", help="train the residual model (or the lic lossy layer)"))
    sub.choices["train"].set_defaults(func=cmd_train)
    return parser


def _run_interruptibly(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command in a worker thread while the main thread waits, so that Ctrl-C stops it
    at once: Python only handles a signal in the main thread between bytecodes, and a
    command spends seconds at a time inside x265 or a large convolution. On Ctrl-C the
    engine's workers are stopped (pool processes killed, Ray tasks cancelled and a Ray this
    run started shut down), the temporary files of writes in progress are removed (finished
    outputs are complete and stay) and the process ends at once with status 130."""
    outcome: list[int] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(func(args))
        except BaseException as exc:  # noqa: BLE001 (handed to the main thread, which raises it)
            failure.append(exc)

    worker = threading.Thread(target=work, name=f"lossless_bpg {args.command}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        from .engines import interrupt_engines
        from .fileio import remove_pending_temporaries

        interrupt_engines()  # worker processes or Ray tasks stopped, their temporaries removed
        remove_pending_temporaries()
        if "multiprocessing.util" in sys.modules:
            # What a normal exit runs first (os._exit skips it): a stopped pool's semaphores
            # are released here, not reported as leaked by multiprocessing's resource tracker.
            sys.modules["multiprocessing.util"]._run_finalizers(0)
        _error("interrupted; no partial output was left")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # the worker may be inside native code for seconds more
    if failure:
        raise failure[0]
    return outcome[0]


#: OpenMP threads that wait at a barrier sleep instead of spinning. Torch's default spinning
#: made a parallel-network decode of kodim07 take 85 s instead of 3 s while a niced busy loop
#: ran beside it (40 s with the loop pinned to one core), and 3.1 s with this setting
#: (scripts/busy_machine.py --model parallel); idle it costs about as much as the run-to-run
#: spread (2.70 s against 2.45 s, medians of three). Set before torch is imported; a user's own
#: OMP_WAIT_POLICY wins.
OMP_WAIT_POLICY = "PASSIVE"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        from .threads import set_torch_threads

        set_torch_threads(args.threads)
    try:
        if args.command in ("compress", "decompress"):
            from .memory import use_one_malloc_arena

            use_one_malloc_arena()
            return _run_interruptibly(args.func, args)
        return args.func(args)
    except (UsageError, EngineUnavailableError) as exc:
        _error(str(exc))
        return 2
    except LosslessBpgError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
