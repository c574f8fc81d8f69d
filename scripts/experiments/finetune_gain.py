"""What per-image fine-tuning saves: each image compressed with ``--adapt auto`` (its Q
searched) and with ``--adapt none`` at the same Q; one JSON line per image.

    python scripts/experiments/finetune_gain.py IMAGES... [--effort 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lossless_bpg.codec import compress
from lossless_bpg.imageio import load_rgb
from lossless_bpg.residual import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument("--effort", type=int, default=2)
    args = ap.parse_args()
    model = load_model()
    for path in args.images:
        image = load_rgb(path)
        t0 = time.perf_counter()
        auto = compress(image, model, effort=args.effort)
        t1 = time.perf_counter()
        plain = compress(image, model, quality=auto.q, adapt="none")
        subpixels = image.shape[0] * image.shape[1] * 3
        print(json.dumps({
            "image": path.name, "q": auto.q, "effort": args.effort,
            "auto_bytes": len(auto.data), "none_bytes": len(plain.data),
            "auto_bpsp": 8 * len(auto.data) / subpixels, "none_bpsp": 8 * len(plain.data) / subpixels,
            "change_percent": 100 * (len(auto.data) / len(plain.data) - 1),
            "updated": auto.data[4] == 5, "auto_encode_s": t1 - t0,
        }), flush=True)


if __name__ == "__main__":
    main()
