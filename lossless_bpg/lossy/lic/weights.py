"""Shipped lic models: ``weights/lic/<lic id>.pt`` (float32 state dict) with its card
``<lic id>.yaml`` (``name``, ``lic_id``, ``lic`` config, ``residual_model``: the name of the
residual model trained with it, ``training``: the record), and ``index.yaml`` with
``aliases: {default: NAME}``. A decoder finds the model by the id its payload records, reading
only the cards."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ...errors import BackendUnavailableError, ModelMismatchError
from ...residual.model import ResidualModel
from ...residual.registry import WEIGHTS_DIR
from ...weights_id import weights_id
from .config import LicConfig
from .exact import ExactLic
from .model import LicModel

LIC_WEIGHTS_DIR = WEIGHTS_DIR / "lic"
INDEX_FILE = "index.yaml"
DEFAULT_LIC = "default"
LIC_ID_BYTES = 8
#: Names the integer decoding procedure (intnet's arithmetic, exact_cdf's logistic CDFs, the
#: decimal steps) inside lic ids: change it with any change there.
LIC_INFERENCE_ID = "lic-exact-int-f32/1"


def lic_id(model: LicModel) -> bytes:
    """Hash of the decoding procedure, the config and every parameter."""
    return weights_id(LIC_INFERENCE_ID, model.config.to_dict(), model.state_dict(), LIC_ID_BYTES)


@dataclass(frozen=True)
class LicCard:
    name: str
    lic_id: str
    config: LicConfig
    residual_model: str
    card_path: Path
    meta: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def weights_path(self) -> Path:
        return self.card_path.with_suffix(".pt")

    @classmethod
    def read(cls, path: Path) -> LicCard:
        meta = yaml.safe_load(path.read_text()) or {}
        return cls(str(meta["name"]), str(meta["lic_id"]), LicConfig.from_dict(meta.get("lic", {})),
                   str(meta["residual_model"]), path, meta)


@dataclass
class LoadedLic:
    card: LicCard
    model: LicModel
    exact: ExactLic
    lic_id: bytes


class LicRegistry:
    def __init__(self, directory: Path = LIC_WEIGHTS_DIR) -> None:
        self.directory = Path(directory)
        self.cards = [LicCard.read(p) for p in sorted(self.directory.glob("*.yaml"))
                      if p.name != INDEX_FILE and p.with_suffix(".pt").exists()]
        index = self.directory / INDEX_FILE
        data = (yaml.safe_load(index.read_text()) or {}) if index.exists() else {}
        self.aliases = {str(k): str(v) for k, v in (data.get("aliases") or {}).items()}

    def describe(self) -> str:
        return ", ".join(f"{c.name} ({c.lic_id})" for c in self.cards) or "none"

    def card(self, name: str) -> LicCard:
        name = self.aliases.get(name, name)
        for c in self.cards:
            if name in (c.name, c.lic_id):
                return c
        raise BackendUnavailableError(
            f"lic model {name!r} not found in {self.directory} (available: {self.describe()}); train one "
            f"with `python -m lossless_bpg train --config lossless_bpg/configs/lic.yaml --export NAME`")

    def by_id(self, wanted: bytes) -> LicCard:
        for c in self.cards:
            if c.lic_id == wanted.hex():
                return c
        raise ModelMismatchError(
            f"file's lossy layer was written with lic model {wanted.hex()}, which this installation does "
            f"not have (available: {self.describe()}); decode it with the lossless_bpg version that wrote it")


_loaded: dict[Path, LoadedLic] = {}
_lock = threading.Lock()


def load_lic(card: LicCard) -> LoadedLic:
    """The model a card describes (loaded once per process), checked against its recorded id."""
    with _lock:
        if card.card_path not in _loaded:
            model = LicModel(card.config)
            model.load_state_dict(torch.load(card.weights_path, map_location="cpu", weights_only=True))
            model.eval()
            got = lic_id(model)
            if got.hex() != card.lic_id:
                raise ModelMismatchError(
                    f"lic model {card.name!r} ({card.weights_path}) hashes to {got.hex()} but its card records "
                    f"{card.lic_id}: the weights file is damaged or does not belong to that card")
            _loaded[card.card_path] = LoadedLic(card, model, ExactLic(model), got)
        return _loaded[card.card_path]


def export(lic: LicModel, residual_model: ResidualModel, train_config: Any, record: dict, name: str,
           directory: Path | None = None) -> list[Path]:
    """Ship a trained lic model and its residual model into the weights folder ``directory``
    (default: the package's): the residual model is registered as ``NAME-residual`` (unless a
    model with its id is there already: then the lic model is paired with that one), the lic
    model as ``lic/<lic id>.pt`` named NAME (made the default lic model if there is none).
    Earlier exports under the same names stay, renamed ``NAME-<id prefix>``: files written with
    them name them by id and must keep decoding."""
    from ...residual.registry import Registry
    from ...residual.weights import register, save_model

    directory = Path(directory or WEIGHTS_DIR)
    lic_dir = directory / "lic"
    residual_name = f"{name}-residual"
    cfg = train_config.to_dict()
    qs = list(range(lic.config.q_min, lic.config.q_max + 1))
    residual_meta = {"lossy_backend": "lic",
                     "training": {"config": {**cfg, "qs": qs}, **record},
                     "coding": {"q_start": _best_q(record.get("validation", {}))}}
    from ...residual.weights import model_id

    registry = Registry(directory)
    same = registry.by_id(model_id(residual_model))
    if same is not None:  # already shipped (e.g. not yet changed by training): pair with it
        residual_name, residual_path = same.name, same.weights_path
    else:
        for card in registry.cards:
            if card.name == residual_name:
                assert card.model_id is not None
                kept = f"{residual_name}-{card.model_id[:8]}"
                _rename(card.card_path, kept)
                for paired in LicRegistry(lic_dir).cards if lic_dir.is_dir() else []:
                    if paired.residual_model == residual_name:
                        _rename(paired.card_path, paired.name, residual_model=kept)
        with tempfile.TemporaryDirectory() as tmp:
            pt = save_model(residual_model, Path(tmp), residual_name, residual_meta)
            residual_path = register(pt, residual_name, directory,
                                     description=f"residual model trained with the lic lossy layer {name!r}").weights_path
    lic_dir.mkdir(parents=True, exist_ok=True)
    for old in LicRegistry(lic_dir).cards:
        if old.name == name:
            _rename(old.card_path, f"{name}-{old.lic_id[:8]}")
    lic.eval()
    ident = lic_id(lic).hex()
    target = lic_dir / f"{ident}.pt"
    torch.save({k: v.detach().cpu().float() for k, v in lic.state_dict().items()}, target)
    lic_card = {"name": name, "lic_id": ident, "lic": lic.config.to_dict(), "residual_model": residual_name,
            "parameters": sum(p.numel() for p in lic.parameters()), "training": {"config": cfg, **record}}
    target.with_suffix(".yaml").write_text(yaml.safe_dump(lic_card, sort_keys=False))
    index = lic_dir / INDEX_FILE
    if not index.exists():
        index.write_text(yaml.safe_dump({"aliases": {DEFAULT_LIC: name}}))
    return [target, residual_path]


def _rename(card_path: Path, name: str, **changes: str) -> None:
    """Give the model card at ``card_path`` the name ``name`` (and set ``changes``)."""
    meta = yaml.safe_load(card_path.read_text()) or {}
    meta.update(name=name, **changes)
    card_path.write_text(yaml.safe_dump(meta, sort_keys=False))


def _best_q(validation: dict) -> int | None:
    """The quality with the smallest validation total, the Q search's start."""
    totals = {q: row["total"] for q, row in validation.items() if isinstance(row, dict)}
    return int(min(totals, key=totals.__getitem__)) if totals else None
