"""Merge the results.csv of several `bench` runs into one table and one set of plots.

    .venv/bin/python scripts/merge_bench_results.py benchmarks/kodak_sequential \
        benchmarks/kodak_baselines --out benchmarks/kodak_all

Rows are taken as they were measured (nothing is re-run); a codec present in several folders is
taken from the first folder that has it. Rows written before the bench took the size split from
the encoder (no header_bytes column: their residual_bytes leave out the escape streams) lose the
split, so the rate-split plot never shows an undercount.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from lossless_bpg.bench.plots import draw_all
from lossless_bpg.bench.runner import CSV_FIELDS, summarise, summary_markdown

INTS = ("width", "height", "bytes", "q", "lossy_bytes", "residual_bytes", "header_bytes")
FLOATS = ("bpsp", "encode_s", "decode_s", "peak_mb")


def _typed(row: dict) -> dict:
    out = dict(row)
    for k in INTS:
        out[k] = int(row[k]) if row.get(k) not in (None, "") else None
    for k in FLOATS:
        out[k] = float(row[k]) if row.get(k) not in (None, "") else None
    out["exact"] = row["exact"] == "True"
    if out.get("header_bytes") is None:
        out["lossy_bytes"] = out["residual_bytes"] = None
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="bench output folders (with results.csv)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    rows, seen = [], set()
    for d in args.dirs:
        with open(d / "results.csv") as fh:
            here = [_typed(r) for r in csv.DictReader(fh)]
        new = {r["codec"] for r in here} - seen
        rows += [r for r in here if r["codec"] in new]
        seen |= new
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    (args.out / "summary.json").write_text(json.dumps({"codecs": summary, "merged_from": [str(d) for d in args.dirs]},
                                                      indent=2))
    md = summary_markdown(summary, {})
    md += "\nMerged (nothing re-run) from: " + ", ".join(f"`{d}`" for d in args.dirs) + "\n"
    (args.out / "summary.md").write_text(md)
    print(md)
    for path in draw_all(rows, summary, args.out):
        print(f"plot: {path}")
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
