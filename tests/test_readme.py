"""The README's examples run as shown: every `sh` and `python` block, in order, in a scratch
folder laid out like a checkout (`.venv`, the Makefile, `../shared/datasets/kodak`) whose images
are small. The few commands that cannot run inside the suite are listed with the reason and
where they are exercised instead; a command that is neither run nor listed fails the test."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .conftest import ROOT

README = ROOT / "README.md"

#: Commands shown but not run here, and what runs them instead.
NOT_RUN_HERE = {
    "make test": "it is this suite: CI runs it (.ci/run)",
    "make docker": "builds the Docker image (about 15 min); tests/test_docker_image.py runs the built image",
    "make docker-bench": "runs the built image; tests/test_docker_image.py runs it on two small images",
    "make docker-bench IMAGES=photos": "as make docker-bench",
}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)


def _commands() -> list[str]:
    """Every command line of the README's sh blocks, trailing comments dropped."""
    commands = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                assert not command.endswith("\\"), "keep README commands on one line"
                commands.append(command)
    return commands


def _photo(path: Path, rng: np.random.Generator, height: int = 40, width: int = 56) -> None:
    """A small image with a photograph's mix of smooth shading and noise."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 3 + y, y * 4 + 20, (x + y) * 2 + 10], axis=2)
    Image.fromarray(np.clip(base + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A scratch folder that the README's commands see as the checkout."""
    root = tmp_path_factory.mktemp("readme")
    work = root / "work"
    work.mkdir()
    venv = Path(sys.prefix)
    if not (venv / ".installed").exists():
        pytest.skip(f"{venv} was not made by `make install`: the README's commands assume it")
    (work / ".venv").symlink_to(venv)
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        (work / name).symlink_to(ROOT / name)
    # `make demo` must find the install up to date; else it would reinstall into the venv from here.
    if subprocess.run(["make", "-q", "install"], cwd=work, capture_output=True, check=False).returncode != 0:
        pytest.skip(f"{venv} is older than pyproject.toml or requirements.lock: run `make install` first")
    rng = np.random.default_rng(7)
    for name in ("a.png", "b.png", "photo.png"):
        _photo(work / name, rng)
    with Image.open(work / "a.png") as im:  # metadata to keep
        info = PngInfo()
        info.add_text("Title", "README example")
        im.save(work / "a.png", pnginfo=info)
    for folder in (work / "photos", root / "shared" / "datasets" / "kodak"):
        folder.mkdir(parents=True)
        _photo(folder / "one.png", rng, 48, 64)
        _photo(folder / "two.png", rng, 32, 40)
    return work


def test_every_command_is_run_here_or_says_where_it_is_run():
    commands = _commands()
    assert commands, "the README shows no commands"
    assert set(NOT_RUN_HERE) <= set(commands), f"listed but no longer shown: {set(NOT_RUN_HERE) - set(commands)}"


def test_the_shell_commands_run_as_shown(checkout):
    env = dict(os.environ, PATH=f"{checkout / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    for command in _commands():
        if command in NOT_RUN_HERE:
            continue
        out = subprocess.run(["bash", "-c", command], cwd=checkout, capture_output=True, text=True, env=env,
                             timeout=600, check=False)
        assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    # What the commands promise is there.
    assert sorted(p.name for p in (checkout / "out" / "demo").iterdir()) == ["one.lbpg", "two.lbpg"]
    with Image.open(checkout / "restored" / "a.png") as restored, Image.open(checkout / "a.png") as original:
        assert np.array_equal(np.asarray(restored), np.asarray(original))
        assert restored.text == {"Title": "README example"}
    with Image.open(checkout / "out" / "a.preview.png") as preview:
        assert preview.size == (56, 40)
    assert sorted(p.name for p in (checkout / "archive").iterdir()) == ["one.lbpg", "two.lbpg"]
    assert (checkout / "bench" / "summary.md").is_file()


def test_the_python_example_runs_as_shown(checkout):
    for block in _blocks("python"):
        out = subprocess.run([sys.executable, "-c", block], cwd=checkout, capture_output=True, text=True,
                             timeout=600, check=False)
        assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.parametrize("page", ["README.md", "docs/usage.md", "docs/how-it-works.md", "docs/training.md",
                                  "docs/format.md", "benchmarks/README.md", "CHANGELOG.md"])
def test_relative_links_lead_to_files(page):
    text = (ROOT / page).read_text()
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        path = target.split("#")[0]
        if path and not re.match(r"[a-z]+:", path) and not (ROOT / page).parent.joinpath(path).exists():
            broken.append(target)
    assert not broken, f"{page} links to missing files: {broken}"


def test_the_results_table_is_the_one_measured():
    """The README's table is scripts/results_table.py's output, pasted whole."""
    assert (ROOT / "benchmarks" / "results.md").read_text() in README.read_text()
