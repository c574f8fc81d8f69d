"""Shipped residual models: weights (``.pt`` state dict) with their YAML config beside them,
and a content hash (the model id) that every compressed file records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from ..errors import ModelMismatchError
from .config import ResidualModelConfig
from .exact import INFERENCE_ID, ExactResidualModel
from .model import ResidualModel

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "default"
MODEL_ID_BYTES = 8


@dataclass
class LoadedModel:
    name: str
    #: The float network (training, rate estimates); coding runs ``exact``, its integer twin.
    model: ResidualModel
    exact: ExactResidualModel
    model_id: bytes  # MODEL_ID_BYTES long
    #: Lossy-layer Q values the model was trained on (None: unknown); the Q search stays inside.
    q_range: tuple[int, int] | None = None
    #: Where the Q search starts: the Q that minimised the total on the validation split.
    q_start: int | None = None

    @property
    def model_id_hex(self) -> str:
        return self.model_id.hex()


def model_id(model: ResidualModel) -> bytes:
    """Hash of the inference procedure, the config and every parameter's dtype, shape and
    bytes."""
    h = hashlib.sha256(INFERENCE_ID.encode())
    h.update(yaml.safe_dump(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.digest()[:MODEL_ID_BYTES]


def wrap(name: str, model: ResidualModel, meta: dict | None = None) -> LoadedModel:
    """A model ready for coding; ``meta`` is its YAML (training Qs, preferred starting Q)."""
    model.eval()
    meta = meta or {}
    qs = meta.get("training", {}).get("config", {}).get("qs")
    q_start = meta.get("coding", {}).get("q_start")
    return LoadedModel(
        name, model, ExactResidualModel(model), model_id(model), (min(qs), max(qs)) if qs else None, q_start
    )


def save_model(model: ResidualModel, directory: Path, name: str, extra: dict | None = None) -> Path:
    """Write ``name.pt`` and ``name.yaml`` (config plus ``extra`` metadata) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().float() for k, v in model.state_dict().items()}
    torch.save(state, directory / f"{name}.pt")
    meta = {"model": model.config.to_dict(), "model_id": model_id(model).hex()}
    meta.update(extra or {})
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return directory / f"{name}.pt"


def available_models(directory: Path = WEIGHTS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.pt") if (directory / f"{p.stem}.yaml").exists())


def load_model(name: str = DEFAULT_MODEL, directory: Path = WEIGHTS_DIR) -> LoadedModel:
    """Load a shipped model by name, or from an explicit ``.pt`` path."""
    path = Path(name)
    if path.suffix == ".pt" and path.exists():
        directory, name = path.parent, path.stem
    weights = directory / f"{name}.pt"
    config_path = directory / f"{name}.yaml"
    if not weights.exists() or not config_path.exists():
        raise ModelMismatchError(
            f"residual model {name!r} not found in {directory}; available: "
            f"{', '.join(available_models(directory)) or 'none'}"
        )
    meta = yaml.safe_load(config_path.read_text()) or {}
    model = ResidualModel(ResidualModelConfig.from_dict(meta.get("model", {})))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    loaded = wrap(name, model, meta)
    recorded = meta.get("model_id")
    if recorded is not None and recorded != loaded.model_id_hex:
        raise ModelMismatchError(
            f"residual model {name!r} in {directory} hashes to {loaded.model_id_hex} but its YAML "
            f"records {recorded}: the weights file is damaged or does not belong to that YAML"
        )
    return loaded


def find_model_by_id(wanted: bytes, directory: Path = WEIGHTS_DIR) -> LoadedModel:
    """The shipped model whose id is ``wanted``, or a clear error naming what is available."""
    seen = []
    for name in available_models(directory):
        loaded = load_model(name, directory)
        if loaded.model_id == wanted:
            return loaded
        seen.append(f"{name} ({loaded.model_id_hex})")
    raise ModelMismatchError(
        f"file was written with residual model {wanted.hex()}, which this installation does not "
        f"have (available: {', '.join(seen) or 'none'}); decode it with the lossless_bpg version "
        f"that wrote it"
    )
