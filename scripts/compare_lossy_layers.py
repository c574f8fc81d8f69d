"""Compare lossy layers at equal Q: lossy bytes, PSNR of the lossy layer and total size after the
residual layer, every image coded for real (``compress`` at a forced Q, the file's own split).

    .venv/bin/python scripts/compare_lossy_layers.py ../shared/datasets/kodak \
        --backends hevc,bpg --qs 24,30,36 --out benchmarks/kodak_lossy_layers

Writes ``results.csv`` (one row per image, backend and Q; rows already there are reused, so an
interrupted run resumes) and ``summary.md`` (means per backend and Q). ``--verify`` also decodes
every file and checks it is exact.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

FIELDS = ["image", "backend", "q", "width", "height", "lossy_bytes", "residual_bytes", "header_bytes",
          "bytes", "lossy_bpsp", "bpsp", "psnr_db", "encode_s", "exact", "version"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def measure(path: Path, backend: str, q: int, model, verify: bool) -> dict:
    from lossless_bpg.codec import compress, decompress
    from lossless_bpg.container import unpack
    from lossless_bpg.imageio import load_rgb
    from lossless_bpg.lossy import get_lossy_codec

    img = load_rgb(str(path))
    h, w, _ = img.shape
    lossy = get_lossy_codec(backend)
    t0 = time.perf_counter()
    result = compress(img, model, backend=backend, quality=q)
    seconds = time.perf_counter() - t0
    recon = lossy.decode(unpack(result.data).lossy)
    exact = ""
    if verify:
        exact = bool(np.array_equal(decompress(result.data, model)[0], img))
    subpixels = h * w * 3
    return {
        "image": path.name, "backend": backend, "q": q, "width": w, "height": h,
        "lossy_bytes": result.lossy_bytes, "residual_bytes": result.residual_bytes,
        "header_bytes": result.header_bytes, "bytes": len(result.data),
        "lossy_bpsp": 8 * result.lossy_bytes / subpixels, "bpsp": 8 * len(result.data) / subpixels,
        "psnr_db": psnr(recon, img), "encode_s": seconds, "exact": exact, "version": lossy.version(),
    }


def summary_markdown(rows: list[dict]) -> str:
    lines = [("| Q | lossy layer | images | mean lossy bytes | mean lossy bpsp | mean PSNR dB (RGB) | "
             "mean residual bpsp | mean total bpsp |"),
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({(int(r["q"]), r["backend"]) for r in rows})
    for q, backend in keys:
        rs = [r for r in rows if int(r["q"]) == q and r["backend"] == backend]
        res_bpsp = [8 * int(r["residual_bytes"]) / (int(r["width"]) * int(r["height"]) * 3) for r in rs]
        lines.append(
            f"| {q} | {backend} | {len(rs)} | {statistics.fmean(int(r['lossy_bytes']) for r in rs):,.0f} | "
            f"{statistics.fmean(float(r['lossy_bpsp']) for r in rs):.3f} | "
            f"{statistics.fmean(float(r['psnr_db']) for r in rs):.2f} | {statistics.fmean(res_bpsp):.3f} | "
            f"{statistics.fmean(float(r['bpsp']) for r in rs):.3f} |"
        )
    versions = sorted({f"{r['backend']}: {r['version']}" for r in rows})
    return "\n".join(lines) + "\n\nVersions: " + "; ".join(versions) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", type=Path)
    p.add_argument("--backends", default="hevc,bpg")
    p.add_argument("--qs", default="24,30,36", help="comma-separated Q values")
    p.add_argument("--out", type=Path, default=Path("results/lossy_layers"))
    p.add_argument("--limit", type=int, help="first N images only")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--verify", action="store_true", help="decode every file and check it is exact")
    args = p.parse_args(argv)

    import torch

    from lossless_bpg.residual import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    qs = [int(q) for q in args.qs.split(",")]
    images = sorted(p for p in args.dir.iterdir() if p.suffix.lower() in {".png", ".ppm", ".bmp", ".tif", ".tiff"})
    images = images[: args.limit] if args.limit else images
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "results.csv"
    rows: list[dict] = []
    if csv_path.exists():
        with open(csv_path) as fh:
            rows = [r for r in csv.DictReader(fh) if not args.verify or r["exact"] == "True"]
    done = {(r["image"], r["backend"], int(r["q"])) for r in rows}
    todo = [(im, b, q) for im in images for q in qs for b in backends if (im.name, b, q) not in done]
    print(f"{len(images)} images x {len(backends)} backends x {len(qs)} Q: {len(done)} done, {len(todo)} to run",
          flush=True)
    failures = 0
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        for i, (im, backend, q) in enumerate(todo, 1):
            row = measure(im, backend, q, model, args.verify)
            failures += row["exact"] is False
            rows.append(row)
            writer.writerow(row)
            fh.flush()
            print(f"[{i}/{len(todo)}] {im.name} {backend} Q{q}: lossy {row['lossy_bytes']} B, "
                  f"PSNR {row['psnr_db']:.2f} dB, total {row['bpsp']:.3f} bpsp{' NOT EXACT' if row['exact'] is False else ''}",
                  flush=True)
    md = summary_markdown(rows)
    (args.out / "summary.md").write_text(md)
    print(md)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
