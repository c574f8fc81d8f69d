"""Training data for a short GPU window: originals shipped small, reconstructions made there.

A GPU machine here receives about 60 MB per run and has neither PyAV nor the training images,
but it has 16 CPU cores. So instead of shipping reconstructions (one Q per image, as
:mod:`.portable` does), ship the *originals* as lossless WebP plus Debian's ``x265``
command-line encoder (.deb files), and make the HEVC reconstruction of every image at every Q
of the training config there, in parallel, with ``x265 --recon``:

    # here, once (the bundle goes to data/gpu_bundle/, which git ignores):
    python -m lossless_bpg.train.gpu_bundle make --data ../shared/datasets/train --out data/gpu_bundle
    # there (scripts/train_gpu_v2.sh does this):
    python3 -m lossless_bpg.train.gpu_bundle reconstruct data/gpu_bundle --x265 /tmp/x265/usr/bin/x265 \\
        --qs 12 16 20 24 28 32 36 40 --workers 16 --out /tmp/pack.npz

The pack written there has the layout of :func:`.prepare.prepare` (``images``, ``recs`` at
every Q, ``qs``, ``names``), so ``train --pack`` reads it as the full pack. The encoder is
x265 with the codec's settings (4:4:4 8-bit after the codec's own integer RGB -> YCbCr,
preset slow, tune ssim, constant QP, intra only). Debian bookworm's x265 3.5 (x265,
libx265-199, libnuma1 .deb files) gave reconstructions bit-identical to the codec's own
(PyAV's bundled libx265) on the crops compared (two sources, Q 20, 32, 40).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..lossy.color import rgb_to_ycbcr, ycbcr_to_rgb
from .portable import unwebp, webp_lossless
from .prepare import is_validation

ORIGINALS = "originals.npz"


def make_bundle(data_dir: Path, out_dir: Path, max_mb: float = 50.0, val_fraction: float = 0.05,
                seed: int = 0) -> dict:
    """Write ``out_dir/originals.npz``: the validation crops first (all of them), then the
    training crops in a seeded random order, as lossless WebP, until ``max_mb``."""
    from ..imageio import load_rgb

    paths = sorted(p for p in Path(data_dir).iterdir() if p.suffix.lower() == ".png")
    if any("kodim" in p.name.lower() for p in paths) or "kodak" in str(Path(data_dir).resolve()).lower():
        raise ValueError("refusing to bundle the Kodak test set")
    rng = np.random.default_rng(seed)
    order = [paths[i] for i in rng.permutation(len(paths))]
    order = [p for p in order if is_validation(p.name, val_fraction)] + \
            [p for p in order if not is_validation(p.name, val_fraction)]
    blobs, offsets, names, used = [], [0], [], 0
    for path in order:
        blob = webp_lossless(load_rgb(path), method=6)
        if used + len(blob) > max_mb * 1e6:
            break
        blobs.append(np.frombuffer(blob, np.uint8))
        offsets.append(offsets[-1] + len(blob))
        names.append(path.name)
        used += len(blob)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / ORIGINALS, blob=np.concatenate(blobs), offsets=np.asarray(offsets, np.int64),
             names=np.asarray(names))
    val = sum(is_validation(n, val_fraction) for n in names)
    return {"images": len(names), "validation": val, "bytes": used}


def x265_reconstruction(x265: str, img: np.ndarray, q: int) -> np.ndarray:
    """HEVC intra reconstruction of ``img`` (H, W, 3 uint8; sides multiples of 8, >= 64) at QP
    ``q`` by the x265 command-line encoder, with the codec's settings."""
    h, w, _ = img.shape
    planes = rgb_to_ycbcr(img)
    with tempfile.TemporaryDirectory() as tmp:
        recon = Path(tmp) / "recon.yuv"
        cmd = [x265, "--input", "-", "--input-res", f"{w}x{h}", "--input-csp", "i444", "--input-depth", "8",
               "--fps", "25", "--frames", "1", "--preset", "slow", "--tune", "ssim", "--qp", str(q),
               "--keyint", "1", "--no-info", "--log-level", "error", "--recon", str(recon),
               "--recon-depth", "8", "--output", os.devnull]
        subprocess.run(cmd, input=planes.tobytes(), check=True, capture_output=True)
        out = np.frombuffer(recon.read_bytes(), np.uint8)
    if out.size != 3 * h * w:
        raise RuntimeError(f"x265 wrote {out.size} reconstruction bytes, expected {3 * h * w}")
    return ycbcr_to_rgb(out.reshape(3, h, w))


def _reconstruct_one(args: tuple[str, bytes, tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    x265, blob, qs = args
    img = unwebp(blob)
    return img, np.stack([x265_reconstruction(x265, img, q) for q in qs])


def reconstruct(bundle_dir: Path, x265: str, qs: tuple[int, ...], out: Path, workers: int,
                limit: int | None = None) -> dict:
    """Decode the bundle's originals and write a full training pack with every Q of ``qs``."""
    with np.load(bundle_dir / ORIGINALS) as bundle:
        blob, offsets, names = bundle["blob"], bundle["offsets"], bundle["names"]
    count = len(names) if limit is None else min(limit, len(names))
    jobs = [(x265, blob[offsets[i]:offsets[i + 1]].tobytes(), tuple(qs)) for i in range(count)]
    images, recs = [], []
    with ProcessPoolExecutor(workers) as pool:
        for img, rec in pool.map(_reconstruct_one, jobs, chunksize=4):
            images.append(img)
            recs.append(rec)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, images=np.stack(images), recs=np.stack(recs), qs=np.asarray(qs, np.int16),
             names=names[:count])
    return {"images": count, "qs": list(qs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lossless_bpg.train.gpu_bundle", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make", help="bundle training originals as lossless WebP")
    mk.add_argument("--data", type=Path, default=Path("../shared/datasets/train"))
    mk.add_argument("--out", type=Path, default=Path("data/gpu_bundle"))
    mk.add_argument("--max-mb", type=float, default=50.0)
    mk.add_argument("--val-fraction", type=float, default=0.05)
    rc = sub.add_parser("reconstruct", help="HEVC reconstructions at every Q into a training pack")
    rc.add_argument("bundle", type=Path)
    rc.add_argument("--x265", default="x265")
    rc.add_argument("--qs", type=int, nargs="+", required=True)
    rc.add_argument("--out", type=Path, required=True)
    rc.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    rc.add_argument("--limit", type=int)
    args = p.parse_args(argv)
    if args.command == "make":
        info = make_bundle(args.data, args.out, args.max_mb, args.val_fraction)
    else:
        info = reconstruct(args.bundle, args.x265, tuple(args.qs), args.out, args.workers, args.limit)
    print(info, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
