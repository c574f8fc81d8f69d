"""The "+ CNN prior" row of the sequential coder's ablation (issue 29): the parallel network's
per-subpixel prediction from x̃ alone, fed to the sequential coder in place of x̃.

For every pass of the network the heads run once with no earlier residuals known (zeros: what
a raster-order decoder could compute before decoding; in distribution for pass 0 only), the
mean of each subpixel's heaviest mixture component is taken, and x̃ + that mean (rounded,
limited to 0..255) replaces x̃ as the sequential coder's reconstruction input (its NLMS,
least-squares and cascade inputs and its context; with ``recon_blend``, predictors too).

    python scripts/experiments/seq_cnn_prior.py ../shared/datasets/kodak --qs 51,40

Prints, per Q: the lossy layer, seq2 with x̃, seq2 with the prior, and seq2 + blend with it.
The network's own runtime is printed too (float, this process's threads).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from lossless_bpg.imageio import load_rgb
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import load_model
from lossless_bpg.residual.model import BLOCK, PASS_OFFSETS, pad_to_multiple
from lossless_bpg.sequential import by_name
from lossless_bpg.sequential.coder import encode


@torch.no_grad()
def prior(model, recon: np.ndarray, q: int) -> np.ndarray:
    """x̃ + the network's mean residual per subpixel, from x̃ alone."""
    net = model.model
    h, w, _ = recon.shape
    x = pad_to_multiple(torch.from_numpy(recon).permute(2, 0, 1)[None].float(), 4)
    features = net.features(x, torch.tensor([q]))
    zeros = torch.zeros(1, 3, x.shape[-2], x.shape[-1])
    mean = torch.zeros(1, 3, x.shape[-2], x.shape[-1])
    b = BLOCK[net.steps]
    for step in range(net.steps):
        params = net.pass_params(features, step, zeros)
        best = params.logits.argmax(2, keepdim=True)  # (N, 3, 1, h', w')
        m = params.means.gather(2, best)[:, :, 0]
        dy, dx = PASS_OFFSETS[net.steps][step]
        target = mean[..., dy::b, dx::b]
        target.copy_(m[..., : target.shape[-2], : target.shape[-1]])
    shifted = recon.astype(np.float32) + mean[0, :, :h, :w].permute(1, 2, 0).numpy()
    return np.clip(np.rint(shifted), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--qs", default="51,40")
    ap.add_argument("--model", default="gen2")
    args = ap.parse_args()
    images = [load_rgb(p) for p in sorted(args.folder.glob("*.png"))]
    subpixels = sum(i.size for i in images)
    hevc = get_lossy_codec("hevc")
    network = load_model(args.model)
    seq2 = by_name("seq2")
    assert seq2 is not None
    blend = seq2.variant("seq2+blend", features=(*seq2.features, "recon_blend"))
    print("| Q | lossy bpsp | seq2 with x̃ | seq2 with the CNN prior | seq2 + blend with the prior | network s/image |")
    print("|---:|---:|---:|---:|---:|---:|")
    for q in (int(v) for v in args.qs.split(",")):
        lossy = with_x = with_prior = with_blend = 0
        seconds = []
        for img in images:
            payload = hevc.encode(img, q)
            recon = hevc.decode(payload, size=img.shape[:2])
            t = time.perf_counter()
            p = prior(network, recon, q)
            seconds.append(time.perf_counter() - t)
            lossy += len(payload)
            with_x += len(encode(img, recon, seq2))
            with_prior += len(encode(img, p, seq2))
            with_blend += len(encode(img, p, blend))
        f = 8 / subpixels
        print(f"| {q} | {lossy * f:.4f} | {(lossy + with_x) * f:.4f} | {(lossy + with_prior) * f:.4f} | "
              f"{(lossy + with_blend) * f:.4f} | {np.median(seconds):.2f} |", flush=True)


if __name__ == "__main__":
    main()
