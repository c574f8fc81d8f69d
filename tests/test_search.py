from lossless_bpg.search import scan_and_refine


def _counting(f):
    calls = []

    def cost(x):
        calls.append(x)
        return f(x)

    return cost, calls


def test_the_scan_escapes_a_local_minimum_that_stops_a_search_from_one_point():
    # A bump at 24-26 between a shallow minimum at 27 and the real one at 20.
    curve = {q: abs(q - 20) * 0.1 for q in range(10, 41)}
    curve.update({25: 10.0, 26: 10.0, 27: 0.9, 28: 1.0, 29: 1.1})
    assert scan_and_refine(curve.get, [28], 10, 40)[0] == 27
    assert scan_and_refine(curve.get, [20, 28, 36], 10, 40)[0] == 20


def test_every_point_is_evaluated_once_and_reported():
    cost, calls = _counting(lambda x: (x - 33) ** 2)
    best, seen = scan_and_refine(cost, [20, 28, 36], 10, 40, steps=(2, 1))
    assert best == 33
    assert sorted(calls) == sorted(set(calls)) == sorted(seen)
    assert seen[33] == 0


def test_scan_points_are_clamped_into_the_range_and_the_search_stays_there():
    cost, calls = _counting(lambda x: -x)  # cheaper the higher: pushes against the top
    best, seen = scan_and_refine(cost, [30, 38, 46, 54], 12, 40)
    assert best == 40 and min(seen) >= 12 and max(seen) <= 40
    assert calls[:3] == [30, 38, 40]  # 46 and 54 both clamp to 40, evaluated once


def test_an_empty_scan_is_refused():
    import pytest

    with pytest.raises(ValueError):
        scan_and_refine(lambda x: 0.0, [], 0, 10)


def test_a_parabola_through_the_scan_lands_on_the_minimum_of_a_smooth_curve():
    cost, calls = _counting(lambda x: (x - 31.3) ** 2)
    best, _ = scan_and_refine(cost, [20, 28, 36], 10, 40, steps=(1,), parabola=True)
    assert best == 31
    assert calls == [20, 28, 36, 31, 30, 32]  # the vertex, then its two neighbours to confirm it
    pattern, pattern_calls = _counting(lambda x: (x - 31.3) ** 2)
    assert scan_and_refine(pattern, [20, 28, 36], 10, 40, steps=(2, 1))[0] == 31
    assert len(pattern_calls) == 8


def test_past_an_end_of_the_scan_it_walks_out_by_half_the_spacing_then_takes_the_vertex():
    cost, calls = _counting(lambda x: (x - 33.3) ** 2)
    assert scan_and_refine(cost, [20, 28, 36], 10, 40, steps=(1,), parabola=True)[0] == 33
    assert calls == [20, 28, 36, 40, 33, 32, 34]  # 36 is the cheapest scan point: 40 brackets it
    # a minimum far below the scan (a clean image wanting the finest Q): steps of 4, not of 1
    far, far_calls = _counting(lambda x: (x - 12) + 0.001 * x * x)
    assert scan_and_refine(far, [20, 28, 36], 12, 46, steps=(1,), parabola=True)[0] == 12
    assert far_calls == [20, 28, 36, 16, 12, 13]


def test_the_parabola_search_refits_until_its_vertex_was_already_tried():
    # Asymmetric: the first vertex (through 20, 28, 36) falls short; the next one lands.
    cost, calls = _counting(lambda x: abs(x - 31) ** 1.5)
    best, _ = scan_and_refine(cost, [20, 28, 36], 10, 40, steps=(1,), parabola=True)
    assert best == 31
    assert len(calls) <= 7


def test_without_a_convex_parabola_the_pattern_search_takes_over():
    curve = {q: 0.0 for q in range(10, 41)}
    curve.update({20: 5.0, 28: 1.0, 36: 0.0, 37: -1.0, 38: -2.0})  # the cheapest scan point is at an end
    best, _ = scan_and_refine(curve.get, [20, 28, 36], 10, 40, steps=(1,), parabola=True)
    assert best == 38
    flat, calls = _counting(lambda x: 1.0)
    scan_and_refine(flat, [20, 28, 36], 10, 40, steps=(), parabola=True)
    assert calls == [20, 28, 36, 16]  # one look past the end that ties, then no vertex to try
