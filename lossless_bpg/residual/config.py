"""Typed configuration of the residual model, read from a small YAML file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from ..yaml_config import dataclass_options


@dataclass(frozen=True)
class ResidualModelConfig:
    """Shape of the residual network; travels with the weights it describes."""

    #: Width of the half-resolution (2x2 pixel-unshuffled) branch.
    half_channels: int = 32
    #: Width of the quarter-resolution trunk.
    quarter_channels: int = 64
    #: Residual blocks in the quarter-resolution trunk.
    quarter_blocks: int = 3
    #: Residual blocks at half resolution after the trunk is merged back.
    half_blocks: int = 1
    #: Logistic components per subpixel.
    mixtures: int = 5
    #: 1: every residual conditioned on x~ only (RC). 4 (16): the pixels of each 2x2 (4x4) block
    #: are coded in 4 (16) passes, coarse to fine, each pass also conditioned on the residuals
    #: of the earlier passes (spatial context at the cost of a few cheap heads, not one step
    #: per pixel).
    context_steps: int = 1
    #: Width of the context convolution and of the per-pass heads (context_steps 4 or 16).
    context_channels: int = 32
    head_channels: int = 64
    #: Generation 2 (16 passes only; 0 = absent, as in generation 1): width of the context
    #: network shared by all passes (3x3 convolutions over the x~ features and every residual
    #: decoded so far at 1/4 resolution, a learned embedding of the pass, residual blocks);
    #: its output feeds each pass's head.
    context_net_channels: int = 0
    #: Residual blocks of that network.
    context_net_blocks: int = 1
    #: Generation 2: width of the channel networks (0 = absent): G's and B's mixtures are
    #: corrected by a small network over the pass head's hidden features and the R (and G)
    #: residuals of the same pixel, beyond the linear coupling of the means.
    channel_net_channels: int = 0
    #: Channels of the lossy layer's own decoder features the model reads (0 = none: x~ only).
    #: The learned lossy layer (``lic``) gives its synthesis's activations at 1/4 resolution
    #: (as DLPR conditions its residual coder on them); they enter the trunk through a 1x1
    #: convolution added to its input.
    side_channels: int = 0

    def __post_init__(self) -> None:
        if self.context_steps not in (1, 4, 16):
            raise ValueError("context_steps must be 1, 4 or 16")
        if (self.context_net_channels or self.channel_net_channels) and self.context_steps != 16:
            raise ValueError("the context and channel networks need context_steps 16")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ResidualModelConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.from_dict(data.get("model", data))

    @classmethod
    def from_dict(cls, data: dict) -> ResidualModelConfig:
        return cls(**dataclass_options(cls, data, "residual model"))

    def to_dict(self) -> dict:
        """The options, leaving out the later ones (generation 2's, side features) when they have
        their defaults, so that an earlier config (and the model id hashed from it) reads as it
        always did."""
        d = asdict(self)
        for name in (*GENERATION_2_FIELDS, "side_channels"):
            if d[name] == self.__dataclass_fields__[name].default:
                del d[name]
        return d

    @property
    def generation(self) -> int:
        return 2 if self.context_net_channels or self.channel_net_channels else 1


GENERATION_2_FIELDS = ("context_net_channels", "context_net_blocks", "channel_net_channels")
