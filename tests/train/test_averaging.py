"""The weight average that training validates, keeps as its best checkpoint and exports."""

import pytest
import torch
from torch import nn

from lossless_bpg.train.averaging import WeightAverage, evaluate_shipped


def _module(value: float) -> nn.Module:
    module = nn.Linear(2, 2)
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)
    return module


def _set(module: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)


def test_a_fresh_average_follows_the_weights_closely_then_slowly():
    module = _module(0.0)
    average = WeightAverage({"m": module}, decay=0.999)
    _set(module, 1.0)
    average.update()  # first weight: 1 - min(0.999, 1/10)
    assert average.averages["m"]["weight"][0, 0].item() == pytest.approx(0.9)
    for _ in range(10_000):
        average.update()
    assert average.averages["m"]["weight"][0, 0].item() == pytest.approx(1.0)
    _set(module, 2.0)
    average.update()  # long after the start: the configured decay
    assert average.averages["m"]["weight"][0, 0].item() == pytest.approx(1.001)


def test_applied_swaps_the_average_in_and_restores_the_weights():
    module = _module(0.0)
    average = WeightAverage({"m": module}, decay=0.5)
    _set(module, 3.0)
    with average.applied():
        assert module.weight[0, 0].item() == 0.0
    assert module.weight[0, 0].item() == 3.0
    average.copy_to_modules()
    assert module.bias[0].item() == 0.0


def test_a_run_evaluates_the_average_it_ships_and_its_last_weights_only_when_asked():
    module = _module(0.0)
    average = WeightAverage({"m": module}, decay=0.5)
    _set(module, 3.0)
    weight = lambda: module.weight[0, 0].item()
    assert evaluate_shipped(None, weight) == 3.0, "without an average: the weights themselves"
    assert evaluate_shipped(average, weight) == 0.0
    seen: list[float] = []
    assert evaluate_shipped(average, weight, seen.append) == 0.0
    assert seen == [3.0] and weight() == 3.0


def test_state_round_trips_and_a_different_model_is_refused():
    module = _module(0.0)
    average = WeightAverage({"m": module}, decay=0.9)
    _set(module, 1.0)
    average.update()
    other = WeightAverage({"m": _module(5.0)}, decay=0.9)
    other.load_state_dict(average.state_dict())
    assert other.updates == 1 and torch.equal(other.averages["m"]["weight"], average.averages["m"]["weight"])
    with pytest.raises(ValueError, match="does not fit"):
        WeightAverage({"m": nn.Linear(3, 2)}, decay=0.9).load_state_dict(average.state_dict())
    with pytest.raises(ValueError, match="does not fit"):
        WeightAverage({"n": _module(0.0)}, decay=0.9).load_state_dict(average.state_dict())


def test_decay_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match="decay"):
        WeightAverage({"m": _module(0.0)}, decay=1.0)
