"""The compiled sequential coder (lossless_bpg.sequential.coder over seqcore.c): exact round
trips on every kind of image, bytes that do not depend on the process, the thread count or the
compiler's optimisation flags, and damaged streams that end in an error or wrong pixels, never
in a crash or a hang."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from lossless_bpg.errors import FormatError
from lossless_bpg.sequential import SequentialModel, decode, encode, for_effort, models
from lossless_bpg.sequential.model import FEATURE_BITS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "lossless_bpg" / "sequential"


def _photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth gradients, an edge and noise: what the predictors and contexts are made for."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 2.0, yy * 1.5 + 30, (xx + yy) * 0.8 + 60], axis=-1)
    base[:, w // 2 :] += 70
    return np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def _round_trip(image: np.ndarray, model: SequentialModel, recon: np.ndarray | None = None) -> bytes:
    data = encode(image, recon if recon is not None else image, model)
    back = decode(data, recon if recon is not None else image, image.shape[0], image.shape[1], model)
    assert back.dtype == np.uint8 and np.array_equal(back, image)
    return data


@pytest.mark.parametrize("model", models(), ids=lambda m: m.name)
def test_every_shipped_model_codes_every_kind_of_image_exactly(model, rng):
    photo = _photo_like(rng, 40, 56)
    cases = [
        photo,
        rng.integers(0, 256, (23, 17, 3), dtype=np.uint8),  # noise: the largest errors
        np.zeros((9, 9, 3), np.uint8),
        np.full((9, 9, 3), 255, np.uint8),
        np.repeat(photo[..., :1], 3, axis=2),  # greyscale: three equal channels
        (rng.integers(0, 2, (16, 16, 3)) * 255).astype(np.uint8),  # only the extremes
        photo[:1], photo[:, :1], photo[:1, :1], photo[:2, :3],  # one row, one column, one pixel
    ]
    for image in cases:
        image = np.ascontiguousarray(image)
        _round_trip(image, model, recon=np.ascontiguousarray(255 - image))  # a poor reconstruction too
        _round_trip(image, model)


def test_learning_online_makes_a_photograph_cheaper_than_noise(rng):
    model = for_effort(2)
    photo = _photo_like(rng, 64, 64)
    noise = rng.integers(0, 256, photo.shape, dtype=np.uint8)
    flat = np.full_like(photo, 128)  # a reconstruction that tells nothing
    photo_bits = 8 * len(_round_trip(photo, model, flat)) / photo.size
    noise_bits = 8 * len(_round_trip(noise, model, flat)) / noise.size
    # Gaussian noise of sigma 6 alone has 4.6 bits of entropy; uniform noise costs about its 8 bits, not more
    assert photo_bits < 5.5 and 7.9 < noise_bits < 8.3


def test_each_feature_switch_still_codes_exactly(rng):
    photo = _photo_like(rng, 24, 32)
    base = for_effort(2)
    for feature in FEATURE_BITS:
        features = tuple(f for f in base.features if f != feature) if feature in base.features else (*base.features, feature)
        _round_trip(photo, base.variant(f"toggle-{feature}", features=features))
    _round_trip(photo, base.variant("gbr", order=("G", "B", "R")))


def test_model_ids_follow_the_parameters():
    base = for_effort(2)
    assert base.variant("same", mixer_rate=base.mixer_rate).model_id == base.model_id
    assert base.variant("other", mixer_rate=base.mixer_rate + 1).model_id != base.model_id
    assert len({m.model_id for m in models()}) == len(models())
    with pytest.raises(ValueError, match="permutation"):
        base.variant("bad", order=("R", "R", "B"))
    with pytest.raises(ValueError, match="unknown features"):
        base.variant("bad", features=("telepathy",))


def test_a_stream_decoded_with_another_reconstruction_or_size_is_not_the_image(rng):
    model = for_effort(2)
    photo = _photo_like(rng, 32, 32)
    data = encode(photo, photo, model)
    other = np.ascontiguousarray(photo[::-1])
    try:
        wrong = decode(data, other, 32, 32, model)
    except FormatError:
        return
    assert not np.array_equal(wrong, photo)


def test_damaged_or_random_streams_end_in_an_error_or_pixels_never_a_crash(rng):
    model = for_effort(2)
    photo = _photo_like(rng, 20, 20)
    data = encode(photo, photo, model)
    for trial in range(60):
        damaged = bytearray(data)
        if trial % 3 == 0:
            damaged = bytearray(rng.integers(0, 256, int(rng.integers(0, 80)), dtype=np.uint8).tobytes())
        elif trial % 3 == 1:
            damaged = damaged[: int(rng.integers(0, len(damaged)))]
        else:
            damaged[int(rng.integers(0, len(damaged)))] ^= 1 << int(rng.integers(0, 8))
        try:
            out = decode(bytes(damaged), photo, 20, 20, model)
        except FormatError:
            continue
        assert out.shape == photo.shape and out.dtype == np.uint8


def test_sizes_and_buffers_are_checked(rng):
    model = for_effort(2)
    photo = _photo_like(rng, 8, 8)
    with pytest.raises(ValueError):
        encode(photo.astype(np.int16), photo, model)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode(photo, photo[:4], model)
    with pytest.raises(ValueError, match="reads the lossy reconstruction"):
        encode(photo, None, model)


_ENCODE_HERE = """
import sys, hashlib, importlib.util, numpy as np
spec = importlib.util.spec_from_file_location("_seqcore", sys.argv[1])
core = importlib.util.module_from_spec(spec); spec.loader.exec_module(core)
from lossless_bpg.sequential import models
rng = np.random.default_rng(7)
yy, xx = np.mgrid[0:48, 0:64]
img = np.clip(np.stack([xx * 3.0, yy * 2.0, (xx + yy) * 1.0], -1) + rng.normal(0, 8, (48, 64, 3)), 0, 255).astype(np.uint8)
rec = np.clip(img.astype(int) + rng.integers(-9, 10, img.shape), 0, 255).astype(np.uint8)
h = hashlib.sha256()
for m in models():
    data = core.encode(img.tobytes(), rec.tobytes(), 48, 64, m.params)
    assert core.decode(data, rec.tobytes(), 48, 64, m.params) == img.tobytes()
    h.update(data)
print(h.hexdigest())
"""


def _built_module() -> Path:
    from lossless_bpg.sequential import _seqcore

    return Path(_seqcore.__file__)


def _digest_with(module: Path) -> str:
    out = subprocess.run([sys.executable, "-c", _ENCODE_HERE, str(module)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    return out.stdout.strip()


def test_the_bytes_do_not_depend_on_the_optimisation_flags(tmp_path):
    """The installed module against the same sources rebuilt with other flags (no optimisation,
    aggressive optimisation for this CPU, FMA contraction allowed): the same bytes."""
    compiler = shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc") \
        or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler on this machine to rebuild the coder with")
    reference = _digest_with(_built_module())
    include = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for i, flags in enumerate([["-O0"], ["-O3", "-march=native", "-funroll-loops"], ["-O2", "-ffp-contract=fast"]]):
        target = tmp_path / f"v{i}" / f"_seqcore{suffix}"
        target.parent.mkdir()
        subprocess.run([compiler, "-shared", "-fPIC", "-std=c99", *flags, f"-I{include}", f"-I{SOURCES}",
                        str(SOURCES / "seqcore.c"), str(SOURCES / "_seqcore_module.c"), "-o", str(target)],
                       check=True, capture_output=True)
        assert _digest_with(target) == reference, flags


def test_the_same_bytes_in_every_process():
    assert _digest_with(_built_module()) == _digest_with(_built_module())


def test_the_module_is_built_at_install_not_at_run_time(tmp_path):
    """A user command only imports the compiled module, which the install built into the
    package: with no compiler reachable (an empty PATH) an image still codes and decodes."""
    module = _built_module()
    assert module.parent == SOURCES and module.is_file()
    script = ("import numpy as np, lossless_bpg\n"
              "img = (np.arange(24 * 20 * 3) % 251).astype(np.uint8).reshape(24, 20, 3)\n"
              "assert np.array_equal(lossless_bpg.decompress(lossless_bpg.compress(img)), img)\n")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, cwd=tmp_path,
                   env=dict(os.environ, PYTHONPATH=str(ROOT), PATH=""))
