"""The shipped residual models: one model card (YAML) per weights file, read without touching
the weights.

Layout of a weights folder (``lossless_bpg/weights/``)::

    <model id>.pt     float32 state dict
    <model id>.yaml   its card: ``name``, ``model_id``, ``model`` (the config), ``training``,
                      ``coding`` (the Q search's start, its search model, the validation table), ...
    index.yaml        ``aliases: {default: fast, ...}``: other names for the cards' names

Folders written by ``train --export NAME`` hold ``NAME.pt`` / ``NAME.yaml`` instead (no
``name`` field): there the file name is the model's name. Both layouts are read the same way.
A decoder looks a file's model up by the id the file records (:meth:`Registry.by_id`), which
reads only the cards' ``model_id`` fields; the one matching ``.pt`` is then loaded and hashed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ModelMismatchError
from .config import ResidualModelConfig

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
INDEX_FILE = "index.yaml"
DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class ModelCard:
    """Everything known about a model without loading its weights."""

    name: str
    #: Hex id the card records (what files name); None for an export that records none.
    model_id: str | None
    config: ResidualModelConfig
    card_path: Path
    weights_path: Path
    generation: int = 1
    description: str = ""
    #: Lossy-layer Qs the model was trained on (min, max), when recorded.
    q_range: tuple[int, int] | None = None
    #: Where the Q search starts (best total on the validation split), when calibrated.
    q_start: int | None = None
    #: The model (its id) whose estimates pick Q at the default effort instead of this one's:
    #: a cheaper model's total-size curve has its minimum at the same Q (see codec.searcher).
    search_model: str | None = None
    #: The card's whole YAML (training record, history, validation tables).
    meta: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def read(cls, card_path: Path) -> ModelCard:
        meta = yaml.safe_load(card_path.read_text()) or {}
        if not isinstance(meta, dict):
            raise ModelMismatchError(f"model card {card_path} is not a YAML mapping")
        qs = (meta.get("training") or {}).get("config", {}).get("qs")
        recorded = meta.get("model_id")
        return cls(
            name=str(meta.get("name") or card_path.stem),
            model_id=str(recorded) if recorded is not None else None,
            config=ResidualModelConfig.from_dict(meta.get("model", {})),
            card_path=card_path,
            weights_path=card_path.with_suffix(".pt"),
            generation=int(meta.get("generation", 1)),
            description=str(meta.get("description", "")),
            q_range=(min(qs), max(qs)) if qs else None,
            q_start=(meta.get("coding") or {}).get("q_start"),
            search_model=(meta.get("coding") or {}).get("search_model"),
            meta=meta,
        )


class Registry:
    """The model cards of one folder, and the aliases of its ``index.yaml``."""

    def __init__(self, directory: Path = WEIGHTS_DIR) -> None:
        self.directory = Path(directory)
        self.cards = [
            ModelCard.read(p)
            for p in sorted(self.directory.glob("*.yaml"))
            if p.name != INDEX_FILE and p.with_suffix(".pt").exists()
        ]
        index = self.directory / INDEX_FILE
        data = (yaml.safe_load(index.read_text()) or {}) if index.exists() else {}
        self.aliases: dict[str, str] = {str(k): str(v) for k, v in (data.get("aliases") or {}).items()}

    def names(self) -> list[str]:
        """Every name a model can be asked for by: the cards' names, then the aliases."""
        return [c.name for c in self.cards] + sorted(self.aliases)

    def describe(self) -> str:
        """'fast (2c7ee67f527c3930), default -> fast' for error messages."""
        cards = [f"{c.name} ({c.model_id})" if c.model_id else c.name for c in self.cards]
        aliases = [f"{a} -> {t}" for a, t in sorted(self.aliases.items())]
        return ", ".join(cards + aliases) or "none"

    def card(self, name: str) -> ModelCard:
        """The card called ``name`` (a card's name, its file's stem, its id, or an alias)."""
        seen = set()
        while name in self.aliases and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        for c in self.cards:
            if name in (c.name, c.card_path.stem, c.model_id):
                return c
        raise ModelMismatchError(
            f"residual model {name!r} not found in {self.directory}; available: {self.describe()}"
        )

    def by_id(self, model_id: bytes) -> ModelCard | None:
        """The card recording ``model_id``, or None (cards that record no id are not searched)."""
        wanted = model_id.hex()
        return next((c for c in self.cards if c.model_id == wanted), None)

    def unrecorded(self) -> list[ModelCard]:
        """Cards without a recorded id: only loading their weights tells their id."""
        return [c for c in self.cards if c.model_id is None]
