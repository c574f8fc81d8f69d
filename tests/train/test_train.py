"""Training runs end to end on a few real training crops, resumes, and exports a loadable model."""

import pytest
import yaml

from lossless_bpg.cli import main
from lossless_bpg.residual.weights import load_model

TINY = {
    "model": {"half_channels": 8, "quarter_channels": 8, "quarter_blocks": 1, "half_blocks": 1,
              "mixtures": 2, "context_steps": 4, "context_channels": 8, "head_channels": 8},
    "qs": [24, 32],
    "crop": 64,
    "batch_size": 2,
    "steps": 6,
    "val_fraction": 0.5,
    "val_every": 3,
    "checkpoint_every": 3,
}


@pytest.fixture(scope="module")
def packed(train_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    cfg = d / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    pack = d / "pack.npz"
    assert main(["train", "--data", str(train_dir), "--config", str(cfg), "--pack", str(pack),
                 "--limit", "6", "--prepare-only"]) == 0
    return d, cfg, pack


def test_train_resume_and_export(packed):
    d, cfg, pack = packed
    ckpt = d / "ckpt.pt"
    assert main(["train", "--config", str(cfg), "--pack", str(pack), "--checkpoint", str(ckpt),
                 "--steps", "3"]) == 0
    assert main(["train", "--config", str(cfg), "--pack", str(pack), "--checkpoint", str(ckpt),
                 "--export", "tiny_model", "--export-dir", str(d)]) == 0
    meta = yaml.safe_load((d / "tiny_model.yaml").read_text())
    assert meta["training"]["steps"] == 6
    assert set(meta["training"]["validation_residual_bpsp_per_q"]) == {24, 32}
    assert load_model("tiny_model", d).model_id_hex == meta["model_id"]


def test_portable_pack_trains_the_same_way(packed):
    d, cfg, pack = packed
    portable = d / "portable.npz"
    assert main(["train", "--config", str(cfg), "--pack", str(pack), "--make-portable", str(portable),
                 "--portable-mb", "5"]) == 0
    assert main(["train", "--config", str(cfg), "--pack", str(portable), "--checkpoint",
                 str(d / "ck2.pt"), "--steps", "2"]) == 0


def test_refuses_to_train_on_kodak(tmp_path):
    assert main(["train", "--data", str(tmp_path / "kodak"), "--pack", str(tmp_path / "p.npz")]) == 2


def test_a_search_model_without_register_is_a_usage_error(tmp_path):
    assert main(["train", "--search-model", "fast", "--pack", str(tmp_path / "p.npz")]) == 2
    assert not (tmp_path / "p.npz").exists()


def test_calibration_records_the_best_validation_q(packed, train_dir):
    d, cfg, pack = packed
    ckpt = d / "ck3.pt"
    assert main(["train", "--config", str(cfg), "--pack", str(pack), "--checkpoint", str(ckpt),
                 "--steps", "2", "--export", "cal", "--export-dir", str(d)]) == 0
    assert main(["train", "--config", str(cfg), "--data", str(train_dir), "--calibrate", "cal",
                 "--export-dir", str(d), "--limit", "2"]) == 0
    coding = yaml.safe_load((d / "cal.yaml").read_text())["coding"]
    totals = {q: row["total_bpsp"] for q, row in coding["validation"].items()}
    assert set(totals) == {24, 32} and coding["q_start"] == min(totals, key=totals.get)
    assert load_model("cal", d).q_start == coding["q_start"]


def test_registering_with_a_search_model_then_calibrating_keeps_both(packed, train_dir, tmp_path):
    import shutil

    from lossless_bpg.residual.registry import WEIGHTS_DIR

    d, cfg, pack = packed
    fast = load_model("fast")
    for suffix in (".pt", ".yaml"):
        shutil.copy(WEIGHTS_DIR / f"{fast.model_id_hex}{suffix}", tmp_path)
    assert main(["train", "--config", str(cfg), "--pack", str(pack), "--checkpoint", str(d / "ck4.pt"),
                 "--steps", "2", "--export", "searched", "--export-dir", str(d)]) == 0
    assert main(["train", "--config", str(cfg), "--register", str(d / "searched.pt"), "--export", "searched",
                 "--search-model", "fast", "--export-dir", str(tmp_path)]) == 0
    assert main(["train", "--config", str(cfg), "--data", str(train_dir), "--calibrate", "searched",
                 "--export-dir", str(tmp_path), "--limit", "1"]) == 0
    loaded = load_model("searched", tmp_path)
    assert loaded.q_start is not None and loaded.search is not None
    assert loaded.search.model_id == fast.model_id


def test_generation_2_grows_from_a_generation_1_export_and_resumes(packed, capsys):
    """--init-from a 16-pass generation 1 model into generation 2: the starting validation
    equals the source's (function-preserving growth); the checkpoint reloads as a model."""
    import torch

    from lossless_bpg.residual import ResidualModel, ResidualModelConfig
    from lossless_bpg.residual.weights import save_model
    from lossless_bpg.train.loop import checkpoint_model

    d, _, pack = packed
    v1 = {**TINY["model"], "context_steps": 16, "half_blocks": 0}
    torch.manual_seed(0)
    save_model(ResidualModel(ResidualModelConfig(**v1)), d, "tiny16")
    cfgs = {}
    for name, extra in (("g1", {}), ("g2", {"context_net_channels": 8, "channel_net_channels": 8})):
        cfgs[name] = d / f"{name}.yaml"
        cfgs[name].write_text(yaml.safe_dump({**TINY, "model": {**v1, **extra}, "steps": 2}))
    first = {}
    for name in ("g1", "g2"):
        assert main(["train", "--config", str(cfgs[name]), "--pack", str(pack), "--checkpoint",
                     str(d / f"ck_{name}.pt"), "--init-from", str(d / "tiny16.pt"), "--validate-first"]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("step 0"))
        first[name] = yaml.safe_load(line.split("val ", 1)[1])
    assert first["g1"] == pytest.approx(first["g2"], rel=1e-5)
    model, record = checkpoint_model(d / "ck_g2.pt")
    assert model.generation == 2 and record["step"] == 2


def test_grown_parameters_can_learn_slower_than_the_new_ones():
    import dataclasses

    from lossless_bpg.residual import ResidualModel
    from lossless_bpg.train.config import TrainConfig
    from lossless_bpg.train.loop import _param_groups

    model_cfg = {**TINY["model"], "context_steps": 16, "half_blocks": 0, "context_net_channels": 8,
                 "channel_net_channels": 8}
    cfg = TrainConfig.from_dict({**TINY, "model": model_cfg, "pretrained_lr_scale": 0.25})
    model = ResidualModel(cfg.model)
    inherited, new = _param_groups(model, cfg)
    assert (inherited["lr_scale"], new["lr_scale"]) == (0.25, 1.0)
    assert len(inherited["params"]) + len(new["params"]) == len(list(model.parameters()))
    names = {id(p): n for n, p in model.named_parameters()}
    new_names = {names[id(p)] for p in new["params"]}
    assert "pass_embedding" in new_names and "heads.3.0.weight" in new_names  # grown: full rate
    assert not any(n.startswith(("stem", "trunk", "context.")) for n in new_names)
    assert len(_param_groups(model, dataclasses.replace(cfg, pretrained_lr_scale=1.0))) == 1


def test_a_weight_average_is_validated_kept_as_best_and_exported(packed):
    """With ema_decay the checkpoint carries the average beside the last step's weights, the
    best validation so far is kept beside it, and the export is the average."""
    import torch

    from lossless_bpg.residual.weights import model_id
    from lossless_bpg.train.loop import best_checkpoint, checkpoint_model

    d, _, pack = packed
    cfg = d / "ema.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "ema_decay": 0.9}))
    ckpt = d / "ck_ema.pt"
    assert main(["train", "--config", str(cfg), "--pack", str(pack), "--checkpoint", str(ckpt),
                 "--export", "ema_model", "--export-dir", str(d)]) == 0
    state = torch.load(ckpt, weights_only=False)
    assert state["average"]["updates"] == TINY["steps"]
    best = torch.load(best_checkpoint(ckpt), weights_only=False)
    assert best["best_validation"] == state["best_validation"] and best["step"] in (3, 6)
    averaged, _ = checkpoint_model(ckpt)
    last = {k: v for k, v in state["model"].items()}
    assert any(not torch.equal(averaged.state_dict()[k], last[k]) for k in last)
    exported = load_model("ema_model", d)
    assert exported.model_id_hex == model_id(averaged).hex()


def test_a_schedule_decays_over_its_budget_from_where_its_cycle_began():
    from lossless_bpg.train.loop import Schedule, warmup_cosine_lr

    fresh = Schedule.resumed(steps=1000, max_minutes=10, state=None, restart=False)
    assert fresh.progress(0, 0.0) == 0.0 and fresh.progress(100, 300.0) == 0.5  # time is nearer its end
    assert fresh.lr(1e-3, 1e-5, 100, 300.0) == warmup_cosine_lr(1e-3, 1e-5, 100, 0.5)

    state = {"step": 5000, "seconds": 600.0}  # a run at the end of its 10 minutes
    resumed = Schedule.resumed(10_000, 10, state, restart=False)
    assert resumed.progress(5000, 600.0) == 1.0, "without a restart the old cycle is over"

    restarted = Schedule.resumed(10_000, 14, state, restart=True)
    assert restarted.progress(5000, 600.0) == 0.0 and restarted.progress(5100, 720.0) == 0.5
    assert restarted.progress(5200, 840.0) == 1.0
    assert restarted.lr(1e-3, 1e-5, 5000, 600.0) == pytest.approx(1e-3 / 500), "warm-up again"
    again = Schedule.resumed(10_000, 14, {**state, **restarted.record()}, restart=False)
    assert again == restarted, "a checkpoint keeps its cycle"


def test_the_logged_step_rate_counts_only_this_process_steps(monkeypatch):
    from lossless_bpg.train import loop

    clock = iter([1000.0, 1010.0])
    monkeypatch.setattr(loop.time, "perf_counter", lambda: next(clock))
    rate = loop.StepRate(step=30_000)  # resumed late in a long run
    assert rate.steps_per_second(30_050) == 5.0  # 50 steps in 10 s, not 30,050 over the run's life


def test_a_restart_needs_minutes_beyond_the_checkpoints():
    from lossless_bpg.errors import TrainingSetupError
    from lossless_bpg.train.loop import Schedule

    with pytest.raises(TrainingSetupError, match="above the checkpoint's 10.0 minutes"):
        Schedule.resumed(10_000, 10, {"step": 5000, "seconds": 600.0}, restart=True)
    with pytest.raises(TrainingSetupError):
        Schedule.resumed(10_000, None, {"step": 5000, "seconds": 600.0}, restart=True)


def test_restart_resumes_a_finished_run_with_a_new_cycle(packed, capsys):
    import torch

    d, cfg, pack = packed
    ckpt = d / "ck_restart.pt"
    base = ["train", "--config", str(cfg), "--pack", str(pack), "--checkpoint", str(ckpt)]
    assert main(base + ["--steps", "3"]) == 0
    first = torch.load(ckpt, weights_only=False)
    assert first["step"] == 3 and first["schedule_start"] == (0, 0.0)
    assert main(base + ["--steps", "3"]) == 0  # its cycle is over: nothing more to do
    assert torch.load(ckpt, weights_only=False)["step"] == 3
    minutes = first["seconds"] / 60 + 10
    assert main(base + ["--steps", "6", "--restart", "--minutes", f"{minutes}"]) == 0
    assert "a new learning-rate cycle from step 3" in capsys.readouterr().out
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 6 and state["schedule_start"] == (3, first["seconds"])
    # below the minutes already trained (a fixed 0.001 was not: 6 tiny steps can take < 60 ms)
    assert main(base + ["--restart", "--minutes", f"{state['seconds'] / 120:.9f}"]) == 1
    assert "a restart needs --minutes above" in capsys.readouterr().err


def test_the_last_steps_weights_are_validated_beside_the_average_only_when_asked(packed, capsys):
    d, _, pack = packed
    for flag, expected in ((True, 2), (False, 0)):
        cfg = d / f"ema_{flag}.yaml"
        cfg.write_text(yaml.safe_dump({**TINY, "ema_decay": 0.9, "val_last_weights": flag}))
        assert main(["train", "--config", str(cfg), "--pack", str(pack), "--checkpoint", str(d / f"ck_{flag}.pt")]) == 0
        out = capsys.readouterr().out
        assert out.count("last step's weights, val") == expected
        assert out.count(": train ") >= 2, "the average is validated either way"
