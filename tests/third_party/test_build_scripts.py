"""third_party/*/build.sh without compiling anything: fake source tarballs (a Makefile that writes
a shell script) and a PATH made of this machine's programs minus the ones a test hides.

What is tested: the sha256 check, the report of missing tools and headers with the apt-get line,
the stamp (a second run does nothing), the build cache shared between prefixes (a fresh clone),
failed builds and URL sources. The real builds are in test_real_builds.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from lossless_bpg.third_party import PINS

from ..conftest import ROOT

SCRIPTS = {"libbpg": ROOT / "third_party" / "libbpg" / "build.sh",
           "flif": ROOT / "third_party" / "flif" / "build.sh"}

FAKE_MAKEFILES = {
    # Each fake build appends a line to $FAKE_BUILDS, so a test can count the builds.
    "libbpg": ("libbpg-0.9.8", "", {
        "Makefile": (
            "bpgenc bpgdec:\n"
            "\t#FAIL\n"
            "\tgrep -q '^#include <string.h>' bpgdec.c\n"  # the GCC 14 fix was applied
            "\t[ $@ != bpgenc ] || echo built >> $$FAKE_BUILDS\n"
            "\tprintf '#!/bin/sh\\necho \"BPG Image Encoder version 0.9.8\"\\n' > $@ && chmod +x $@\n"
        ),
        "bpgdec.c": "#include <stdlib.h>\n#include <stdio.h>\nint main(void) { return 0; }\n",
    }),
    "flif": ("flif-0.4", "src/", {
        "Makefile": (
            "flif:\n"
            "\t#FAIL\n"
            "\techo built >> $$FAKE_BUILDS\n"
            "\tprintf '#!/bin/sh\\necho \"FLIF (Free Lossless Image Format) 0.4 (fake)\"\\n' > flif && chmod +x flif\n"
        ),
    }),
}
TARBALLS = {"libbpg": "libbpg-0.9.8.tar.gz", "flif": "flif-0.4.tar.gz"}
BINARIES = {"libbpg": ["bpgenc", "bpgdec"], "flif": ["flif"]}


def _tarball(folder: Path, pkg: str, broken: bool = False) -> tuple[Path, str]:
    top, sub, files = FAKE_MAKEFILES[pkg]
    path = folder / TARBALLS[pkg]
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            if broken and name == "Makefile":
                text = text.replace("#FAIL", "echo 'error: fake compiler failure' >&2; exit 1")
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{sub}{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_path(tmp: Path, hide: set[str], fakes: dict[str, str]) -> str:
    """A PATH folder holding every program of this machine's PATH except ``hide``, plus fakes."""
    farm = tmp / "bin"
    farm.mkdir(parents=True, exist_ok=True)
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            link = farm / name
            if name not in hide and name not in fakes and not link.exists() and not link.is_symlink():
                link.symlink_to(Path(d) / name)
    for name, body in fakes.items():
        (farm / name).write_text("#!/bin/sh\n" + body + "\n")
        (farm / name).chmod(0o755)
    return str(farm)


# Header checks and pkg-config answered by fakes: the tests do not depend on this machine's -dev
# packages (and never compile).
TOOLS_OK = {"gcc": "exit 0", "g++": "exit 0", "cmake": "exit 0", "yasm": "exit 0", "pkg-config": "exit 0"}


class Env:
    def __init__(self, tmp: Path, pkg: str):
        self.tmp, self.pkg = tmp, pkg
        self.sources = tmp / "sources"
        self.sources.mkdir()
        self.prefix, self.cache, self.builds = tmp / "prefix", tmp / "cache", tmp / "builds.txt"
        self.tarball, self.sha = _tarball(self.sources, pkg)

    def run(self, *args: str, hide=(), fakes=None, prefix: Path | None = None) -> subprocess.CompletedProcess:
        path = _fake_path(self.tmp / f"path-{len(list(self.tmp.glob('path-*')))}", set(hide),
                          TOOLS_OK if fakes is None else fakes)
        env = {"PATH": path, "HOME": str(self.tmp), "FAKE_BUILDS": str(self.builds), "TMPDIR": str(self.tmp)}
        cmd = ["bash", str(SCRIPTS[self.pkg]), "--source", str(self.sources), "--sha256", self.sha,
               "--prefix", str(prefix or self.prefix), "--cache", str(self.cache), "--jobs", "1", *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=60)

    def n_builds(self) -> int:
        return len(self.builds.read_text().splitlines()) if self.builds.exists() else 0


@pytest.fixture(params=["libbpg", "flif"])
def env(request, tmp_path) -> Env:
    (tmp_path / "work").mkdir()
    return Env(tmp_path / "work", request.param)


def test_the_scripts_pin_the_same_sources_as_the_package():
    for pkg, script in SCRIPTS.items():
        text = script.read_text()
        version, sha = PINS[pkg]
        assert f"PINNED_SHA256={sha}\n" in text and f"PKG_VERSION={version}\n" in text


def test_build_then_second_run_does_nothing(env):
    first = env.run()
    assert first.returncode == 0, first.stderr
    for b in BINARIES[env.pkg]:
        assert os.access(env.prefix / "bin" / b, os.X_OK)
    assert env.n_builds() == 1
    second = env.run()
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stderr and env.n_builds() == 1


def test_a_fresh_prefix_reuses_the_cached_build_without_build_tools(env):
    assert env.run().returncode == 0
    entry = env.cache / env.sha
    assert (entry / "complete").exists() and all((entry / "bin" / b).exists() for b in BINARIES[env.pkg])
    # A fresh clone: another prefix, and no compiler or make at all.
    clone = env.tmp / "clone"
    out = env.run(prefix=clone, hide={"make", "gcc", "g++", "cc", "c++"}, fakes={})
    assert out.returncode == 0, out.stderr
    assert "from the build cache" in out.stderr and env.n_builds() == 1
    assert all(os.access(clone / "bin" / b, os.X_OK) for b in BINARIES[env.pkg])


def test_no_cache_builds_again_and_stores_nothing(env):
    assert env.run("--no-cache").returncode == 0
    assert env.n_builds() == 1 and not (env.cache / env.sha).exists()


def test_a_wrong_sha256_stops_before_anything_is_built(env):
    env.tarball.write_bytes(env.tarball.read_bytes() + b"tampered")
    out = env.run()
    assert out.returncode == 3
    assert env.sha in out.stderr and "refusing to build" in out.stderr
    assert env.n_builds() == 0 and not (env.prefix / "bin").exists()


def test_the_pinned_sha256_is_the_default(env):
    # Without --sha256 the fake tarball does not match the pin.
    cmd = ["bash", str(SCRIPTS[env.pkg]), "--source", str(env.sources), "--prefix", str(env.prefix),
           "--cache", str(env.cache), "--check"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 3 and PINS[env.pkg][1] in out.stderr


def test_a_missing_source_says_where_it_looked(env):
    env.tarball.unlink()
    out = env.run()
    assert out.returncode == 3
    assert TARBALLS[env.pkg] in out.stderr and "--source" in out.stderr


MISSING_CASES = {
    "libbpg": [({"yasm", "cmake"}, {}, ["yasm (the bundled x265's assembler)", "cmake"], "cmake yasm"),
               (set(), {"gcc": "exit 1"}, ["libpng headers (png.h)", "libjpeg headers (jpeglib.h)"],
                "libpng-dev libjpeg-dev"),
               ({"make", "g++"}, {}, ["make", "g++"], "build-essential")],
    "flif": [({"pkg-config"}, {}, ["pkg-config"], "pkg-config"),
             (set(), {"pkg-config": "exit 1"}, ["libpng headers (pkg-config libpng)", "zlib headers"],
              "libpng-dev zlib1g-dev"),
             ({"g++"}, {}, ["g++"], "build-essential")],
}


def test_missing_tools_are_named_with_the_apt_get_line(env):
    for hide, broken, names, packages in MISSING_CASES[env.pkg]:
        fakes = {k: v for k, v in TOOLS_OK.items() if k not in hide} | broken
        for args in ((), ("--check",)):
            out = env.run(*args, hide=hide, fakes=fakes)
            assert out.returncode == 4, out.stderr
            for name in names:
                assert name in out.stderr
            line = re.search(r"apt-get install -y (.*)", out.stderr)
            assert line and line.group(1).strip() == packages, out.stderr
    assert env.n_builds() == 0 and not (env.prefix / "bin").exists()


def test_check_only_builds_nothing(env):
    out = env.run("--check")
    assert out.returncode == 0 and "every build tool is present" in out.stderr
    assert env.n_builds() == 0


def test_a_failed_build_shows_the_log_and_leaves_no_stamp_or_cache(env):
    env.tarball, env.sha = _tarball(env.sources, env.pkg, broken=True)
    out = env.run()
    assert out.returncode == 5
    assert "fake compiler failure" in out.stderr and "the build failed" in out.stderr
    assert not (env.prefix / ".stamps" / env.pkg).exists() and not (env.cache / env.sha).exists()
    assert not list(env.tmp.glob(f"lbpg-{env.pkg}-*"))  # temporary build folder removed


def test_a_url_source_is_downloaded_and_checked(env):
    url = env.tarball.resolve().as_uri()
    out = env.run("--source", url)
    assert out.returncode == 0, out.stderr
    assert (env.cache / "downloads" / f"{env.sha}-{TARBALLS[env.pkg]}").exists()


def test_usage_errors(env):
    assert env.run("--jobs", "zero").returncode == 2
    assert env.run("--bogus").returncode == 2
    out = subprocess.run(["bash", str(SCRIPTS[env.pkg]), "--help"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "--source" in out.stdout


def test_make_target_runs_both_scripts():
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "third-party", "THIRD_PARTY_SOURCES=/src"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert 'third_party/flif/build.sh --source "/src"' in out.stdout
    assert 'third_party/libbpg/build.sh --source "/src"' in out.stdout


def test_check_creates_nothing_and_a_relative_prefix_is_taken_from_the_current_folder(env):
    assert env.run("--check", prefix=env.tmp / "never").returncode == 0
    assert not (env.tmp / "never").exists()
    out = subprocess.run(["bash", str(SCRIPTS[env.pkg]), "--source", str(env.sources), "--sha256", env.sha,
                          "--prefix", "rel", "--cache", str(env.cache)], cwd=env.tmp, capture_output=True,
                         text=True, check=False, env=dict(os.environ, FAKE_BUILDS=str(env.builds)))
    if out.returncode == 4:
        pytest.skip(f"this machine lacks build tools: {out.stderr}")  # the real ones are checked here
    assert out.returncode == 0, out.stderr
    assert all((env.tmp / "rel" / "bin" / b).exists() for b in BINARIES[env.pkg])


def test_without_the_source_a_built_or_cached_sha256_still_installs(env):
    assert env.run().returncode == 0
    env.tarball.unlink()
    again = env.run()
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
    clone = env.run(prefix=env.tmp / "clone")  # a fresh clone without ../shared: from the cache
    assert clone.returncode == 0 and "from the build cache" in clone.stderr, clone.stderr
    assert env.run("--no-cache", prefix=env.tmp / "other").returncode == 3  # would need the source
    assert env.n_builds() == 1
