import stat

import numpy as np
import pytest

from lossless_bpg import third_party
from lossless_bpg.errors import BackendUnavailableError
from lossless_bpg.lossy import available_backends, backend_name_from_id, get_lossy_codec


@pytest.fixture
def only_fakes(monkeypatch, tmp_path):
    """No libbpg from third_party/local or the build cache; fakes put in ``tmp_path`` come first."""
    monkeypatch.setattr(third_party, "CHECKOUT_PREFIX", tmp_path / "no-prefix")
    monkeypatch.setenv("LBPG_THIRD_PARTY_CACHE", str(tmp_path / "no-cache"))
    monkeypatch.setenv("LBPG_THIRD_PARTY_BIN", str(tmp_path))
    return tmp_path


def _real_bpg():
    missing = third_party.missing_programs("bpgenc", "bpgdec")
    if missing:
        pytest.skip(f"real libbpg absent ({third_party.how_to_build(missing)})")
    return get_lossy_codec("bpg")


def test_backends_are_chosen_by_name():
    assert {"hevc", "bpg"} <= set(available_backends())
    assert get_lossy_codec("hevc").name == "hevc"
    assert backend_name_from_id(1) == "hevc"


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(BackendUnavailableError, match="hevc"):
        get_lossy_codec("jpeg")


def test_unknown_backend_id_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="unknown lossy backend id 99"):
        backend_name_from_id(99)


def test_bpg_without_tools_says_how_to_build_them(monkeypatch, only_fakes):
    monkeypatch.setenv("PATH", str(only_fakes))
    with pytest.raises(BackendUnavailableError, match="bpgenc, bpgdec not found .*`make third-party`"):
        get_lossy_codec("bpg")


def _fake_tool(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_bpg_failing_encoder_reports_its_status(only_fakes):
    _fake_tool(only_fakes, "bpgenc", "echo 'bad input' >&2; exit 3")
    _fake_tool(only_fakes, "bpgdec", "exit 0")
    codec = get_lossy_codec("bpg")
    with pytest.raises(ValueError, match="bpgenc exited with status 3: bad input"):
        codec.encode(np.zeros((8, 8, 3), np.uint8), 28)


def test_bpg_failing_decoder_reports_its_status(only_fakes):
    _fake_tool(only_fakes, "bpgenc", "exit 0")
    _fake_tool(only_fakes, "bpgdec", "echo 'corrupt' >&2; exit 1")
    with pytest.raises(ValueError, match="bpgdec exited with status 1: corrupt"):
        get_lossy_codec("bpg").decode(b"BPG\xfb")


def test_real_bpg_layer_decodes_deterministically_near_the_input(rng):
    codec = _real_bpg()
    img = np.clip(np.linspace(0, 255, 48)[None, :, None] + rng.normal(0, 6, (40, 48, 3)), 0, 255).astype(np.uint8)
    data = codec.encode(img, 28)
    assert data[:4] == b"BPG\xfb"
    recon = codec.decode(data)
    assert recon.shape == img.shape and recon.dtype == np.uint8
    assert np.array_equal(recon, codec.decode(data))
    mse = np.mean((recon.astype(float) - img) ** 2)
    assert 0 < mse < 100  # lossy, but close
    assert "0.9.8" in codec.version()


def test_real_bpg_backend_round_trips_losslessly(model, rng):
    _real_bpg()
    from lossless_bpg.codec import compress, decompress

    img = np.clip(np.linspace(0, 255, 40)[:, None, None] + rng.normal(0, 5, (40, 36, 3)), 0, 255).astype(np.uint8)
    result = compress(img, model, backend="bpg", quality=30)
    out, header = decompress(result.data, model)
    assert header.backend_id == 2 and np.array_equal(out, img)
