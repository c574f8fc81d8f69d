"""Integer search, used to choose Q per image: a coarse scan, optionally parabola vertices,
then a pattern search."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def scan_and_refine(
    cost: Callable[[int], float],
    scan: Sequence[int],
    lo: int,
    hi: int,
    steps: Sequence[int] = (1,),
    known: dict[int, float] | None = None,
    parabola: bool = False,
) -> tuple[int, dict[int, float]]:
    """Minimise ``cost`` over integers in [lo, hi]: evaluate every ``scan`` point (clamped into
    the range); with ``parabola``, then the vertices of parabolas (see :func:`_parabola_search`);
    then from the cheapest move by the first step while a neighbour is cheaper, then by the
    next step, and so on. Returns (best, every cost seen); each point is evaluated at most once;
    points in ``known`` (costs seen by an earlier search) are not evaluated again.

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
    if parabola:
        best = _parabola_search(f, seen, lo, hi)
    for step in steps:
        moved = True
        while moved:
            moved = False
            for cand in (best - step, best + step):
                if lo <= cand <= hi and f(cand) < f(best):
                    best, moved = cand, True
                    break
    return best, seen


#: Most parabola vertices one search tries (it usually stops after one or two).
MAX_VERTICES = 4


def _vertex(a: int, b: int, c: int, fa: float, fb: float, fc: float) -> float | None:
    """Abscissa of the minimum of the parabola through (a, fa), (b, fb), (c, fc), a < b < c;
    None where it has none (not convex)."""
    den = (b - a) * (fb - fc) - (b - c) * (fb - fa)
    if den >= 0:
        return None
    return b - 0.5 * ((b - a) ** 2 * (fb - fc) - (b - c) ** 2 * (fb - fa)) / den


def _parabola_search(f: Callable[[int], float], seen: dict[int, float], lo: int, hi: int) -> int:
    """From the points ``seen`` (``f`` records each cost it computes there): while the cheapest
    point is the end of what was tried, try half the spacing to its neighbour further out, then
    as far again each time (the minimum lies beyond it: a parabola would only extrapolate);
    once it is bracketed, try the vertex of the parabola through it and its nearest tried
    neighbours either side, until a vertex rounds to a point already tried or there is none.
    The total size is smooth in Q at the scale of a scan's spacing, so the vertex lands at or
    next to the best Q, where a pattern search from the cheapest scan point needs several steps
    to get."""
    reach = 0
    for _ in range(MAX_VERTICES):
        best = min(seen, key=seen.__getitem__)
        left = [q for q in seen if q < best]
        right = [q for q in seen if q > best]
        if not left and not right:
            break
        if not left or not right:
            # Half the scan's spacing out, then as far again each time the end still wins.
            reach = reach or max(1, ((min(right) - best) if right else (best - max(left))) // 2)
            q = min(max(best - reach if right else best + reach, lo), hi)
        else:
            a, c = max(left), min(right)
            x = _vertex(a, best, c, seen[a], seen[best], seen[c])
            if x is None:
                break
            q = round(x)
        if q in seen:
            break
        f(q)
    return min(seen, key=seen.__getitem__)
