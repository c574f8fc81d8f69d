"""The arithmetic coder's native code is built once per environment and only loaded afterwards:
no process compiles it or waits on a lock it cannot get, whatever a killed process left behind."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from lossless_bpg.errors import BackendUnavailableError
from lossless_bpg.residual import native


def test_a_lock_file_left_behind_by_a_dead_process_does_not_block(tmp_path):
    lock_path = tmp_path / "x.lock"
    lock_path.write_text("")  # what a killed builder leaves: the file, but no lock
    with open(lock_path, "a") as fh:
        native.acquire_lock(fh, lock_path, wait_s=0.5)


def test_a_lock_held_by_a_live_process_is_waited_for_a_bounded_time_then_freed_by_its_death(tmp_path):
    lock_path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, time
            fh = open({str(lock_path)!r}, "a")
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            print("held", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with open(lock_path, "a") as fh:
            with pytest.raises(BackendUnavailableError, match="waiting for another process"):
                native.acquire_lock(fh, lock_path, wait_s=0.5)
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            native.acquire_lock(fh, lock_path, wait_s=5)
    finally:
        holder.kill()
        holder.wait()


def test_an_existing_build_is_reused_without_compiling(tmp_path, monkeypatch):
    key = native.build_key(native.backend_source())
    (tmp_path / key).mkdir()
    (tmp_path / key / f"{native.MODULE_NAME}.so").write_bytes(b"built earlier")

    def no_compiler(*_args):
        raise AssertionError("compiled although a build exists")

    monkeypatch.setattr(native, "_compile", no_compiler)
    assert native.build(tmp_path) == tmp_path / key / f"{native.MODULE_NAME}.so"


def test_the_build_key_changes_with_the_flags(monkeypatch):
    source = native.backend_source()
    before = native.build_key(source)
    monkeypatch.setattr(native, "EXTRA_CFLAGS", ("-O0",))
    assert native.build_key(source) != before


def test_commands_run_with_a_stale_torchac_lock_never_import_torchac_or_compile(tmp_path, rng):
    """torchac's own import waits forever on this lock; the codec must not even look at it."""
    extensions = tmp_path / "torch_extensions"
    stale = extensions / f"py{sys.version_info.major}{sys.version_info.minor}_cpu" / "torchac_backend" / "lock"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "x.png")
    script = textwrap.dedent(f"""
        import sys
        from lossless_bpg.residual import native
        def no_compiler(*_args):
            raise SystemExit("a run tried to compile the coder")
        native._compile = no_compiler
        from lossless_bpg.cli import main
        assert main(["compress", {str(tmp_path / 'x.png')!r}, "-q", "30", "--quiet"]) == 0
        assert main(["decompress", {str(tmp_path / 'x.lbpg')!r}, "-o", {str(tmp_path / 'out')!r}, "--quiet"]) == 0
        assert "torchac" not in sys.modules, "importing torchac compiles under its lock"
    """)
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(extensions))
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=300, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "x.png")), image)
