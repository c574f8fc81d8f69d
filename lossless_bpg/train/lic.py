"""Training of the learned lossy layer (``lic``) for the total lossless rate.

The loss of a batch is what the file would cost: bits of the latents and hyper-latents plus
the residual model's bits for ``x - x~``, per subpixel; the residual model is trained with
it (grown from a shipped residual model). A small distortion term (``distortion_weight`` x
MSE) only helps the synthesis out of its random start, where the residual model's gradient is
weak; it is negligible once the reconstruction is close. Resumable like the residual model's
training: the checkpoint holds both networks, the optimiser and the data generator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from ..lossy.lic.config import LicConfig
from ..lossy.lic.model import LicModel
from ..residual.layer import residual_bits
from ..residual.model import ResidualModel
from ..yaml_config import dataclass_options, plain
from .averaging import WeightAverage, evaluate_shipped
from .loop import Schedule, StepRate, best_checkpoint
from .prepare import is_validation

LOG_SECONDS = 240.0


@dataclass(frozen=True)
class LicTrainConfig:
    lic: LicConfig = field(default_factory=LicConfig)
    #: The shipped residual model the lic's own residual model starts from.
    residual_init: str = "fast"
    #: The residual model also reads the synthesis's decoder features (DLPR's conditioning;
    #: see :data:`..lossy.lic.model.SIDE_LAYER`). Grown in at zero, so a checkpoint or model
    #: without them resumes where it was; the new weights learn at ``lr``.
    side_features: bool = False
    crop: int = 128
    batch_size: int = 8
    lr: float = 5e-4
    #: Learning rate of the residual model (it starts trained, on HEVC reconstructions).
    residual_lr: float = 1e-4
    #: The residual model stays as it is for this many steps, while the synthesis learns
    #: from its random start (its first reconstructions would only teach it noise).
    residual_warmup: int = 1000
    lr_min: float = 1e-5
    distortion_weight: float = 0.002
    steps: int = 100000
    val_fraction: float = 0.05
    val_every: int = 1000
    #: Qualities measured at validation (every one would take too long on a CPU).
    val_qs: tuple[int, ...] = (12, 20, 28, 36)
    checkpoint_every: int = 50
    seed: int = 0
    #: Decay of the weight average (both networks) that is validated, kept as the best
    #: checkpoint and exported (``train/averaging.py``); 0: the last step's weights.
    ema_decay: float = 0.0
    #: With ``ema_decay``: also validate the last step's own weights beside the average (for
    #: the log only; it doubles the time validation takes).
    val_last_weights: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path) -> LicTrainConfig:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})

    @classmethod
    def from_dict(cls, data: dict) -> LicTrainConfig:
        data = dict(data)
        lic = LicConfig.from_dict(data.pop("lic", {}))
        return cls(lic=lic, **dataclass_options(cls, data, "lic training"))

    def to_dict(self) -> dict:
        return plain(self)


def is_lic_config(path: Path) -> bool:
    """Whether a training YAML trains the lic layer (it has a ``lic`` section)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    return isinstance(data, dict) and "lic" in data


def _read_images(data: Path, limit: int | None) -> list[tuple[str, np.ndarray]]:
    """(name, pixels) of a folder of training PNGs, or of a GPU bundle's ``originals.npz``
    (lossless WebP, see :mod:`.gpu_bundle`)."""
    if data.suffix == ".npz":
        from .portable import unwebp

        with np.load(data) as bundle:
            blob, offsets, names = bundle["blob"], bundle["offsets"], bundle["names"]
        count = len(names) if limit is None else min(limit, len(names))
        return [(Path(str(names[i])).stem, unwebp(blob[offsets[i] : offsets[i + 1]].tobytes())) for i in range(count)]
    from ..imageio import load_image

    paths = sorted(data.glob("*.png"))[:limit]
    if not paths:
        raise FileNotFoundError(f"no training PNGs in {data}")
    return [(p.stem, load_image(p)[0]) for p in tqdm(paths, desc="loading", unit="image", disable=None)]


def load_images(data: Path, val_fraction: float, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and validation crops of ``data`` (split by source photograph, as the
    residual model's training splits them), as uint8 (N, 3, H, W) tensors."""
    images = _read_images(Path(data), limit)
    if any("kodim" in name.lower() for name, _ in images):
        raise ValueError(f"{data} holds Kodak images: the test set is never trained on")
    splits: dict[bool, list[np.ndarray]] = {False: [], True: []}
    for name, pixels in images:
        splits[is_validation(name, val_fraction)].append(pixels)

    def stack(images: list[np.ndarray]) -> torch.Tensor:
        side = min(min(i.shape[:2]) for i in images)
        return torch.from_numpy(np.stack([i[:side, :side] for i in images])).permute(0, 3, 1, 2).contiguous()

    if not splits[True] or not splits[False]:
        raise ValueError("the training images do not make both a training and a validation split")
    return stack(splits[False]), stack(splits[True])


def _batch(images: torch.Tensor, size: int, crop: int, gen: torch.Generator) -> torch.Tensor:
    """Random crops with random horizontal flips, float (N, 3, crop, crop)."""
    n, _, h, w = images.shape
    idx = torch.randint(0, n, (size,), generator=gen).tolist()
    ys = torch.randint(0, h - crop + 1, (size,), generator=gen).tolist()
    xs = torch.randint(0, w - crop + 1, (size,), generator=gen).tolist()
    flips = (torch.rand(size, generator=gen) < 0.5).tolist()
    crops = []
    for i, y, x, f in zip(idx, ys, xs, flips):
        c = images[i, :, y : y + crop, x : x + crop]
        crops.append(c.flip(-1) if f else c)
    return torch.stack(crops).float()


def total_bits(lic: LicModel, residual_model: ResidualModel, image: torch.Tensor, q: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(latent bits, hyper-latent bits, residual bits, reconstruction) of a batch, the bits
    summed over it."""
    out = lic(image, q)
    side = out.side if residual_model.config.side_channels else None
    res = residual_bits(residual_model, out.recon, q.to(image.device, torch.float32), image - out.recon, side)
    return out.latent_bits.sum(), out.hyper_bits.sum(), res, out.recon


def evaluate(lic: LicModel, residual_model: ResidualModel, images: torch.Tensor, qs: tuple[int, ...]) -> dict:
    """Validation bits per subpixel: per quality (latents + hyper-latents + residual) and
    with the best of them per image (the encoder's choice)."""
    lic.eval()
    residual_model.eval()
    per_q = {q: [0.0, 0.0, 0.0] for q in qs}
    best = 0.0
    device = next(lic.parameters()).device
    with torch.no_grad():
        for i in range(len(images)):
            image = images[i : i + 1].to(device).float()
            costs = []
            for q in qs:
                y, z, r, _ = total_bits(lic, residual_model, image, torch.tensor([q], device=device))
                for k, v in enumerate((y, z, r)):
                    per_q[q][k] += float(v)
                costs.append(float(y + z + r))
            best += min(costs)
    lic.train()
    residual_model.train()
    n = images[0].numel() * len(images)
    return {"best": round(best / n, 4),
            **{q: {"latent": round(y / n, 4), "hyper": round(z / n, 4), "residual": round(r / n, 4),
                   "total": round((y + z + r) / n, 4)} for q, (y, z, r) in per_q.items()}}


def _residual_model(base: ResidualModel, side_channels: int) -> ResidualModel:
    """``base``, or ``base`` grown to read ``side_channels`` of the synthesis's features (the
    new weights at zero: it computes what ``base`` computes)."""
    if side_channels == base.config.side_channels:
        return base
    if base.config.side_channels:
        raise ValueError("the initial residual model reads decoder features of its own; set side_features")
    grown = ResidualModel(replace(base.config, side_channels=side_channels))
    grown.load_state_dict(base.state_dict(), strict=False)  # only side_in is missing: it stays zero
    return grown


def train_lic(cfg: LicTrainConfig, data: Path, checkpoint: Path, max_minutes: float | None = None,
              limit: int | None = None, device: str | None = None, log=print,
              restart: bool = False) -> tuple[LicModel, ResidualModel, dict]:
    """Train (or resume from ``checkpoint``) on ``data`` (a folder of PNGs or a GPU bundle's
    originals.npz) for ``cfg.steps`` or ``max_minutes`` of training time in all, whichever ends
    first (the cosine decay follows it; ``restart``: a new cycle, see :class:`.loop.Schedule`),
    on CUDA when present. Returns both networks (on the CPU) and the record (step, seconds,
    device, last validation)."""
    from ..residual.weights import load_model

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(cfg.seed)
    train_images, val_images = load_images(data, cfg.val_fraction, limit)
    train_images = train_images.to(dev)
    log(f"lic training on {dev}: {len(train_images)} train / {len(val_images)} validation images")
    lic = LicModel(cfg.lic).to(dev)
    residual_model = _residual_model(load_model(cfg.residual_init).model, lic.side_channels if cfg.side_features else 0)
    residual_model.to(dev).train()
    side_params = list(residual_model.side_in.parameters()) if cfg.side_features else []
    side_ids = {id(p) for p in side_params}
    opt = torch.optim.Adam([{"params": lic.parameters(), "base_lr": cfg.lr},
                            {"params": [p for p in residual_model.parameters() if id(p) not in side_ids],
                             "base_lr": cfg.residual_lr}])
    side_group = {"params": side_params, "base_lr": cfg.lr}
    gen = torch.Generator().manual_seed(cfg.seed)
    step, elapsed, last_val = 0, 0.0, {}
    best_val = float("inf")
    state = None
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=dev, weights_only=False)
        lic.load_state_dict(state["lic"])
        missing, unexpected = residual_model.load_state_dict(state["residual"], strict=False)
        grown = bool(missing)
        if unexpected or any(not name.startswith("side_in.") for name in missing):
            raise ValueError(f"{checkpoint} does not fit this configuration's residual model "
                             f"(missing {missing}, unexpected {unexpected})")
        if side_params and not grown:
            opt.add_param_group(side_group)
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"].cpu())
        step, elapsed, last_val = state["step"], state["seconds"], state.get("validation", {})
        best_val = state.get("best_validation", best_val)
        log(f"resumed from {checkpoint} at step {step}"
            + (" (the residual model grown to read the synthesis features, at zero)" if grown else ""))
    if side_params and len(opt.param_groups) == 2:
        opt.add_param_group(side_group)
    schedule = Schedule.resumed(cfg.steps, max_minutes, state, restart)
    if restart and state is not None:
        log(schedule.describe())
    average = WeightAverage({"lic": lic, "residual": residual_model}, cfg.ema_decay) if cfg.ema_decay else None
    if average is not None and state is not None and "average" in state:
        try:
            average.load_state_dict(state["average"])
        except ValueError:  # the residual model was grown just now: average from here on
            log("the saved weight average does not fit the grown residual model: a new average starts")

    def save(path: Path = checkpoint) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"lic": lic.state_dict(), "residual": residual_model.state_dict(), "optimizer": opt.state_dict(),
                    "generator": gen.get_state(), "step": step, "seconds": elapsed, "config": cfg.to_dict(),
                    "validation": last_val, "best_validation": best_val, **schedule.record(),
                    **({"average": average.state_dict()} if average is not None else {})}, tmp)
        tmp.replace(path)

    def log_last_weights(val: dict) -> None:
        log(f"step {step}: last step's weights, val {val}")

    def validate() -> None:
        # The validation totals wander as the pair specialises: the checkpoint of the best one
        # so far is kept beside the last, the best to export, the last to resume from.
        nonlocal last_val, best_val
        last_val = evaluate_shipped(average, lambda: evaluate(lic, residual_model, val_images, cfg.val_qs),
                                    log_last_weights if cfg.val_last_weights else None)
        log(f"step {step}: val {last_val}")
        if last_val["best"] < best_val:
            best_val = last_val["best"]
            save(best_checkpoint(checkpoint))

    start = time.perf_counter() - elapsed
    last_log = time.perf_counter()
    rate = StepRate(step)
    window: list[tuple[float, float, float, float]] = []
    bar = tqdm(total=cfg.steps, initial=step, desc="train lic", unit="step", disable=None)
    while schedule.progress(step, elapsed) < 1.0:
        for group in opt.param_groups:
            group["lr"] = schedule.lr(group["base_lr"], cfg.lr_min, step, elapsed)
        if step < cfg.residual_warmup:
            for group in opt.param_groups[1:]:
                group["lr"] = 0.0
        image = _batch(train_images, cfg.batch_size, cfg.crop, gen)
        q = torch.randint(cfg.lic.q_min, cfg.lic.q_max + 1, (cfg.batch_size,), generator=gen).to(dev)
        y, z, r, recon = total_bits(lic, residual_model, image, q)
        n = image.numel()
        mse = ((recon - image) ** 2).mean()
        loss = (y + z + r) / n + cfg.distortion_weight * mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*lic.parameters(), *residual_model.parameters()], 1.0)
        opt.step()
        if average is not None:
            average.update()
        step += 1
        bar.update(1)
        window.append((float(y.detach()) / n, float(z.detach()) / n, float(r.detach()) / n, float(mse.detach())))
        elapsed = time.perf_counter() - start
        if time.perf_counter() - last_log >= LOG_SECONDS or step % cfg.val_every == 0:
            last_log = time.perf_counter()
            yb, zb, rb, m = (sum(v) / len(window) for v in zip(*window))
            window.clear()
            log(f"step {step}: train bpsp latent {yb:.4f} + hyper {zb:.4f} + residual {rb:.4f} = "
                f"{yb + zb + rb:.4f}, mse {m:.1f}, {rate.steps_per_second(step):.2f} steps/s, {elapsed / 60:.1f} min")
        if step % cfg.val_every == 0:
            validate()
        if step % cfg.checkpoint_every == 0:
            save()
    bar.close()
    validate()
    log(f"stopped at step {step} after {elapsed:.0f} s")
    save()
    if average is not None:  # what is validated is what ships
        average.copy_to_modules()
    hardware = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return (lic.cpu().eval(), residual_model.cpu().eval(),
            {"step": step, "seconds": round(elapsed, 1), "device": hardware, "validation": last_val})
