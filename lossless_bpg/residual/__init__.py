"""Residual layer: network, mixture -> integer CDF, arithmetic coder, shipped weights."""

from .config import ResidualModelConfig
from .layer import (
    ResidualEstimate,
    ResidualStreams,
    decode_residual,
    encode_residual,
    estimate_bits,
    estimate_residual,
)
from .model import ResidualModel
from .weights import LoadedModel, find_model_by_id, load_model, wrap

__all__ = [
    "LoadedModel",
    "ResidualEstimate",
    "ResidualModel",
    "ResidualModelConfig",
    "ResidualStreams",
    "decode_residual",
    "encode_residual",
    "estimate_bits",
    "estimate_residual",
    "find_model_by_id",
    "load_model",
    "wrap",
]
