"""``python -m lossless_bpg train``: pack data (once), train, export weights with metadata."""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
from pathlib import Path

DEFAULT_DATA = Path("../shared/datasets/train")
DEFAULT_PACK = Path("data/train_pack.npz")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "context16.yaml"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="folder of training PNGs (never Kodak); for lic also a GPU bundle's originals.npz")
    p.add_argument("--pack", type=Path, default=DEFAULT_PACK, help="packed data file (made from --data if missing)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                   help="training YAML (one with a `lic:` section trains the lic lossy layer and its residual model)")
    p.add_argument("--checkpoint", type=Path, default=Path("data/checkpoint.pt"), help="resumable checkpoint")
    p.add_argument("--steps", type=int, help="override the config's step count")
    p.add_argument("--minutes", type=float,
                   help="stop (and checkpoint) after this much training time in all, a resumed "
                        "checkpoint's included; the learning rate's cosine decay ends there")
    p.add_argument("--restart", action="store_true",
                   help="resume the checkpoint with a new learning-rate cycle (warm-up, then cosine "
                        "from the config's peak) over the minutes --minutes adds to the checkpoint's, "
                        "e.g. a GPU window on a run trained on the CPU")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--limit", type=int, help="use only the first N training images (smoke tests)")
    p.add_argument("--workers", type=int, default=2, help="processes for packing HEVC reconstructions")
    p.add_argument("--prepare-only", action="store_true", help="only build the packed data file")
    p.add_argument("--make-portable", type=Path, metavar="OUT",
                   help="write a small WebP subset of --pack to OUT (for a GPU machine) and stop")
    p.add_argument("--portable-mb", type=float, default=55.0, help="size cap for --make-portable")
    p.add_argument("--init-from", type=Path, metavar="PT",
                   help="start from the parameters of this weights file whose names and shapes match")
    p.add_argument("--validate-first", action="store_true",
                   help="measure the starting model on the validation split before training")
    p.add_argument("--export", metavar="NAME", help="write weights as NAME.pt/NAME.yaml")
    p.add_argument("--export-dir", type=Path, help="folder for --export (default: the package's weights/)")
    p.add_argument("--register", type=Path, metavar="PT",
                   help="add the exported model PT (with its YAML beside it) to the registry in "
                        "--export-dir (default: the package's weights/) as <model id>.pt/.yaml, "
                        "named by --export, and stop (aliases such as default are not changed)")
    p.add_argument("--search-model", metavar="NAME",
                   help="with --register: the (cheaper) registered model whose estimates pick Q for it "
                        "below the highest effort")
    p.add_argument("--calibrate", metavar="NAME",
                   help="measure model NAME (in --export-dir) on the validation split, record its "
                        "starting Q, and stop")


def run_train(args: argparse.Namespace) -> int:
    import numpy as np

    from .config import TrainConfig
    from .lic import is_lic_config
    from .prepare import ensure_pack

    if "kodak" in str(args.data.resolve()).lower():
        print("error: refusing to train on the Kodak test set", file=sys.stderr)
        return 2
    if is_lic_config(args.config):
        return _run_train_lic(args)
    cfg = TrainConfig.from_yaml(args.config)
    if args.steps:
        cfg = dataclasses.replace(cfg, steps=args.steps)
    if args.search_model and not args.register:
        print("error: --search-model is recorded by --register (it names the model to register's search model)",
              file=sys.stderr)
        return 2
    if args.register:
        from ..residual.weights import WEIGHTS_DIR, register

        if not args.export:
            print("error: --register needs --export NAME (the registered model's name)", file=sys.stderr)
            return 2
        card = register(args.register, args.export, args.export_dir or WEIGHTS_DIR, search_model=args.search_model)
        print(f"registered {card.name} ({card.model_id}) as {card.weights_path}")
        return 0
    if args.calibrate:
        from ..residual.weights import WEIGHTS_DIR
        from .calibrate import calibrate

        coding = calibrate(args.export_dir or WEIGHTS_DIR, args.calibrate, args.data, cfg.val_fraction, args.limit)
        for q, row in coding["validation"].items():
            print(f"Q {q:2d}: lossy {row['lossy_bpsp']:.4f} + residual {row['residual_bpsp']:.4f} "
                  f"= {row['total_bpsp']:.4f} bpsp")
        print(f"q_start = {coding['q_start']}")
        return 0
    portable = False
    if args.pack.exists():
        with np.load(args.pack) as existing:
            portable = "blob" in existing.files
    if not portable:
        if not args.data.is_dir() and not args.pack.exists():
            print(f"error: training data folder {args.data} not found", file=sys.stderr)
            return 1
        ensure_pack(args.data, args.pack, cfg.qs, workers=args.workers, limit=args.limit)
    if args.prepare_only:
        return 0
    if args.make_portable:
        from .portable import make_portable

        info = make_portable(args.pack, args.make_portable, args.portable_mb, cfg.val_fraction, cfg.seed, cfg.qs)
        print(f"wrote {args.make_portable}: {info['images']} images, {info['bytes'] / 1e6:.1f} MB")
        return 0

    import torch

    from ..residual.weights import WEIGHTS_DIR, save_model
    from .loop import train

    result = train(cfg, args.pack, args.checkpoint, device=args.device, max_minutes=args.minutes,
                   init_from=args.init_from, validate_first=args.validate_first, restart=args.restart)
    if args.export:
        meta = {
            "training": {
                "data": str(args.data),
                "pack": str(args.pack),
                "command": "python -m lossless_bpg " + " ".join(sys.argv[1:]),
                "config": cfg.to_dict(),
                "init_from": str(args.init_from) if args.init_from else None,
                "steps": result.steps,
                "seconds": round(result.seconds, 1),
                "device": result.device if result.device == "cpu" else torch.cuda.get_device_name(0),
                "torch": str(torch.__version__),
                "python": platform.python_version(),
                "validation_residual_bpsp_per_q": {int(k): round(v, 4) for k, v in result.val_bpsp.items()},
            }
        }
        path = save_model(result.model, args.export_dir or WEIGHTS_DIR, args.export, meta)
        print(f"exported {path}")
    return 0


def _run_train_lic(args: argparse.Namespace) -> int:
    """Train the learned lossy layer and its residual model (a config with a ``lic`` section);
    ``--export NAME`` writes both into ``--export-dir`` (see :func:`..lossy.lic.weights.export`)."""
    from .lic import LicTrainConfig, train_lic

    cfg = LicTrainConfig.from_yaml(args.config)
    if args.steps:
        cfg = dataclasses.replace(cfg, steps=args.steps)
    lic, residual_model, record = train_lic(cfg, args.data, args.checkpoint, args.minutes, args.limit, args.device,
                                            restart=args.restart)
    if args.export:
        from ..lossy.lic.weights import export

        record["command"] = "python -m lossless_bpg " + " ".join(sys.argv[1:])
        record["data"] = str(args.data)
        paths = export(lic, residual_model, cfg, record, args.export, args.export_dir)
        print("exported " + ", ".join(str(p) for p in paths))
    return 0
