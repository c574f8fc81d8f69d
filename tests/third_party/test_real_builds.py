"""The build scripts against the real pinned sources (../shared/third_party), without compiling
in the test run: compiling libbpg takes about 6 minutes on 2 cores, so a test only ever installs
a build that `make third-party` has already put in the build cache (~/.cache/lossless_bpg/
third_party/<sha256>/, shared by every clone), and skips with a message otherwise. A machine
without compilers, yasm or -dev packages skips too; it never fails for that.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from lossless_bpg.third_party import PINS, cache_root

from ..conftest import ROOT

SOURCES = ROOT.parent / "shared" / "third_party"
CHECKS = {"libbpg": (["bpgenc", "-h"], "BPG Image Encoder version 0.9.8"),
          "flif": (["flif", "-V"], "FLIF (Free Lossless Image Format) 0.4")}


def _script(pkg: str) -> str:
    return str(ROOT / "third_party" / pkg / "build.sh")


def _need_sources() -> None:
    if not SOURCES.is_dir():
        pytest.skip(f"third-party sources {SOURCES} absent")


def _recipe() -> str:
    return re.search(r"^RECIPE=(\d+)", (ROOT / "third_party" / "lib.sh").read_text(), re.MULTILINE).group(1)


@pytest.mark.parametrize("pkg", ["libbpg", "flif"])
def test_real_sources_match_the_pins_and_tools_are_reported(pkg, tmp_path):
    _need_sources()
    out = subprocess.run(["bash", _script(pkg), "--check", "--prefix", str(tmp_path / "p"),
                          "--cache", str(tmp_path / "c")], capture_output=True, text=True, check=False)
    assert f"sha256 {PINS[pkg][1]} checked" in out.stderr, out.stderr
    if out.returncode == 4:
        assert "apt-get install -y" in out.stderr
        pytest.skip(f"this machine cannot build {pkg}: {out.stderr.strip().splitlines()[-2]}")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("pkg", ["libbpg", "flif"])
def test_a_fresh_prefix_is_filled_from_the_real_build_cache(pkg, tmp_path):
    _need_sources()
    entry = cache_root() / PINS[pkg][1]
    complete = entry / "complete"
    if not complete.is_file() or complete.read_text().split() != [pkg, PINS[pkg][1], "recipe", _recipe()]:
        pytest.skip(f"no cached {pkg} build in {entry}: run `make third-party` once to test it here")
    prefix = tmp_path / "prefix"
    # The entry is complete and of this recipe (checked above), so this installs it, never builds.
    first = subprocess.run(["bash", _script(pkg), "--prefix", str(prefix)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0 and "from the build cache" in first.stderr, first.stderr
    second = subprocess.run(["bash", _script(pkg), "--prefix", str(prefix)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 0 and "nothing to do" in second.stderr, second.stderr
    cmd, expected = CHECKS[pkg]
    run = subprocess.run([str(prefix / "bin" / cmd[0]), *cmd[1:]], capture_output=True, text=True, check=False)
    assert expected in run.stdout + run.stderr
