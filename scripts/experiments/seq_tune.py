"""Mean bpsp of the sequential coder's residual stream (no lossy layer) on training crops, for
parameter tuning: ``python scripts/experiments/seq_tune.py [N] [flags,o0,o1,o2,mu_f,mu_s,mu_c,rate,limit] ...``.
Never run on Kodak (the test set)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from lossless_bpg.sequential import _seqcore

TRAIN = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "train"


def crops(n: int) -> list[np.ndarray]:
    files = sorted(TRAIN.glob("*.png"))
    step = max(1, len(files) // n)
    return [np.asarray(Image.open(f).convert("RGB")) for f in files[::step][:n]]


def bpsp(images: list[np.ndarray], params: tuple[int, ...]) -> float:
    def one(img: np.ndarray) -> int:
        return len(_seqcore.encode(img.tobytes(), None, img.shape[0], img.shape[1], params))

    with ThreadPoolExecutor(2) as pool:
        total = sum(pool.map(one, images))
    return 8 * total / sum(i.size for i in images)


if __name__ == "__main__":
    n = int(sys.argv[1])
    images = crops(n)
    for arg in sys.argv[2:]:
        params = tuple(int(v) for v in arg.split(","))
        print(f"{arg}: {bpsp(images, params):.4f}", flush=True)
