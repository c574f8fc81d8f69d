"""The CPU threads torch runs its operations on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch runs its operations on ``n`` threads inside the block (None: as it was); the
    setting is restored after. Torch reads the setting when a thread first runs an operation:
    threads that should use it must start inside the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)
