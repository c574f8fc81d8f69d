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
