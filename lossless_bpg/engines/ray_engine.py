"""The ``ray`` engine: each job is a Ray task, on a local Ray or on a cluster.

Without ``ray_address`` a local Ray is started on first use with ``workers x threads`` CPUs
(``workers`` defaults to this machine's cores) and stopped when the engine closes; a Ray that
this process has already started (``ray.init`` by the caller) is used as it is and left running.
With ``ray_address`` the engine joins that cluster: every node needs this package installed (the
same version) and must see the inputs and outputs at the same paths (a shared filesystem), since
tasks read and write the files themselves. Each task reserves ``threads`` CPUs (default 1 on a
cluster or a Ray already running; never more than the largest node has), so Ray runs as many at
once on each node as its CPUs allow. A task is tried once: a
task whose worker dies fails its file (run again with ``--skip-existing`` to redo only those).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import (
    RAY_INSTALL_HINT,
    Engine,
    EngineConfig,
    EngineUnavailableError,
    J,
    Outcome,
    R,
    cores,
    prepare_worker,
    threads_per_worker,
)


def _ray_module() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise EngineUnavailableError(
            f"the ray engine needs Ray, which is not installed here ({exc}): {RAY_INSTALL_HINT}"
        ) from None
    return ray


def _task(fn: Callable[[Any], Any], job: Any, threads: int, setup: Callable[[], None] | None) -> Any:
    """What a Ray worker runs for one job."""
    prepare_worker(threads, setup)
    return fn(job)


class RayEngine(Engine):
    name = "ray"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.ray = _ray_module()  # fails here, before any work, when Ray is missing
        self._started_ray = False
        self._refs: dict[Any, int] = {}

    def describe(self) -> str:
        where = f"cluster at {self.config.ray_address}" if self.config.ray_address else "local Ray"
        return f"ray engine, {where}"

    def _connect(self) -> tuple[int, int, int]:
        """Start or join Ray; (jobs in flight at most, torch threads per job, CPUs each reserves)."""
        ray = self.ray
        own = not self.config.ray_address and not ray.is_initialized()
        if own:  # a local Ray of our own, sized as a local pool would be
            threads = threads_per_worker(self.config.workers or cores(), self.config.threads)
            workers = self.config.workers or max(1, cores() // threads)
            # ERROR: a Ray of this run's own needs no notes on its security set-up, or on
            # its SIGTERM handler (the command runs in a worker thread, see cli).
            try:
                ray.init(num_cpus=workers * threads, include_dashboard=False, logging_level=logging.ERROR)
            except Exception as exc:  # Ray raises many kinds; all mean the same here
                raise EngineUnavailableError(f"cannot start a local Ray: {_first_line(exc)}") from exc
            self._started_ray = True
        else:  # a cluster, or a Ray this process runs already: its CPUs are not ours to divide
            threads = self.config.threads or 1
            address = self.config.ray_address
            if address and not ray.is_initialized():
                _check_reachable(address)
                try:
                    ray.init(address=address, logging_level=logging.WARNING)
                except Exception as exc:
                    raise EngineUnavailableError(f"cannot join the Ray cluster at {address}: {_first_line(exc)}") from exc
                self._started_ray = True  # connected: disconnect at the end (the cluster stays)
        # A task asking for more CPUs than any machine has would wait for ever.
        largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1)
        reserve = max(1, min(threads, int(largest)))
        if self.config.workers:
            return self.config.workers, threads, reserve
        cpus = int(ray.cluster_resources().get("CPU", 1))
        # A cluster's tasks are queued a little ahead of its CPUs, so none waits on the driver.
        return max(1, cpus // reserve) * (1 if own else 2), threads, reserve

    def _run(self, fn: Callable[[J], R], jobs: Sequence[J],
             status: Callable[[str], None] | None) -> Iterator[Outcome[R]]:
        if not jobs:
            return
        ray = self.ray
        in_flight, threads, reserve = self._connect()
        # One CPU reserved per thread: Ray then runs no more tasks at once than a node has cores.
        remote = ray.remote(_task).options(num_cpus=reserve, max_retries=0)
        pending = list(enumerate(jobs))
        pending.reverse()
        try:
            while pending or self._refs:
                while pending and len(self._refs) < in_flight and not self.interrupted:
                    index, job = pending.pop()
                    self._started(index, job)
                    ref = remote.remote(fn, job, threads, self.config.worker_setup)
                    with self._lock:
                        self._refs[ref] = index
                with self._lock:
                    refs = list(self._refs)
                if self.interrupted or not refs:
                    return
                done, _ = ray.wait(refs, num_returns=1)
                if self.interrupted:
                    return
                for ref in done:
                    with self._lock:
                        index = self._refs.pop(ref)
                    self._finished(index)
                    try:
                        value = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 (a task's failure is its outcome)
                        yield Outcome(index, error=_describe_ray_error(exc))
                    else:
                        yield Outcome(index, value=value)
        finally:
            if self._refs and not self.interrupted:
                self._cancel()

    def _cancel(self) -> None:
        with self._lock:
            refs = list(self._refs)
            self._refs.clear()
        for ref in refs:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001, S110 (finished meanwhile, or Ray is going away)
                pass

    def _stop_workers(self) -> None:
        if not (self._started_ray and not self.config.ray_address):
            self._cancel()  # tasks on a cluster, or on a Ray that is not ours to stop
        # A local Ray of our own is stopped whole, tasks and all (cancelling its tasks first
        # left its agent processes running); from a cluster we disconnect.
        self.close()

    def close(self) -> None:
        """Stop the local Ray this engine started, or leave the cluster it joined."""
        if self._started_ray:
            self._started_ray = False
            self.ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail at once, with a message, when nothing listens at a HOST:PORT address (ray.init
    would retry for many minutes); 'auto' and ray:// addresses are left to Ray."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise EngineUnavailableError(
            f"cannot reach the Ray cluster at {address} ({exc}): is 'ray start --head' running there, "
            "and is the address the one it printed?"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _describe_ray_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # RayTaskError: the job's own exception
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {_first_line(exc)}"
