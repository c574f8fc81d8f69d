"""The two near-lossless routes on training crops (issue 30), with the sequential coder:

1. in the causal loop (shipped): the prediction error quantised with step 2T + 1 about the
   coder's own prediction, at the Q the search picks for lossless (51);
2. DLPR's way: r = x - x̃ quantised to multiples of 2T + 1 about the lossy reconstruction x̃,
   the quantised residual image then coded losslessly (here by the sequential coder, with x̃
   as its reconstruction input), at finer Qs where x̃ is worth more.

    python scripts/experiments/near_lossless_routes.py 60 > benchmarks/near_lossless/routes.md
"""

from __future__ import annotations

import sys

import numpy as np

from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.sequential import for_effort
from lossless_bpg.sequential.coder import encode_with_stats

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from seq_tune import crops


def main(n: int) -> None:
    images = crops(n)
    hevc = get_lossy_codec("hevc")
    model = for_effort(2)
    subpixels = sum(i.size for i in images)
    layers = {}
    for q in (51, 40, 30, 22):
        layers[q] = []
        for img in images:
            payload = hevc.encode(img, q)
            layers[q].append((len(payload), hevc.decode(payload, size=img.shape[:2])))
    print("| T | route | Q | total bpsp | largest error |")
    print("|---:|---|---:|---:|---:|")
    for bound in (1, 2, 3, 5):
        step = 2 * bound + 1
        total, worst = 0, 0
        for img, (lossy_bytes, recon) in zip(images, layers[51]):
            data, _, decoded = encode_with_stats(img, recon, model, bound)
            total += lossy_bytes + len(data)
            worst = max(worst, int(np.abs(decoded.astype(int) - img).max()))
        print(f"| {bound} | 1: in the causal loop | 51 | {8 * total / subpixels:.4f} | {worst} |")
        for q in (51, 40, 30, 22):
            total, worst = 0, 0
            for img, (lossy_bytes, recon) in zip(images, layers[q]):
                r = img.astype(np.int32) - recon
                k = np.sign(r) * ((np.abs(r) + bound) // step)
                decoded = np.clip(recon + k * step, 0, 255)
                # the quantised residual as an image (offset 128) coded losslessly, x̃ beside it
                shifted = np.clip(k + 128, 0, 255).astype(np.uint8)
                data, _, _ = encode_with_stats(shifted, recon, model, 0)
                total += lossy_bytes + len(data)
                worst = max(worst, int(np.abs(decoded - img).max()))
            print(f"| {bound} | 2: about x̃ | {q} | {8 * total / subpixels:.4f} | {worst} |")


if __name__ == "__main__":
    main(int(sys.argv[1]))
