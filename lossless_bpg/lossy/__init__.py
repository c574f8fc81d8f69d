"""Lossy layers behind one interface, chosen by name."""

from __future__ import annotations

from ..errors import BackendUnavailableError
from .base import LossyCodec

_REGISTRY: dict[str, str] = {
    "hevc": "lossless_bpg.lossy.hevc:HevcCodec",
    "bpg": "lossless_bpg.lossy.bpg:BpgCodec",
    "lic": "lossless_bpg.lossy.lic:LicCodec",
}


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def _load_class(name: str) -> type[LossyCodec]:
    import importlib

    if name not in _REGISTRY:
        raise BackendUnavailableError(
            f"unknown lossy backend {name!r}; known backends: {', '.join(available_backends())}"
        )
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_lossy_codec(name: str) -> LossyCodec:
    """Instantiate the backend registered under ``name``."""
    return _load_class(name)()


def residual_model_name(requested: str, backend: str) -> str:
    """The residual model to code with: ``requested``, unless it is the default and the backend
    has a residual model of its own (lic's was trained on lic's reconstructions)."""
    from ..residual.registry import DEFAULT_MODEL

    if requested != DEFAULT_MODEL:
        return requested
    return get_lossy_codec(backend).paired_residual_model() or requested


def backend_name_from_id(backend_id: int) -> str:
    for name in _REGISTRY:
        if _load_class(name).backend_id == backend_id:
            return name
    raise BackendUnavailableError(f"file uses unknown lossy backend id {backend_id}")


__all__ = ["LossyCodec", "available_backends", "backend_name_from_id", "get_lossy_codec", "residual_model_name"]
