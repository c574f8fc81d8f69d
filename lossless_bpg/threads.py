"""The CPU threads torch runs its operations on."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def set_torch_threads(n: int) -> None:
    """Torch runs its operations on ``n`` threads from now on. Where torch is not loaded yet
    (the sequential coder never needs it, and importing it costs ~0.9 s) it is not imported
    here: it reads the count from the environment if and when it is."""
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = str(n)
    elif torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch runs its operations on ``n`` threads inside the block (None: as it was); the
    setting is restored after. Torch reads the setting when a thread first runs an operation:
    threads that should use it must start inside the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Background(Generic[T]):
    """``job()`` running on a thread of its own; :meth:`result` waits for it. The thread is a
    daemon: an interrupted program exits at once instead of waiting for it."""

    def __init__(self, job: Callable[[], T]) -> None:
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        self._thread.start()

    def _run(self, job: Callable[[], T]) -> None:
        try:
            self._result = job()
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread)
            self._error = exc

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set by the job
