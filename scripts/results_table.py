"""The README's results table and plot, from `bench` runs on two image sets.

    .venv/bin/python scripts/results_table.py results/docker_kodak results/docker_heldout \
        --out benchmarks/results

Writes OUT.md (the markdown table, pasted into the README, which a test keeps equal) and
OUT.png (bpsp of every codec on both sets). Times are the first set's medians. A codec missing
from the second set shows a dash; one with a failed image is refused (its mean would mislead).
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

#: bench codec name -> (the table's name, its settings in words), in the table's order.
ROWS = {
    "lbpg": ("**lossless_bpg 0.7**", "default (`-e 2`)"),
    "lbpg-e3": ("lossless_bpg 0.7", "`-e 3`"),
    "lbpg-e1": ("lossless_bpg 0.7", "`-e 1`"),
    "jpegxl-e9": ("JPEG XL", "lossless, effort 9"),
    "jpegxl-e7": ("JPEG XL", "lossless, effort 7 (default)"),
    "flif": ("FLIF 0.4", "`-e` (default effort)"),
    "webp": ("WebP", "lossless, `-z 9`"),
    "jpeg2000": ("JPEG 2000", "reversible 5/3 (OpenJPEG)"),
    "jpegls": ("JPEG-LS", "CharLS"),
    "png": ("PNG", "Pillow, optimize, level 9"),
    "bpg-lossless": ("BPG 0.9.8", "`-lossless -f 444`"),
}


def _summary(folder: Path) -> dict[str, dict]:
    data = json.loads((folder / "summary.json").read_text())
    out = {}
    for row in data["codecs"]:
        if row["failures"]:
            raise SystemExit(f"{folder}: {row['codec']} failed on {row['failures']} images; not tabulated")
        out[row["codec"]] = row
    return out


def table(first: dict[str, dict], second: dict[str, dict], names: tuple[str, str]) -> str:
    """The markdown table: a row per codec of ``first`` known to ROWS, best first."""
    lines = [f"| codec | settings | {names[0]} bpsp | {names[1]} bpsp | encode s | decode s |",
             "|---|---|---:|---:|---:|---:|"]
    for codec in sorted((c for c in first if c in ROWS), key=lambda c: first[c]["mean_bpsp"]):
        name, settings = ROWS[codec]
        a = first[codec]
        bpsp = [f"{a['mean_bpsp']:.3f}", f"{second[codec]['mean_bpsp']:.3f}" if codec in second else "–"]
        if codec == "lbpg":
            bpsp = [f"**{v}**" for v in bpsp]
        lines.append(f"| {name} | {settings} | {bpsp[0]} | {bpsp[1]} | "
                     f"{a['median_encode_s']:.2f} | {a['median_decode_s']:.2f} |")
    return "\n".join(lines) + "\n"


def plot(first: dict[str, dict], second: dict[str, dict], names: tuple[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    codecs = sorted((c for c in first if c in ROWS), key=lambda c: first[c]["mean_bpsp"])
    labels = [ROWS[c][0].strip("*") + "\n" + textwrap.fill(ROWS[c][1].replace("`", ""), 16) for c in codecs]
    x = np.arange(len(codecs))
    fig, ax = plt.subplots(figsize=(11, 4.6))
    for offset, (values, name) in zip((-0.2, 0.2), ((first, names[0]), (second, names[1]))):
        heights = [values[c]["mean_bpsp"] if c in values else np.nan for c in codecs]
        bars = ax.bar(x + offset, heights, 0.4, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("bits per subpixel (lower is better)")
    ax.set_title("Lossless: mean bpsp per image set, every file verified exact")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="bench output folder of the first set (times come from it)")
    parser.add_argument("second", type=Path, help="bench output folder of the second set")
    parser.add_argument("--names", default="Kodak,held-out", help="the two sets' names (default: Kodak,held-out)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="OUT.md and OUT.png")
    args = parser.parse_args()
    names = tuple(args.names.split(","))
    if len(names) != 2:
        parser.error("--names takes two names")
    first, second = _summary(args.first), _summary(args.second)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table(first, second, names))  # type: ignore[arg-type]
    plot(first, second, names, args.out.with_suffix(".png"))  # type: ignore[arg-type]
    print(args.out.with_suffix(".md").read_text(), end="")


if __name__ == "__main__":
    main()
