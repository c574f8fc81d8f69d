"""Issue 11 study: how much would coding the residual of a flipped, rotated or transposed
image (the encoder's choice of the eight, the lossy layer unchanged) save? Float estimate of
the residual bits at Q 28 for each orientation of (image, x̃), relative to the image as is:

    python scripts/experiments/orientation_choice.py [IMAGES...]   # default: every 3rd validation crop
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual.layer import estimate_bits
from lossless_bpg.residual.weights import load_model
from lossless_bpg.train.prepare import is_validation

torch.set_num_threads(1)
m = load_model("fast"); hevc = get_lossy_codec("hevc")
names = [Path(p) for p in sys.argv[1:]] or sorted(p for p in Path("../shared/datasets/train").glob("*.png") if is_validation(p.stem, 0.05))[::3]
T = {"id": lambda a: a, "flipx": lambda a: a[:, ::-1], "flipy": lambda a: a[::-1], "rot180": lambda a: a[::-1, ::-1],
     "transpose": lambda a: a.transpose(1, 0, 2), "rot90": lambda a: np.rot90(a, 1), "rot270": lambda a: np.rot90(a, 3),
     "antitr": lambda a: np.rot90(a, 2).transpose(1, 0, 2)}
tot = {k: 0.0 for k in T}; best = 0.0
for p in names:
    img = np.asarray(Image.open(p).convert("RGB")); rec = hevc.decode(hevc.encode(img, 28))
    b = {k: estimate_bits(m.exact, np.ascontiguousarray(f(img)), np.ascontiguousarray(f(rec)), 28) for k, f in T.items()}
    for k in T: tot[k] += b[k]
    best += min(b.values())
    print(p.stem, " ".join(f"{k}={100*(v/b['id']-1):+.2f}" for k, v in b.items()), flush=True)
print("mean rel:", " ".join(f"{k}={100*(v/tot['id']-1):+.2f}%" for k, v in tot.items()), f"best-of-8 {100*(best/tot['id']-1):+.2f}%")
