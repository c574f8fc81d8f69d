"""Integer pattern search, used to choose Q per image."""

from __future__ import annotations

from typing import Callable


def pattern_search(
    cost: Callable[[int], float], start: int, lo: int, hi: int, steps: tuple[int, ...] = (4, 2, 1)
) -> tuple[int, dict[int, float]]:
    """Minimise ``cost`` over integers in [lo, hi]: from ``start``, move by the first step while
    a neighbour is cheaper, then by the next step, and so on. Returns (best, every cost seen);
    each point is evaluated at most once."""
    seen: dict[int, float] = {}

    def f(x: int) -> float:
        if x not in seen:
            seen[x] = cost(x)
        return seen[x]

    best = min(max(start, lo), hi)
    for step in steps:
        moved = True
        while moved:
            moved = False
            for cand in (best - step, best + step):
                if lo <= cand <= hi and f(cand) < f(best):
                    best, moved = cand, True
                    break
    return best, seen
