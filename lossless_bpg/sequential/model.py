"""The sequential coder's parameter sets ("models"): named, chosen per effort, identified in a
file by an id that hashes the coder's version and the parameters.

Nothing is learned offline yet: every set starts from the same fixed initial state and learns
on the image (or tile) itself as it is coded. The sets live in ``configs/sequential.yaml``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from ..errors import ModelMismatchError
from ..yaml_config import dataclass_options

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "sequential.yaml"
#: The model that seqcore.c computes. Bump it with any change to seqcore.c that changes the
#: coded bytes (the compat tests decode committed files, so a forgotten bump fails them).
CORE_VERSION = 1
#: seqcore.h's feature switches, by their names in the config.
FEATURE_BITS = {
    "recon": 1 << 0,
    "lms": 1 << 1,
    "bias": 1 << 2,
    "cascade": 1 << 3,
    "apm": 1 << 4,
    "inter": 1 << 5,
    "extra_models": 1 << 6,
    "recon_blend": 1 << 7,
    "recon_context": 1 << 8,
    "ols": 1 << 9,
    "lean": 1 << 10,
}
CHANNELS = {"R": 0, "G": 1, "B": 2}
ID_BYTES = 8


@dataclass(frozen=True)
class SequentialModel:
    """One parameter set of the sequential coder (see seqcore.h's SeqParams)."""

    name: str
    effort: int
    features: tuple[str, ...]
    order: tuple[str, ...] = ("R", "G", "B")
    lms_mu_fast: int = 0
    lms_mu_slow: int = 0
    cascade_mu: int = 0
    mixer_rate: int = 6
    counter_limit: int = 255
    #: Other sets (by name) the encoder also codes the image with at the Q it found, keeping the
    #: smallest file; the decoder needs only the one a file names.
    alternatives: tuple[str, ...] = ()
    model_id: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(FEATURE_BITS)
        if unknown:
            raise ValueError(f"sequential model {self.name}: unknown features {sorted(unknown)}")
        if sorted(self.order) != sorted(CHANNELS):
            raise ValueError(f"sequential model {self.name}: order must be a permutation of R, G, B")
        h = hashlib.sha256(f"lossless_bpg.sequential/{CORE_VERSION}".encode())
        h.update(repr(self.params).encode())
        object.__setattr__(self, "model_id", h.digest()[:ID_BYTES])

    @property
    def flags(self) -> int:
        return sum(FEATURE_BITS[f] for f in set(self.features))

    @property
    def uses_recon(self) -> bool:
        return "recon" in self.features

    @property
    def params(self) -> tuple[int, ...]:
        """The tuple the C core takes: flags, channel order, step sizes, mixer rate, limit."""
        return (self.flags, *(CHANNELS[c] for c in self.order), self.lms_mu_fast, self.lms_mu_slow,
                self.cascade_mu, self.mixer_rate, self.counter_limit)

    @property
    def model_id_hex(self) -> str:
        return self.model_id.hex()

    def variant(self, name: str, **changes: object) -> SequentialModel:
        """This set with some parameters changed (ablations, tuning); a new id."""
        options = {f: getattr(self, f) for f in ("effort", "features", "order", "lms_mu_fast", "lms_mu_slow",
                                                  "cascade_mu", "mixer_rate", "counter_limit", "alternatives")}
        options.update(changes)
        return SequentialModel(name=name, **options)  # type: ignore[arg-type]


@cache
def models(path: Path = CONFIG) -> tuple[SequentialModel, ...]:
    """Every shipped parameter set, in the config's order."""
    data = yaml.safe_load(path.read_text()) or {}
    out = []
    for name, options in (data.get("models") or {}).items():
        out.append(SequentialModel(name=str(name), **dataclass_options(SequentialModel, options, "sequential model")))
    return tuple(out)


def candidates(model: SequentialModel) -> tuple[SequentialModel, ...]:
    """``model`` and the shipped sets it names as alternatives."""
    found = [by_name(name) for name in model.alternatives]
    missing = [n for n, m in zip(model.alternatives, found) if m is None]
    if missing:
        raise ValueError(f"sequential model {model.name} names unknown alternatives {missing}")
    return (model, *(m for m in found if m is not None))


def for_effort(effort: int) -> SequentialModel:
    """The parameter set the encoder uses at ``effort``."""
    for m in models():
        if m.effort == effort:
            return m
    raise ValueError(f"no sequential model for effort {effort}")


def by_name(name: str) -> SequentialModel | None:
    return next((m for m in models() if m.name == name), None)


def by_id(model_id: bytes) -> SequentialModel | None:
    """The shipped set with ``model_id``, or None (then it is not a sequential file's id)."""
    return next((m for m in models() if m.model_id == model_id), None)


def require_by_id(model_id: bytes) -> SequentialModel:
    found = by_id(model_id)
    if found is None:
        raise ModelMismatchError(
            f"file was written with sequential coder {model_id.hex()}, which this installation does not have "
            f"(available: {', '.join(f'{m.name} ({m.model_id_hex})' for m in models())}); decode it with the "
            f"lossless_bpg version that wrote it"
        )
    return found
