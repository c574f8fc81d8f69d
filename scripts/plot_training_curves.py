"""Validation against training steps of the residual-model runs, from their logs: the bits
saved against the shipped `fast` model at one Q, on a log axis of steps, with a straight-line
fit in log steps (what the CPU runs gain per doubling of their training):

    .venv/bin/python scripts/plot_training_curves.py --out benchmarks/training_curves \\
        "generation 2=training_runs/context16_v2_cpu/train.log" \\
        "control (fast trained on)=training_runs/fast_continue_cpu/train.log"

A log's validation lines are the training loop's (`step N: train X, val {Q: bpsp, ...}`; with a
weight average the average's). Writes q<Q>.png and q<Q>.md (the points and the fits) in --out.
"""

from __future__ import annotations

import argparse
import ast
import math
import re
from pathlib import Path

#: `fast`'s validation residual bpsp per Q (its model card; every run here starts from it).
FAST_VALIDATION = {12: 1.7226, 20: 2.2885, 28: 2.6399, 36: 2.8678, 40: 2.9387}
VAL_LINE = re.compile(r"^step (\d+): train [\d.na]+, val (\{.*\})\s*$")


def read_log(path: Path, q: int) -> list[tuple[int, float]]:
    """(step, validation residual bpsp at ``q``) of every validation in the log, in order; a
    step validated twice (a run resumed before its next checkpoint) keeps its last value."""
    points: dict[int, float] = {}
    for line in path.read_text().splitlines():
        m = VAL_LINE.match(line)
        if m:
            points[int(m.group(1))] = float(ast.literal_eval(m.group(2))[q])
    return sorted(points.items())


def fit_per_doubling(points: list[tuple[int, float]], q: int, from_step: int) -> tuple[float, float]:
    """Least-squares line of the saving (% against fast) over log2(steps), from ``from_step``:
    (% per doubling, intercept)."""
    xs = [math.log2(s) for s, _ in points if s >= from_step]
    ys = [100 * (v / FAST_VALIDATION[q] - 1) for s, v in points if s >= from_step]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="LABEL=train.log")
    p.add_argument("--q", type=int, default=28, choices=sorted(FAST_VALIDATION))
    p.add_argument("--fit-from", type=int, default=2000, help="first step of the fitted line")
    p.add_argument("--out", type=Path, default=Path("benchmarks/training_curves"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    title = f"# Validation at Q {args.q} against training steps (saving against `fast`'s {FAST_VALIDATION[args.q]:.4f} bpsp)"
    how = ("Made by `scripts/plot_training_curves.py` from the training logs; the fit is a line in "
           f"log2(steps) over the validations from step {args.fit_from}.")
    lines = [title, "", how, "",
             "| run | validations | last step | last saving | fit: % per doubling of steps | steps for −10 % by the fit |",
             "|---|---:|---:|---:|---:|---:|"]
    for spec in args.runs:
        label, log = spec.split("=", 1)
        points = read_log(Path(log), args.q)
        if not points:
            raise SystemExit(f"no validation lines in {log}")
        steps = [s for s, _ in points]
        saving = [100 * (v / FAST_VALIDATION[args.q] - 1) for _, v in points]
        line, = ax.plot(steps, saving, "o-", ms=3, label=label)
        slope, intercept = fit_per_doubling(points, args.q, args.fit_from)
        fitted = [s for s in steps if s >= args.fit_from]
        ax.plot(fitted, [slope * math.log2(s) + intercept for s in fitted], "--", color=line.get_color(), lw=1)
        reach = f"2^{(-10 - intercept) / slope:.0f}" if slope < 0 else "never"
        lines.append(f"| {label} | {len(points)} | {steps[-1]:,} | {saving[-1]:+.2f} % | {slope:+.3f} | {reach} |")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training steps (batch of 8 crops of 128×128, CPU)")
    ax.set_ylabel(f"validation residual bits at Q {args.q}\nagainst fast (%)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(f"Residual-model training on the CPU: validation at Q {args.q}")
    fig.tight_layout()
    fig.savefig(args.out / f"q{args.q}.png", dpi=120)
    (args.out / f"q{args.q}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
