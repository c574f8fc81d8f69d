"""``bench --max-error 1,2,3,4,5``: near-lossless rows of this codec, JPEG-LS NEAR and WebP's
near-lossless mode on folders of images, at each error bound T. The maximum error is measured
on every decoded image (never taken from a codec's claim), with the PSNR; this codec's files
are also checked against their own checksum by the decoder. Writes ``results.csv``,
``summary.md`` and ``bpsp_vs_max_error.png`` in ``--out``."""

from __future__ import annotations

import argparse
import csv
import io
import math
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..imageio import load_rgb

FIELDS = ("image", "codec", "max_error", "bytes", "bpsp", "measured_max_error", "psnr_db", "encode_s", "decode_s")


@dataclass(frozen=True)
class NearLosslessCodec:
    """A codec with an error-bound setting: ``encode(image, T) -> bytes``, ``decode(bytes) -> image``."""

    name: str
    settings: str
    encode: Callable[[np.ndarray, int], bytes]
    decode: Callable[[bytes], np.ndarray]
    #: Why it cannot run here, or None.
    unavailable: Callable[[], str | None] = lambda: None


def _lbpg_encode(image: np.ndarray, bound: int) -> bytes:
    import lossless_bpg

    return lossless_bpg.compress(image, max_error=bound)


def _lbpg_decode(data: bytes) -> np.ndarray:
    import lossless_bpg

    return lossless_bpg.decompress(data)


def _jpegls_encode(image: np.ndarray, bound: int) -> bytes:
    import imagecodecs

    # plain RGB: a colour transform would add the channels' errors and break the bound
    return bytes(imagecodecs.jpegls_encode(image, level=bound))


def _jpegls_decode(data: bytes) -> np.ndarray:
    import imagecodecs

    return imagecodecs.jpegls_decode(data)


def _cwebp_encode(image: np.ndarray, bound: int) -> bytes:
    """cwebp's near-lossless preprocessing at the level that matches T best: levels
    (100 - level) / 20 quantise with about 2^bits steps; the bound is not guaranteed and is
    measured instead."""
    from PIL import Image

    level = max(0, 100 - 20 * min(bound, 5))
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.webp"
        Image.fromarray(image).save(src)
        subprocess.run(["cwebp", "-quiet", "-lossless", "-z", "9", "-near_lossless", str(level), str(src), "-o",
                        str(dst)], check=True, capture_output=True)
        return dst.read_bytes()


def _webp_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


CODECS = {
    "lbpg": NearLosslessCodec("lbpg", "sequential coder, default effort, --max-error T", _lbpg_encode, _lbpg_decode),
    "jpegls": NearLosslessCodec("jpegls", "CharLS NEAR = T, RGB", _jpegls_encode, _jpegls_decode),
    "webp": NearLosslessCodec("webp", "cwebp -lossless -z 9 -near_lossless (100 - 20 T)", _cwebp_encode, _webp_decode,
                              lambda: None if shutil.which("cwebp") else "cwebp not on PATH (Debian: apt-get install webp)"),
}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def run_near_lossless(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .runner import _images

    bounds = [int(t) for t in str(args.max_error).split(",") if t.strip()]
    if not bounds or any(not 1 <= t <= 127 for t in bounds):
        print("error: --max-error takes bounds in 1..127, e.g. 1,2,3,4,5")
        return 2
    names = [n for n in args.codecs.split(",") if n in CODECS] if args.codecs else list(CODECS)
    skipped = {n: why for n in names if (why := CODECS[n].unavailable())}
    for n, why in skipped.items():
        print(f"note: skipping {n}: {why}")
    names = [n for n in names if n not in skipped]
    images = _images(args.dirs, args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tqdm(total=len(images) * len(bounds) * len(names), desc="near-lossless", unit="job") as bar:
        for path in images:
            image = load_rgb(path)
            for bound in bounds:
                for name in names:
                    codec = CODECS[name]
                    t0 = time.perf_counter()
                    data = codec.encode(image, bound)
                    t1 = time.perf_counter()
                    decoded = codec.decode(data)
                    t2 = time.perf_counter()
                    rows.append({
                        "image": path.name, "codec": name, "max_error": bound, "bytes": len(data),
                        "bpsp": 8 * len(data) / image.size,
                        "measured_max_error": int(np.abs(decoded.astype(np.int16) - image).max()),
                        "psnr_db": _psnr(decoded, image), "encode_s": t1 - t0, "decode_s": t2 - t1,
                    })
                    bar.update(1)
    with open(args.out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    md = _summary(rows, names, bounds, skipped)
    (args.out / "summary.md").write_text(md)
    print(md)
    if not args.no_plots:
        print(f"plot: {_plot(rows, names, bounds, args.out / 'bpsp_vs_max_error.png')}")
    broken = [r for r in rows if r["codec"] != "webp" and r["measured_max_error"] > r["max_error"]]
    for r in broken:
        print(f"FAILED: {r['codec']} on {r['image']} at T={r['max_error']}: error {r['measured_max_error']}")
    return 1 if broken else 0


def _summary(rows: list[dict], names: list[str], bounds: list[int], skipped: dict[str, str]) -> str:
    lines = [("| T | codec | settings | mean bpsp | largest error measured | mean PSNR dB | median encode s | "
              "median decode s |"), "|---:|---|---|---:|---:|---:|---:|---:|"]
    for bound in bounds:
        for name in names:
            sel = [r for r in rows if r["codec"] == name and r["max_error"] == bound]
            lines.append(
                f"| {bound} | {name} | {CODECS[name].settings} | {statistics.mean(r['bpsp'] for r in sel):.4f} | "
                f"{max(r['measured_max_error'] for r in sel)} | {statistics.mean(r['psnr_db'] for r in sel):.2f} | "
                f"{statistics.median(r['encode_s'] for r in sel):.3f} | {statistics.median(r['decode_s'] for r in sel):.3f} |")
    for name, why in skipped.items():
        lines.append(f"| | {name} | skipped: {why} | | | | | |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], names: list[str], bounds: list[int], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        ax.plot(bounds, [statistics.mean(r["bpsp"] for r in rows if r["codec"] == name and r["max_error"] == t)
                         for t in bounds], marker="o", label=name)
    ax.set_xlabel("error bound T (max |x - x̂|)")
    ax.set_ylabel("bits per subpixel")
    ax.set_xticks(bounds)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
