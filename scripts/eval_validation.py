"""Validation residual bpsp (float model, teacher-forced, whole validation crops, per Q) of
shipped models and training checkpoints, as the training loop measures it:

    .venv/bin/python scripts/eval_validation.py --qs 28 36 fast out/train_v2/checkpoint.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="shipped model name, exported .pt, or training checkpoint")
    p.add_argument("--pack", type=Path, default=Path("data/train_pack8.npz"))
    p.add_argument("--qs", type=int, nargs="+", help="only these Qs (default: all in the pack)")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from lossless_bpg.residual import load_model
    from lossless_bpg.train.data import PackedData, read_pack
    from lossless_bpg.train.loop import checkpoint_model, evaluate

    val = PackedData(read_pack(args.pack, tuple(args.qs) if args.qs else None), torch.device("cpu"),
                     args.val_fraction, "val")
    print(f"{len(val)} validation crops")
    for spec in args.models:
        path = Path(spec)
        if path.suffix == ".pt" and path.exists() and "optimizer" in torch.load(path, map_location="cpu", weights_only=False):
            model, record = checkpoint_model(path)
            label = f"{spec} (step {record['step']}, {record['seconds'] / 60:.0f} min)"
        else:
            model, label = load_model(spec).model, spec
        result = evaluate(model, val)
        print(label + ": " + ", ".join(f"Q {q} {v:.4f}" for q, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
