"""Issue 11 study: a backward least-squares correction of the mixture means from the trunk's
features of x̃ (shared by all passes, known to both sides), refit before each pass on the
passes decoded so far (float, the model without recalibration); bits relative to the model:

    python scripts/experiments/trunk_feedback.py Q N [val | FOLDER]
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual.layer import _Passes, _ranges
from lossless_bpg.residual.mixture import log_prob
from lossless_bpg.residual.weights import load_model
from lossless_bpg.train.prepare import is_validation

torch.set_num_threads(1)
Q = int(sys.argv[1]); N = int(sys.argv[2]); src = sys.argv[3] if len(sys.argv) > 3 else "val"
model = load_model("fast"); hevc = get_lossy_codec("hevc")
if src == "val":
    names = sorted(p for p in Path("../shared/datasets/train").glob("*.png") if is_validation(p.stem, 0.05))[:: max(1, 58 // N)][:N]
else:
    names = sorted(Path(src).glob("*.png"))[:N]
tot = {}
for path in names:
    img = np.asarray(Image.open(path).convert("RGB"))
    payload = hevc.encode(img, Q); recon = hevc.decode(payload)
    res = img.astype(np.int16) - recon.astype(np.int16); ranges = _ranges(res)
    with torch.inference_mode():
        passes = _Passes(model.exact, recon, Q, None); passes.fill(res)
        feats = passes.features[:, : model.exact.feature_channels].double()
        fc = feats.shape[1]
        XtX = [np.zeros((fc + 1, fc + 1)) for _ in range(3)]; Xty = [np.zeros(fc + 1) for _ in range(3)]
        base = corr = 0.0
        for step, (params, target) in enumerate(passes):
            if params is None: continue
            est = params.as_float()
            h, w = target.shape[-2:]
            X = feats[0, :, :h, :w].reshape(fc, -1).T.numpy()
            X = np.concatenate([X / 64.0, np.ones((len(X), 1))], 1)
            for c, (lo, hi) in enumerate(ranges):
                if lo == hi: continue
                lg, mu, ls = est.channel(c, target)
                t = target[:, c]
                base += -log_prob(lg, mu, ls, t, lo, hi).sum().item() / np.log(2)
                wts = torch.softmax(lg, 1)
                mean = (wts * mu).sum(1)[0].reshape(-1).double().numpy()
                e = t[0].reshape(-1).double().numpy() - mean
                n_seen = XtX[c][-1, -1]
                if n_seen > 20 * (fc + 1):
                    A = XtX[c] + np.eye(fc + 1) * (1e-3 * np.trace(XtX[c]) / (fc + 1) + 1)
                    coef = np.linalg.solve(A, Xty[c])
                    shift = torch.from_numpy(X @ coef).float().view(1, 1, h, w)
                else:
                    shift = 0.0
                corr += -log_prob(lg, mu + shift, ls, t, lo, hi).sum().item() / np.log(2)
                XtX[c] += X.T @ X; Xty[c] += X.T @ e
    n = img.size
    tot["base"] = tot.get("base", 0) + base; tot["corr"] = tot.get("corr", 0) + corr
    print(path.stem, f"base {base/n:.4f} corr {corr/n:.4f} ({100*(corr/base-1):+.2f}%)", flush=True)
print(f"TOTAL {100*(tot['corr']/tot['base']-1):+.2f}%")
