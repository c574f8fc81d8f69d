"""Engines: where per-file jobs run. One interface, chosen by name (``--engine``).

- ``local``: in this process with one worker (the default), or on a pool of ``--workers N``
  processes on this machine (spawn start method, each with its share of the cores as torch
  threads);
- ``ray``: Ray tasks, on a local Ray started on demand (``ray.init(num_cpus=...)``) or on a
  cluster joined with ``--ray-address``. Needs the optional ``ray`` extra.

A job is a plain top-level function and one picklable argument (see :mod:`lossless_bpg.jobs`);
every engine calls the same function, so results do not depend on the engine. Jobs report
their own failures in their results; an engine only reports what kept a job from returning
(an exception that escaped it, a worker that died) as :attr:`Outcome.error`.
"""

from __future__ import annotations

import argparse
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Generic, Self, TypeVar

from ..errors import LosslessBpgError

J = TypeVar("J")
R = TypeVar("R")

RAY_INSTALL_HINT = "pip install 'lossless_bpg[ray]'"


class EngineUnavailableError(LosslessBpgError):
    """The engine asked for cannot run here (a usage error: exit status 2)."""


@dataclass(frozen=True)
class EngineConfig:
    """How many jobs run at once and with how many threads each.

    ``workers``: jobs at once; None is the engine's default (local: 1, in this process; ray:
    one per CPU of a local Ray, or as many as a cluster's CPUs allow). ``threads``: torch
    threads per job in worker processes; None gives each worker its share of this machine's
    cores (local) or 1 (a Ray cluster, where each task reserves that many CPUs).
    ``worker_setup``: a top-level function run once in each worker process before its first
    job. ``ray_address``: the Ray cluster to join (``ray`` engine only; None starts a local one).
    """

    workers: int | None = None
    threads: int | None = None
    worker_setup: Callable[[], None] | None = None
    ray_address: str | None = None


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What became of ``jobs[index]``: its return value, or why there is none."""

    index: int
    value: R | None = None
    error: str | None = None


def cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None) -> int:
    """Torch threads for each of ``workers`` processes: ``threads`` if given, else a share of
    the cores, so that the workers do not oversubscribe them."""
    return threads if threads else max(1, cores() // workers)


# The status sink of the job running in this thread, set by engines that run jobs in-process.
_status = threading.local()


def report_status(text: str) -> None:
    """A job's note on where it is (``kodim01: Q 28, 36 tried``): shown on the progress bar
    when the job runs in this process, dropped in worker processes."""
    sink = getattr(_status, "sink", None)
    if sink is not None:
        sink(text)


class Engine(ABC):
    """Runs ``fn(job)`` for every job and yields an :class:`Outcome` per job as each finishes
    (in any order). Use as a context manager: workers are released on exit, and an engine
    that is running can be stopped at once from another thread by :func:`interrupt_engines`."""

    name: ClassVar[str]

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._in_flight: dict[int, object] = {}  # index -> job, of jobs started and not finished
        self._on_abandon: Callable[[object], None] | None = None
        self.interrupted = False

    @abstractmethod
    def describe(self) -> str:
        """Where the jobs run, for the user ('' for jobs run in this process: nothing to say)."""

    @abstractmethod
    def _run(self, fn: Callable[[J], R], jobs: Sequence[J],
             status: Callable[[str], None] | None) -> Iterator[Outcome[R]]:
        ...

    def _stop_workers(self) -> None:
        """Stop every worker now (called from another thread by :meth:`interrupt`)."""

    def close(self) -> None:
        """Release the workers (after the last job)."""

    def run(self, fn: Callable[[J], R], jobs: Sequence[J], *,
            status: Callable[[str], None] | None = None,
            on_abandon: Callable[[J], None] | None = None) -> Iterator[Outcome[R]]:
        """``fn(job)`` for every job; ``fn`` must be a top-level function and each job
        picklable. ``status`` receives :func:`report_status` notes of jobs run in this
        process. ``on_abandon(job)`` is called, in the interrupting thread, for each job that
        was running when the engine was interrupted, after its worker was stopped (to remove
        what it leaves, such as a temporary file)."""
        with self._lock:
            self._on_abandon = on_abandon  # type: ignore[assignment]
        return self._run(fn, jobs, status)

    def _started(self, index: int, job: object) -> None:
        with self._lock:
            self._in_flight[index] = job

    def _finished(self, index: int) -> None:
        with self._lock:
            self._in_flight.pop(index, None)

    def interrupt(self) -> None:
        """Stop all work at once: workers are stopped, then ``on_abandon`` is called for the
        jobs they were running. Safe to call from another thread while :meth:`run` iterates."""
        with self._lock:
            self.interrupted = True
            abandoned = list(self._in_flight.values())
            self._in_flight.clear()
            on_abandon = self._on_abandon
        self._stop_workers()
        if on_abandon is not None:
            for job in abandoned:
                on_abandon(job)

    def __enter__(self) -> Self:
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        if not self.interrupted:
            self.close()


_RUNNING: set[Engine] = set()
_RUNNING_LOCK = threading.Lock()


def interrupt_engines() -> None:
    """Interrupt every engine that is running (Ctrl-C: see ``cli._run_interruptibly``)."""
    with _RUNNING_LOCK:
        engines = list(_RUNNING)
    for engine in engines:
        engine.interrupt()


def _local(config: EngineConfig) -> Engine:
    from .local import LocalEngine

    return LocalEngine(config)


def _ray(config: EngineConfig) -> Engine:
    from .ray_engine import RayEngine

    return RayEngine(config)


#: Engines by name; each entry makes an engine from its configuration.
ENGINES: dict[str, Callable[[EngineConfig], Engine]] = {"local": _local, "ray": _ray}


def create_engine(name: str, config: EngineConfig) -> Engine:
    """The engine called ``name``; :class:`EngineUnavailableError` if it is unknown or cannot
    run here (Ray not installed)."""
    if name not in ENGINES:
        raise EngineUnavailableError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    return ENGINES[name](config)


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def add_engine_arguments(p: argparse.ArgumentParser, workers_default: int | None = None) -> None:
    """``--engine``, ``--workers`` and ``--ray-address``, as every command that runs jobs takes them."""
    p.add_argument("--engine", choices=sorted(ENGINES), default="local",
                   help="where the per-file jobs run: local (this machine: one process, or a pool "
                        "with --workers) or ray (a local Ray, or a cluster with --ray-address; "
                        f"needs {RAY_INSTALL_HINT})")
    p.add_argument("--workers", type=_positive, default=workers_default, metavar="N",
                   help="jobs at once (local default: 1, in this process; ray default: one per CPU)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (e.g. auto, or HEAD_IP:6379 from 'ray start --head') "
                        "instead of starting a local Ray; with --engine ray")


def engine_from_args(args: argparse.Namespace, threads: int | None = None,
                     worker_setup: Callable[[], None] | None = None) -> Engine:
    """The engine the command line asks for; :class:`EngineUnavailableError` for a
    combination that cannot run (exit status 2)."""
    if args.ray_address and args.engine != "ray":
        raise EngineUnavailableError("--ray-address is for --engine ray")
    return create_engine(args.engine, EngineConfig(workers=args.workers, threads=threads,
                                                   worker_setup=worker_setup,
                                                   ray_address=args.ray_address))


_SETUP_DONE: set[Callable[[], None]] = set()


def prepare_worker(threads: int, setup: Callable[[], None] | None) -> None:
    """In a worker process, before a job: torch gets ``threads`` threads (without importing
    it, see threads.set_torch_threads), and ``setup`` runs once per process."""
    from ..threads import set_torch_threads

    set_torch_threads(threads)
    if setup is not None and setup not in _SETUP_DONE:
        setup()
        _SETUP_DONE.add(setup)
