"""Tables (markdown) from the CSVs of backward_adaptation.py.

  .venv/bin/python scripts/experiments/backward_adaptation_report.py \
      benchmarks/backward_adaptation/val.csv benchmarks/backward_adaptation/usc.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

VARIANTS = ("a", "b", "c1", "c1o", "c2s", "c2a", "c2x", "c3a", "c3b", "c3c", "c3d", "ceil")
TIMINGS = ("t_q", "t_forward", "t_c1", "t_c1o", "t_c2s", "t_c2a", "t_c2x", "t_c3c")


def load(path: Path) -> list[dict]:
    with open(path) as fh:
        return [{k: (v if k == "image" else float(v)) for k, v in row.items()} for row in csv.DictReader(fh)]


def summary(name: str, rows: list[dict]) -> str:
    b = np.array([r["b"] for r in rows])
    out = [(f"### {name}: {len(rows)} images, Q {int(min(r['q'] for r in rows))}-{int(max(r['q'] for r in rows))} "
            f"(median {int(np.median([r['q'] for r in rows]))})"), "",
           "| variant | mean bpsp (residual) | vs b | images better than b | worst image vs b | best image vs b |",
           "|---|---:|---:|---:|---:|---:|"]
    for v in VARIANTS:
        x = np.array([r[v] for r in rows])
        rel = 100 * (x / b - 1)
        out.append(f"| {v} | {x.mean():.4f} | {100 * (x.mean() / b.mean() - 1):+.2f} % | {int((x < b).sum())}/{len(rows)} "
                   f"| {rel.max():+.2f} % | {rel.min():+.2f} % |")
    side = np.array([r["b_side"] for r in rows])
    out += ["", f"Side information of b: {side.mean():.4f} bpsp on average ({100 * side.mean() / b.mean():.2f} % of b).", ""]
    out += ["Per pass (bpsp of the whole image spent on the pass, summed over R, G, B; mean over images):", "",
            "| pass | a | b | c2x | c3c | b vs a | c2x vs b | c3c vs b |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in range(16):
        vals = {v: np.mean([r.get(f"p{p}_{v}", np.nan) for r in rows]) for v in ("a", "b", "c2x", "c3c")}
        out.append(f"| {p} | {vals['a']:.4f} | {vals['b']:.4f} | {vals['c2x']:.4f} | {vals['c3c']:.4f} "
                   f"| {100 * (vals['b'] / vals['a'] - 1):+.2f} % | {100 * (vals['c2x'] / vals['b'] - 1):+.2f} % "
                   f"| {100 * (vals['c3c'] / vals['b'] - 1):+.2f} % |")
    out += ["", "Timings per image (s, one thread, float PyTorch; median / max):", "",
            "| step | median | max |", "|---|---:|---:|"]
    for t in TIMINGS:
        x = np.array([r[t] for r in rows])
        out.append(f"| {t} | {np.median(x):.2f} | {x.max():.2f} |")
    out += ["", "Images: " + ", ".join(r["image"] for r in rows), ""]
    return "\n".join(out)


def combined(paths: list[Path]) -> str:
    """One table: mean bpsp and change vs b of every variant on every set."""
    sets = {p.stem: load(p) for p in paths}
    out = ["| variant | " + " | ".join(f"{s} bpsp | {s} vs b" for s in sets) + " |", "|---|" + "---:|---:|" * len(sets)]
    for v in VARIANTS:
        cells = []
        for rows in sets.values():
            x, b = np.mean([r[v] for r in rows]), np.mean([r["b"] for r in rows])
            cells += [f"{x:.4f}", f"{100 * (x / b - 1):+.2f} %"]
        out.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    paths = [Path(arg) for arg in sys.argv[1:]]
    print(combined(paths))
    print("## Per set\n")
    for path in paths:
        print(summary(path.stem, load(path)))


if __name__ == "__main__":
    main()
