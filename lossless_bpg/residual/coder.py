"""Thin, checked wrapper around torchac's arithmetic coder (16-bit integer CDFs)."""

from __future__ import annotations

import os
import sys

import torch

from ..errors import BackendUnavailableError


_TORCHAC = None


def _torchac():
    """Import torchac, which compiles its C++ backend on first import (~45 s once, cached
    afterwards) and prints ninja's chatter to stdout; keep that out of our output."""
    global _TORCHAC
    if _TORCHAC is None:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                try:
                    import torchac
                except Exception as exc:
                    raise BackendUnavailableError(
                        f"the arithmetic coder (torchac) could not be built or loaded: {exc}. "
                        f"It needs a C++ compiler (g++) and the 'ninja' package."
                    ) from exc
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _TORCHAC = torchac
    return _TORCHAC


def encode(cdf: torch.Tensor, symbols: torch.Tensor) -> bytes:
    """Code ``symbols`` (M,) int in [0, L) with ``cdf`` (M, L+1) from
    :func:`lossless_bpg.residual.mixture.integer_cdf`."""
    if cdf.dtype != torch.int16 or cdf.dim() != 2 or cdf.shape[0] != symbols.shape[0]:
        raise ValueError("cdf must be int16 (M, L+1) matching symbols (M,)")
    levels = cdf.shape[1] - 1
    if symbols.numel() and (int(symbols.min()) < 0 or int(symbols.max()) >= levels):
        raise ValueError(f"symbols outside [0, {levels})")
    return _torchac().encode_int16_normalized_cdf(cdf, symbols.to(torch.int16))


def decode(cdf: torch.Tensor, data: bytes) -> torch.Tensor:
    """Inverse of :func:`encode`; returns (M,) int16 symbols."""
    if cdf.dtype != torch.int16 or cdf.dim() != 2:
        raise ValueError("cdf must be int16 (M, L+1)")
    return _torchac().decode_int16_normalized_cdf(cdf, data)


def warm_up() -> None:
    """Build/load the compiled backend now rather than during a user's first file."""
    cdf = torch.tensor([[0, 30000, 0]], dtype=torch.int16)
    sym = torch.tensor([1], dtype=torch.int16)
    assert decode(cdf, encode(cdf, sym)).tolist() == [1]
