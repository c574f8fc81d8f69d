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


def pack_qs(path: Path) -> tuple[int, ...]:
    with np.load(path) as pack:
        return tuple(int(q) for q in pack["qs"])


def merge_packs(paths: list[Path], out_path: Path) -> Path:
    """One pack holding every Q of ``paths`` (same images, in the same order)."""
    packs = [np.load(p) for p in paths]
    try:
        names = packs[0]["names"]
        if any(not np.array_equal(p["names"], names) for p in packs[1:]):
            raise ValueError("packs hold different images; cannot merge")
        qs = np.concatenate([p["qs"] for p in packs])
        order = np.argsort(qs, kind="stable")
        recs = np.concatenate([p["recs"] for p in packs], axis=1)[:, order]
        tmp = out_path.with_name(out_path.stem + ".partial.npz")
        np.savez(tmp, images=packs[0]["images"], recs=recs, qs=qs[order], names=names)
    finally:
        for p in packs:
            p.close()
    tmp.replace(out_path)
    return out_path


def ensure_pack(image_dir: Path, pack_path: Path, qs: tuple[int, ...], workers: int = 2,
                limit: int | None = None) -> Path:
    """Make ``pack_path`` hold reconstructions at every Q in ``qs``, computing only those
    it lacks."""
    if not pack_path.exists():
        return prepare(image_dir, pack_path, qs, workers, limit)
    missing = tuple(q for q in qs if q not in pack_qs(pack_path))
    if missing:
        extra = pack_path.with_name(pack_path.stem + ".extra.npz")
        prepare(image_dir, extra, missing, workers, limit)
        merge_packs([pack_path, extra], pack_path)
        extra.unlink()
    return pack_path
