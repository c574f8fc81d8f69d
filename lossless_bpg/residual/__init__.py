"""Residual layer: network, mixture -> integer CDF, arithmetic coder, shipped weights."""

from .config import ResidualModelConfig
from .layer import AdaptationPlan, ResidualStreams, decode_residual, encode_residual, estimate_bits, plan_adaptation
from .model import ResidualModel
from .weights import LoadedModel, find_model_by_id, load_model, wrap

__all__ = [
    "ResidualModelConfig",
    "ResidualModel",
    "ResidualStreams",
    "LoadedModel",
    "encode_residual",
    "decode_residual",
    "estimate_bits",
    "AdaptationPlan",
    "plan_adaptation",
    "load_model",
    "find_model_by_id",
    "wrap",
]
