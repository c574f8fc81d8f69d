"""Integer search, used to choose Q per image: a coarse scan, then a pattern search."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def scan_and_refine(
    cost: Callable[[int], float],
    scan: Sequence[int],
    lo: int,
    hi: int,
    steps: Sequence[int] = (1,),
    known: dict[int, float] | None = None,
) -> tuple[int, dict[int, float]]:
    """Minimise ``cost`` over integers in [lo, hi]: evaluate every ``scan`` point (clamped into
    the range), then from the cheapest move by the first step while a neighbour is cheaper, then
    by the next step, and so on. Returns (best, every cost seen); each point is evaluated at
    most once; points in ``known`` (costs seen by an earlier search) are not evaluated again.

    The scan is what keeps the search out of local minima: the total size is only roughly
    convex in Q, with bumps of a few tenths of a percent that stop a pattern search started
    from one point.
    """
    if not scan:
        raise ValueError("the search needs at least one point to scan")
    seen: dict[int, float] = dict(known or {})

    def f(x: int) -> float:
        if x not in seen:
            seen[x] = cost(x)
        return seen[x]

    points = dict.fromkeys(min(max(q, lo), hi) for q in scan)  # clamped, in order, no repeats
    best = min(points, key=f)
    for step in steps:
        moved = True
        while moved:
            moved = False
            for cand in (best - step, best + step):
                if lo <= cand <= hi and f(cand) < f(best):
                    best, moved = cand, True
                    break
    return best, seen
