"""Benchmark plots (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_all(rows: list[dict], summary: list[dict], out: Path) -> list[Path]:
    """bpsp per image per codec, this codec's rate split, and bpsp versus time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    ok = [r for r in rows if r["exact"]]
    images = list(dict.fromkeys(r["image"] for r in ok))
    codecs = [e["codec"] for e in summary if "mean_bpsp" in e]

    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(images)), 4.5))
    # tab10 repeats after ten codecs: cycle colours and markers independently (10 x 3 styles).
    markers = "osD"
    for k, c in enumerate(codecs):
        by = {r["image"]: r["bpsp"] for r in ok if r["codec"] == c}
        ax.plot(range(len(images)), [by.get(i, float("nan")) for i in images], marker=markers[(k // 10) % 3],
                ms=3, color=plt.get_cmap("tab10")(k % 10), ls="-" if k < 10 else "--", label=c)
    ax.set_xticks(range(len(images)), [i.rsplit(".", 1)[0] for i in images], rotation=90, fontsize=7)
    ax.set_ylabel("bits per subpixel")
    ax.set_title("Lossless rate per image")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    paths.append(_save(fig, out / "bpsp_per_image.png"))

    ours = [r for r in ok if r["codec"] == "lbpg" and r.get("lossy_bytes") is not None]
    if ours:
        fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(ours)), 4.5))
        per = [8.0 / (r["width"] * r["height"] * 3) for r in ours]
        lossy = [r["lossy_bytes"] * p for r, p in zip(ours, per)]
        resid = [r["residual_bytes"] * p for r, p in zip(ours, per)]
        x = range(len(ours))
        ax.bar(x, lossy, label="lossy layer (HEVC)")
        ax.bar(x, resid, bottom=lossy, label="residual layer")
        if all(r.get("header_bytes") is not None for r in ours):
            header = [r["header_bytes"] * p for r, p in zip(ours, per)]
            ax.bar(x, header, bottom=[a + b for a, b in zip(lossy, resid)], label="header")
        ax.set_xticks(list(x), [f"{r['image'].rsplit('.', 1)[0]}\nQ{r['q']}" for r in ours], rotation=90, fontsize=7)
        ax.set_ylabel("bits per subpixel")
        ax.set_title("lossless_bpg rate split per image")
        ax.legend(fontsize=8)
        paths.append(_save(fig, out / "rate_split.png"))

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for e in summary:
        if "mean_bpsp" in e:
            t = e["median_encode_s"] + e["median_decode_s"]
            ax.scatter(t, e["mean_bpsp"])
            ax.annotate(e["codec"], (t, e["mean_bpsp"]), fontsize=8, xytext=(4, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("median encode + decode seconds per image (log)")
    ax.set_ylabel("mean bits per subpixel")
    ax.set_title("Rate versus time")
    ax.grid(alpha=0.3)
    paths.append(_save(fig, out / "bpsp_vs_time.png"))
    return paths
