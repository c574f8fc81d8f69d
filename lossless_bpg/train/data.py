"""Training batches from a packed file.

Two layouts share one loader:
- the full pack from :mod:`lossless_bpg.train.prepare`: raw uint8 ``images`` (N,H,W,3) and
  ``recs`` (N,R,H,W,3) at the shared ``qs`` (R,);
- a portable pack from :mod:`lossless_bpg.train.portable` (small enough to send to a GPU
  machine): lossless WebP blobs, one reconstruction per image at a per-image Q.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .prepare import is_validation


def read_pack(path: str | Path, qs: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """``images`` (N,H,W,3), ``recs`` (N,R,H,W,3), ``qs`` (N,R) and ``names`` (N,), keeping only
    reconstructions at ``qs`` when given."""
    with np.load(path) as pack:
        if "blob" in pack:
            from .portable import unpack_portable

            out = unpack_portable(pack)
            if qs is not None:
                keep = np.isin(out["qs"][:, 0], qs)
                out = {k: v[keep] for k, v in out.items()}
            return out
        pack_qs = pack["qs"].astype(np.int64)
        sel = np.arange(len(pack_qs)) if qs is None else np.flatnonzero(np.isin(pack_qs, qs))
        if len(sel) == 0:
            raise ValueError(f"{path} holds none of the Qs {qs}")
        return {
            "images": pack["images"],
            "recs": pack["recs"][:, sel],
            "qs": np.broadcast_to(pack_qs[sel], (len(pack["names"]), len(sel))).copy(),
            "names": pack["names"],
        }


class PackedData:
    """Images and their reconstructions, held as uint8 tensors on ``device``."""

    def __init__(
        self,
        pack: dict[str, np.ndarray],
        device: torch.device,
        val_fraction: float,
        split: str,
        source_weights: dict[str, float] | None = None,
    ):
        names = [str(n) for n in pack["names"]]
        keep = np.array([is_validation(n, val_fraction) == (split == "val") for n in names])
        if not keep.any():
            raise ValueError(f"the {split} split is empty")
        weights = source_weights or {}
        self.sampling_weights = torch.tensor(
            [float(weights.get(n.split("_", 1)[0], 1.0)) for n, k in zip(names, keep) if k],
            dtype=torch.float64,
        )
        self.images = torch.from_numpy(pack["images"][keep]).permute(0, 3, 1, 2).contiguous().to(device)
        self.recs = torch.from_numpy(pack["recs"][keep]).permute(0, 1, 4, 2, 3).contiguous().to(device)
        self.qs = torch.from_numpy(pack["qs"][keep]).to(device)  # (N, R)
        self.device = device

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, size: int, crop: int, gen: torch.Generator):
        """Random crops (same window for image and reconstruction), random Q and flips.
        Returns float image, float reconstruction (N, 3, crop, crop) and q (N,)."""
        _, r, _, h, w = self.recs.shape
        idx = torch.multinomial(self.sampling_weights, size, replacement=True, generator=gen)
        ri = torch.randint(0, r, (size,), generator=gen)
        ys = torch.randint(0, h - crop + 1, (size,), generator=gen) // 4 * 4
        xs = torch.randint(0, w - crop + 1, (size,), generator=gen) // 4 * 4
        flip = torch.rand(size, generator=gen) < 0.5
        imgs, recs = [], []
        for i, j, y, x, f in zip(idx.tolist(), ri.tolist(), ys.tolist(), xs.tolist(), flip.tolist()):
            a = self.images[i, :, y : y + crop, x : x + crop]
            b = self.recs[i, j, :, y : y + crop, x : x + crop]
            if f:
                a, b = a.flip(-1), b.flip(-1)
            imgs.append(a)
            recs.append(b)
        q = self.qs[idx.to(self.device), ri.to(self.device)]
        return torch.stack(imgs).float(), torch.stack(recs).float(), q

    def full(self, sl: slice, j: int):
        """Whole images ``sl`` with their ``j``-th reconstruction, for validation."""
        return self.images[sl].float(), self.recs[sl, j].float(), self.qs[sl, j]
