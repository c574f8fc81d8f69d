"""Typed configuration of the learned lossy layer, read from YAML; travels with its weights."""

from __future__ import annotations

from dataclasses import dataclass

from ...yaml_config import dataclass_options, plain


@dataclass(frozen=True)
class LicConfig:
    """Shape of the learned transform codec (see :mod:`.model`)."""

    #: Width of the analysis and synthesis transforms.
    channels: int = 64
    #: Latent channels (at 1/16 resolution).
    latent_channels: int = 64
    #: Hyper-latent channels (at 1/64 resolution).
    hyper_channels: int = 32
    #: Quality range, as HEVC's QP: q multiplies the learned quantiser steps by
    #: 2**((q - q_min) / q_per_octave) (lower q = finer = more bytes). The encoder searches q
    #: per image, and the residual model is conditioned on q as on HEVC's QP.
    q_min: int = 12
    q_max: int = 40
    q_per_octave: int = 8
    #: Coded latents are clamped to [-latent_bound, latent_bound] (hyper-latents to
    #: [-hyper_bound, hyper_bound]); the encoder clamps, so every value has a symbol.
    latent_bound: int = 63
    hyper_bound: int = 15

    @classmethod
    def from_dict(cls, data: dict) -> LicConfig:
        return cls(**dataclass_options(cls, data, "lic"))

    def to_dict(self) -> dict:
        return plain(self)
