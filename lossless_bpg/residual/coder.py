"""Thin, checked wrapper around torchac's arithmetic coder (16-bit integer CDFs), whose native
code :mod:`.native` builds ahead of time and loads."""

from __future__ import annotations

import torch

from . import native

#: torchac's arithmetic coder works with 16-bit CDFs.
CDF_PRECISION = 16
CDF_TOTAL = 1 << CDF_PRECISION


def encode(cdf: torch.Tensor, symbols: torch.Tensor) -> bytes:
    """Code ``symbols`` (M,) int in [0, L) with ``cdf`` (M, L+1) from
    :mod:`lossless_bpg.residual.exact_cdf`: row i is 0 = cdf[i, 0] < ... < cdf[i, L - 1] <
    2**16 as uint16 bit patterns; the last column stands for 2**16 and is never read."""
    if cdf.dtype != torch.int16 or cdf.dim() != 2 or cdf.shape[0] != symbols.shape[0]:
        raise ValueError("cdf must be int16 (M, L+1) matching symbols (M,)")
    levels = cdf.shape[1] - 1
    if symbols.numel() and (int(symbols.min()) < 0 or int(symbols.max()) >= levels):
        raise ValueError(f"symbols outside [0, {levels})")
    return native.load().encode_cdf(cdf, symbols.to(torch.int16))


def decode(cdf: torch.Tensor, data: bytes) -> torch.Tensor:
    """Inverse of :func:`encode`; returns (M,) int16 symbols."""
    if cdf.dtype != torch.int16 or cdf.dim() != 2:
        raise ValueError("cdf must be int16 (M, L+1)")
    return native.load().decode_cdf(cdf, data)


def warm_up() -> None:
    """Load (building if needed) the native coder now rather than during a user's first file,
    and check that it codes."""
    cdf = torch.tensor([[0, 30000, 0]], dtype=torch.int16)
    sym = torch.tensor([1], dtype=torch.int16)
    assert decode(cdf, encode(cdf, sym)).tolist() == [1]


def as_uint16_in_int16(cdf: torch.Tensor) -> torch.Tensor:
    """Integer CDF values in [0, 2**16) as the int16 bit patterns torchac reads as uint16."""
    return torch.where(cdf >= 1 << 15, cdf - (1 << 16), cdf).to(torch.int16)


def code_length_bits(cdf: torch.Tensor, symbols: torch.Tensor) -> float:
    """Ideal code length, in bits, of ``symbols`` (M,) under ``cdf`` (M, L+1)."""
    c = cdf.to(torch.int32) & 0xFFFF
    levels = c.shape[1] - 1
    idx = symbols.long().unsqueeze(1)
    low = c.gather(1, idx).squeeze(1)
    high = torch.where(
        idx.squeeze(1) == levels - 1, torch.full_like(low, CDF_TOTAL), c.gather(1, idx + 1).squeeze(1)
    )
    return float(-(torch.log2((high - low).double() / CDF_TOTAL)).sum())
