"""Measure a trained model on the validation split of the training images (never Kodak):
total bits per subpixel (real HEVC bytes + the model's residual estimate) at every trained Q,
and the Q the search should start from."""

from __future__ import annotations

from pathlib import Path

import yaml
from tqdm import tqdm

from ..imageio import load_rgb
from ..lossy import get_lossy_codec
from ..residual.layer import estimate_bits
from ..residual.weights import load_model
from .prepare import is_validation


def calibrate(weights_dir: Path, name: str, image_dir: Path, val_fraction: float, limit: int | None = None) -> dict:
    """Write ``coding: {q_start, validation}`` into the model's YAML (keeping its other
    ``coding`` entries) and return that section."""
    loaded = load_model(name, weights_dir)
    if loaded.q_range is None:
        raise ValueError(f"model {name} records no training Qs")
    assert loaded.card is not None
    meta_path = loaded.card.card_path
    meta = yaml.safe_load(meta_path.read_text())
    qs = sorted(meta["training"]["config"]["qs"])
    files = sorted(p for p in image_dir.glob("*.png") if is_validation(p.name, val_fraction))[:limit]
    lossy = get_lossy_codec("hevc")
    lossy_bits = {q: 0.0 for q in qs}
    residual_bits = {q: 0.0 for q in qs}
    subpixels = 0
    for path in tqdm(files, desc="calibrate", unit="img"):
        image = load_rgb(path)
        subpixels += image.size
        for q in qs:
            payload = lossy.encode(image, q)
            lossy_bits[q] += 8 * len(payload)
            residual_bits[q] += estimate_bits(loaded.exact, image, lossy.decode(payload), q)
    table = {
        int(q): {
            "lossy_bpsp": round(lossy_bits[q] / subpixels, 4),
            "residual_bpsp": round(residual_bits[q] / subpixels, 4),
            "total_bpsp": round((lossy_bits[q] + residual_bits[q]) / subpixels, 4),
        }
        for q in qs
    }
    q_start = min(table, key=lambda q: table[q]["total_bpsp"])
    meta["coding"] = {**(meta.get("coding") or {}), "q_start": q_start, "validation_images": len(files),
                      "validation": table}
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    return meta["coding"]
