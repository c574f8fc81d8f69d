"""What the backward error feedback (residual/backward.py) saves, alone and with the per-image
fine-tuning: each image compressed with ``--adapt auto`` (Q searched), then at that Q with
the fine-tuning only (feedback forbidden) and with ``--adapt none``; every file decoded and
compared. One JSON line per image.

    python scripts/experiments/feedback_gain.py IMAGES... [--effort 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

import numpy as np

from lossless_bpg import codec
from lossless_bpg.container import unpack
from lossless_bpg.effort import PerImageLearning
from lossless_bpg.imageio import load_rgb
from lossless_bpg.residual import load_model


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument("--effort", type=int, default=2)
    args = ap.parse_args()
    model = load_model()
    finetune_only = PerImageLearning.of("auto", args.effort)
    finetune_only = PerImageLearning(finetune_only.finetune_steps, False)
    for path in args.images:
        image = load_rgb(path)
        row: dict = {"image": path.name, "effort": args.effort}
        auto, row["auto_encode_s"] = _timed(codec.compress, image, model, effort=args.effort)
        row["q"] = auto.q
        with mock.patch.object(PerImageLearning, "of", lambda *a: finetune_only):
            tuned, _ = _timed(codec.compress, image, model, quality=auto.q, effort=args.effort)
        plain, _ = _timed(codec.compress, image, model, quality=auto.q, adapt="none")
        subpixels = image.shape[0] * image.shape[1] * 3
        for name, result in (("auto", auto), ("finetune_only", tuned), ("none", plain)):
            (decoded, _), seconds = _timed(codec.decompress, result.data, model)
            f = unpack(result.data)
            row[name] = {"bytes": len(result.data), "bpsp": 8 * len(result.data) / subpixels,
                         "decode_s": round(seconds, 2), "exact": bool(np.array_equal(decoded, image)),
                         "feedback": getattr(f.header, "error_feedback", None),
                         "update": bool(getattr(f, "model_update", b""))}
        row["auto_vs_none_percent"] = 100 * (len(auto.data) / len(plain.data) - 1)
        row["finetune_only_vs_none_percent"] = 100 * (len(tuned.data) / len(plain.data) - 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
