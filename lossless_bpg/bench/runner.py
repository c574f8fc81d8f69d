"""``python -m lossless_bpg bench``: every codec on every image, verified, cached, summarised."""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from ..engines import EngineUnavailableError, add_engine_arguments, engine_from_args
from .codecs import CODECS, DEFAULT_CODECS

CSV_FIELDS = [
    "image", "image_key", "codec", "settings", "width", "height", "bytes", "bpsp", "encode_s",
    "decode_s", "peak_mb", "exact", "error", "q", "lossy_bytes", "residual_bytes", "header_bytes",
    "version",
]
# Lossless sources only: given a JPEG, cjxl would transcode its bitstream rather than code pixels.
BENCH_SUFFIXES = {".png", ".ppm", ".bmp", ".tif", ".tiff"}


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", type=Path, help="folders of images (e.g. ../shared/datasets/kodak)")
    p.add_argument("--codecs", default=",".join(DEFAULT_CODECS),
                   help=f"comma-separated, from: {', '.join(CODECS)}")
    add_engine_arguments(p)
    p.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    p.add_argument("--limit", type=int, help="first N images of each folder only")
    p.add_argument("--no-cache", action="store_true", help="ignore finished rows from earlier runs")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--max-error", metavar="T,...",
                   help="near-lossless rows instead: this codec, JPEG-LS NEAR and WebP near-lossless at each bound "
                        "(e.g. 1,2,3,4,5); the maximum error is measured on every decoded image")


def _cache_key(row: dict) -> str:
    return f"{row['image_key']}|{row['codec']}|{row['settings']}|{row.get('version', '')}"


def load_cache(path: Path) -> dict[str, dict]:
    cache = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interrupted run
            cache[_cache_key(row)] = row
    return cache


def summarise(rows: list[dict]) -> list[dict]:
    """Per codec: mean per-image bpsp, total-bits bpsp, median seconds, peak memory, failures."""
    out = []
    for codec in dict.fromkeys(r["codec"] for r in rows):
        rs = [r for r in rows if r["codec"] == codec]
        ok = [r for r in rs if r["exact"]]
        entry = {"codec": codec, "settings": rs[0]["settings"], "version": rs[0].get("version", ""),
                 "images": len(rs), "failures": len(rs) - len(ok)}
        if ok:
            subpixels = sum(r["width"] * r["height"] * 3 for r in ok)
            entry.update(
                mean_bpsp=statistics.fmean(r["bpsp"] for r in ok),
                total_bpsp=8.0 * sum(r["bytes"] for r in ok) / subpixels,
                median_encode_s=statistics.median(r["encode_s"] for r in ok),
                median_decode_s=statistics.median(r["decode_s"] for r in ok),
                max_peak_mb=max(r["peak_mb"] for r in ok),
            )
        out.append(entry)
    return sorted(out, key=lambda e: e.get("mean_bpsp", float("inf")))


def summary_markdown(summary: list[dict], skipped: dict[str, str]) -> str:
    lines = [
        "| codec | settings | mean bpsp | total-bits bpsp | median encode s | median decode s | peak MB | failures |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for e in summary:
        if "mean_bpsp" in e:
            lines.append(
                f"| {e['codec']} | {e['settings']} | {e['mean_bpsp']:.3f} | {e['total_bpsp']:.3f} | "
                f"{e['median_encode_s']:.3f} | {e['median_decode_s']:.3f} | {e['max_peak_mb']:.0f} | "
                f"{e['failures']}/{e['images']} |"
            )
        else:
            lines.append(f"| {e['codec']} | {e['settings']} | – | – | – | – | – | {e['failures']}/{e['images']} |")
    for name, why in skipped.items():
        lines.append(f"| {name} | skipped: {why} | | | | | | |")
    lines.append("")
    lines.append("Versions: " + "; ".join(f"{e['codec']}: {e['version']}" for e in summary))
    return "\n".join(lines) + "\n"


def _job(job: tuple[str, str]) -> dict:
    """The row of one (image path, codec) pair; run by the engine, in any process."""
    from .measure import measure

    path, codec = job
    row = measure(path, codec)
    row["version"] = CODECS[codec].version()
    return row


def _failed_row(path: Path, key: str, codec: str, version: str, error: str) -> dict:
    """The row of a job that did not return (its worker died)."""
    return {**dict.fromkeys(CSV_FIELDS), "image": path.name, "image_key": key, "codec": codec,
            "settings": CODECS[codec].settings, "exact": False, "error": error, "version": version}


def _images(dirs: list[Path], limit: int | None) -> list[Path]:
    out = []
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"benchmark folder {d} not found")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in BENCH_SUFFIXES)
        out += files[:limit] if limit else files
    return out


def run_bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if getattr(args, "max_error", None):
        from .near_lossless import run_near_lossless

        return run_near_lossless(args)

    from ..imageio import load_rgb
    from .measure import image_key

    try:
        engine = engine_from_args(args)
    except EngineUnavailableError as exc:
        print(f"error: {exc}")
        return 2
    names = [c.strip() for c in args.codecs.split(",") if c.strip()]
    unknown = [n for n in names if n not in CODECS]
    if unknown:
        print(f"error: unknown codecs {unknown}; known: {', '.join(CODECS)}")
        return 2
    skipped = {n: why for n in names if (why := CODECS[n].unavailable())}
    for n, why in skipped.items():
        print(f"note: skipping {n}: {why}")
    codecs = [n for n in names if n not in skipped]
    try:
        images = _images(args.dirs, args.limit)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "cache.jsonl"
    cache = {} if args.no_cache else load_cache(cache_path)
    versions = {n: CODECS[n].version() for n in codecs}
    keys = {p: image_key(load_rgb(p)) for p in images}

    rows, todo = [], []
    for p in images:
        for n in codecs:
            hit = cache.get(f"{keys[p]}|{n}|{CODECS[n].settings}|{versions[n]}")
            if hit and hit["exact"]:
                rows.append(hit)
            else:
                todo.append((p, n))
    print(f"{len(images)} images x {len(codecs)} codecs: {len(rows)} cached, {len(todo)} to run")
    if todo and engine.describe():
        print(f"on the {engine.describe()}")
    with open(cache_path, "a") as cache_fh, tqdm(total=len(todo), desc="bench", unit="job") as bar, engine:
        # Every finished row goes to the cache at once, so an interrupted run resumes.
        for outcome in engine.run(_job, [(str(p), n) for p, n in todo]):
            p, n = todo[outcome.index]
            row = outcome.value
            if row is None:
                row = _failed_row(p, keys[p], n, versions[n], outcome.error or "no result")
            rows.append(row)
            cache_fh.write(json.dumps(row) + "\n")
            cache_fh.flush()
            bar.set_postfix_str(f"{row['codec']} {row['image']}")
            bar.update(1)

    order = {n: i for i, n in enumerate(codecs)}
    rows.sort(key=lambda r: (r["image"], order.get(r["codec"], 99)))
    with open(args.out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    (args.out / "summary.json").write_text(json.dumps({"codecs": summary, "skipped": skipped,
                                                       "images": len(images)}, indent=2))
    md = summary_markdown(summary, skipped)
    (args.out / "summary.md").write_text(md)
    print(md)
    if not args.no_plots:
        from .plots import draw_all

        for path in draw_all(rows, summary, args.out):
            print(f"plot: {path}")
    failures = [r for r in rows if not r["exact"]]
    for r in failures:
        print(f"FAILED: {r['codec']} on {r['image']}: {r['error']}")
    return 1 if failures else 0
