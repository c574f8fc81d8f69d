"""The model registry: cards read without weights, names and aliases, lookup by file id."""

import shutil

import pytest
import torch
import yaml

from lossless_bpg.errors import ModelMismatchError
from lossless_bpg.residual import ResidualModel, ResidualModelConfig, find_model_by_id, load_model
from lossless_bpg.residual.registry import WEIGHTS_DIR, ModelCard, Registry
from lossless_bpg.residual.weights import save_model

FAST_ID = "2c7ee67f527c3930"


def test_shipped_cards_are_read_without_loading_weights(monkeypatch):
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("a card lookup loaded weights"))
    registry = Registry()
    card = registry.card("fast")
    assert isinstance(card, ModelCard)
    assert (card.name, card.model_id, card.generation) == ("fast", FAST_ID, 1)
    assert card.weights_path == WEIGHTS_DIR / f"{FAST_ID}.pt" and card.weights_path.exists()
    assert card.q_range == (12, 40) and card.q_start == 28
    assert card.config.context_steps == 16
    assert registry.by_id(bytes.fromhex(FAST_ID)) is card
    assert registry.card(FAST_ID) is card  # by id, as a name


def test_every_shipped_weights_file_is_named_by_its_id():
    for card in Registry().cards:
        assert card.card_path.stem == card.model_id
        assert load_model(card.name).model_id_hex == card.model_id


def test_fast_is_the_0_3_model_and_default_the_stronger_one_searching_with_fast():
    fast, default = load_model("fast"), load_model()
    assert fast.model_id_hex == FAST_ID and fast.name == "fast" and fast.search is None
    assert fast.card is not None and fast.card.name == "fast"
    assert Registry().aliases["default"] == default.name == "gen2" and default.model.generation == 2
    assert default.search is not None and default.search.model_id_hex == FAST_ID


def test_unknown_id_is_a_mismatch_error_naming_the_id_and_the_models():
    with pytest.raises(ModelMismatchError, match=r"0123456789abcdef.*does not have.*fast \(2c7ee67f527c3930\)"):
        find_model_by_id(bytes.fromhex("0123456789abcdef"))


def test_unknown_name_lists_the_names_and_aliases():
    with pytest.raises(ModelMismatchError, match=r"'strong' not found.*fast.*default -> gen2"):
        load_model("strong")


def test_find_by_id_loads_only_the_model_it_needs(tmp_path, monkeypatch):
    """Two cards in a folder: looking one up by id loads one weights file, not both."""
    for name, seed in (("one", 0), ("two", 1)):
        torch.manual_seed(seed)
        save_model(ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8, quarter_blocks=1,
                                                     mixtures=2)), tmp_path, name)
    wanted = bytes.fromhex(yaml.safe_load((tmp_path / "two.yaml").read_text())["model_id"])
    loaded = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda path, *a, **k: loaded.append(path) or real_load(path, *a, **k))
    assert find_model_by_id(wanted, tmp_path).name == "two"
    assert loaded == [tmp_path / "two.pt"]


def test_aliases_and_card_names_in_a_folder(tmp_path):
    shutil.copy(WEIGHTS_DIR / f"{FAST_ID}.pt", tmp_path)
    shutil.copy(WEIGHTS_DIR / f"{FAST_ID}.yaml", tmp_path)
    (tmp_path / "index.yaml").write_text("aliases:\n  default: fast\n  quick: default\n")
    registry = Registry(tmp_path)
    assert registry.names() == ["fast", "default", "quick"]
    assert registry.card("quick").model_id == FAST_ID
    assert load_model("quick", tmp_path).model_id_hex == FAST_ID


def test_a_card_whose_weights_do_not_match_its_id_is_refused(tmp_path):
    shutil.copy(WEIGHTS_DIR / f"{FAST_ID}.yaml", tmp_path)
    state = torch.load(WEIGHTS_DIR / f"{FAST_ID}.pt", weights_only=True)
    next(iter(state.values())).view(-1)[0] += 1.0
    torch.save(state, tmp_path / f"{FAST_ID}.pt")
    with pytest.raises(ModelMismatchError, match="damaged or does not belong"):
        find_model_by_id(bytes.fromhex(FAST_ID), tmp_path)


def test_an_export_is_registered_by_its_id_under_a_name(tmp_path):
    from lossless_bpg.residual.weights import register

    torch.manual_seed(0)
    m = ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8, quarter_blocks=1, mixtures=2,
                                          context_steps=16, context_channels=4, head_channels=8,
                                          context_net_channels=4, channel_net_channels=4))
    save_model(m, tmp_path / "export", "run", {"training": {"steps": 7, "config": {"qs": [24, 32]}}})
    card = register(tmp_path / "export" / "run.pt", "strong", tmp_path / "weights")
    assert card.card_path == tmp_path / "weights" / f"{card.model_id}.yaml"
    assert (card.name, card.generation, card.q_range) == ("strong", 2, (24, 32))
    loaded = find_model_by_id(bytes.fromhex(card.model_id), tmp_path / "weights")
    assert loaded.name == "strong" and loaded.model.generation == 2
    with pytest.raises(ValueError, match="already has"):
        torch.manual_seed(1)
        save_model(ResidualModel(m.config), tmp_path / "export", "other")
        register(tmp_path / "export" / "other.pt", "strong", tmp_path / "weights")


def test_a_model_registered_with_a_search_model_loads_it_for_coding_but_not_for_decoding(tmp_path):
    from lossless_bpg.residual.weights import register

    shutil.copy(WEIGHTS_DIR / f"{FAST_ID}.pt", tmp_path)
    shutil.copy(WEIGHTS_DIR / f"{FAST_ID}.yaml", tmp_path)
    torch.manual_seed(0)
    save_model(ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8, quarter_blocks=1, mixtures=2)),
               tmp_path / "export", "run")
    card = register(tmp_path / "export" / "run.pt", "strong", tmp_path, search_model="fast")
    assert card.search_model == FAST_ID  # recorded by id: renaming or re-aliasing fast changes nothing
    strong = load_model("strong", tmp_path)
    assert strong.search is not None and strong.search.model_id_hex == FAST_ID and strong.search.search is None
    assert find_model_by_id(bytes.fromhex(card.model_id), tmp_path).search is None
    # a search model must search with its own estimates: no chains, not itself
    torch.manual_seed(1)
    save_model(ResidualModel(ResidualModelConfig(half_channels=4, quarter_channels=8, quarter_blocks=1, mixtures=2)),
               tmp_path / "export", "other")
    with pytest.raises(ValueError, match="cannot be a search model"):
        register(tmp_path / "export" / "other.pt", "other", tmp_path, search_model="strong")
    meta = yaml.safe_load(card.card_path.read_text())
    meta["coding"]["search_model"] = card.model_id
    card.card_path.write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelMismatchError, match="names 'strong' for its Q search, which is itself"):
        load_model("strong", tmp_path)
