"""The learned lossy layer (backend lic): exact, deterministic decoding behind the LossyCodec
interface; its payload fails cleanly; its weights are found by the id the payload records.

Most tests run a small random model exported into a temporary weights folder (what they
check does not depend on training); the shipped model is checked where it is installed."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
import yaml

from lossless_bpg.codec import compress, decompress
from lossless_bpg.container import pack, unpack
from lossless_bpg.describe import describe
from lossless_bpg.effort import ERROR_FEEDBACK_EFFORT
from lossless_bpg.errors import FormatError, ModelMismatchError
from lossless_bpg.lossy import get_lossy_codec, residual_model_name
from lossless_bpg.lossy.lic import LicCodec, weights
from lossless_bpg.lossy.lic.config import LicConfig
from lossless_bpg.lossy.lic.exact import decimal_steps
from lossless_bpg.lossy.lic.model import LicModel
from lossless_bpg.residual.model import ResidualModel
from lossless_bpg.residual.registry import Registry
from lossless_bpg.residual.weights import load_model
from lossless_bpg.threads import torch_threads
from lossless_bpg.train.lic import LicTrainConfig

from ..conftest import ROOT

TINY = LicConfig(channels=8, latent_channels=8, hyper_channels=4, q_max=44)  # not the class default


def _image(height: int = 100, width: int = 150, seed: int = 0) -> np.ndarray:
    """Smooth colour ramps under grain: a size that is not a multiple of the codec's 64."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 1.2 + 30, yy * 1.5 + 40, (xx + yy) * 0.6 + 50], -1)
    return np.clip(base + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)


def _tiny_model(seed: int = 0) -> LicModel:
    torch.manual_seed(seed)
    lic = LicModel(TINY)
    with torch.no_grad():  # fine steps: an untrained model then codes non-zero latents
        lic.log_steps.fill_(-6.0)
    return lic.eval()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, model):
    directory = tmp_path_factory.mktemp("weights")
    weights.export(_tiny_model(), model.model, LicTrainConfig(lic=TINY), {"step": 0}, "tiny", directory)
    return directory


@pytest.fixture
def lic(weights_dir, monkeypatch) -> LicCodec:
    monkeypatch.setattr(weights, "LIC_WEIGHTS_DIR", weights_dir / "lic")
    return LicCodec()


def test_export_registers_the_lic_model_and_pairs_it_with_its_residual_model(weights_dir, model):
    card = weights.LicRegistry(weights_dir / "lic").card("default")
    assert card.name == "tiny" and card.config == TINY
    assert card.lic_id == weights.lic_id(_tiny_model()).hex()
    residual = Registry(weights_dir).card(card.residual_model)
    assert residual.model_id == model.model_id_hex  # the residual weights given, under their id
    assert residual.q_range == (TINY.q_min, TINY.q_max)
    shipped = yaml.safe_load(card.card_path.read_text())["training"]
    assert LicTrainConfig.from_dict(shipped["config"]) == LicTrainConfig(lic=TINY)  # how it was trained


def test_export_pairs_with_a_residual_model_already_shipped_under_its_id(tmp_path, model):
    directory = tmp_path / "w"
    weights.export(_tiny_model(), model.model, LicTrainConfig(lic=TINY), {"step": 0}, "one", directory)
    weights.export(_tiny_model(1), model.model, LicTrainConfig(lic=TINY), {"step": 0}, "two", directory)
    registry = Registry(directory)
    assert [c.name for c in registry.cards] == ["one-residual"]
    assert weights.LicRegistry(directory / "lic").card("two").residual_model == "one-residual"


def test_a_new_export_under_the_same_name_keeps_the_earlier_pair_for_the_files_it_wrote(tmp_path, model):
    import copy

    directory = tmp_path / "w"
    weights.export(_tiny_model(), model.model, LicTrainConfig(lic=TINY), {"step": 0}, "lic", directory)
    retrained = copy.deepcopy(model.model)
    with torch.no_grad():
        next(retrained.parameters()).add_(0.01)
    weights.export(_tiny_model(1), retrained, LicTrainConfig(lic=TINY), {"step": 1}, "lic", directory)
    first_id, first_residual = weights.lic_id(_tiny_model()).hex(), model.model_id_hex
    lics = weights.LicRegistry(directory / "lic")
    assert lics.card("lic").lic_id == weights.lic_id(_tiny_model(1)).hex()
    kept = lics.by_id(bytes.fromhex(first_id))  # a file names its lic model by id
    assert kept.name == f"lic-{first_id[:8]}"
    residuals = Registry(directory)
    assert residuals.card(kept.residual_model).model_id == first_residual  # still paired with its own
    assert residuals.card(lics.card("lic").residual_model).model_id != first_residual


def test_the_q_range_is_the_models_before_anything_is_coded(lic):
    # the Q search reads it before the first encode
    assert (lic.q_min, lic.q_max) == (TINY.q_min, TINY.q_max)


def test_decode_is_exact_and_deterministic_across_threads(lic):
    image = _image()
    payload = lic.encode(image, 20)
    remembered = lic.decode(payload)  # the encoder's own reconstruction, kept for the Q search
    with torch_threads(1):
        one = LicCodec().decode(payload, size=image.shape[:2])
    with torch_threads(2):
        two = LicCodec().decode(payload, size=image.shape[:2])
    assert one.shape == image.shape and one.dtype == np.uint8
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, remembered)
    assert np.abs(one.astype(int) - image).mean() < 40  # a reconstruction, not noise


_FRESH = """
import hashlib, sys, torch
from pathlib import Path
torch.set_num_threads(int(sys.argv[3]))
from lossless_bpg.lossy.lic import LicCodec
out = LicCodec(directory=Path(sys.argv[2])).decode(open(sys.argv[1], 'rb').read())
print(hashlib.sha256(out.tobytes()).hexdigest())
"""


def test_a_fresh_process_decodes_the_same_pixels(lic, weights_dir, tmp_path):
    image = _image(seed=1)
    payload = lic.encode(image, 28)
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    expected = hashlib.sha256(lic.decode(payload).tobytes()).hexdigest()
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", _FRESH, str(path), str(weights_dir / "lic"), str(threads)],
                             capture_output=True, text=True, check=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert out.stdout.strip() == expected


def test_integer_synthesis_tracks_the_float_network():
    lic = _tiny_model()
    from lossless_bpg.lossy.lic.exact import ExactLic

    latents = torch.randint(-20, 21, (1, TINY.latent_channels, 4, 6))
    exact, exact_side = ExactLic(lic).reconstruct(latents, 24)
    with torch.no_grad():
        real, real_side = lic.synthesise(latents.float(), torch.tensor([24]))
    assert (exact.float() - real.clamp(0, 255)).abs().mean() < 1.0
    # the decoder features: integer activations on the grid 2**-6, at 1/4 of the image's side
    assert exact_side.shape == (1, TINY.channels, 16, 24) == real_side.shape
    assert torch.equal(exact_side, exact_side.round())
    assert (exact_side * 2.0**-6 - real_side).abs().mean() < 0.05 * real_side.abs().mean() + 0.01


def test_quantiser_steps_are_computed_exactly_by_decimal():
    log_steps = torch.tensor([-1.5, 0.25, 2.0])
    steps = decimal_steps(log_steps, Fraction(5, 8))
    expected = [math.exp(v) * 2 ** (5 / 8) for v in log_steps.tolist()]
    np.testing.assert_allclose(steps, expected, rtol=1e-14)
    assert decimal_steps(log_steps, Fraction(5, 8)).tobytes() == steps.tobytes()


def test_a_lower_quality_number_spends_more_bytes(lic):
    image = _image(seed=2)
    sizes = [len(lic.encode(image, q)) for q in (12, 26, 40)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_payload_errors_are_clear(lic):
    image = _image()
    payload = lic.encode(image, 20)
    with pytest.raises(ValueError, match="expected"):
        lic.decode(payload, size=(99, 150))
    with pytest.raises(ValueError, match="expected"):
        LicCodec().decode(payload, size=(99, 150))
    with pytest.raises(ValueError):
        lic.decode(payload[:10])
    with pytest.raises(ValueError, match="quality"):
        lic.decode(payload[:11] + bytes([77]) + payload[12:])
    for bad in (0, 200):
        with pytest.raises(ValueError, match="ranges"):
            lic.decode(payload[:12] + bytes([bad]) + payload[13:])
    forged = bytes([payload[0] ^ 0xFF]) + payload[1:]
    with pytest.raises(ModelMismatchError, match=forged[:8].hex()):
        lic.decode(forged)
    with pytest.raises(ValueError, match="quality"):
        lic.encode(image, TINY.q_max + 1)


def test_lossless_files_with_the_lic_layer_round_trip_and_say_so(lic, model):
    image = _image(seed=3)
    result = compress(image, model, backend="lic", quality=24, adapt="none")
    decoded, header = decompress(result.data, model)
    np.testing.assert_array_equal(decoded, image)
    assert header.backend_id == LicCodec.backend_id and header.q == 24
    lines = "\n".join(describe(unpack(result.data), len(result.data)))
    assert "lossy backend      lic" in lines
    assert "latents" in lines and "hyper-latents" in lines


@pytest.fixture(scope="module")
def side_weights_dir(tmp_path_factory, model):
    """A lic pair whose residual model reads the synthesis's decoder features (grown from the
    shipped model, its new weights random as after training)."""
    directory = tmp_path_factory.mktemp("side_weights")
    residual = ResidualModel(dataclasses.replace(model.model.config, side_channels=TINY.channels))
    residual.load_state_dict(model.model.state_dict(), strict=False)
    with torch.no_grad():
        residual.side_in.weight.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(0))
    weights.export(_tiny_model(), residual.eval(), LicTrainConfig(lic=TINY, side_features=True), {"step": 0},
                   "tiny", directory)
    return directory


def test_a_residual_model_reading_the_synthesis_features_codes_exactly(side_weights_dir, monkeypatch):
    monkeypatch.setattr(weights, "LIC_WEIGHTS_DIR", side_weights_dir / "lic")
    paired = load_model(residual_model_name("default", "lic"), side_weights_dir)
    assert paired.exact.config.side_channels == TINY.channels == LicCodec().side_channels
    image = _image(seed=5)
    # Q search, fine-tuning, error feedback: all with the features
    result = compress(image, paired, backend="lic", effort=ERROR_FEEDBACK_EFFORT)
    with torch_threads(1):
        one, _ = decompress(result.data, paired)
    with torch_threads(2):
        two, _ = decompress(result.data, paired)
    np.testing.assert_array_equal(one, image)
    np.testing.assert_array_equal(two, image)
    with pytest.raises(ValueError, match="decoder features"):
        compress(image, paired, backend="hevc", quality=30)
    # a header whose backend was damaged into hevc names the mismatch
    f = unpack(result.data)
    damaged = pack(replace(f, header=replace(f.header, backend_id=get_lossy_codec("hevc").backend_id)))
    with pytest.raises(FormatError, match=r"reads .* channels of its lossy layer's decoder features.*\(hevc\) gives none"):
        decompress(damaged, paired)


def test_the_default_residual_model_follows_the_backend(lic):
    assert residual_model_name("default", "lic") == "tiny-residual"
    assert residual_model_name("fast", "lic") == "fast"
    assert residual_model_name("default", "hevc") == "default"
    assert isinstance(get_lossy_codec("lic"), LicCodec)


def test_the_shipped_lic_model_loads_and_matches_its_card():
    registry = weights.LicRegistry()
    if not registry.cards:
        pytest.skip("no lic model shipped in this installation")
    card = registry.card("default")
    loaded = weights.load_lic(card)
    assert loaded.lic_id.hex() == card.lic_id
    assert load_model(card.residual_model).model_id_hex  # its residual model is shipped too


def _shipped() -> weights.LicCard:
    registry = weights.LicRegistry()
    if not registry.cards:
        pytest.skip("no lic model shipped in this installation")
    return registry.card("default")


def test_the_shipped_pair_codes_a_photograph_exactly_through_the_cli(kodak_dir, tmp_path):
    from PIL import Image

    from lossless_bpg.cli import main
    from lossless_bpg.imageio import load_rgb

    from ..conftest import decoded_sha256_in_fresh_process, kodak_crop

    card = _shipped()
    source = tmp_path / "crop.png"
    Image.fromarray(kodak_crop(kodak_dir, 7, 100, 200, 96, 160)).save(source)
    packed, back = tmp_path / "c" / "crop.lbpg", tmp_path / "d" / "crop.png"
    assert main(["compress", str(source), "-o", str(packed.parent), "--backend", "lic", "--model", "parallel", "-e", "1",
                 "--quiet"]) == 0
    header = unpack(packed.read_bytes()).header
    assert header.backend_id == LicCodec.backend_id
    assert header.model_id.hex() == load_model(card.residual_model).model_id_hex  # the pair's residual model
    assert main(["decompress", str(packed), "-o", str(back.parent), "--quiet"]) == 0
    np.testing.assert_array_equal(load_rgb(back), load_rgb(source))
    with torch_threads(1):
        one, _ = decompress(packed.read_bytes())
    with torch_threads(2):
        two, _ = decompress(packed.read_bytes())
    np.testing.assert_array_equal(one, two)
    digest = hashlib.sha256(one.tobytes()).hexdigest()
    assert decoded_sha256_in_fresh_process(packed, 1) == digest


@pytest.mark.parametrize("shape", [(1, 1), (3, 70), (65, 1)])
def test_any_size_round_trips(lic, shape):
    image = _image(*shape, seed=4)
    payload = lic.encode(image, 40)
    decoded = LicCodec().decode(payload, size=shape)
    assert decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, lic.decode(payload))
