"""Pack training images and their HEVC reconstructions at several Q into one ``.npz``.

The training loop then never calls the encoder, and the packed file runs unchanged on a GPU
machine that has no video library.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..imageio import load_rgb


def _reconstruct(args: tuple[str, tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    from ..lossy import get_lossy_codec

    path, qs = args
    codec = get_lossy_codec("hevc")
    img = load_rgb(path)
    recs = np.stack([codec.decode(codec.encode(img, q)) for q in qs])
    return img, recs


def is_validation(name: str, fraction: float) -> bool:
    """Deterministic split by source image (all crops of one photograph go the same way)."""
    source = name.rsplit("_", 1)[0]
    digest = hashlib.sha256(source.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def prepare(
    image_dir: Path,
    out_path: Path,
    qs: tuple[int, ...],
    workers: int = 2,
    limit: int | None = None,
) -> Path:
    """Write ``out_path`` holding ``images`` (N,H,W,3), ``recs`` (N,len(qs),H,W,3), ``qs``,
    ``names``. All images must share one size (the training crops are 256x256)."""
    paths = sorted(p for p in Path(image_dir).iterdir() if p.suffix.lower() == ".png")
    if limit:
        paths = paths[:limit]
    if not paths:
        raise FileNotFoundError(f"no PNG images in {image_dir}")
    images, recs = [], []
    with ProcessPoolExecutor(workers) as pool:
        jobs = pool.map(_reconstruct, [(str(p), tuple(qs)) for p in paths], chunksize=4)
        for img, rec in tqdm(jobs, total=len(paths), desc="HEVC reconstructions"):
            images.append(img)
            recs.append(rec)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_path,
        images=np.stack(images),
        recs=np.stack(recs),
        qs=np.asarray(qs, np.int16),
        names=np.asarray([p.name for p in paths]),
    )
    return out_path
