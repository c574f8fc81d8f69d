"""How large a sample the per-stream recalibration's fit needs: each image compressed at its
searched Q with residual.adaptation.FIT_MAX_SUBPIXELS = 2048, 1024 and 512 (real file sizes and
encode times), on four 768x512 KDE photographs (from /tmp/big, see
benchmarks/finetune/results.md) and every 6th validation crop:

    python scripts/experiments/recalibration_sample.py
"""
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lossless_bpg import codec
from lossless_bpg.residual import adaptation
from lossless_bpg.residual.weights import load_model
from lossless_bpg.train.prepare import is_validation

m = load_model("default")
imgs = [Path(p) for p in ["/tmp/big/ColorfulCups_768x512.png", "/tmp/big/EveningGlow_half_768x512.png",
        "/tmp/big/OneStandsOut_half_768x512.png", "/tmp/big/Path_768x512.png"]]
imgs += sorted(p for p in Path("../shared/datasets/train").glob("*.png") if is_validation(p.stem, 0.05))[::6]
tot = {}
for p in imgs:
    img = np.asarray(Image.open(p).convert("RGB"))
    q = codec.compress(img, m).q
    row = []
    for n in (2048, 1024, 512):
        adaptation.FIT_MAX_SUBPIXELS = n
        t = time.perf_counter(); r = codec.compress(img, m, quality=q); dt = time.perf_counter() - t
        tot[n] = tot.get(n, 0) + len(r.data); row.append(f"{n}:{len(r.data)} {dt:.1f}s")
    adaptation.FIT_MAX_SUBPIXELS = 2048
    print(p.stem, q, " ".join(row), flush=True)
print({n: f"{100*(v/tot[2048]-1):+.3f}%" for n, v in tot.items()})
