"""The training loop: resumable, device-agnostic (CUDA when present, else CPU)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import TrainingSetupError
from ..residual.config import GENERATION_2_FIELDS, ResidualModelConfig
from ..residual.layer import residual_bits
from ..residual.model import ResidualModel, grow_state_dict
from .averaging import WeightAverage, evaluate_shipped
from .config import TrainConfig
from .data import PackedData, read_pack

LOG_EVERY = 50
#: ... or at the first such step after this many seconds (slow CPU runs log every few minutes).
LOG_SECONDS = 240.0


class StepRate:
    """Training steps per second since this process resumed, for the log: the run's lifetime
    average would mix in earlier sessions' machines, thread counts and validations."""

    def __init__(self, step: int) -> None:
        self.first_step, self.started = step, time.perf_counter()

    def steps_per_second(self, step: int) -> float:
        return (step - self.first_step) / max(time.perf_counter() - self.started, 1e-9)


@dataclass
class TrainResult:
    model: ResidualModel
    steps: int
    seconds: float
    val_bpsp: dict[int, float]  # residual bits per subpixel per Q on the validation split
    device: str


def evaluate(model: ResidualModel, data: PackedData) -> dict[int, float]:
    """Residual bpsp on whole validation images, per Q (images of one Q pooled)."""
    model.eval()
    totals: dict[int, list[float]] = {}
    with torch.no_grad():
        for i in range(len(data)):
            for j in range(data.qs.shape[1]):
                image, recon, q = data.full(slice(i, i + 1), j)
                acc = totals.setdefault(int(q), [0.0, 0.0])
                acc[0] += float(residual_bits(model, recon, q, image - recon))
                acc[1] += image.numel()
    model.train()
    return {q: bits / n for q, (bits, n) in sorted(totals.items())}


def _param_groups(model: ResidualModel, cfg: TrainConfig) -> list[dict]:
    """One group, or with ``cfg.pretrained_lr_scale`` != 1 for a generation 2 model two: the
    parameters generation 1 has too (same name and shape: what growth copies from the shipped
    model) at that fraction of the learning rate, the new or grown ones at the full rate."""
    if cfg.pretrained_lr_scale == 1.0 or model.generation == 1:
        return [{"params": list(model.parameters())}]
    base = {k: v for k, v in cfg.model.to_dict().items() if k not in GENERATION_2_FIELDS}
    old = {k: v.shape for k, v in ResidualModel(ResidualModelConfig(**base)).state_dict().items()}
    inherited: list[torch.nn.Parameter] = []
    new: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        (inherited if old.get(name) == param.shape else new).append(param)
    return [{"params": inherited, "lr_scale": cfg.pretrained_lr_scale}, {"params": new, "lr_scale": 1.0}]


def best_checkpoint(checkpoint: Path) -> Path:
    """Where training keeps the checkpoint of its best validation so far, beside ``checkpoint``
    (the best to export, the last to resume from)."""
    return checkpoint.with_name(checkpoint.stem + ".best" + checkpoint.suffix)


def mean_bpsp(val_bpsp: dict[int, float]) -> float:
    """One number per validation: the mean over the packed Qs (what the best checkpoint keeps)."""
    return sum(val_bpsp.values()) / len(val_bpsp)


@dataclass(frozen=True)
class Schedule:
    """One learning-rate cycle: warm-up, then cosine decay, from where it started (step and
    training seconds: 0, or where a ``--restart`` began a new cycle) to ``steps`` or the time
    budget (training seconds in all, the checkpoint's earlier ones included), whichever is
    nearer its end; the run stops there. A checkpoint records its cycle's start, so a resumed
    run goes on with the same cycle."""

    steps: int
    budget_s: float | None
    start_step: int = 0
    start_s: float = 0.0

    @classmethod
    def resumed(cls, steps: int, max_minutes: float | None, state: dict | None, restart: bool) -> Schedule:
        """The cycle of a run resumed from checkpoint ``state`` (None: a new run); with
        ``restart``, a new cycle from the checkpoint's step over what ``max_minutes`` adds."""
        budget_s = None if max_minutes is None else 60.0 * max_minutes
        if state is None:
            return cls(steps, budget_s)
        if not restart:
            start_step, start_s = state.get("schedule_start", (0, 0.0))
            return cls(steps, budget_s, start_step, start_s)
        step, seconds = state["step"], state["seconds"]
        if budget_s is None or budget_s <= seconds:
            raise TrainingSetupError(f"a restart needs --minutes above the checkpoint's {seconds / 60:.1f} minutes "
                                     "(--minutes counts them too; the new cycle runs over what it adds)")
        return cls(max(steps, step + 1), budget_s, step, seconds)

    def progress(self, step: int, elapsed_s: float) -> float:
        done = (step - self.start_step) / max(1, self.steps - self.start_step)
        if self.budget_s is None:
            return done
        return max(done, (elapsed_s - self.start_s) / max(1e-9, self.budget_s - self.start_s))

    def lr(self, peak: float, lr_min: float, step: int, elapsed_s: float) -> float:
        return warmup_cosine_lr(peak, lr_min, step - self.start_step, self.progress(step, elapsed_s))

    def describe(self) -> str:
        """The log line of a restarted cycle: where it starts and how long it runs."""
        minutes = ((self.budget_s or self.start_s) - self.start_s) / 60
        return f"a new learning-rate cycle from step {self.start_step} over {minutes:.1f} minutes"

    def record(self) -> dict:
        """What a checkpoint keeps of the cycle (see :meth:`resumed`)."""
        return {"schedule_start": (self.start_step, self.start_s)}


def warmup_cosine_lr(lr: float, lr_min: float, step: int, progress: float) -> float:
    """Linear warm-up over 500 steps, then cosine decay from ``lr`` to ``lr_min`` over
    ``progress`` in [0, 1] (every training loop of the project)."""
    warm = min(1.0, (step + 1) / 500)
    cos = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return warm * (lr_min + (lr - lr_min) * cos)


def train(
    cfg: TrainConfig,
    pack_path: Path,
    checkpoint: Path,
    device: str | None = None,
    max_minutes: float | None = None,
    log=print,
    init_from: Path | None = None,
    validate_first: bool = False,
    restart: bool = False,
) -> TrainResult:
    """Train (or resume from ``checkpoint``) until ``cfg.steps`` or ``max_minutes`` of wall time,
    whichever comes first; the learning-rate schedule follows whichever is nearer its end, so
    a time-limited run still finishes its decay. ``validate_first``: measure the starting model
    on the validation split before the first step (a grown model's baseline). ``restart``: a
    resumed run starts a new learning-rate cycle (see :class:`Schedule`)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(cfg.seed)
    pack = read_pack(pack_path, cfg.qs)
    train_data = PackedData(pack, dev, cfg.val_fraction, "train", cfg.source_weights)
    val_data = PackedData(pack, dev, cfg.val_fraction, "val")
    del pack
    log(f"training on {dev}: {len(train_data)} train / {len(val_data)} validation images")
    model = ResidualModel(cfg.model).to(dev)
    if init_from is not None and not checkpoint.exists():
        source = torch.load(init_from, map_location="cpu", weights_only=True)
        grown, taken = grow_state_dict(model, {k: v.to(dev) for k, v in source.items()})
        model.load_state_dict(grown)
        log(f"initialised {taken}/{len(grown)} tensors from {init_from} (smaller ones grown, zero-padded)")
    opt = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, elapsed = 0, 0.0
    best_val = float("inf")
    state = None
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=dev, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        step, elapsed = state["step"], state["seconds"]
        best_val = state.get("best_validation", best_val)
        log(f"resumed from {checkpoint} at step {step}")
    schedule = Schedule.resumed(cfg.steps, max_minutes, state, restart)
    if restart and state is not None:
        log(schedule.describe())
    average = WeightAverage({"model": model}, cfg.ema_decay) if cfg.ema_decay else None
    if average is not None and state is not None and "average" in state:
        average.load_state_dict(state["average"])

    def save(path: Path = checkpoint) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                 "step": step, "seconds": elapsed, "config": cfg.to_dict(), "best_validation": best_val,
                 **schedule.record()}
        if average is not None:
            state["average"] = average.state_dict()
        torch.save(state, tmp)
        tmp.replace(path)

    def log_last_weights(val: dict[int, float]) -> None:
        log(f"step {step}: last step's weights, val {val}")

    def validate() -> None:
        """Validate the weights the run ships (the average where it keeps one); a new best is
        also saved to :func:`best_checkpoint`."""
        nonlocal best_val
        val = evaluate_shipped(average, lambda: evaluate(model, val_data),
                               log_last_weights if cfg.val_last_weights else None)
        log(f"step {step}: train {running:.4f}, val {val}")
        if mean_bpsp(val) < best_val:
            best_val = mean_bpsp(val)
            save(best_checkpoint(checkpoint))

    if validate_first and step == 0:
        log(f"step 0 (initial model): val {evaluate(model, val_data)}")
    start = time.perf_counter() - elapsed
    last_log = time.perf_counter()
    rate = StepRate(step)
    model.train()
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", disable=None)
    running, window = float("nan"), []
    while schedule.progress(step, elapsed) < 1.0:
        lr = schedule.lr(cfg.lr, cfg.lr_min, step, elapsed)
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        image, recon, q = train_data.batch(cfg.batch_size, cfg.crop, gen)
        loss = residual_bits(model, recon, q, image - recon) / image.numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if average is not None:
            average.update()
        step += 1
        window.append(loss.detach())
        if step % LOG_EVERY == 0:  # reading the loss syncs a GPU; do it rarely
            running = float(torch.stack(window).mean())
            window.clear()
            bar.update(LOG_EVERY)
            bar.set_postfix(bpsp=f"{running:.4f}")
            if step % (20 * LOG_EVERY) == 0 or time.perf_counter() - last_log >= LOG_SECONDS:
                last_log = time.perf_counter()
                log(f"step {step}: train residual bpsp {running:.4f}, lr {lr:.2e}, "
                    f"{rate.steps_per_second(step):.2f} steps/s, {elapsed / 60:.1f} min")
        elapsed = time.perf_counter() - start
        if step % cfg.val_every == 0:
            validate()
        if step % cfg.checkpoint_every == 0:
            save()
    bar.close()
    log(f"stopped at step {step} after {elapsed:.0f} s")
    save()
    if average is not None:
        average.copy_to_modules()
    val = evaluate(model, val_data)
    log(f"final validation residual bpsp per Q{' (weight average)' if average else ''}: {val}")
    return TrainResult(model.cpu().eval(), step, elapsed, val, str(dev))


def checkpoint_model(checkpoint: Path) -> tuple[ResidualModel, dict]:
    """The model of a training checkpoint (on the CPU, eval mode; the run's weight average where
    it keeps one) and its record: step, seconds, config."""
    from .config import TrainConfig

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = state["config"]
    model_cfg = TrainConfig.from_dict(cfg).model
    model = ResidualModel(model_cfg)
    model.load_state_dict(state["model"])
    if "average" in state:
        average = WeightAverage({"model": model}, state["average"]["decay"])
        average.load_state_dict(state["average"])
        average.copy_to_modules()
    return model.eval(), {"step": state["step"], "seconds": state["seconds"], "config": cfg}
