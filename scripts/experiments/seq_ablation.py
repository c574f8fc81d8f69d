"""The sequential coder's ablation: each stage added in turn, then the lossy layer and its Q.

    python scripts/experiments/seq_ablation.py ../shared/datasets/kodak benchmarks/sequential_ablation

Every row codes every image of the folder with one parameter set (a variant of the shipped
``seq2``) and checks that it decodes exactly; the residual rows without a lossy layer count the
residual stream alone. Writes ``ablation.md`` (the table), ``ablation.json`` and
``ablation.png``; seconds are the median per image of one encode (C core only, one thread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from lossless_bpg.imageio import load_rgb
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.sequential import SequentialModel, by_name, decode
from lossless_bpg.sequential.coder import encode_with_stats

BASE = ("inter",)
#: (row label, features, Q of the lossy layer or None for none)
ROWS: list[tuple[str, tuple[str, ...], int | None]] = [
    ("causal only: 7 + 6 predictors blended, 2 context models", (*BASE, "lean"), None),
    ("+ full predictor set (14 + 12)", BASE, None),
    ("+ NLMS cascade on the final errors", (*BASE, "cascade"), None),
    ("+ two NLMS predictors", (*BASE, "cascade", "lms"), None),
    ("+ integer least squares predictor", (*BASE, "cascade", "lms", "ols"), None),
    ("+ 12 more context models (offsets of other predictors, ...)", (*BASE, "cascade", "lms", "ols", "extra_models"),
     None),
    ("+ APM (secondary estimation)", (*BASE, "cascade", "lms", "ols", "extra_models", "apm"), None),
    ("  (without the inter-channel predictors)", ("cascade", "lms", "ols", "extra_models", "apm"), None),
    ("  (with bias cancellation by context)", (*BASE, "cascade", "lms", "ols", "extra_models", "apm", "bias"), None),
    ("+ lossy layer at Q 51, not read", (*BASE, "cascade", "lms", "ols", "extra_models", "apm"), 51),
    ("+ x̃ read (NLMS / least-squares / cascade inputs, context) = seq2 at Q 51",
     (*BASE, "cascade", "lms", "ols", "extra_models", "apm", "recon", "recon_context"), 51),
    ("  (+ x̃ predictors in the blend)",
     (*BASE, "cascade", "lms", "ols", "extra_models", "apm", "recon", "recon_context", "recon_blend"), 51),
    ("seq2 at Q 45", (*BASE, "cascade", "lms", "ols", "extra_models", "apm", "recon", "recon_context"), 45),
    ("seq2 at Q 40", (*BASE, "cascade", "lms", "ols", "extra_models", "apm", "recon", "recon_context"), 40),
    ("seq2 at Q 30", (*BASE, "cascade", "lms", "ols", "extra_models", "apm", "recon", "recon_context"), 30),
]


def run(folder: Path, out: Path) -> None:
    base = by_name("seq2")
    assert base is not None
    hevc = get_lossy_codec("hevc")
    images = [load_rgb(p) for p in sorted(folder.glob("*.png"))]
    subpixels = sum(i.size for i in images)
    lossy: dict[int, list[tuple[int, np.ndarray]]] = {}
    results = []
    for label, features, q in ROWS:
        model: SequentialModel = base.variant(f"ablation-{len(results)}", features=features)
        if q is not None and q not in lossy:
            lossy[q] = []
            for img in images:
                payload = hevc.encode(img, q)
                lossy[q].append((len(payload), hevc.decode(payload, size=img.shape[:2])))
        lossy_bytes, residual_bytes, channels, seconds = 0, 0, np.zeros(3), []
        for i, img in enumerate(images):
            recon = lossy[q][i][1] if q is not None else None
            t = time.perf_counter()
            data, by_channel, _ = encode_with_stats(img, recon, model)
            seconds.append(time.perf_counter() - t)
            assert np.array_equal(decode(data, recon, img.shape[0], img.shape[1], model), img), (label, i)
            lossy_bytes += lossy[q][i][0] if q is not None else 0
            residual_bytes += len(data)
            channels += by_channel
        row = {
            "row": label, "features": list(features), "q": q,
            "lossy_bpsp": 8 * lossy_bytes / subpixels, "residual_bpsp": 8 * residual_bytes / subpixels,
            "total_bpsp": 8 * (lossy_bytes + residual_bytes) / subpixels,
            "channel_bpp": [8 * float(c) / (subpixels / 3) for c in channels],
            "encode_s": statistics.median(seconds),
        }
        results.append(row)
        print(f"{row['total_bpsp']:.4f}  {label}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps(results, indent=2))
    lines = ["| stage | lossy bpsp | residual bpsp | total bpsp | R / G / B bits per pixel | encode s |",
             "|---|---:|---:|---:|---|---:|"]
    for r in results:
        r_, g, b = r["channel_bpp"]
        lines.append(f"| {r['row']} | {r['lossy_bpsp']:.4f} | {r['residual_bpsp']:.4f} | **{r['total_bpsp']:.4f}** | "
                     f"{r_:.3f} / {g:.3f} / {b:.3f} | {r['encode_s']:.2f} |")
    (out / "ablation.md").write_text("\n".join(lines) + "\n")
    _plot(results, out / "ablation.png")


def _plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.45 * len(results) + 1))
    labels = [r["row"] for r in results][::-1]
    ax.barh(labels, [r["residual_bpsp"] for r in results][::-1], label="residual")
    ax.barh(labels, [r["lossy_bpsp"] for r in results][::-1], left=[r["residual_bpsp"] for r in results][::-1],
            label="lossy layer")
    lo = min(r["total_bpsp"] for r in results)
    ax.set_xlim(lo - 0.15, max(r["total_bpsp"] for r in results) + 0.05)
    ax.set_xlabel("bits per subpixel")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    run(args.folder, args.out)
