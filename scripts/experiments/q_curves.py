"""Full Q curves (estimated total bits at every Q of the search range: the lossy layer's real
bytes plus the residual model's estimate, as the Q search sees them) of a set of images, one
JSON line per image, for judging Q-search strategies offline (q_search_strategies.py):

    python scripts/experiments/q_curves.py --validation > curves.jsonl
    python scripts/experiments/q_curves.py IMAGES... > curves.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lossless_bpg.codec import q_search_range, try_q
from lossless_bpg.imageio import load_rgb
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import load_model
from lossless_bpg.train.prepare import is_validation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", type=Path)
    ap.add_argument("--validation", action="store_true", help="the training data's validation crops")
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/train"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--backend", default="hevc")
    args = ap.parse_args()
    torch.set_num_threads(1)
    images = list(args.images)
    if args.validation:
        images += sorted(p for p in args.data.glob("*.png") if is_validation(p.stem, 0.05))
    model, lossy = load_model(args.model), get_lossy_codec(args.backend)
    lo, hi = q_search_range(model, lossy)
    for path in images:
        image = load_rgb(path)
        costs = {q: try_q(image, q, lossy, model, gather_fit_samples=False).total_bits for q in range(lo, hi + 1)}
        print(json.dumps({"image": path.stem, "pixels": image.shape[0] * image.shape[1], "costs": costs}), flush=True)


if __name__ == "__main__":
    main()
