"""Training configuration (YAML -> dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..residual.config import ResidualModelConfig
from ..yaml_config import dataclass_options, plain


@dataclass(frozen=True)
class TrainConfig:
    model: ResidualModelConfig = field(default_factory=ResidualModelConfig)
    #: Lossy-layer Q values the reconstructions are packed at.
    qs: tuple[int, ...] = (12, 16, 20, 24, 28, 32)
    crop: int = 128
    batch_size: int = 16
    lr: float = 1e-3
    lr_min: float = 1e-5
    weight_decay: float = 0.0
    steps: int = 20000
    #: Fraction of source photographs held out for validation (split by source, not crop).
    val_fraction: float = 0.05
    val_every: int = 1000
    checkpoint_every: int = 1000
    seed: int = 0
    #: Relative sampling weight of training crops by source (the name before the first "_");
    #: sources not listed weigh 1. Lets the few never-JPEG photographs count for more.
    source_weights: dict[str, float] = field(default_factory=dict)
    #: Generation 2: learning rate of the parameters grown from generation 1 (the shipped
    #: model's), as a fraction of ``lr``; the new context and channel networks get all of it.
    pretrained_lr_scale: float = 1.0
    #: Decay of the exponential moving average of the weights that is validated, kept as the
    #: best checkpoint and exported (``train/averaging.py``); 0 validates and exports the
    #: last step's weights.
    ema_decay: float = 0.0
    #: With ``ema_decay``: also validate the last step's own weights beside the average (for
    #: the log only; it doubles the time validation takes).
    val_last_weights: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        model = ResidualModelConfig.from_dict(data.pop("model", {}))
        return cls(model=model, **dataclass_options(cls, data, "training"))

    def to_dict(self) -> dict:
        return plain(self)
