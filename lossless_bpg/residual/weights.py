"""Shipped residual models: weights (``.pt`` state dict) with their YAML card beside them (see
:mod:`.registry`), and a content hash (the model id) that every compressed file records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from ..errors import ModelMismatchError
from ..weights_id import weights_id
from .exact import INFERENCE_ID, ExactResidualModel
from .model import ResidualModel
from .registry import DEFAULT_MODEL, WEIGHTS_DIR, ModelCard, Registry

__all__ = ["DEFAULT_MODEL", "WEIGHTS_DIR", "LoadedModel", "ModelCard", "Registry", "available_models",
           "find_model_by_id", "load_card", "load_model", "model_id", "register", "save_model", "wrap"]

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
    #: The model card it was loaded from (None: wrapped in memory).
    card: ModelCard | None = None
    #: The model whose estimates the Q search uses at the default effort (its card's
    #: ``coding.search_model``; None: this one). Decoding never needs it.
    search: LoadedModel | None = None

    @property
    def model_id_hex(self) -> str:
        return self.model_id.hex()


def model_id(model: ResidualModel) -> bytes:
    """Hash of the inference procedure, the config and every parameter's dtype, shape and
    bytes."""
    return weights_id(INFERENCE_ID, model.config.to_dict(), model.state_dict(), MODEL_ID_BYTES)


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
    """Names of the models in ``directory`` (card names, then aliases)."""
    return Registry(directory).names()


def load_card(card: ModelCard, with_search: bool = True) -> LoadedModel:
    """Load the weights a card describes, checking that they hash to the id it records, and
    (``with_search``) the model its card names for the Q search."""
    model = ResidualModel(card.config)
    model.load_state_dict(torch.load(card.weights_path, map_location="cpu", weights_only=True))
    loaded = wrap(card.name, model, card.meta)
    loaded.card = card
    if card.model_id is not None and card.model_id != loaded.model_id_hex:
        raise ModelMismatchError(
            f"residual model {card.name!r} ({card.weights_path}) hashes to {loaded.model_id_hex} but "
            f"its card records {card.model_id}: the weights file is damaged or does not belong to that "
            f"YAML"
        )
    if with_search and card.search_model is not None:
        loaded.search = _load_search_model(card)
    return loaded


def _load_search_model(card: ModelCard) -> LoadedModel:
    """The model ``card`` names for its Q search, from the card's own folder."""
    search_card = Registry(card.card_path.parent).card(card.search_model or "")
    if search_card.search_model is not None or search_card.model_id == card.model_id:
        raise ModelMismatchError(
            f"residual model {card.name!r} names {search_card.name!r} for its Q search, which is itself or "
            f"names another: a search model must search with its own estimates"
        )
    return load_card(search_card, with_search=False)


def load_model(name: str = DEFAULT_MODEL, directory: Path = WEIGHTS_DIR) -> LoadedModel:
    """Load a model by name (``fast``; ``default`` and other aliases of ``index.yaml``; a card's
    file stem or model id) from ``directory``, or from an explicit ``.pt`` path whose card (the
    ``.yaml`` beside it) is read."""
    path = Path(name)
    if path.suffix == ".pt" and path.exists():
        card_path = path.with_suffix(".yaml")
        if not card_path.exists():
            raise ModelMismatchError(f"residual model {path} has no card {card_path.name} beside it")
        return load_card(ModelCard.read(card_path))
    return load_card(Registry(directory).card(name))


def find_model_by_id(wanted: bytes, directory: Path = WEIGHTS_DIR) -> LoadedModel:
    """The model whose id is ``wanted``, found by reading the cards only (then that one model's
    weights are loaded and checked), or a clear error naming the id and what is available."""
    registry = Registry(directory)
    card = registry.by_id(wanted)
    if card is not None:
        return load_card(card, with_search=False)
    for card in registry.unrecorded():  # exports without a recorded id: hash them
        loaded = load_card(card, with_search=False)
        if loaded.model_id == wanted:
            return loaded
    raise ModelMismatchError(
        f"file was written with residual model {wanted.hex()}, which this installation does not "
        f"have (available: {registry.describe()}); decode it with the lossless_bpg version "
        f"that wrote it"
    )


def register(
    weights: Path, name: str, directory: Path = WEIGHTS_DIR, description: str = "", search_model: str | None = None
) -> ModelCard:
    """Add an exported model (``NAME.pt`` and its ``NAME.yaml`` from ``train --export``) to the
    registry in ``directory`` as ``<model id>.pt`` / ``<model id>.yaml`` called ``name``, with
    ``search_model`` (a model of that registry) recorded by id for its Q search. The aliases
    (``index.yaml``) are left alone: making it the default is a separate decision."""
    loaded = load_model(str(weights))
    registry = Registry(directory)
    if any(c.name == name and c.model_id != loaded.model_id_hex for c in registry.cards) or name in registry.aliases:
        raise ValueError(f"the registry in {directory} already has a model or alias called {name!r}")
    meta = dict(loaded.card.meta if loaded.card else {})
    meta.pop("name", None)
    if search_model is not None:
        searcher = registry.card(search_model)
        if searcher.search_model is not None or searcher.model_id is None:
            raise ValueError(f"{search_model!r} cannot be a search model: it records no id or names one itself")
        meta["coding"] = {**(meta.get("coding") or {}), "search_model": searcher.model_id}
    card = {"name": name, "generation": loaded.model.generation,
            "description": description or f"residual model, {sum(p.numel() for p in loaded.model.parameters()):,} parameters",
            **meta, "model_id": loaded.model_id_hex}
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{loaded.model_id_hex}.pt"
    torch.save({k: v.detach().cpu().float() for k, v in loaded.model.state_dict().items()}, target)
    target.with_suffix(".yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return Registry(directory).card(name)
