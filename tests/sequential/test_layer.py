"""The sequential residual mode in the codec: the Q search on real bits, effort 3's alternative
set, tiled files, the preview, and the mode chosen by name."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import lossless_bpg
from lossless_bpg.api import coding_model
from lossless_bpg.codec import compress, decompress, preview
from lossless_bpg.container import SEQUENTIAL_VERSION, TiledFile, unpack
from lossless_bpg.effort import SEQUENTIAL_SEARCH
from lossless_bpg.lossy import get_lossy_codec
from lossless_bpg.residual import LoadedModel
from lossless_bpg.sequential import SequentialModel, by_id, for_effort
from lossless_bpg.sequential.layer import search_q


def _photo(rng: np.random.Generator, h: int = 48, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 2.5 + yy, yy * 2.0 + 20, (xx + yy) * 1.2], axis=-1)
    return np.clip(base + rng.normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8)


def test_the_default_is_the_sequential_coder_at_the_effort_asked_for():
    for effort in (1, 2, 3):
        assert coding_model("default", "hevc", effort) == for_effort(effort)
        assert coding_model("sequential", "lic", effort) == for_effort(effort)
    assert coding_model("seq1", "hevc", 3) == for_effort(1)
    assert isinstance(coding_model("parallel", "hevc", 2), LoadedModel)
    assert isinstance(coding_model("fast", "hevc", 2), LoadedModel)


@pytest.mark.parametrize("effort", sorted(SEQUENTIAL_SEARCH))
def test_each_effort_keeps_the_cheapest_q_it_tried_and_decodes_exactly(effort, rng):
    image = _photo(rng)
    model = for_effort(effort)
    result = compress(image, model, effort=effort)
    f = unpack(result.data)
    assert f.header.version == SEQUENTIAL_VERSION
    hevc = get_lossy_codec("hevc")
    assert hevc.q_max in result.q_trials  # the coarsest Q is always tried
    if effort == 1:
        assert list(result.q_trials) == [hevc.q_max]
    assert result.q == min(result.q_trials, key=result.q_trials.__getitem__)
    assert np.array_equal(decompress(result.data)[0], image)
    assert by_id(f.header.model_id) is not None


def test_the_search_s_costs_are_the_coded_sizes(rng):
    image = _photo(rng)
    model = for_effort(2)
    hevc = get_lossy_codec("hevc")
    q, costs, trials = search_q(image, hevc, model, 2)
    assert set(costs) == set(trials) and costs[q] == min(costs.values())
    for trial_q, trial in trials.items():
        assert costs[trial_q] == 8 * (len(trial.lossy) + len(trial.residual)) == trial.bits
        assert np.array_equal(trial.decoded, image)  # lossless: the decoder gives the image


def test_effort_3_keeps_the_smaller_of_its_sets(rng):
    image = _photo(rng)
    e3 = compress(image, for_effort(3), effort=3, quality=51)
    e2 = compress(image, for_effort(2), effort=2, quality=51)
    chosen = by_id(unpack(e3.data).header.model_id)
    assert chosen in (for_effort(3), for_effort(2))
    assert len(e3.data) <= len(e2.data)
    assert np.array_equal(decompress(e3.data)[0], image)


def test_a_tiled_sequential_file_shares_one_set_and_decodes_band_by_band(rng):
    image = _photo(rng, 40, 600)
    result = compress(image, for_effort(3), effort=3, quality=50, tile_size=256, workers=2)
    f = unpack(result.data)
    assert isinstance(f, TiledFile) and len(f.tiles) == 3
    assert {t.header.version for t in f.tiles} == {SEQUENTIAL_VERSION}
    assert {t.header.model_id for t in f.tiles} == {f.header.model_id}
    assert np.array_equal(decompress(result.data, workers=2)[0], image)


def test_the_preview_is_the_lossy_layer_alone(rng, tmp_path):
    from lossless_bpg.cli import main

    image = _photo(rng)
    data = lossless_bpg.compress(image, quality=40)
    recon, header = preview(data)
    payload = unpack(data).lossy  # type: ignore[union-attr]
    assert np.array_equal(recon, get_lossy_codec("hevc").decode(payload, size=(header.height, header.width)))
    assert np.abs(recon.astype(int) - image).mean() < 12  # an approximation of the image, not it
    src = tmp_path / "photo.lbpg"
    src.write_bytes(data)
    assert main(["decompress", str(src), "--preview", "--quiet"]) == 0
    written = tmp_path / "photo.preview.png"
    assert np.array_equal(np.asarray(Image.open(written)), recon)
    assert not (tmp_path / "photo.png").exists()  # never the exact decode's name
    # a tiled file's preview is put together from its tiles' lossy layers
    wide = _photo(rng, 32, 520)
    tiled = lossless_bpg.compress(wide, quality=45, tile_size=256)
    assert preview(tiled)[0].shape == wide.shape


def test_a_sequential_model_named_for_decoding_must_be_the_file_s(rng):
    image = _photo(rng, 16, 16)
    data = lossless_bpg.compress(image, effort=1)
    assert np.array_equal(lossless_bpg.decompress(data, model="seq1"), image)
    with pytest.raises(lossless_bpg.errors.ModelMismatchError):
        lossless_bpg.decompress(data, model="seq2")


def test_the_config_s_sets_are_what_the_efforts_use():
    for effort in (1, 2, 3):
        model = for_effort(effort)
        assert isinstance(model, SequentialModel) and model.effort == effort


def test_decoding_a_sequential_file_never_imports_torch(rng, tmp_path):
    """torch costs about 0.9 s per process: the command line's decode of the default files
    must not pay it (the parallel network's files still import it when they need it)."""
    import os
    import subprocess
    import sys

    from ..conftest import ROOT

    path = tmp_path / "photo.lbpg"
    path.write_bytes(lossless_bpg.compress(_photo(rng, 16, 24), effort=1))
    script = ("import sys, lossless_bpg.cli\n"
              f"assert lossless_bpg.cli.main(['decompress', {str(path)!r}, '--quiet']) == 0\n"
              "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert (tmp_path / "photo.png").exists()
