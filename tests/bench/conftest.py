"""The small image folder the bench tests run on."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def images(tmp_path, rng):
    """Two 40x24 noisy gradients."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        base = np.linspace(0, 255, 40)[None, :, None] * np.ones((24, 1, 3))
        img = np.clip(base + rng.normal(0, 4, (24, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"im{i}.png")
    return folder
