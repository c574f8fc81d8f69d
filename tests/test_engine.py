"""Engines for dataset runs: the files written do not depend on where the jobs ran (in this
process, on a local pool, on Ray); an interrupted run resumes with --skip-existing; one bad file
never stops the others; Ctrl-C stops workers and leaves no temporaries; Ray is optional."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lossless_bpg.cli import main
from lossless_bpg.engines import (
    ENGINES,
    EngineConfig,
    EngineUnavailableError,
    create_engine,
    interrupt_engines,
)
from lossless_bpg.engines.local import WORKER_DIED

FAST = ["-e", "1", "--threads", "1", "--quiet"]


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """--threads sets this process's torch threads; the rest of the suite keeps its own."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray for the module (2 CPUs, no dashboard); the ray engine uses a Ray that is
    running already and leaves it running."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'lossless_bpg[ray]'): "
                                            "the ray engine is not tested")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three small photograph-like images."""
    rng = np.random.default_rng(14)
    folder = tmp_path_factory.mktemp("images")
    for i in range(3):
        ramp = np.linspace(0, 255, 64)[None, :, None] * np.ones((64, 1, 3))
        img = np.clip(ramp * (0.5 + 0.2 * i) + rng.normal(0, 6, (64, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
    return folder


def _digests(folder: Path, suffix: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(f"*{suffix}"))}


ENGINE_ARGS = {
    "in-process": [],
    "local pool of 2": ["--workers", "2"],
    "ray": ["--engine", "ray", "--workers", "2"],
}


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory) -> Path:
    """The folder compressed in this process, one file after the other."""
    out = tmp_path_factory.mktemp("reference")
    assert main(["compress", str(folder), "-o", str(out), *FAST]) == 0
    return out


@pytest.fixture(params=list(ENGINE_ARGS))
def engine_args(request) -> list[str]:
    if request.param == "ray":
        request.getfixturevalue("ray_instance")
    return ENGINE_ARGS[request.param]


def test_every_engine_writes_byte_identical_files(folder, reference, engine_args, tmp_path):
    out = tmp_path / "out"
    assert main(["compress", str(folder), "-o", str(out), *FAST, *engine_args]) == 0
    assert _digests(out, ".lbpg") == _digests(reference, ".lbpg")
    assert len(_digests(out, ".lbpg")) == 3
    assert not list(out.glob(".*")), "no temporary files left"


def test_decompress_on_ray_gives_the_same_pngs(folder, reference, ray_instance, tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    assert main(["decompress", str(reference), "-o", str(here), "--quiet"]) == 0
    assert main(["decompress", str(reference), "-o", str(there), "--quiet", "--engine", "ray"]) == 0
    assert _digests(there, ".png") == _digests(here, ".png")
    for png in folder.glob("*.png"):
        assert np.array_equal(np.asarray(Image.open(there / png.name)), np.asarray(Image.open(png)))


@pytest.fixture(params=["in-process", "ray"])
def skip_engine_args(request) -> list[str]:
    """Skipping is decided before any job is handed to an engine (the local pool gets the same
    work list as the in-process engine), so the pool, slow to start, is left out here."""
    if request.param == "ray":
        request.getfixturevalue("ray_instance")
    return ENGINE_ARGS[request.param]


def test_skip_existing_resumes_an_interrupted_run(folder, reference, skip_engine_args, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("img0.lbpg", "img2.lbpg"):  # finished before the interruption
        (out / name).write_bytes((reference / name).read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    argv = ["compress", str(folder), "-o", str(out), "-e", "1", "--threads", "1", *skip_engine_args]
    assert main([*argv, "--skip-existing"]) == 0
    printed = capsys.readouterr().out
    assert "3 files: 1 done, 2 skipped (output exists)" in printed
    assert _digests(out, ".lbpg") == _digests(reference, ".lbpg")
    assert {n: (out / n).stat().st_mtime_ns for n in before} == before, "skipped outputs are not rewritten"
    # Without it, existing outputs are errors as always; with --force as well, a usage error.
    assert main([*argv, "--quiet"]) == 1
    assert "exists; use --force" in capsys.readouterr().err
    assert main([*argv, "--quiet", "--skip-existing", "--force"]) == 2


def test_a_failing_file_does_not_stop_the_others(folder, reference, engine_args, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for png in folder.glob("*.png"):
        (mixed / png.name).write_bytes(png.read_bytes())
    (mixed / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    assert main(["compress", str(mixed), "-o", str(out), "-e", "1", "--threads", "1", *engine_args]) == 1
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "cannot read image" in captured.err
    assert "4 files: 3 done, 1 failed" in captured.out
    assert _digests(out, ".lbpg") == _digests(reference, ".lbpg")


def test_ray_engine_without_ray_is_a_usage_error(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    for argv in (["compress", str(folder), "-o", str(tmp_path / "c")],
                 ["decompress", str(folder), "-o", str(tmp_path / "d")]):
        assert main([*argv, "--engine", "ray", "--quiet"]) == 2
        assert "pip install 'lossless_bpg[ray]'" in capsys.readouterr().err
    assert main(["bench", str(folder), "--out", str(tmp_path / "b"), "--engine", "ray"]) == 2
    assert "pip install 'lossless_bpg[ray]'" in capsys.readouterr().out
    assert not (tmp_path / "c").exists() and not (tmp_path / "b").exists(), "nothing done"


def test_ray_address_is_only_for_the_ray_engine(folder, tmp_path, capsys):
    assert main(["compress", str(folder), "-o", str(tmp_path), "--ray-address", "auto", "--quiet"]) == 2
    assert "--ray-address is for --engine ray" in capsys.readouterr().err


def test_engines_are_registered_by_name():
    assert set(ENGINES) == {"local", "ray"}
    with pytest.raises(EngineUnavailableError, match="unknown engine"):
        create_engine("spark", EngineConfig())


def _die_on_two(job: int) -> int:
    if job == 2:
        os._exit(9)  # as the kernel's OOM killer would end it
    return job * 10


def test_a_dead_pool_worker_fails_its_job_only():
    with create_engine("local", EngineConfig(workers=2, threads=1)) as engine:
        outcomes = {o.index: o for o in engine.run(_die_on_two, [0, 1, 2, 3, 4])}
    assert outcomes[2].error == WORKER_DIED
    assert {i: o.value for i, o in outcomes.items() if i != 2} == {0: 0, 1: 10, 3: 30, 4: 40}


def _write_slowly(dst: str) -> None:
    """A job stuck midway through writing ``dst``: its temporary file holds its pid."""
    fd, _ = tempfile.mkstemp(prefix=f".{Path(dst).name}.", suffix=".tmp", dir=Path(dst).parent)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    time.sleep(120)


def _interrupt_when(condition, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the jobs never started"
        time.sleep(0.1)
    interrupt_engines()


def test_interrupting_a_pool_kills_its_workers_and_removes_their_temporaries(tmp_path):
    from lossless_bpg.fileio import remove_temporaries_of

    outputs = [str(tmp_path / f"out{i}.lbpg") for i in range(2)]
    engine = create_engine("local", EngineConfig(workers=2, threads=1))
    results = []

    def run() -> None:
        with engine:
            results.extend(engine.run(_write_slowly, outputs,
                                      on_abandon=lambda dst: remove_temporaries_of(Path(dst))))

    worker = threading.Thread(target=run)
    worker.start()
    pids: list[int] = []

    def both_writing() -> bool:
        pids[:] = [int(text) for p in tmp_path.glob(".*.tmp") if (text := p.read_text())]
        return len(pids) == 2

    _interrupt_when(both_writing)
    worker.join(10)
    assert not worker.is_alive(), "the engine's run ends once interrupted"
    assert not list(tmp_path.iterdir()), "temporaries of the stopped jobs are removed"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert results == []


def test_interrupting_ray_cancels_its_tasks(ray_instance):
    engine = create_engine("ray", EngineConfig(workers=2))
    abandoned: list[float] = []

    def run() -> None:
        with engine:
            list(engine.run(time.sleep, [120.0, 121.0], on_abandon=abandoned.append))

    worker = threading.Thread(target=run)
    worker.start()
    _interrupt_when(lambda: len(engine._in_flight) == 2)
    worker.join(30)
    assert not worker.is_alive() and sorted(abandoned) == [120.0, 121.0]
    assert ray_instance.is_initialized(), "a Ray the engine did not start is left running"


def test_bench_on_ray_gives_the_rows_it_gives_locally(folder, ray_instance, tmp_path):
    import csv

    def sizes(out: Path) -> dict[tuple[str, str], str]:
        with open(out / "results.csv") as fh:
            return {(r["image"], r["codec"]): r["bytes"] for r in csv.DictReader(fh) if r["exact"] == "True"}

    for name, extra in (("here", []), ("there", ["--engine", "ray"])):
        assert main(["bench", str(folder), "--out", str(tmp_path / name), "--codecs", "png,jpegls",
                     "--no-plots", *extra]) == 0
    assert sizes(tmp_path / "there") == sizes(tmp_path / "here") and len(sizes(tmp_path / "here")) == 6


def test_an_unreachable_cluster_is_named_at_once():
    import socket

    pytest.importorskip("ray", reason="Ray is not installed (pip install 'lossless_bpg[ray]')")
    from lossless_bpg.engines.ray_engine import _check_reachable

    with socket.socket() as s:  # a loopback port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EngineUnavailableError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        _check_reachable(f"127.0.0.1:{port}")
    _check_reachable("auto")  # left to Ray
