"""Q-search strategies judged offline on full Q curves (q_curves.py's JSON lines): for each
strategy, the mean loss of the Q it finds against each image's best Q (percent of the total)
and the mean number of Qs it tries (each an HEVC encode and a sweep of the residual model).

    python scripts/experiments/q_search_strategies.py curves.jsonl [--start 28]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from lossless_bpg.search import scan_and_refine

Cost = Callable[[int], float]


def strategy(offsets: tuple[int, ...], steps: tuple[int, ...], parabola: bool = False):
    def run(cost: Cost, start: int, lo: int, hi: int) -> int:
        return scan_and_refine(cost, [start + d for d in offsets], lo, hi, steps, parabola=parabola)[0]
    return run


STRATEGIES = {
    "scan -8,0,8 + steps 2,1 (0.4.2's effort 2)": strategy((-8, 0, 8), (2, 1)),
    "scan -8,0,8 + step 1": strategy((-8, 0, 8), (1,)),
    "scan -12..12 by 6 + steps 2,1 (effort 3)": strategy((-12, -6, 0, 6, 12), (2, 1)),
    "scan -8,0,8 + parabola": strategy((-8, 0, 8), (), True),
    "scan -8,0,8 + parabola + step 1": strategy((-8, 0, 8), (1,), True),
    "scan -8,0,8 + parabola + steps 2,1": strategy((-8, 0, 8), (2, 1), True),
    "scan -6,0,6 + parabola + step 1": strategy((-6, 0, 6), (1,), True),
    "scan -12..12 by 6 + parabola + step 1": strategy((-12, -6, 0, 6, 12), (1,), True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curves")
    ap.add_argument("--start", type=int, default=28)
    args = ap.parse_args()
    with open(args.curves) as lines:
        curves = [json.loads(line) for line in lines]
    print(f"{len(curves)} images")
    for name, strategy in STRATEGIES.items():
        loss = trials = worst = 0.0
        for curve in curves:
            costs = {int(q): v for q, v in curve["costs"].items()}
            tried: dict[int, float] = {}
            q = strategy(lambda q, costs=costs, tried=tried: tried.setdefault(q, costs[q]), args.start,
                         min(costs), max(costs))
            extra = 100.0 * (costs[q] / min(costs.values()) - 1)
            loss += extra
            worst = max(worst, extra)
            trials += len(tried)
        n = len(curves)
        print(f"{name:45s} loss {loss / n:.3f} % (worst {worst:.2f} %), {trials / n:.2f} Qs tried")


if __name__ == "__main__":
    main()
