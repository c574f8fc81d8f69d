"""scripts/device_tree.py: a GPU window's call stays under the device tool's 64 MiB by moving
the large tracked files a run does not need aside, and everything comes back."""

import importlib.util
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device_tree.py"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("device_tree", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    repo = tmp_path / "repo"
    (repo / "runs").mkdir(parents=True)
    (repo / "code.py").write_text("print('small')\n")
    (repo / "runs" / "big.pt").write_bytes(bytes(3 << 20))
    (repo / "runs" / "needed.pt").write_bytes(bytes(2 << 20))
    (repo / ".gitignore").write_text("/.device_stash/\n/data/\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    (repo / "data").mkdir()
    (repo / "data" / "bundle.npz").write_bytes(bytes(1 << 20))  # ignored: travels only when carried
    monkeypatch.setattr(module, "ROOT", repo)
    monkeypatch.setattr(module, "STASH", repo / ".device_stash")
    return module, repo


def test_large_tracked_files_are_stashed_unless_kept_and_come_back(tree):
    module, repo = tree
    before = module.size([])
    assert before >= 5 << 20
    assert module.size(["data/bundle.npz"]) == before + (1 << 20)
    moved = module.stash(["runs/needed.pt"])
    assert moved == [repo / "runs" / "big.pt"] and not (repo / "runs" / "big.pt").exists()
    assert module.size([]) == before - (3 << 20), "what is stashed does not travel"
    assert (repo / "runs" / "needed.pt").exists()
    assert module.restore() == [repo / "runs" / "big.pt"]
    assert (repo / "runs" / "big.pt").stat().st_size == 3 << 20 and not (repo / ".device_stash").exists()
