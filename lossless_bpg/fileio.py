"""Safe output: write to a temporary file beside the target, then move it into place; never
replace an existing file unless asked to."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import OutputExistsError


def write_atomic(path: Path, writer: Callable[[Path], None], force: bool = False) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path``.

    Without ``force`` an existing ``path`` is an error, checked before any work and again at
    the final step (hard link, which refuses to replace), so a file appearing meanwhile is not
    clobbered either. On any failure the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
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


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data), force)
