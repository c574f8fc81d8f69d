"""What tiling costs: each image coded whole (``tile_size=None``) and in tiles (default tile
size), both at the default effort, with the tiled file decoded and checked. One JSON line per
image to ``--out`` (appended; images already there are skipped, so a stopped run resumes).

    python scripts/experiments/tiling_cost.py IMAGES... --out benchmarks/tiling/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lossless_bpg.codec import DEFAULT_TILE_SIZE, compress, decompress
from lossless_bpg.imageio import load_rgb
from lossless_bpg.residual import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE)
    ap.add_argument("--workers", type=int, default=2, help="tile workers (the bytes do not depend on it)")
    ap.add_argument("--threads", type=int, help="torch threads of the whole-image runs (bytes do not depend on it)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["image"] for line in args.out.read_text().splitlines() if line.strip()}
    model = load_model()
    for path in args.images:
        if path.name in done:
            continue
        image = load_rgb(path)
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        whole = compress(image, model, tile_size=None)
        t1 = time.perf_counter()
        tiled = compress(image, model, tile_size=args.tile_size, workers=args.workers)
        t2 = time.perf_counter()
        decoded, _ = decompress(tiled.data, model, workers=args.workers)
        t3 = time.perf_counter()
        if not np.array_equal(decoded, image):
            raise SystemExit(f"{path}: the tiled file does not decode exactly")
        row = {
            "image": path.name, "width": w, "height": h,
            "whole_bytes": len(whole.data), "whole_q": whole.q,
            "tiled_bytes": len(tiled.data), "tile_qs": list(tiled.tile_qs),
            "tiled_header_bytes": tiled.header_bytes,
            "cost_percent": 100.0 * (len(tiled.data) / len(whole.data) - 1),
            "whole_encode_s": t1 - t0, "tiled_encode_s": t2 - t1, "tiled_decode_s": t3 - t2,
            "tile_size": args.tile_size, "workers": args.workers,
        }
        print(json.dumps(row), flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
