"""Ceiling of per-image learning with this architecture (issue 11): fine-tune a group of the
float model's parameters on the image itself (Adam on random 4 x 128x128 crops), then the
residual bits of the whole image, teacher-forced, no per-stream recalibration; the change is
sent for free. Groups: all, heads, trunk (stem, down, trunk and the heads' last layers),
context, bias (every bias), film (a gain per output channel of every convolution, and every
bias), filmshared (the same for stem/down/trunk/context only), b16 (the heads' last biases:
about what the per-stream recalibration can do), last (the heads' last layers), slast (one
change shared by the 16 last layers: what residual/finetune.py sends), fs+b16, fs+last,
fs+slast, ctx+b16.

    python scripts/experiments/finetune_ceiling.py IMAGE GROUP STEPS [Q] [LR]
"""
import json
import re
import sys
import time

import numpy as np
import torch

from lossless_bpg.codec import choose_q
from lossless_bpg.imageio import load_rgb
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import load_model
from lossless_bpg.residual.layer import residual_bits

torch.set_num_threads(1)
torch.manual_seed(0)
path, group, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
q_fixed = int(sys.argv[4]) if len(sys.argv) > 4 else None
loaded = load_model()
model = loaded.model.eval()
image = load_rgb(path)
h, w = (image.shape[0] // 4) * 4, (image.shape[1] // 4) * 4
image = np.ascontiguousarray(image[:h, :w])
lossy = get_lossy_codec("hevc")
if q_fixed is None:
    trial, _ = choose_q(image, lossy, loaded)
    q, recon_np = trial.q, trial.recon
else:
    q = q_fixed
    recon_np = lossy.decode(lossy.encode(image, q))
recon = torch.from_numpy(recon_np).permute(2, 0, 1)[None].float()
res = torch.from_numpy(image.astype(np.int16) - recon_np.astype(np.int16)).permute(2, 0, 1)[None].float()
qt = torch.tensor([q])
n = h * w * 3
def whole():
    with torch.no_grad():
        return float(residual_bits(model, recon, qt, res)) / n
base = whole()
print(f"{path}: Q {q} base {base:.4f}", flush=True)
import torch.nn.utils.parametrize as P


class Gain(torch.nn.Module):
    def __init__(self, out):
        super().__init__(); self.g = torch.nn.Parameter(torch.zeros(out))
    def forward(self, w):
        return w * (1 + self.g).view(-1, *([1] * (w.dim() - 1)))
if group in ("film", "filmshared", "fs+b16", "fs+last", "fs+slast"):
    for mn, m in list(model.named_modules()):
        if isinstance(m, torch.nn.Conv2d) and (group == "film" or not mn.startswith("heads")):
            P.register_parametrization(m, "weight", Gain(m.out_channels))
class Shared(torch.nn.Module):
    def __init__(self, delta):
        super().__init__(); self.delta = delta
    def forward(self, w):
        return w + self.delta.view_as(w)
if group in ("slast", "fs+slast"):
    dw = torch.nn.Parameter(torch.zeros_like(model.heads[0][4].weight)); db = torch.nn.Parameter(torch.zeros_like(model.heads[0][4].bias))
    for hd in model.heads:
        P.register_parametrization(hd[4], "weight", Shared(dw)); P.register_parametrization(hd[4], "bias", Shared(db))
names = {n_: p for n_, p in model.named_parameters()}
def pick(name):
    if group == "all": return True
    if group == "trunk": return name.startswith(("trunk", "down", "stem")) or "head" in name and name.endswith(("4.weight", "4.bias"))
    if group == "heads": return "heads" in name
    if group == "bias": return name.endswith("bias")
    if group == "slast": return name.endswith(".delta")
    if group == "ctx+b16": return name.startswith("context") or re.match(r"heads\.\d+\.4\.bias", name) is not None
    if group == "fs+slast": return name.endswith(".delta") or not name.startswith("heads") and (name.endswith((".g", "bias")))

    if group == "b16": return re.match(r"heads\.\d+\.4\.bias", name) is not None
    if group == "last": return re.match(r"heads\.\d+\.4\.", name) is not None
    if group == "fs+b16": return re.match(r"heads\.\d+\.4\.bias", name) is not None or not name.startswith("heads") and (name.endswith((".g", "bias")))
    if group == "fs+last": return re.match(r"heads\.\d+\.4\.(bias|weight)", name) is not None or not name.startswith("heads") and (name.endswith((".g", "bias")))
    if group == "film": return name.endswith(("bias", ".g"))
    if group == "filmshared": return name.endswith(".g") or name.endswith("bias") and not name.startswith("heads")
    if group == "trunkbias": return name.endswith("bias") and name.startswith(("trunk", "down", "stem"))
    return any(name.startswith(g) for g in group.split(","))
params = [p for n_, p in names.items() if pick(n_)]
for n_, p in names.items(): p.requires_grad_(pick(n_))
print("groups", sorted({n_.split('.')[0] for n_ in names if pick(n_)}), sum(p.numel() for p in params), flush=True)
opt = torch.optim.Adam(params, lr=float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4)
C = 128
t0 = time.time()
for step in range(steps):
    ys = np.random.randint(0, (h - C) // 4 + 1, 4) * 4; xs = np.random.randint(0, (w - C) // 4 + 1, 4) * 4
    rb = torch.cat([recon[..., y:y+C, x:x+C] for y, x in zip(ys, xs)]); tb = torch.cat([res[..., y:y+C, x:x+C] for y, x in zip(ys, xs)])
    opt.zero_grad()
    loss = residual_bits(model, rb, qt.repeat(4), tb) / (4 * C * C * 3)
    loss.backward(); opt.step()
    if step % 50 == 49:
        print(f" step {step+1} crop {float(loss):.4f} whole {whole():.4f} ({time.time()-t0:.0f}s)", flush=True)
final = whole()
print(json.dumps({"image": path, "group": group, "q": q, "base": base, "final": final, "gain_pct": 100*(final/base-1)}), flush=True)
