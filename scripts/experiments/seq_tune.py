"""Mean bpsp of the sequential coder on training crops, for parameter tuning (never on Kodak,
the test set)::

    python scripts/experiments/seq_tune.py N [--q Q] PARAMS [PARAMS ...]

PARAMS: ``flags,o0,o1,o2,mu_fast,mu_slow,mu_cascade,mixer_rate,counter_limit`` (seqcore.h).
Without ``--q`` the residual stream alone is measured (no lossy layer; the recon flag must be
off); with it, the HEVC layer at Q is coded first and its bytes counted in the total.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from lossless_bpg.sequential import _seqcore

TRAIN = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "train"


def crops(n: int) -> list[np.ndarray]:
    """``n`` training crops spread evenly over the sorted file list (all sources)."""
    files = sorted(TRAIN.glob("*.png"))
    step = max(1, len(files) // n)
    return [np.asarray(Image.open(f).convert("RGB")) for f in files[::step][:n]]


def with_recon(images: list[np.ndarray], q: int) -> list[tuple[np.ndarray, np.ndarray | None, int]]:
    from lossless_bpg.lossy import get_lossy_codec

    hevc = get_lossy_codec("hevc")
    out = []
    for img in images:
        payload = hevc.encode(img, q)
        out.append((img, hevc.decode(payload, size=img.shape[:2]), len(payload)))
    return out


def bpsp(items: list[tuple[np.ndarray, np.ndarray | None, int]], params: tuple[int, ...]) -> float:
    def one(item: tuple[np.ndarray, np.ndarray | None, int]) -> int:
        img, recon, lossy_bytes = item
        rec = recon.tobytes() if recon is not None and params[0] & 1 else None
        return lossy_bytes + len(_seqcore.encode(img.tobytes(), rec, img.shape[0], img.shape[1], params))

    with ThreadPoolExecutor(2) as pool:
        total = sum(pool.map(one, items))
    return 8 * total / sum(i[0].size for i in items)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("params", nargs="+")
    ap.add_argument("--q", type=int)
    args = ap.parse_args()
    images = crops(args.n)
    items = with_recon(images, args.q) if args.q is not None else [(i, None, 0) for i in images]
    for arg in args.params:
        params = tuple(int(v) for v in arg.split(","))
        print(f"{arg}: {bpsp(items, params):.4f}", flush=True)


if __name__ == "__main__":
    main()
