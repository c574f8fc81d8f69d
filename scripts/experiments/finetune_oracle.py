"""How much could per-image fine-tuning of the residual model's heads gain (issue 11)? An
upper bound: the change is fitted on the image itself and sent for free. Float model, ideal
code length of the residual at the Q the default search picks.

    python scripts/experiments/finetune_oracle.py IMAGES... [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lossless_bpg.codec import choose_q
from lossless_bpg.imageio import load_rgb
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import load_model
from lossless_bpg.residual.mixture import bits, log_prob
from lossless_bpg.residual.model import pass_lattice, split_params


def head_inputs(model, recon, q, residual):
    """Per pass: (input of the head's first layer, hidden of its last layer, target lattice)."""
    with torch.no_grad():
        features = model.features(recon, q)
        out = []
        for s in range(model.steps):
            inputs = [features]
            if s:
                known = torch.cat([pass_lattice(residual, p, model.steps) for p in range(s)], 1)
                inputs.append(F.leaky_relu(model.context[s - 1](known / 16.0), 0.2))
            x = torch.cat(inputs, 1)
            head = model.heads[s]
            hidden = head[3](head[2](head[1](head[0](x))))
            out.append((x, hidden, pass_lattice(residual, s, model.steps)))
    return out


def total_bits(model, per_pass, delta):
    total = 0.0
    for s, (x, hidden, target) in enumerate(per_pass):
        head = model.heads[s]
        if "w1" in delta:  # low-rank change of the first layer, shared by all passes with the same input width
            h0 = head[0](x)
            if s:
                h0 = h0 + F.conv2d(F.conv2d(x, delta["w1a"]), delta["w1b"])
            else:
                h0 = h0 + F.conv2d(F.conv2d(x, delta["w1a"][:, : x.shape[1]]), delta["w1b"])
            hidden = head[3](head[2](head[1](h0)))
        out = head[4](hidden)
        if "w" in delta:
            out = out + F.conv2d(hidden, delta["w"], delta["b"])
        if "bp" in delta:
            out = out + delta["bp"][s].view(1, -1, 1, 1)
        params = split_params(out, model.config.mixtures)
        for c in range(3):
            logits, means, log_scales = params.channel(c, target)
            total = total + bits(log_prob(logits, means, log_scales, target[:, c]))
    return total


def variants(model):
    k = model.config.params_per_pixel if hasattr(model.config, "params_per_pixel") else model.params_per_pixel
    hc = model.config.head_channels
    fin = model.heads[1][0].in_channels
    return {
        "bias16": lambda: {"bp": torch.zeros(model.steps, k)},
        "last": lambda: {"w": torch.zeros(k, hc, 1, 1), "b": torch.zeros(k)},
        "last+bias16": lambda: {"w": torch.zeros(k, hc, 1, 1), "b": torch.zeros(k), "bp": torch.zeros(model.steps, k)},
        "last+lora8": lambda: {"w": torch.zeros(k, hc, 1, 1), "b": torch.zeros(k),
                               "w1": True, "w1a": torch.randn(8, fin, 1, 1) * 0.01, "w1b": torch.zeros(hc, 8, 1, 1)},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--variants", default="bias16,last,last+bias16,last+lora8")
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaded = load_model()
    model = loaded.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    lossy = get_lossy_codec("hevc")
    for path in args.images:
        image = load_rgb(path)
        h, w = (image.shape[0] // 4) * 4, (image.shape[1] // 4) * 4
        image = np.ascontiguousarray(image[:h, :w])
        t0 = time.perf_counter()
        trial, _ = choose_q(image, lossy, loaded)
        print(f"{path.name}: Q {trial.q} in {time.perf_counter() - t0:.0f} s", flush=True)
        recon = torch.from_numpy(trial.recon).permute(2, 0, 1)[None].float()
        residual = torch.from_numpy(image.astype(np.int16) - trial.recon.astype(np.int16)).permute(2, 0, 1)[None].float()
        qt = torch.tensor([trial.q])
        per_pass = head_inputs(model, recon, qt, residual)
        with torch.no_grad():
            base = float(total_bits(model, per_pass, {}))
        n_sub = h * w * 3
        row = {"image": path.name, "q": trial.q, "lossy_bpsp": 8 * len(trial.lossy_payload) / n_sub,
               "base_bpsp": base / n_sub}
        for name, make in variants(model).items():
            if name not in args.variants.split(","):
                continue
            delta = make()
            params = [v for v in delta.values() if isinstance(v, torch.Tensor)]
            for p in params:
                p.requires_grad_(True)
            opt = torch.optim.Adam(params, lr=args.lr)
            t0 = time.perf_counter()
            best = base
            for step in range(args.steps):
                opt.zero_grad()
                loss = total_bits(model, per_pass, delta)
                best = min(best, float(loss.detach()))
                if step % 10 == 0:
                    print(f"  {name} step {step}: {float(loss.detach()) / n_sub:.4f} bpsp, "
                          f"{time.perf_counter() - t0:.0f} s", flush=True)
                (loss / n_sub).backward()
                opt.step()
            count = sum(p.numel() for p in params)
            row[name] = {"bpsp": best / n_sub, "gain_pct": 100 * (best / base - 1), "params": count,
                         "s": round(time.perf_counter() - t0, 1)}
            print(path.name, name, row[name], flush=True)
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
