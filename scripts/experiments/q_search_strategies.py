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


def pattern(offsets: tuple[int, ...], steps: tuple[int, ...]):
    def run(cost: Cost, start: int, lo: int, hi: int) -> int:
        return scan_and_refine(cost, [start + d for d in offsets], lo, hi, steps)[0]
    return run


def vertex(qs: list[int], cost: Cost) -> float:
    """Abscissa of the parabola through three (q, cost) points (their middle one if flat or concave)."""
    (a, fa), (b, fb), (c, fc) = ((q, cost(q)) for q in qs)
    den = (b - a) * (fb - fc) - (b - c) * (fb - fa)
    if den >= 0:  # not convex
        return float(min(qs, key=cost))
    return b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / den


def parabolic(offsets: tuple[int, ...], polish: bool):
    """Scan, then repeatedly try the vertex of the parabola through the best point and its
    nearest tried neighbours either side, until the vertex rounds to a Q already tried; with
    ``polish``, then a pattern search of step 1."""
    def run(cost: Cost, start: int, lo: int, hi: int) -> int:
        seen: dict[int, float] = {}

        def f(q: int) -> float:
            if q not in seen:
                seen[q] = cost(q)
            return seen[q]

        for d in offsets:
            f(min(max(start + d, lo), hi))
        for _ in range(6):
            best = min(seen, key=seen.get)
            left = [q for q in seen if q < best]
            right = [q for q in seen if q > best]
            if not left or not right:
                q = best - 1 if not left else best + 1
                if not lo <= q <= hi or q in seen:
                    break
                f(q)
                continue
            q = min(max(round(vertex([max(left), best, min(right)], f)), lo), hi)
            if q in seen:
                break
            f(q)
        best = min(seen, key=seen.get)
        if polish:
            best = scan_and_refine(f, [best], lo, hi, (1,), seen)[0]
        return best
    return run


STRATEGIES = {
    "effort 2 today: scan -8,0,8 + steps 2,1": pattern((-8, 0, 8), (2, 1)),
    "scan -8,0,8 + step 1": pattern((-8, 0, 8), (1,)),
    "effort 3 today: scan -12..12 by 6 + steps 2,1": pattern((-12, -6, 0, 6, 12), (2, 1)),
    "scan -8,0,8 + parabola": parabolic((-8, 0, 8), False),
    "scan -8,0,8 + parabola + step 1": parabolic((-8, 0, 8), True),
    "scan -6,0,6 + parabola": parabolic((-6, 0, 6), False),
    "scan -12,-6,0,6,12 + parabola + step 1": parabolic((-12, -6, 0, 6, 12), True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("curves")
    ap.add_argument("--start", type=int, default=28)
    args = ap.parse_args()
    curves = [json.loads(line) for line in open(args.curves)]
    print(f"{len(curves)} images")
    for name, strategy in STRATEGIES.items():
        loss = trials = worst = 0.0
        for curve in curves:
            costs = {int(q): v for q, v in curve["costs"].items()}
            tried: set[int] = set()

            def cost(q: int) -> float:
                tried.add(q)
                return costs[q]

            q = strategy(cost, args.start, min(costs), max(costs))
            extra = 100.0 * (costs[q] / min(costs.values()) - 1)
            loss += extra
            worst = max(worst, extra)
            trials += len(tried)
        n = len(curves)
        print(f"{name:45s} loss {loss / n:.3f} % (worst {worst:.2f} %), {trials / n:.2f} Qs tried")


if __name__ == "__main__":
    main()
