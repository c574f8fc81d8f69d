"""Measurement for issue 11: what would backward (decoder-side) adaptation over the 16 passes
gain on top of (or instead of) today's forward adaptation?

For each image, at the Q the codec's own search picks (``--q search``, default) or a fixed Q,
the float model (``ExactParams.as_float``, as the encoder's estimate sweep in layer.py) gives
every stream's mixtures; the ideal code length (``mixture.log_prob`` over the channel's range,
the estimate the Q search uses) is computed for:

  a      no adaptation
  b      today's forward adaptation: ``adaptation.fit`` on the codec's own samples/check grids,
         plus 8 bits per parameter sent (as the fit counts them; the per-stream count byte of the
         container is the same for every variant and not counted anywhere)
  c1     backward: the 10-parameter recalibration of adaptation.py fitted (L-BFGS, the code's
         own ``_minimise``) on all subpixels of passes < s of the same channel (pooled), applied
         to pass s; pass 0 unadapted. No side information.
  c1o    the same with only the log-scale offset and gain free.
  c2s    backward SSE-style calibration: a log-scale offset per bucket of the predicted
         (mixture-effective) log-scale, chosen on passes < s of the same channel from a grid of
         offsets (-1..1 in steps of 1/16), smoothed towards the stream-wide best offset
         (pseudo-count ``--prior``), applied to pass s.
  c2a    as c2s, buckets = predicted log-scale x local activity ratio (log of the mean |r| of this
         channel's already decoded neighbours, within +-4 pixels, minus the predicted log-scale).
  c2x    as c2a, plus (G, B) how surprising the previous channel was at the same pixel in the same
         pass (log |r - mean| - log-scale of channel c-1): buckets scale x activity x surprise.
  c3a    forward (b) on passes < F (side info counted), c1 on passes >= F.
  c3b    forward (b) on passes < F, c2x on passes >= F.
  c3c    forward (b) on every stream, then c2x on top of it (buckets fitted on the forward-adapted
         mixtures of earlier passes), for passes >= 1.
  ceil   not a candidate: every stream's 10 parameters fitted on the stream itself and sent for
         free; the most any stream-constant recalibration (forward or backward) could give.
  c3d    per stream, the encoder keeps the cheaper of b and c3c (a flag that fits in the spare
         values of the stream's existing count byte: no extra bits counted).

Every backward fit for pass s uses only subpixels decoded before pass s of that channel (and,
for c2x, the previous channel of the same pass, decoded before this one).

Usage:
  nice -n 10 .venv/bin/python scripts/experiments/backward_adaptation.py \
      --set val --out benchmarks/backward_adaptation/val.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lossless_bpg.imageio import load_rgb
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import adaptation
from lossless_bpg.residual.layer import FitSamples, _Passes, _ranges
from lossless_bpg.residual.mixture import log_prob
from lossless_bpg.residual.model import BLOCK, PASS_OFFSETS
from lossless_bpg.residual.weights import load_model
from lossless_bpg.train.prepare import is_validation

LN2 = math.log(2.0)
#: Log-scale offsets the bucket calibration chooses from (real units; multiples of 1/32).
OFFSETS = torch.arange(-16, 17, dtype=torch.float32) / 16.0
#: Bucket edges: predicted effective log-scale (grey levels), activity ratio, surprise.
SCALE_EDGES = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0])
RATIO_EDGES = torch.tensor([-1.0, -0.4, 0.0, 0.4, 1.0])
SURPRISE_EDGES = torch.tensor([-1.5, -0.5, 0.5])
VARIANTS = ("a", "b", "c1", "c1o", "c2s", "c2a", "c2x", "c3a", "c3b", "c3c", "c3d", "ceil")


@dataclass
class Stream:
    step: int
    c: int
    lo: int
    hi: int
    logits: torch.Tensor  # (K, M) float
    means: torch.Tensor
    log_scales: torch.Tensor
    target: torch.Tensor  # (M,)
    activity: torch.Tensor  # (M,) log mean |r| of decoded neighbours (passes < step), this channel


def stream_bits(logits, means, log_scales, target, lo, hi) -> torch.Tensor:
    """(M,) ideal code length in bits of each subpixel (the estimate path's log_prob)."""
    lp = log_prob(logits.unsqueeze(0), means.unsqueeze(0), log_scales.unsqueeze(0), target.unsqueeze(0), lo, hi)
    return -lp[0] / LN2


def adapted(s: Stream, params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p = torch.zeros(adaptation.parameter_count(s.logits.shape[0]))
    p[: len(params)] = torch.as_tensor(params, dtype=torch.float32)
    return adaptation.apply_float(s.logits, s.means, s.log_scales, p.unsqueeze(1))


def effective(logits, means, log_scales) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixture mean and log of the weighted scale, (M,) each."""
    w = torch.softmax(logits, 0)
    return (w * means).sum(0), torch.log((w * torch.exp(log_scales)).sum(0))


def activity_maps(residual: torch.Tensor, steps: int, h: int, w: int) -> list[torch.Tensor]:
    """For each pass s: (3, hs, ws) log(mean |r| + 0.5) over the pixels of passes < s within
    +-4 pixels (log 0.5 where none)."""
    b = BLOCK[steps]
    known = torch.zeros(1, 1, *residual.shape[-2:])
    absr = residual.abs()
    kernel = torch.ones(1, 1, 9, 9)
    out = []
    for s in range(steps):
        dy, dx = PASS_OFFSETS[steps][s]
        num = F.conv2d((absr * known).view(3, 1, *absr.shape[-2:]), kernel, padding=4)
        den = F.conv2d(known, kernel, padding=4)
        act = torch.log(num / den.clamp_min(1) + 0.5)[:, 0, dy::b, dx::b]
        hs, ws = (h - dy + b - 1) // b, (w - dx + b - 1) // b
        out.append(act[:, :hs, :ws])
        known[..., dy::b, dx::b] = 1.0
    return out


def collect(model, image: np.ndarray, recon: np.ndarray, q: int):
    """Every coded stream's float mixtures, in coding order, and the forward fit's samples."""
    residual = image.astype(np.int16) - recon.astype(np.int16)
    ranges = _ranges(residual)
    streams: list[Stream] = []
    fit_samples = FitSamples()
    with torch.inference_mode():
        passes = _Passes(model.exact, recon, q)
        passes.fill(residual)
        acts = activity_maps(passes.canvas[0, :, : passes.height, : passes.width].clone(), model.exact.steps,
                             passes.height, passes.width)
        for step, (params, target) in enumerate(passes):
            if params is None:
                continue
            estimate = params.as_float()
            for c, (lo, hi) in enumerate(ranges):
                if lo == hi:
                    continue
                logits, means, log_scales = estimate.channel(c, target)
                fit_samples.add((step, c), logits, means, log_scales, target[:, c], lo, hi)
                k = logits.shape[1]
                streams.append(Stream(step, c, lo, hi, logits[0].reshape(k, -1).clone(), means[0].reshape(k, -1).clone(),
                                      log_scales[0].reshape(k, -1).clone(), target[0, c].reshape(-1).float().clone(),
                                      acts[step][c].reshape(-1).clone()))
    return streams, fit_samples


# ---------------------------------------------------------------- c1: pooled 10-parameter fit

def pooled_sample(earlier: list[Stream], cap: int) -> adaptation.StreamSample:
    logits = torch.cat([s.logits for s in earlier], 1)
    means = torch.cat([s.means for s in earlier], 1)
    log_scales = torch.cat([s.log_scales for s in earlier], 1)
    target = torch.cat([s.target for s in earlier])
    count = target.numel()
    stride = max(1, math.ceil(count / cap))
    lo, hi = earlier[0].lo, earlier[0].hi
    return adaptation.StreamSample(logits[:, ::stride].contiguous(), means[:, ::stride].contiguous(),
                                   log_scales[:, ::stride].contiguous(), target[::stride].contiguous(), lo, hi, count)


def backward_recalibration(streams: list[Stream], free_columns, cap: int) -> dict[tuple[int, int], tuple[int, ...]]:
    """For every stream of pass >= 1: parameters fitted on passes < s of its channel (all
    targets fitted in one L-BFGS run, as adaptation.fit does; each has its own parameters)."""
    keys, samples = [], []
    for s in streams:
        earlier = [e for e in streams if e.c == s.c and e.step < s.step]
        if earlier:
            keys.append((s.step, s.c))
            samples.append(pooled_sample(earlier, cap))
    if not samples:
        return {}
    k = samples[0].logits.shape[0]
    with torch.inference_mode(False), torch.enable_grad():
        batch = adaptation._Batch([x.cloned() for x in samples])
        free = torch.zeros(len(samples), adaptation.parameter_count(k), dtype=torch.bool)
        free[:, list(free_columns)] = True
        start = torch.zeros(free.shape)
        fitted = adaptation._minimise(batch, start, free, adaptation.FIT_ITERATIONS)
    return {key: tuple(int(v) for v in fitted[i]) for i, key in enumerate(keys)}


def own_fit(streams: list[Stream], cap: int) -> dict[tuple[int, int], tuple[int, ...]]:
    """Every stream's 10 parameters fitted on (a stride sample of) the stream itself."""
    samples = [pooled_sample([s], cap) for s in streams]
    k = samples[0].logits.shape[0]
    with torch.inference_mode(False), torch.enable_grad():
        batch = adaptation._Batch([x.cloned() for x in samples])
        free = torch.ones(len(samples), adaptation.parameter_count(k), dtype=torch.bool)
        fitted = adaptation._minimise(batch, torch.zeros(free.shape), free, adaptation.FIT_ITERATIONS)
    return {(s.step, s.c): tuple(int(v) for v in fitted[i]) for i, s in enumerate(streams)}


# ---------------------------------------------------------------- c2: bucket calibration

def offset_table(logits, means, log_scales, target, lo, hi) -> torch.Tensor:
    """(len(OFFSETS), M) bits of each subpixel with every log-scale offset."""
    rows = []
    for d in OFFSETS:
        ls = (log_scales + d).clamp(adaptation.LOG_SCALE_LO, adaptation.LOG_SCALE_HI)
        rows.append(stream_bits(logits, means, ls, target, lo, hi))
    return torch.stack(rows)


def buckets(eff_ls: torch.Tensor, ratio: torch.Tensor | None, surprise: torch.Tensor | None) -> torch.Tensor:
    b = torch.bucketize(eff_ls, SCALE_EDGES)
    if ratio is not None:
        b = b * (len(RATIO_EDGES) + 1) + torch.bucketize(ratio, RATIO_EDGES)
    if surprise is not None:
        b = b * (len(SURPRISE_EDGES) + 2) + torch.where(torch.isnan(surprise), len(SURPRISE_EDGES) + 1,
                                                        torch.bucketize(surprise.nan_to_num(0.0), SURPRISE_EDGES))
    return b


NUM_BUCKETS = (len(SCALE_EDGES) + 1) * (len(RATIO_EDGES) + 1) * (len(SURPRISE_EDGES) + 2)


def bucket_calibration(tables: dict, bucket_ids: dict, streams: list[Stream], prior: float, first: int) -> dict:
    """(step, c) -> (M,) bits with per-bucket log-scale offsets chosen on passes < step of the
    channel (pass < first: no backward correction, the table's zero-offset row)."""
    zero = int((OFFSETS == 0).nonzero())
    result = {}
    for c in range(3):
        chan = sorted((s for s in streams if s.c == c), key=lambda s: s.step)
        acc = torch.zeros(NUM_BUCKETS, len(OFFSETS))  # bits per bucket and offset, passes so far
        acc_n = torch.zeros(NUM_BUCKETS)  # subpixels per bucket, passes so far
        for s in chan:
            key = (s.step, s.c)
            table, ids = tables[key], bucket_ids[key]
            if s.step < first or not acc_n.sum():
                result[key] = table[zero]
            else:
                overall = acc.sum(0) / acc_n.sum()  # bits per subpixel of the stream-wide curve
                choice = (acc + prior * overall.unsqueeze(0)).argmin(1)  # (buckets,)
                result[key] = table.gather(0, choice[ids].unsqueeze(0))[0]
            acc.index_add_(0, ids, table.T)
            acc_n.index_add_(0, ids, torch.ones(ids.numel()))
    return result


def bucket_variant(streams: list[Stream], mixtures: dict, with_ratio: bool, with_surprise: bool, prior: float,
                   first: int = 1) -> dict:
    tables, ids = {}, {}
    by_key = {(s.step, s.c): s for s in streams}
    for s in streams:
        lg, mu, ls = mixtures[(s.step, s.c)]
        tables[(s.step, s.c)] = offset_table(lg, mu, ls, s.target, s.lo, s.hi)
        _, ls_eff = effective(lg, mu, ls)
        ratio = (s.activity - ls_eff) if with_ratio else None
        surprise = None
        if with_surprise:
            prev = by_key.get((s.step, s.c - 1)) if s.c else None
            if prev is None:
                surprise = torch.full_like(ls_eff, float("nan"))
            else:
                plg, pmu, pls = mixtures[(prev.step, prev.c)]
                pmean, pls_eff = effective(plg, pmu, pls)
                surprise = torch.log((prev.target - pmean).abs() + 0.5) - pls_eff
        ids[(s.step, s.c)] = buckets(ls_eff, ratio, surprise)
    return bucket_calibration(tables, ids, streams, prior, first)


# ---------------------------------------------------------------- per image

def measure(model, image: np.ndarray, recon: np.ndarray, q: int, args) -> dict:
    streams, fit_samples = collect(model, image, recon, q)
    subpixels = image.size
    row: dict = {"q": q}
    raw = {(s.step, s.c): (s.logits, s.means, s.log_scales) for s in streams}
    bits_a = {(s.step, s.c): stream_bits(s.logits, s.means, s.log_scales, s.target, s.lo, s.hi).sum() for s in streams}

    t = time.perf_counter()
    forward = fit_samples.fit()
    row["t_forward"] = time.perf_counter() - t
    fwd_mix = {(s.step, s.c): adapted(s, forward.get((s.step, s.c), ())) for s in streams}
    side = {key: 8.0 * len(p) for key, p in forward.items()}
    bits_b = {key: stream_bits(*fwd_mix[key], s.target, s.lo, s.hi).sum() + side.get(key, 0.0)
              for key, s in ((k, s) for s in streams for k in [(s.step, s.c)])}

    t = time.perf_counter()
    c1 = backward_recalibration(streams, range(adaptation.parameter_count(streams[0].logits.shape[0])), args.cap)
    row["t_c1"] = time.perf_counter() - t
    t = time.perf_counter()
    c1o = backward_recalibration(streams, (adaptation.LOG_SCALE_OFFSET, adaptation.LOG_SCALE_GAIN), args.cap)
    row["t_c1o"] = time.perf_counter() - t

    def c1_bits(fit: dict) -> dict:
        return {(s.step, s.c): stream_bits(*adapted(s, fit.get((s.step, s.c), ())), s.target, s.lo, s.hi).sum()
                for s in streams}

    bits_c1, bits_c1o = c1_bits(c1), c1_bits(c1o)
    # Ceiling of any stream-constant recalibration: each stream fitted on itself, sent for free.
    ceiling = own_fit(streams, args.cap)
    bits_ceiling = c1_bits(ceiling)

    timings = {}

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t
        return {key: v.sum() for key, v in out.items()}

    bits_c2s = timed("t_c2s", lambda: bucket_variant(streams, raw, False, False, args.prior))
    bits_c2a = timed("t_c2a", lambda: bucket_variant(streams, raw, True, False, args.prior))
    bits_c2x = timed("t_c2x", lambda: bucket_variant(streams, raw, True, True, args.prior))
    bits_c2x_fwd = timed("t_c3c", lambda: bucket_variant(streams, fwd_mix, True, True, args.prior))
    row.update(timings)

    keys = [(s.step, s.c) for s in streams]
    f = args.forward_passes
    totals = {
        "a": sum(bits_a[k] for k in keys),
        "b": sum(bits_b[k] for k in keys),
        "c1": sum(bits_c1[k] for k in keys),
        "c1o": sum(bits_c1o[k] for k in keys),
        "c2s": sum(bits_c2s[k] for k in keys),
        "c2a": sum(bits_c2a[k] for k in keys),
        "c2x": sum(bits_c2x[k] for k in keys),
        "c3a": sum(bits_b[k] if k[0] < f else bits_c1[k] for k in keys),
        "c3b": sum(bits_b[k] if k[0] < f else bits_c2x[k] for k in keys),
        "c3c": sum(bits_c2x_fwd[k] + side.get(k, 0.0) for k in keys),
        "c3d": sum(min(bits_b[k], bits_c2x_fwd[k] + side.get(k, 0.0)) for k in keys),
        "ceil": sum(bits_ceiling[k] for k in keys),
    }
    row["b_side"] = sum(side.values()) / subpixels
    # Per pass (summed over channels), for the breakdown in the results.
    for name, table in (("a", bits_a), ("b", bits_b), ("c2x", bits_c2x), ("c3c", {k: bits_c2x_fwd[k] + side.get(k, 0.0) for k in keys})):
        for step in sorted({k[0] for k in keys}):
            row[f"p{step}_{name}"] = float(sum(table[k] for k in keys if k[0] == step)) / subpixels
    for name in VARIANTS:
        row[name] = float(totals[name]) / subpixels
    return row


def image_list(kind: str, data: Path, fraction: float, limit: int | None) -> list[Path]:
    paths = sorted(data.glob("*.png"))
    if kind == "val":
        chosen = [p for p in paths if is_validation(p.name, fraction)]
    elif kind == "usc":  # film scans: none is in the validation split; one crop per source photograph
        chosen = [p for p in paths if p.name.startswith("usc_") and p.stem.endswith("_0")]
    else:
        raise ValueError(kind)
    return chosen[:limit] if limit else chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("val", "usc"), default="val")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/train")
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--q", default="search", help="'search' (the codec's own Q search, default effort) or an integer")
    ap.add_argument("--prior", type=float, default=64.0, help="pseudo-count of the stream-wide offset curve per bucket")
    ap.add_argument("--cap", type=int, default=8192, help="most subpixels a c1 fit looks at (regular stride)")
    ap.add_argument("--forward-passes", type=int, default=4, help="F of c3a/c3b")
    ap.add_argument("--noise", type=float, default=0.0,
                    help="add rounded Gaussian noise of this sigma to every image (seeded by its name; clipped): a "
                         "synthetic stand-in for images far from the training data (sensor noise, grain)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--stride", type=int, default=1, help="take every n-th image of the set")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)

    model = load_model()
    lossy = get_lossy_codec("hevc")
    paths = image_list(args.set, args.data, args.val_fraction, None)[:: args.stride][: args.limit]
    rows = []
    for i, path in enumerate(paths):
        image = load_rgb(path)
        if args.noise:
            seed = int.from_bytes(hashlib.sha256(path.name.encode()).digest()[:4], "big")
            noise = np.random.default_rng(seed).normal(0.0, args.noise, image.shape)
            image = np.clip(image + np.round(noise), 0, 255).astype(np.uint8)
        t = time.perf_counter()
        if args.q == "search":
            from lossless_bpg.codec import choose_q

            trial, _ = choose_q(image, lossy, model)
            q, recon = trial.q, trial.recon
        else:
            q = int(args.q)
            recon = lossy.decode(lossy.encode(image, q))
        t_q = time.perf_counter() - t
        row = {"image": path.name, "t_q": t_q, **measure(model, image, recon, q, args)}
        rows.append(row)
        gains = " ".join(f"{v}={100 * (1 - row[v] / row['b']):+.2f}%" for v in VARIANTS if v not in ("b",))
        print(f"[{i + 1}/{len(paths)}] {path.name} q={q} b={row['b']:.4f} {gains}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    print("mean bpsp (residual layer only, ideal code length):")
    for v in VARIANTS:
        m = float(np.mean([r[v] for r in rows]))
        mb = float(np.mean([r["b"] for r in rows]))
        print(f"  {v:4s} {m:.4f}  vs b {100 * (m / mb - 1):+.2f}%")


if __name__ == "__main__":
    main()
