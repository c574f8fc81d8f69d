"""Multiply-adds per pixel and integer-inference forward time of residual models, as the
decoder runs them (features once, then the 16 passes, each with its channel networks).

    .venv/bin/python scripts/model_cost.py fast lossless_bpg/configs/context16_v2.yaml --threads 2

A model is a shipped name / .pt path, or a training YAML (random weights: cost only).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn


def _model(spec: str):
    from lossless_bpg.residual import ResidualModel, load_model
    from lossless_bpg.residual.exact import ExactResidualModel
    from lossless_bpg.train.config import TrainConfig

    if spec.endswith(".yaml") and Path(spec).exists():
        torch.manual_seed(0)
        model = ResidualModel(TrainConfig.from_yaml(spec).model).eval()
        return model, ExactResidualModel(model)
    loaded = load_model(spec)
    return loaded.model, loaded.exact


def macs_per_pixel(model, height: int, width: int) -> float:
    from lossless_bpg.residual.model import pass_lattice

    total = 0

    def hook(module: nn.Module, inputs, output) -> None:
        nonlocal total
        conv = module
        assert isinstance(conv, nn.Conv2d)
        k = conv.kernel_size[0] * conv.kernel_size[1]
        total += output.numel() * conv.in_channels // conv.groups * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    recon = torch.zeros(1, 3, height, width)
    residual = torch.zeros(1, 3, height, width)
    with torch.no_grad():
        features = model.features(recon, torch.tensor([30]))
        for s in range(model.steps):
            params = model.pass_params(features, s, residual)
            target = pass_lattice(residual, s, model.steps)
            for c in range(3):
                params.channel(c, target)
    for h in handles:
        h.remove()
    return total / (height * width)


def forward_seconds(exact, height: int, width: int, repeats: int) -> float:
    from lossless_bpg.residual.exact_cdf import channel_params
    from lossless_bpg.residual.model import pass_lattice

    g = torch.Generator().manual_seed(0)
    recon = torch.randint(0, 256, (1, 3, height, width), generator=g).float()
    residual = torch.randint(-20, 21, (1, 3, height, width), generator=g).float()
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            t = time.perf_counter()
            features = exact.features(recon, 30)
            for s in range(exact.steps):
                params = exact.pass_params(features, s, residual)
                target = pass_lattice(residual, s, exact.steps)
                for c in range(3):
                    channel_params(params, c, target)
            best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--size", default="768x512", help="WIDTHxHEIGHT (Kodak's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    width, height = map(int, args.size.split("x"))
    for spec in args.models:
        model, exact = _model(spec)
        params = sum(t.numel() for t in model.parameters())
        macs = macs_per_pixel(model, height, width)
        seconds = forward_seconds(exact, height, width, args.repeats)
        print(f"{spec}: {params:,} parameters, {macs / 1e3:.1f} k MAC/px, integer forward "
              f"{args.size} {seconds:.2f} s at {args.threads} thread(s) (best of {args.repeats})")


if __name__ == "__main__":
    main()
