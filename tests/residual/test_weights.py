import pytest
import torch

from lossless_bpg.errors import ModelMismatchError
from lossless_bpg.residual import (
    ResidualModel,
    ResidualModelConfig,
    find_model_by_id,
    load_model,
    wrap,
)
from lossless_bpg.residual.weights import save_model


def test_shipped_default_model_loads_with_its_id(model):
    assert len(model.model_id) == 8
    assert find_model_by_id(model.model_id).name == model.name


def test_model_id_changes_with_any_weight():
    torch.manual_seed(0)
    m = ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8, quarter_blocks=1, mixtures=2))
    a = wrap("a", m).model_id
    with torch.no_grad():
        next(m.parameters()).view(-1)[0] += 1e-6
    assert wrap("b", m).model_id != a


def test_saved_model_reloads_identically(tmp_path):
    torch.manual_seed(0)
    m = ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8, quarter_blocks=1, mixtures=2))
    save_model(m, tmp_path, "tiny")
    assert load_model("tiny", tmp_path).model_id == wrap("tiny", m).model_id


def test_unknown_model_id_is_a_clear_error():
    with pytest.raises(ModelMismatchError, match="does not have"):
        find_model_by_id(b"\x00" * 8)


def test_missing_model_names_the_available_ones(tmp_path):
    with pytest.raises(ModelMismatchError, match="not found"):
        load_model("nope", tmp_path)


def test_weights_that_do_not_match_their_recorded_id_are_refused(tmp_path):
    torch.manual_seed(0)
    m = ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8, quarter_blocks=1, mixtures=2))
    save_model(m, tmp_path, "tiny")
    with torch.no_grad():
        next(m.parameters()).view(-1)[0] += 1.0
    torch.save(m.state_dict(), tmp_path / "tiny.pt")  # damaged / swapped weights, old YAML
    with pytest.raises(ModelMismatchError, match="damaged or does not belong"):
        load_model("tiny", tmp_path)
