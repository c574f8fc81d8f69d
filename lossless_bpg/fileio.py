"""Safe output: write to a temporary file beside the target, then move it into place; never
replace an existing file unless asked to, and never one that is an input."""

from __future__ import annotations

import glob
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import InputError, OutputExistsError

#: Temporary files being written now, so an interrupted run can remove them (see cli).
_PENDING: set[Path] = set()
_PENDING_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_pending_temporaries() -> None:
    """Delete every temporary file a write in progress has created (outputs already moved into
    place are complete and stay)."""
    with _PENDING_LOCK:
        for tmp in list(_PENDING):
            tmp.unlink(missing_ok=True)
        _PENDING.clear()


def remove_temporaries_of(path: Path) -> None:
    """Delete the temporary files that writes of ``path`` (:func:`write_atomic`, in any
    process) have left beside it: a worker process stopped mid-write cannot remove its own."""
    path = Path(path)
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.{'?' * 8}.tmp"):
        tmp.unlink(missing_ok=True)


def _open_regular(path: Path) -> int:
    """A descriptor open for reading ``path``, which must be a regular file. Opened without
    blocking, so that a named pipe with no writer (or a device) is refused at once instead of
    waiting forever, and checked on the descriptor itself (no window between check and use)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError("no such file") from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"cannot open it ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return fd
    os.close(fd)
    kind = "a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode) else "a device or socket"
    raise InputError(f"is {kind}, not a regular file; inputs must be files")


def check_input(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is a regular file that can be opened (the
    message says what it is instead, without the path: callers name the file)."""
    os.close(_open_regular(Path(path)))


def read_input(path: Path, check_head: Callable[[bytes], None] | None = None, head_bytes: int = 0) -> bytes:
    """The bytes of the regular file ``path`` (:class:`InputError` if it is none). With
    ``check_head``, its first ``head_bytes`` bytes are checked first (which raises on a file
    of another kind), so that a large file of the wrong kind is never read whole."""
    with os.fdopen(_open_regular(Path(path)), "rb") as fh:
        head = b""
        if check_head:
            head = fh.read(head_bytes)
            check_head(head)
        return head + fh.read()


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names, following links; None if there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def outputs_that_are_inputs(inputs: Iterable[Path], outputs: Iterable[Path]) -> list[Path]:
    """The outputs that are, or resolve to, one of the inputs: the same path, a hard link to
    it, or a symbolic link to it. Writing there would destroy an input, ``--force`` or not."""
    protected = {ident for ident in map(file_identity, inputs) if ident is not None}
    return [out for out in outputs if file_identity(out) in protected]


def write_atomic(path: Path, writer: Callable[[Path], object], force: bool = False) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path``.

    Without ``force`` an existing ``path`` is an error, checked before any work and again at
    the final step (hard link, which refuses to replace), so a file appearing meanwhile is not
    clobbered either. On any failure the temporary file is removed and ``path`` is untouched.
    The file gets the permissions a newly created file gets (0666 less the umask).
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name's pattern is what remove_temporaries_of looks for (mkstemp adds 8 characters).
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    with _PENDING_LOCK:
        _PENDING.add(tmp)
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600
        finally:
            os.close(fd)
        writer(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputExistsError(f"{path} exists; use --force to overwrite it") from None
            except OSError:  # filesystem without hard links: best effort, re-checked late
                if path.exists():
                    raise OutputExistsError(f"{path} exists; use --force to overwrite it")
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        with _PENDING_LOCK:
            _PENDING.discard(tmp)


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data), force)
