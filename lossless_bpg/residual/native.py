"""The arithmetic coder's native code: torchac's C++ backend, built once ahead of time into this
Python environment and only loaded afterwards.

Importing ``torchac`` compiles its backend with ``torch.utils.cpp_extension.load()`` in every
process, under a lock file in ``~/.cache/torch_extensions`` that all of a user's environments
share. A process killed while it holds that lock makes every later import wait forever, and two
environments rebuild the backend in turn, because the build file they share names each
environment's own paths. So this package never imports ``torchac``: it compiles the same C++
source (found in the installed ``torchac`` package) into a folder of its own, keyed by everything
the binary depends on, and later processes just import the built module. A build takes an
advisory ``flock``, which the kernel drops when its holder dies (a killed build cannot block
anyone), and waits for another process's build for a bounded time only.

``make install`` builds it once (through :func:`lossless_bpg.residual.coder.warm_up`).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

from ..errors import BackendUnavailableError

MODULE_NAME = "lossless_bpg_torchac"
#: The coder is integer arithmetic: optimisation changes its speed, never its output (tested).
EXTRA_CFLAGS = ("-O2",)
#: How long a process waits for another one's build before giving up with a message.
BUILD_WAIT_S = 300.0
#: Overrides where built modules are kept (for a read-only environment, or tests).
DIR_ENV = "LOSSLESS_BPG_NATIVE_DIR"

_LOAD_LOCK = threading.Lock()
_LOADED: ModuleType | None = None


def backend_source() -> Path:
    """torchac's C++ source file, found without importing torchac (which would compile it)."""
    spec = importlib.util.find_spec("torchac")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(
            "the arithmetic coder's source (the 'torchac' package) is not installed; "
            "run 'make install' or 'pip install torchac==0.9.3'"
        )
    source = Path(next(iter(spec.submodule_search_locations))) / "backend" / "torchac_backend.cpp"
    if not source.is_file():
        raise BackendUnavailableError(f"torchac is installed but its C++ source {source} is missing")
    return source


def build_key(source: Path) -> str:
    """Names a build by everything the binary depends on: the source, the flags, torch (whose
    headers and libraries it uses), the Python ABI and the machine."""
    import torch

    h = hashlib.sha256(source.read_bytes())
    for part in (*EXTRA_CFLAGS, torch.__version__, sys.implementation.cache_tag, platform.machine()):
        h.update(b"\0" + str(part).encode())
    return h.hexdigest()[:16]


def candidate_dirs() -> list[Path]:
    """Where built modules live, in order: the override, this environment, the user's cache."""
    if os.environ.get(DIR_ENV):
        return [Path(os.environ[DIR_ENV])]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return [Path(sys.prefix) / "share" / "lossless_bpg" / "native", cache / "lossless_bpg" / "native"]


def _module_file(folder: Path) -> Path:
    return folder / f"{MODULE_NAME}.so"


def _import(path: Path) -> ModuleType:
    import torch  # noqa: F401  (the module links against libtorch, which must be loaded first)

    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise BackendUnavailableError(f"cannot load the arithmetic coder from {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the arithmetic coder built at {path} does not load ({exc}); delete that folder and "
            f"run 'python -m lossless_bpg.residual.native' to rebuild it"
        ) from exc
    return module


def acquire_lock(fh, lock_path: Path, wait_s: float) -> None:
    """Take an exclusive flock on ``fh``, waiting at most ``wait_s`` for its holder. A lock
    file left by a dead process is no obstacle: the kernel released its lock with the process."""
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise BackendUnavailableError(
                    f"gave up after {wait_s:.0f} s waiting for another process that is building the "
                    f"arithmetic coder (lock {lock_path}); try again when it has finished"
                ) from None
            if not told:
                print(f"lossless_bpg: waiting for another process building the arithmetic coder "
                      f"(lock {lock_path})", file=sys.stderr)
                told = True
            time.sleep(0.2)


def _compile(source: Path, build_dir: Path) -> Path:
    """Compile ``source`` into ``build_dir`` (which nobody else uses); returns the module file."""
    from torch.utils import cpp_extension

    env_path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env_path])
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)  # ninja's chatter is not ours to print
            cpp_extension.load(name=MODULE_NAME, sources=[str(source)], build_directory=str(build_dir),
                               extra_cflags=list(EXTRA_CFLAGS), verbose=False)
    except Exception as exc:
        raise BackendUnavailableError(
            f"could not build the arithmetic coder from {source}: {exc}. It needs a C++ compiler "
            f"(g++) and ninja (the 'ninja' package)"
        ) from exc
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
        os.environ["PATH"] = env_path
    return _module_file(build_dir)


def build(folder: Path, wait_s: float = BUILD_WAIT_S) -> Path:
    """Build the module into ``folder``/<key>/ unless it is there; returns the module file.
    The build happens in a private temporary folder moved into place when complete, so no
    process ever sees half a build."""
    source = backend_source()
    key = build_key(source)
    target = _module_file(folder / key)
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / f"{key}.lock"
    with open(lock_path, "a") as lock:
        acquire_lock(lock, lock_path, wait_s)
        if target.is_file():  # another process built it while this one waited
            return target
        print("lossless_bpg: building the arithmetic coder's native code once for this environment "
              "(about 30 s) ...", file=sys.stderr)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.build-", dir=folder))
        try:
            os.chmod(scratch, 0o755)  # mkdtemp's 0700 would hide the build from other users
            _compile(source, scratch)
            shutil.rmtree(target.parent, ignore_errors=True)  # an incomplete earlier attempt
            os.rename(scratch, target.parent)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def load() -> ModuleType:
    """The built coder module (``encode_cdf``, ``decode_cdf``), building it first if no build
    for this environment exists anywhere it is looked for. Thread-safe: tiles decoded in
    threads call it at once, and a module being loaded in one thread has no functions yet."""
    if _LOADED is not None:
        return _LOADED
    with _LOAD_LOCK:
        return _load()


def _load() -> ModuleType:
    global _LOADED
    if _LOADED is None:
        key = build_key(backend_source())
        folders = candidate_dirs()
        for folder in folders:
            if _module_file(folder / key).is_file():
                _LOADED = _import(_module_file(folder / key))
                return _LOADED
        errors = []
        for folder in folders:
            try:
                _LOADED = _import(build(folder))
                return _LOADED
            except PermissionError as exc:  # e.g. a read-only environment: try the next place
                errors.append(f"{folder}: {exc}")
        raise BackendUnavailableError("nowhere to build the arithmetic coder: " + "; ".join(errors))
    return _LOADED
