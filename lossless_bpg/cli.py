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
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from . import __version__
from .errors import LosslessBpgError

IMAGE_SUFFIXES = {".png", ".ppm", ".pnm", ".bmp", ".tif", ".tiff", ".webp"}
LBPG_SUFFIX = ".lbpg"


def _expand(paths: list[str], suffixes: set[str]) -> list[Path]:
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


class UsageError(LosslessBpgError):
    """The command line asks for something that cannot be done as asked (exit status 2)."""


def _plan_outputs(files: list[Path], out_dir: str | None, suffix: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs; an output that is an input, and two inputs that would write the
    same output (a/x.png and b/x.png into one folder, or x.png beside x.tif), are refused
    before any work is done."""
    from .fileio import outputs_that_are_inputs

    pairs = [(src, _output_path(src, out_dir, suffix)) for src in files]
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


def save_image(path: Path, image: np.ndarray, greyscale: bool) -> None:
    from PIL import Image

    pil = Image.fromarray(image[..., 0], "L") if greyscale else Image.fromarray(image, "RGB")
    pil.save(path, format="PNG")


def _table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    cells = [headers] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _compress_report(rows: list[tuple], verified: bool) -> str:
    """Per-image table (bpsp split into lossy and residual layers, seconds) and a summary."""
    lines, bpsp, subpixels, bits = [], [], 0, 0
    for name, w, h, result, enc_s, dec_s in rows:
        per_byte = 8.0 / (w * h * 3)
        bpsp.append(len(result.data) * per_byte)
        subpixels += w * h * 3
        bits += 8 * len(result.data)
        lines.append((
            name, f"{w}x{h}", result.q,
            f"{result.lossy_bytes * per_byte:.3f}", f"{result.residual_bytes * per_byte:.3f}",
            f"{bpsp[-1]:.3f}", f"{enc_s:.2f}", f"{dec_s:.2f}" if verified else "-",
            "ok" if verified else "-",
        ))
    table = _table(lines, ("image", "size", "Q", "lossy bpsp", "residual bpsp", "bpsp", "enc s", "dec s", "verified"))
    summary = (f"{len(rows)} images: mean bpsp {np.mean(bpsp):.4f}, total-bits bpsp {bits / subpixels:.4f}, "
               f"mean encode {np.mean([r[4] for r in rows]):.2f} s")
    if verified:
        summary += f", mean decode {np.mean([r[5] for r in rows]):.2f} s, all verified bit-exact"
    return table + "\n" + summary


def cmd_compress(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .codec import compress, decompress
    from .fileio import write_bytes_atomic
    from .imageio import load_image
    from .residual import load_model

    files = _expand(args.inputs, IMAGE_SUFFIXES)
    if not files:
        _error("no input images found")
        return 1
    pairs = _plan_outputs(files, args.output, LBPG_SUFFIX)
    model = load_model(args.model)
    failures, rows = 0, []
    bar = tqdm(pairs, desc="compress", unit="img", disable=args.quiet)
    for src, dst in bar:
        bar.set_postfix_str(src.name)
        try:
            if dst.exists() and not args.force:
                raise LosslessBpgError(f"{dst} exists; use --force to overwrite it")
            image, greyscale = load_image(src)
            t0 = time.perf_counter()
            tried: list[str] = []  # a large image takes minutes: show where the Q search is

            def show_trial(q: int, _bits: float, tried: list[str] = tried, name: str = src.name) -> None:
                tried.append(str(q))
                bar.set_postfix_str(f"{name}: Q {', '.join(tried)} tried")

            result = compress(image, model, backend=args.backend, quality=args.quality,
                              greyscale=greyscale, effort=args.effort, progress=show_trial)
            enc_s = time.perf_counter() - t0
            dec_s = float("nan")
            if args.verify:
                t0 = time.perf_counter()
                decoded, _ = decompress(result.data, model)
                dec_s = time.perf_counter() - t0
                if not np.array_equal(decoded, image):
                    raise LosslessBpgError(f"{src}: verification failed (decoded pixels differ)")
            write_bytes_atomic(dst, result.data, force=args.force)
        except (LosslessBpgError, OSError, ValueError) as exc:
            failures += 1
            _error(str(exc))
            continue
        h, w = image.shape[:2]
        rows.append((src.name, w, h, result, enc_s, dec_s))
    if rows and not args.quiet:
        print(_compress_report(rows, args.verify))
    return 1 if failures else 0


def cmd_decompress(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .codec import decompress
    from .fileio import write_atomic
    from .residual import load_model

    files = _expand(args.inputs, {LBPG_SUFFIX})
    if not files:
        _error("no .lbpg files found")
        return 1
    pairs = _plan_outputs(files, args.output, ".png")
    model = load_model(args.model) if args.model else None
    failures = 0
    for src, dst in tqdm(pairs, desc="decompress", unit="img", disable=args.quiet):
        try:
            if dst.exists() and not args.force:
                raise LosslessBpgError(f"{dst} exists; use --force to overwrite it")
            image, header = decompress(src.read_bytes(), model)
            write_atomic(dst, partial(save_image, image=image, greyscale=header.greyscale), force=args.force)
        except (LosslessBpgError, OSError) as exc:
            failures += 1
            _error(f"{src}: {exc}")
    return 1 if failures else 0


def cmd_info(args: argparse.Namespace) -> int:
    from .container import unpack
    from .lossy import backend_name_from_id

    failures = 0
    for src in _expand(args.inputs, {LBPG_SUFFIX}):
        try:
            data = src.read_bytes()
            f = unpack(data)
        except (LosslessBpgError, OSError) as exc:
            failures += 1
            _error(f"{src}: {exc}")
            continue
        h = f.header
        try:
            backend = backend_name_from_id(h.backend_id)
        except LosslessBpgError:
            backend = f"unknown ({h.backend_id})"
        sub = h.width * h.height * 3
        escapes = sum(map(len, f.escape_streams))
        res = sum(map(len, f.residual_streams)) + escapes
        print(f"{src}")
        print(f"  container version  {h.version}")
        print(f"  image              {h.width}x{h.height} {'greyscale' if h.greyscale else 'RGB'}")
        print(f"  lossy backend      {backend}, Q={h.q}")
        print(f"  residual model     {h.model_id.hex()}")
        print("  residual ranges    " + ", ".join(f"{c}:[{lo},{hi}]" for c, (lo, hi) in zip("RGB", h.residual_ranges)))
        print(f"  pixel checksum     {h.checksum.hex()}")
        print(f"  total              {len(data)} bytes, {8 * len(data) / sub:.4f} bpsp")
        print(f"    lossy layer      {len(f.lossy)} bytes, {8 * len(f.lossy) / sub:.4f} bpsp")
        per_channel = [
            sum(len(x) for x in f.residual_streams[c::3] + f.escape_streams[c::3]) for c in range(3)
        ]
        print(f"    residual layer   {res} bytes, {8 * res / sub:.4f} bpsp "
              f"(R {per_channel[0]}, G {per_channel[1]}, B {per_channel[2]}; "
              f"{len(f.residual_streams) // 3} coding pass(es); escapes {escapes} bytes)")
        print(f"    header           {len(data) - len(f.lossy) - res} bytes")
        sent = collections.Counter(len(a) for a in f.adaptations)
        print(f"  adaptation         {sum(sent.values())} streams: "
              + ", ".join(f"{n} with {k} parameter(s)" for k, n in sorted(sent.items(), reverse=True)))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lossless_bpg",
        description="Lossless image compression: HEVC-intra lossy layer + learned residual coder.",
    )
    parser.add_argument("--version", action="version", version=f"lossless_bpg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compress", help="compress images (files or folders) to .lbpg")
    p.add_argument("inputs", nargs="+", help="image files or folders of images")
    p.add_argument("-o", "--output", help="output folder (default: beside each input)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("-q", "--quality", type=int, help="force the lossy layer's Q (default: searched per image)")
    p.add_argument("-e", "--effort", type=int, choices=(1, 2, 3), default=2,
                   help="Q search effort: 1 = the model's usual Q (fastest), 2 = default, 3 = widest")
    p.add_argument("--backend", default="hevc", help="lossy backend: hevc (default) or bpg")
    p.add_argument("--model", default="default", help="residual model name or .pt path")
    p.add_argument("--verify", action="store_true", help="decode each file again and compare pixels")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    _add_threads(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decompress .lbpg files to PNG")
    p.add_argument("inputs", nargs="+", help=".lbpg files or folders")
    p.add_argument("-o", "--output", help="output folder (default: beside each input)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--model", help="residual model (default: the one the file names)")
    p.add_argument("--quiet", action="store_true")
    _add_threads(p)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("info", help="print the header and rate split of .lbpg files")
    p.add_argument("inputs", nargs="+")
    p.set_defaults(func=cmd_info)

    from .bench.runner import add_bench_arguments
    from .train.cli import add_train_arguments

    add_bench_arguments(sub.add_parser("bench", help="benchmark against PNG, WebP, ... on folders"))
    sub.choices["bench"].set_defaults(func=cmd_bench)
    add_train_arguments(sub.add_parser("train", help="train the residual model"))
    sub.choices["train"].set_defaults(func=cmd_train)
    return parser


def _run_interruptibly(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command in a worker thread while the main thread waits, so that Ctrl-C stops it
    at once: Python only handles a signal in the main thread between bytecodes, and a
    command spends seconds at a time inside x265 or a large convolution. On Ctrl-C the
    temporary files of writes in progress are removed (finished outputs are complete and
    stay) and the process ends at once with status 130."""
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
        from .fileio import remove_pending_temporaries

        remove_pending_temporaries()
        _error("interrupted; no partial output was left")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # the worker may be inside native code for seconds more
    if failure:
        raise failure[0]
    return outcome[0]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        if args.command in ("compress", "decompress"):
            from .codec import use_one_malloc_arena

            use_one_malloc_arena()
            return _run_interruptibly(args.func, args)
        return args.func(args)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except LosslessBpgError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
