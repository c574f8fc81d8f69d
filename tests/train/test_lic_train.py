"""The lic layer's training runs through the `train` command on a few real training crops,
resumes from its checkpoint, and exports a model pair the codec decodes exactly."""

import numpy as np
import torch
import yaml

from lossless_bpg.cli import main
from lossless_bpg.lossy.lic import LicCodec
from lossless_bpg.lossy.lic.weights import LicRegistry
from lossless_bpg.residual.registry import Registry
from lossless_bpg.train.lic import best_checkpoint

TINY = {
    "lic": {"channels": 8, "latent_channels": 8, "hyper_channels": 4},
    "crop": 64,
    "batch_size": 2,
    "steps": 4,
    "val_fraction": 0.5,
    "val_every": 2,
    "val_qs": [20, 36],
    "checkpoint_every": 1,
    "residual_warmup": 1,
}


def test_train_lic_resumes_and_exports_a_decodable_pair(train_dir, tmp_path):
    cfg = tmp_path / "lic.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    ckpt = tmp_path / "ckpt.pt"
    common = ["train", "--data", str(train_dir), "--config", str(cfg), "--checkpoint", str(ckpt), "--limit", "6"]
    assert main([*common, "--steps", "2"]) == 0
    assert torch.load(ckpt, weights_only=False)["step"] == 2
    assert main([*common, "--export", "tiny", "--export-dir", str(tmp_path)]) == 0
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 4 and {20, 36} <= set(state["validation"])
    best = torch.load(best_checkpoint(ckpt), weights_only=False)
    assert best["validation"]["best"] == best["best_validation"] == state["best_validation"]
    assert best["best_validation"] <= state["validation"]["best"] and best["step"] in (2, 4)
    card = LicRegistry(tmp_path / "lic").card("default")
    assert card.name == "tiny" and card.meta["training"]["step"] == 4
    assert Registry(tmp_path).card(card.residual_model).q_range == (12, 40)
    codec = LicCodec(directory=tmp_path / "lic")
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    payload = codec.encode(image, 30)
    np.testing.assert_array_equal(codec.decode(payload, size=(70, 90)), codec.decode(payload))
    # a finished run goes on only with a new learning-rate cycle over the minutes it adds
    minutes = state["seconds"] / 60 + 10
    assert main([*common, "--steps", "6", "--restart", "--minutes", f"{minutes}"]) == 0
    restarted = torch.load(ckpt, weights_only=False)
    assert restarted["step"] == 6 and restarted["schedule_start"] == (4, state["seconds"])


def test_training_images_also_come_from_a_gpu_bundle(tmp_path):
    from lossless_bpg.train.lic import _read_images
    from lossless_bpg.train.portable import webp_lossless

    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    blobs = [np.frombuffer(webp_lossless(im, method=0), np.uint8) for im in images]
    path = tmp_path / "originals.npz"
    np.savez(path, blob=np.concatenate(blobs), offsets=np.cumsum([0, *map(len, blobs)]),
             names=np.array(["a_0001_0.png", "b_0002_1.png"]))
    read = _read_images(path, None)
    assert [name for name, _ in read] == ["a_0001_0", "b_0002_1"]
    for (_, got), want in zip(read, images):
        np.testing.assert_array_equal(got, want)


def test_a_checkpoint_grows_into_a_residual_model_reading_the_synthesis_features(train_dir, tmp_path, monkeypatch):
    from lossless_bpg.codec import compress, decompress
    from lossless_bpg.lossy.lic import weights
    from lossless_bpg.residual.weights import load_model

    plain, side = tmp_path / "plain.yaml", tmp_path / "side.yaml"
    plain.write_text(yaml.safe_dump(TINY))
    side.write_text(yaml.safe_dump({**TINY, "side_features": True}))
    ckpt = tmp_path / "ckpt.pt"
    common = ["train", "--data", str(train_dir), "--checkpoint", str(ckpt), "--limit", "6"]
    assert main([*common, "--config", str(plain), "--steps", "2"]) == 0
    before = torch.load(ckpt, weights_only=False)
    assert not any(k.startswith("side_in.") for k in before["residual"])
    assert main([*common, "--config", str(side), "--steps", "3"]) == 0  # grown, then trained on
    after = torch.load(ckpt, weights_only=False)
    assert after["step"] == 3 and len(after["optimizer"]["param_groups"]) == 3
    assert after["residual"]["side_in.weight"].abs().sum() > 0  # it learns from the features
    assert main([*common, "--config", str(side), "--export", "tiny", "--export-dir", str(tmp_path)]) == 0
    assert torch.load(ckpt, weights_only=False)["step"] == 4  # resumed with all three groups
    card = LicRegistry(tmp_path / "lic").card("default")
    paired = load_model(card.residual_model, tmp_path)
    assert paired.exact.config.side_channels == TINY["lic"]["channels"]
    image = np.random.default_rng(2).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    monkeypatch.setattr(weights, "LIC_WEIGHTS_DIR", tmp_path / "lic")
    data = compress(image, paired, backend="lic", quality=30, adapt="none").data
    np.testing.assert_array_equal(decompress(data, paired)[0], image)


def test_train_lic_validates_and_returns_its_weight_average(train_dir, tmp_path):
    from lossless_bpg.train.lic import LicTrainConfig, train_lic

    cfg = LicTrainConfig.from_dict({**TINY, "steps": 2, "ema_decay": 0.5})
    ckpt = tmp_path / "ckpt.pt"
    lic, residual_model, record = train_lic(cfg, train_dir, ckpt, limit=6)
    state = torch.load(ckpt, weights_only=False)
    assert state["average"]["updates"] == 2 and "average" in torch.load(best_checkpoint(ckpt), weights_only=False)
    for name, module in (("lic", lic), ("residual", residual_model)):
        averaged = state["average"]["averages"][name]
        assert all(torch.equal(module.state_dict()[k], v) for k, v in averaged.items())
    assert any(not torch.equal(state["lic"][k], v) for k, v in state["average"]["averages"]["lic"].items())
    assert record["validation"] == state["validation"]
