"""The YAML side of the typed configurations (model, training, lic): reading a mapping into a
frozen dataclass with a clear error for unknown options, and writing one back as plain YAML."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def dataclass_options(cls: type, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``data`` as keyword arguments of the dataclass ``cls`` (YAML lists become tuples where the
    field is a tuple); a ValueError names any option ``cls`` does not have (``what``: whose
    options, for the message)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"unknown {what} options: {sorted(unknown)}")
    return {name: tuple(value) if isinstance(value, list) and str(fields[name].type).startswith("tuple") else value
            for name, value in data.items()}


def plain(config: Any) -> dict[str, Any]:
    """The dataclass ``config`` as a mapping YAML writes without tags: tuples as lists, nested
    dataclasses and mappings as plain dicts."""

    def convert(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(dataclasses.asdict(config))
