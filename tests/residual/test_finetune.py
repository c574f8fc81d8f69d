"""Per-image fine-tuning: the encoder fits a change of the pass heads' last layer to the image
and sends it; the decoder rebuilds the same integer model from it, so decoding stays exact."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
import torch

from lossless_bpg.codec import compress, decompress
from lossless_bpg.container import UPDATE_VERSION, LbpgFile, pack, unpack
from lossless_bpg.errors import ChecksumError, FormatError
from lossless_bpg.residual.finetune import (
    FIT_SHARDS,
    MAX_VALUE,
    UpdateFormatError,
    _PassData,
    apply_update,
    read_update,
)
from lossless_bpg.residual.layer import _chw
from lossless_bpg.residual.model import pad_to_multiple
from lossless_bpg.threads import torch_threads

from ..conftest import decoded_sha256_in_fresh_process
from .helpers import file_with_update, random_update


def _grainy(seed: int = 5, height: int = 96, width: int = 128) -> np.ndarray:
    """Smooth shading under strong, colour-correlated grain: unlike the training photographs,
    so a per-image change of the model pays for itself."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 0.8 + 40, yy * 0.9 + 60, (xx + yy) * 0.4 + 50], -1)
    grain = rng.normal(0, 9, (height, width, 1)) + rng.normal(0, 3, (height, width, 3))
    return np.clip(base + grain, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def grainy() -> np.ndarray:
    return _grainy()


@pytest.fixture(scope="module")
def adapted(model, grainy):
    """A file carrying a (random, small) model update, coded as the encoder codes one."""
    update = random_update(model, 7, 3)
    return file_with_update(model, grainy, 30, update)


@pytest.mark.parametrize("scale", [0, 1, 40, MAX_VALUE])
def test_an_update_packs_and_unpacks_to_the_same_integers(model, scale):
    update = random_update(model, 1, scale)
    back = read_update(model.model, update.pack())
    assert back.unit_exp == update.unit_exp
    assert np.array_equal(back.weight, update.weight) and np.array_equal(back.bias, update.bias)


def test_a_damaged_update_is_refused_with_a_format_error(model):
    data = random_update(model, 2, 40).pack()
    for bad in (data[:-3], data + b"\x01", bytes([9]) + data[1:], data[:2] + bytes([7]) + data[3:], b""):
        with pytest.raises(UpdateFormatError):
            read_update(model.model, bad)
    assert issubclass(UpdateFormatError, FormatError)


def test_a_zero_update_leaves_every_integer_output_unchanged(model, grainy):
    zero = random_update(model, 3, 0)
    changed = apply_update(model.model, model.exact, zero)
    recon = pad_to_multiple(_chw(grainy))
    residual = torch.zeros_like(recon)
    with torch.inference_mode():
        features = model.exact.features(recon, 30)
        for step in (0, 7, 15):
            a = model.exact.pass_params(features, step, residual)
            b = changed.pass_params(features, step, residual)
            assert torch.equal(a.means, b.means) and torch.equal(a.log_scales, b.log_scales)
            assert torch.equal(a.logits, b.logits) and torch.equal(a.coupling, b.coupling)


def test_a_file_with_an_update_decodes_exactly_at_any_thread_count(model, grainy, adapted):
    assert unpack(adapted).header.version == UPDATE_VERSION
    for threads in (1, 3):
        with torch_threads(threads):
            assert np.array_equal(decompress(adapted, model)[0], grainy)


def test_a_file_with_an_update_decodes_exactly_in_a_fresh_process(grainy, adapted, tmp_path):
    path = tmp_path / "x.lbpg"
    path.write_bytes(adapted)
    assert decoded_sha256_in_fresh_process(path, 2) == hashlib.sha256(grainy.tobytes()).hexdigest()


def test_the_encoder_keeps_an_update_only_when_the_file_gets_smaller(model, grainy, monkeypatch):
    from lossless_bpg import codec

    auto = compress(grainy, model, quality=30).data
    monkeypatch.setattr(codec, "fit_update", lambda *a: None)
    without = compress(grainy, model, quality=30).data
    assert len(auto) <= len(without)
    assert (auto[4] == UPDATE_VERSION) == (auto != without)
    # an update claimed to save a lot but worthless in fact is measured and dropped
    monkeypatch.setattr(codec, "fit_update", lambda *a: (random_update(model, 9, 60), 1e9))
    assert compress(grainy, model, quality=30).data == without


def test_the_encoder_writes_the_same_file_at_any_thread_count(model, grainy):
    files = []
    for threads in (1, 2):
        with torch_threads(threads):
            files.append(compress(grainy, model, quality=30, effort=3).data)
    assert files[0] == files[1]


def test_the_fit_runs_beside_the_coding_where_threads_and_memory_allow_and_the_file_is_the_same(
        model, grainy, monkeypatch):
    import threading

    from lossless_bpg import codec

    on_main_thread = []
    fit = codec.fit_update

    def watched(*args):
        on_main_thread.append(threading.current_thread() is threading.main_thread())
        return fit(*args)

    monkeypatch.setattr(codec, "fit_update", watched)
    files = []
    for threads, spare in ((2, True), (2, False), (1, True)):
        monkeypatch.setattr(codec, "can_spare", lambda *a, spare=spare: spare)
        with torch_threads(threads):
            files.append(compress(grainy, model, quality=30).data)
    assert on_main_thread == [False, True, True]
    assert files[0] == files[1] == files[2]


def test_effort_1_and_adapt_none_do_not_fine_tune(model, grainy, monkeypatch):
    from lossless_bpg import codec

    def refuse(*args):
        raise AssertionError("fine-tuned")

    monkeypatch.setattr(codec, "fit_update", refuse)
    compress(grainy, model, quality=30, effort=1)
    compress(grainy, model, quality=30, adapt="none")


def test_an_update_forged_behind_valid_crcs_fails_cleanly(model, adapted):
    f = unpack(adapted)
    assert isinstance(f, LbpgFile)
    for forged in (f.model_update[:-2], b"\x01\x06\x02\x02" + bytes(6)):
        with pytest.raises(FormatError):
            decompress(pack(replace(f, model_update=forged)), model)
    # well formed but not the encoder's: the pixels come out wrong and the checksum says so
    with pytest.raises(ChecksumError):
        decompress(pack(replace(f, model_update=random_update(model, 4, MAX_VALUE).pack())), model)


def test_a_flipped_bit_in_the_update_is_caught_by_the_payload_crc(model, adapted):
    data = bytearray(adapted)
    data[-5] ^= 0x10  # the update is the payload's last section
    with pytest.raises(FormatError, match="payload CRC"):
        unpack(bytes(data))


def test_a_version_5_file_without_an_update_is_refused(adapted):
    f = unpack(adapted)
    assert isinstance(f, LbpgFile)
    data = bytearray(pack(replace(f, model_update=b"")))
    data[4] = UPDATE_VERSION  # claims an update: the header's CRC no longer matches
    with pytest.raises(FormatError):
        unpack(bytes(data))


def test_the_fits_shards_take_every_sampled_position_exactly_once():
    rows = 37
    data = _PassData(torch.arange(rows * 2.0).view(rows, 2), torch.zeros(rows, 3), torch.arange(rows * 3.0).view(rows, 3), None)
    shards = [data.shard(i, FIT_SHARDS) for i in range(FIT_SHARDS)]
    taken = torch.cat([s.target[:, 0] for s in shards]).sort().values
    assert torch.equal(taken, data.target[:, 0])
    assert all(torch.equal(s.hidden[:, 0] / 2, s.target[:, 0] / 3) for s in shards)  # rows stay aligned


def test_the_fits_adam_steps_as_torchs_adam_does():
    from lossless_bpg.residual.finetune import _Adam

    start = torch.tensor([1.5, -0.3, 0.0, 2.0])
    ours, theirs = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    adam, reference = _Adam([ours], 0.01), torch.optim.Adam([theirs], lr=0.01)
    for _ in range(25):
        adam.step(torch.autograd.grad(((ours - 0.7) ** 2 * torch.arange(1.0, 5.0)).sum(), [ours]))
        reference.zero_grad()
        ((theirs - 0.7) ** 2 * torch.arange(1.0, 5.0)).sum().backward()
        reference.step()
    assert torch.allclose(ours, theirs, atol=1e-6)
