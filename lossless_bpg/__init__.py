"""lossless_bpg: lossless and near-lossless image compression with an HEVC-intra lossy layer
plus a learned residual coder.

Python API (see :mod:`lossless_bpg.api`)::

    data = lossless_bpg.compress(image)       # NumPy (H, W, 3) / (H, W) uint8, or a PIL image
    pixels = lossless_bpg.decompress(data)    # the exact pixels, as a NumPy array

Importing the package is cheap: NumPy, Pillow and torch load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.6.0"

__all__ = ["__version__", "compress", "decompress", "read_header", "register_pillow"]

if TYPE_CHECKING:
    from .api import compress, decompress, read_header


def register_pillow() -> None:
    """Let Pillow open (``PIL.Image.open``) and save ``.lbpg`` files; see
    :mod:`lossless_bpg.pillow_plugin`. Importing that module does the same."""
    from . import pillow_plugin

    pillow_plugin.register()


def __getattr__(name: str) -> Any:
    if name in ("compress", "decompress", "read_header"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'lossless_bpg' has no attribute {name!r}")
