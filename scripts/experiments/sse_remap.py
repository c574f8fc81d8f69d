"""Issue 11 study: would a secondary estimation stage pay on top of the per-stream
recalibration? Each subpixel's probability interval [F(r - 1/2), F(r + 1/2)] under the
recalibrated model (float) is remapped by a per-bucket piecewise-linear map of [0, 1] (30 bins
in the logit of F), learned either from the whole image (static: an oracle, sent for free) or
from the passes decoded so far (adaptive: what a decoder could do). Buckets: channel, pass
group (4), predicted scale (4). Bits relative to the recalibrated model, validation crops:

    python scripts/experiments/sse_remap.py [Q] [N]
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import adaptation
from lossless_bpg.residual.layer import FitSamples, _Passes, _ranges
from lossless_bpg.residual.weights import load_model
from lossless_bpg.train.prepare import is_validation

torch.set_num_threads(1)
Q = int(sys.argv[1]) if len(sys.argv) > 1 else 28
N = int(sys.argv[2]) if len(sys.argv) > 2 else 8
model = load_model("fast")
hevc = get_lossy_codec("hevc")
names = sorted(p for p in Path("../shared/datasets/train").glob("*.png") if is_validation(p.stem, 0.05))[:: max(1, 58 // N)][:N]
EDGES = np.concatenate([[-np.inf], np.linspace(-7, 7, 29), [np.inf]])
UE = 1 / (1 + np.exp(-EDGES))  # u-space edges
W = np.diff(UE)

def collect(img):
    payload = hevc.encode(img, Q); recon = hevc.decode(payload)
    res = img.astype(np.int16) - recon.astype(np.int16)
    ranges = _ranges(res)
    with torch.inference_mode():
        passes = _Passes(model.exact, recon, Q, None); passes.fill(res)
        fs = FitSamples(); streams = []
        for step, (params, target) in enumerate(passes):
            if params is None: continue
            est = params.as_float()
            for c, (lo, hi) in enumerate(ranges):
                if lo == hi: continue
                lg, mu, ls = est.channel(c, target)
                fs.add((step, c), lg, mu, ls, target[:, c], lo, hi)
                streams.append((step, c, lg[0].reshape(lg.shape[1], -1).float(), mu[0].reshape(mu.shape[1], -1).float(),
                                ls[0].reshape(ls.shape[1], -1).float(), target[0, c].reshape(-1).float(), lo, hi))
        fitted = fs.fit()
    out = []
    for step, c, lg, mu, ls, t, lo, hi in streams:
        p = adaptation._padded(fitted.get((step, c), ()), lg.shape[0])
        pt = torch.tensor(p, dtype=torch.float32)[:, None].expand(-1, t.numel())
        lg, mu, ls = adaptation.apply_float(lg, mu, ls, pt)
        w = torch.softmax(lg, 0); inv = torch.exp(-ls)
        up = torch.where(t >= hi, 1.0, torch.sigmoid(inv * (t + 0.5 - mu)))
        dn = torch.where(t <= lo, 0.0, torch.sigmoid(inv * (t - 0.5 - mu)))
        Fhi = (w * up).sum(0).double().numpy(); Flo = (w * dn).sum(0).double().numpy()
        scale = (w * ls).sum(0).numpy()
        out.append({"step": step, "c": c, "Flo": Flo, "Fhi": Fhi, "scale": scale, "nsend": len(fitted.get((step, c), ()))})
    return out, img.size

def masses(Flo, Fhi):
    a = np.clip(np.minimum(Fhi[:, None], UE[None, 1:]) - np.maximum(Flo[:, None], UE[None, :-1]), 0, None)
    return a  # (M, K) u-mass in each bin

def run(streams, bucket_fn, prior=4.0, adaptive=True):
    """bits with bucket remap; adaptive: histogram from previous passes only."""
    hist = {}
    total = 0.0
    by_step = {}
    for s in streams: by_step.setdefault(s["step"], []).append(s)
    if not adaptive:
        for s in streams:
            m = masses(s["Flo"], s["Fhi"]); m = m / np.maximum(m.sum(1, keepdims=True), 1e-300)
            b = bucket_fn(s)
            for key in np.unique(b):
                hist[key] = hist.get(key, 0) + m[b == key].sum(0)
    for step in sorted(by_step):
        new = {}
        for s in by_step[step]:
            m = masses(s["Flo"], s["Fhi"]); b = bucket_fn(s)
            p = np.empty(len(b))
            for key in np.unique(b):
                sel = b == key
                h = hist.get(key, np.zeros(len(W))) + prior * W
                wk = (h / h.sum()) / W
                p[sel] = (m[sel] * wk).sum(1)
                if adaptive:
                    mm = m[sel] / np.maximum(m[sel].sum(1, keepdims=True), 1e-300)
                    new[key] = new.get(key, 0) + mm.sum(0)
            total += -np.log2(np.maximum(p, 1e-30)).sum()
        for k, v in new.items(): hist[k] = hist.get(k, 0) + v
    return total

SC = np.array([-0.5, 0.25, 1.0])
schemes = {
    "none": lambda s: np.zeros(len(s["Flo"]), int),
    "c": lambda s: np.full(len(s["Flo"]), s["c"]),
    "c,grp": lambda s: np.full(len(s["Flo"]), s["c"] * 4 + s["step"] // 4),
    "c,scale4": lambda s: s["c"] * 4 + np.digitize(s["scale"], SC),
    "c,grp,scale4": lambda s: (s["c"] * 4 + s["step"] // 4) * 4 + np.digitize(s["scale"], SC),
}
tot = {}
for path in names:
    img = np.asarray(Image.open(path).convert("RGB"))
    streams, _ = collect(img)
    base = sum(-np.log2(np.maximum(s["Fhi"] - s["Flo"], 1e-30)).sum() for s in streams)
    n = img.shape[0] * img.shape[1] * 3
    row = {"base": base}
    for name, fn in schemes.items():
        row[name + " static"] = run(streams, fn, adaptive=False)
        row[name + " adapt"] = run(streams, fn, adaptive=True)
    for k, v in row.items(): tot[k] = tot.get(k, 0) + v
    print(path.stem, " ".join(f"{k}={v/n:.4f}" for k, v in row.items()), flush=True)
print("TOTAL rel:", " ".join(f"{k}={100*(v/tot['base']-1):+.2f}%" for k, v in tot.items()))
