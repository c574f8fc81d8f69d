"""Content ids of shipped networks: what a file records to name the weights it needs."""

from __future__ import annotations

import hashlib

import torch
import yaml


def weights_id(procedure: str, config: dict, state_dict: dict[str, torch.Tensor], length: int = 8) -> bytes:
    """First ``length`` bytes of the SHA-256 of the decoding procedure's name, the config and
    every parameter's name, dtype, shape and bytes (so any change to one of them is a new id)."""
    h = hashlib.sha256(procedure.encode())
    h.update(yaml.safe_dump(config, sort_keys=True).encode())
    for name, tensor in sorted(state_dict.items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.digest()[:length]
