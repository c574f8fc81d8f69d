import dataclasses

import pytest
import yaml

from lossless_bpg.lossy.lic.config import LicConfig
from lossless_bpg.train.config import TrainConfig
from lossless_bpg.train.lic import LicTrainConfig
from lossless_bpg.yaml_config import dataclass_options


def test_unknown_options_are_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown lic options: \['lattent_bound'\]"):
        LicConfig.from_dict({"lattent_bound": 3})
    with pytest.raises(ValueError, match="unknown training options"):
        TrainConfig.from_dict({"qs": [12], "step": 5})


def test_yaml_lists_become_the_tuples_the_dataclass_declares():
    @dataclasses.dataclass(frozen=True)
    class Example:
        qs: tuple[int, ...] = ()
        names: list[str] = dataclasses.field(default_factory=list)

    options = dataclass_options(Example, {"qs": [1, 2], "names": ["a"]}, "example")
    assert options == {"qs": (1, 2), "names": ["a"]}


@pytest.mark.parametrize("config", [TrainConfig(qs=(12, 40), source_weights={"usc": 3.0}),
                                    LicTrainConfig(val_qs=(20, 44), lic=LicConfig(q_max=48))])
def test_configs_go_through_plain_yaml_and_come_back_equal(config):
    text = yaml.safe_dump(config.to_dict())  # safe_dump refuses tuples and other Python types
    assert type(config).from_dict(yaml.safe_load(text)) == config
