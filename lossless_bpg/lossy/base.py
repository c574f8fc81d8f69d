"""The one interface every lossy layer implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only the learned layer's features are tensors: importing torch costs ~0.9 s
    import torch


class LossyCodec(ABC):
    """A lossy image codec: ``decode(encode(img, q))`` approximates ``img``.

    ``decode`` must be deterministic: the residual layer is coded against its output, so the
    same bytes must give the same pixels on every machine and every run.
    """

    #: Name used on the command line and in the registry.
    name: str = ""
    #: Stable one-byte id stored in the container.
    backend_id: int = 0
    #: Inclusive range of the quality parameter ``q`` (lower q = finer quantiser = more bytes).
    q_min: int = 0
    q_max: int = 51
    #: Channels of the decoder features :meth:`side_features` gives (0: none).
    side_channels: int = 0

    @abstractmethod
    def encode(self, img: np.ndarray, q: int) -> bytes:
        """Encode an (H, W, 3) uint8 RGB image at quality ``q``."""

    @abstractmethod
    def decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        """Decode bytes from :meth:`encode` into an (H, W, 3) uint8 RGB image (the bytes carry
        the size). ``size``: the (height, width) the caller knows the image has; bytes that
        declare another raise ValueError, before a picture is decoded where the format allows
        (a damaged or forged file must not make the decoder allocate an image of its choosing)."""

    def side_features(self, data: bytes) -> torch.Tensor:
        """The decoder's own features of the payload ``data`` beside its pixels, for a residual
        model that reads them (``side_channels`` > 0 in its config): a (1, C, H', W') tensor of
        integers, the same on every machine, at 1/4 of the (possibly padded) image's resolution.
        A lossy layer without such features raises ValueError."""
        raise ValueError(f"the {self.name} lossy layer gives no decoder features; this residual model "
                         "needs the lossy layer it was trained with")

    def version(self) -> str:
        """Human-readable version of the underlying encoder/decoder."""
        return "unknown"

    def paired_residual_model(self) -> str | None:
        """The residual model trained for this layer's reconstructions, which its files use
        unless the user names another; None: the registry's default."""
        return None

    def payload_parts(self, data: bytes) -> dict[str, int]:
        """Bytes of the named parts of a payload (``info`` shows them); {} when it has none."""
        return {}

    def check_q(self, q: int) -> None:
        if not self.q_min <= q <= self.q_max:
            raise ValueError(f"{self.name}: quality {q} outside [{self.q_min}, {self.q_max}]")
