"""lossless_bpg: lossless and near-lossless image compression with an HEVC-intra lossy layer
plus a learned residual coder.

Python API (see :mod:`lossless_bpg.api`)::

    data = lossless_bpg.compress(image)       # NumPy (H, W, 3) / (H, W) uint8, or a PIL image
    pixels = lossless_bpg.decompress(data)    # the exact pixels, as a NumPy array

Importing the package is cheap: NumPy, Pillow and torch load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.7.0"

__all__ = [
    "Chunk",
    "__version__",
    "compress",
    "decompress",
    "image_metadata",
    "read_header",
    "read_metadata",
    "register_pillow",
]

if TYPE_CHECKING:
    from .api import compress, decompress, image_metadata, read_header, read_metadata
    from .metadata import Chunk


def register_pillow() -> None:
    """Let Pillow open (``PIL.Image.open``) and save ``.lbpg`` files; see
    :mod:`lossless_bpg.pillow_plugin`. Importing that module does the same."""
    from . import pillow_plugin

    pillow_plugin.register()


def __getattr__(name: str) -> Any:
    if name in ("compress", "decompress", "image_metadata", "read_header", "read_metadata"):
        from . import api

        return getattr(api, name)
    if name == "Chunk":
        from .metadata import Chunk

        return Chunk
    raise AttributeError(f"module 'lossless_bpg' has no attribute {name!r}")
