"""A portable training pack: a subset of the full pack with one reconstruction per image,
stored as lossless WebP inside one ``.npz`` (no pickles), small enough to carry to a GPU
machine that has neither x265 nor the training images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .data import read_pack
from .prepare import is_validation


def webp_lossless(img: np.ndarray, method: int = 4) -> bytes:
    """(H, W, 3) uint8 as lossless WebP bytes; ``method`` 0-6 trades time for size."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="WEBP", lossless=True, quality=100, method=method)
    return buf.getvalue()


def unwebp(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def make_portable(full_pack: Path, out: Path, max_mb: float, val_fraction: float, seed: int = 0,
                  qs: tuple[int, ...] | None = None, max_val: int = 24) -> dict:
    """Take images in a seeded random order, each with one Q (cycling through the pack's Qs),
    until the file would exceed ``max_mb``. Up to ``max_val`` images of the validation split
    come first (validation images never enter the training split)."""
    pack = read_pack(full_pack, qs)
    names = [str(n) for n in pack["names"]]
    n_q = pack["qs"].shape[1]
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(names)))
    val = [i for i in order if is_validation(names[i], val_fraction)][:max_val]
    order = val + [i for i in order if not is_validation(names[i], val_fraction)]
    blobs: list[np.ndarray] = []
    offsets, picked_qs, kept, used = [0], [], [], 0
    for k, i in enumerate(order):
        j = k % n_q
        parts = [webp_lossless(pack["images"][i]), webp_lossless(pack["recs"][i, j])]
        size = sum(map(len, parts))
        if used + size > max_mb * 1e6:
            break
        for p in parts:
            blobs.append(np.frombuffer(p, np.uint8))
            offsets.append(offsets[-1] + len(p))
        used += size
        picked_qs.append(pack["qs"][i, j])
        kept.append(names[i])
    np.savez(out, blob=np.concatenate(blobs), offsets=np.asarray(offsets, np.int64),
             qs=np.asarray(picked_qs, np.int64).reshape(-1, 1), names=np.asarray(kept))
    return {"images": len(kept), "bytes": used}


def unpack_portable(pack) -> dict[str, np.ndarray]:
    blob, offsets = pack["blob"], pack["offsets"]
    decoded = [unwebp(blob[offsets[i] : offsets[i + 1]].tobytes()) for i in range(len(offsets) - 1)]
    return {
        "images": np.stack(decoded[0::2]),
        "recs": np.stack(decoded[1::2])[:, None],
        "qs": pack["qs"],
        "names": pack["names"],
    }
