import os
import stat

import numpy as np
import pytest

from lossless_bpg.errors import BackendUnavailableError
from lossless_bpg.lossy import available_backends, backend_name_from_id, get_lossy_codec


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


def test_bpg_without_tools_on_path_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailableError, match="bpgenc"):
        get_lossy_codec("bpg")


def _fake_tool(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_bpg_failing_encoder_reports_its_status(monkeypatch, tmp_path):
    _fake_tool(tmp_path, "bpgenc", "echo 'bad input' >&2; exit 3")
    _fake_tool(tmp_path, "bpgdec", "exit 0")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    codec = get_lossy_codec("bpg")
    with pytest.raises(ValueError, match="bpgenc exited with status 3: bad input"):
        codec.encode(np.zeros((8, 8, 3), np.uint8), 28)


def test_bpg_failing_decoder_reports_its_status(monkeypatch, tmp_path):
    _fake_tool(tmp_path, "bpgenc", "exit 0")
    _fake_tool(tmp_path, "bpgdec", "echo 'corrupt' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ValueError, match="bpgdec exited with status 1: corrupt"):
        get_lossy_codec("bpg").decode(b"BPG\xfb")
