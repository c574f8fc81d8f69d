"""Potential of the backward error feedback (issue 11) before it was built: a ridge least-squares
prediction of the model's error e = r - mean from the errors already known within two pixels
and from the earlier channels of the same pixel, fitted on the passes before (bwd) or on the
pass itself (oracle); with a per-stream recalibration (mean and log-scale gain and offset)
fitted on each stream itself for free, with and without the feedback. Float model,
teacher-forced, ideal bits.

    python scripts/experiments/error_feedback_oracle.py IMAGE:Q [IMAGE:Q ...]
"""
import sys

import numpy as np
import torch

from lossless_bpg.imageio import load_rgb
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import load_model
from lossless_bpg.residual.mixture import bits, log_prob
from lossless_bpg.residual.model import PASS_OFFSETS, pass_lattice

torch.set_num_threads(1)
m = load_model(); model = m.model.eval(); lossy = get_lossy_codec("hevc")
OFFS = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)]
def recal_bits(logits, means, log_scales, tgt):
    """Bits after a mean and log-scale gain and offset fitted on the stream itself."""
    p = torch.zeros(4, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=25, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        l = bits(log_prob(logits, means * (1 + p[0]) + p[1], log_scales * (1 + p[2]) + p[3], tgt)) / tgt.numel()
        l.backward(); return l
    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(bits(log_prob(logits, means * (1 + p[0]) + p[1], log_scales * (1 + p[2]) + p[3], tgt)))


for arg in sys.argv[1:]:
    path, q = arg.split(":"); q = int(q)
    img = load_rgb(path); h, w = (img.shape[0] // 4) * 4, (img.shape[1] // 4) * 4; img = np.ascontiguousarray(img[:h, :w])
    recon = lossy.decode(lossy.encode(img, q))
    rt = torch.from_numpy(recon).permute(2, 0, 1)[None].float()
    res = torch.from_numpy(img.astype(np.int16) - recon.astype(np.int16)).permute(2, 0, 1)[None].float()
    E = torch.zeros(3, h + 4, w + 4); K = torch.zeros(h + 4, w + 4, dtype=torch.bool)  # errors, known mask (padded by 2)
    tot = {"base": 0.0, "bwd": 0.0, "oracle": 0.0, "recal": 0.0, "bwd+recal": 0.0}
    XtX = [torch.zeros(len(OFFS) + 3, len(OFFS) + 3, dtype=torch.float64) for _ in range(3)]; Xty = [torch.zeros(len(OFFS) + 3, dtype=torch.float64) for _ in range(3)]
    with torch.no_grad():
        feats = model.features(rt, torch.tensor([q]))
        for s in range(16):
            params = model.pass_params(feats, s, res)
            target = pass_lattice(res, s, 16)
            dy, dx = PASS_OFFSETS[16][s]
            ys = torch.arange(dy, h, 4); xs = torch.arange(dx, w, 4)
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")
            cur_e = []
            new_stats = []
            for c in range(3):
                logits, means, log_scales = params.channel(c, target)
                wts = torch.softmax(logits, 1)
                mu = (wts * means).sum(1)[0]
                e = target[0, c] - mu
                feats_ls = [E[c, yy + 2 + oy, xx + 2 + ox] * K[yy + 2 + oy, xx + 2 + ox] for oy, ox in OFFS]
                feats_ls += [cur_e[cc] if cc < c else torch.zeros_like(e) for cc in range(2)] + [torch.ones_like(e)]
                X = torch.stack([f.reshape(-1) for f in feats_ls], 1).double(); y = e.reshape(-1).double()
                lam = 1e2 * torch.eye(X.shape[1], dtype=torch.float64)
                b0 = float(bits(log_prob(logits, means, log_scales, target[:, c])))
                tot["base"] += b0
                if s >= 1 and XtX[c].abs().sum() > 0:
                    coef = torch.linalg.solve(XtX[c] + lam, Xty[c])
                    shift = (X @ coef).float().view(1, 1, *e.shape)
                    tot["bwd"] += float(bits(log_prob(logits, means + shift, log_scales, target[:, c])))
                    tot["bwd+recal"] += recal_bits(logits, means + shift, log_scales, target[:, c])
                else:
                    tot["bwd"] += b0
                    tot["bwd+recal"] += recal_bits(logits, means, log_scales, target[:, c])
                tot["recal"] += recal_bits(logits, means, log_scales, target[:, c])
                coef_o = torch.linalg.solve(X.T @ X + lam, X.T @ y)
                tot["oracle"] += float(bits(log_prob(logits, means + (X @ coef_o).float().view(1, 1, *e.shape), log_scales, target[:, c])))
                new_stats.append((X, y))
                cur_e.append(e)
            for c in range(3):
                X, y = new_stats[c]; XtX[c] += X.T @ X; Xty[c] += X.T @ y
                E[c, yy + 2, xx + 2] = cur_e[c]
            K[yy + 2, xx + 2] = True
    n = h * w * 3
    print(path.split("/")[-1], q, {k: round(v / n, 4) for k, v in tot.items()}, "bwd %+.2f%%" % (100 * (tot["bwd"] / tot["base"] - 1)), "oracle %+.2f%%" % (100 * (tot["oracle"] / tot["base"] - 1)), "recal %+.2f%%" % (100 * (tot["recal"] / tot["base"] - 1)), "bwd+recal vs recal %+.2f%%" % (100 * (tot["bwd+recal"] / tot["recal"] - 1)), flush=True)
