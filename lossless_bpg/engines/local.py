"""The ``local`` engine: jobs in this process (one worker) or on a pool of local processes."""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from . import Engine, EngineConfig, J, Outcome, R, _status, prepare_worker, threads_per_worker

WORKER_DIED = "its worker process died (killed from outside, or by the kernel for lack of memory)"


def describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _init_pool_worker(threads: int, setup: Callable[[], None] | None) -> None:
    # Ctrl-C reaches every process of the terminal's process group; the parent alone handles
    # it (and stops the workers), so that a worker never reports it as a failed job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_worker(threads, setup)


class LocalEngine(Engine):
    """``workers`` = 1: every job in this process, one after the other, with this process's
    torch threads (and progress notes shown). More: a pool of that many processes (spawn, not
    fork: a forked child of a process that has run torch's thread pool can deadlock inside
    it), each with its share of the cores as torch threads. A worker that dies (killed for
    lack of memory, say) fails its job only; the others go on in a new pool."""

    name = "local"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.workers = config.workers or 1
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> str:
        if self.workers == 1:
            return ""
        threads = threads_per_worker(self.workers, self.config.threads)
        return f"local engine, {self.workers} processes x {threads} thread(s)"

    def _run(self, fn: Callable[[J], R], jobs: Sequence[J],
             status: Callable[[str], None] | None) -> Iterator[Outcome[R]]:
        if self.workers == 1:
            return self._run_here(fn, jobs, status)
        return self._run_pool(fn, jobs)

    def _run_here(self, fn: Callable[[J], R], jobs: Sequence[J],
                  status: Callable[[str], None] | None) -> Iterator[Outcome[R]]:
        for index, job in enumerate(jobs):
            if self.interrupted:
                return
            _status.sink = status
            try:
                outcome = Outcome(index, value=fn(job))
            except Exception as exc:  # noqa: BLE001 (one job's failure is its outcome)
                outcome = Outcome(index, error=describe_exception(exc))
            finally:
                _status.sink = None
            yield outcome

    def _run_pool(self, fn: Callable[[J], R], jobs: Sequence[J]) -> Iterator[Outcome[R]]:
        processes = min(self.workers, len(jobs))
        threads = threads_per_worker(processes, self.config.threads)
        pending = deque(enumerate(jobs))
        # A dead worker breaks the whole pool and fails every job in flight; those jobs are
        # tried again in a new pool, each alone, so that a worker dying then is the job's own
        # doing (too much memory, a crash): only that job fails.
        suspects: deque[tuple[int, J]] = deque()
        while (pending or suspects) and not self.interrupted:
            pool = self._pool = ProcessPoolExecutor(
                processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_pool_worker, initargs=(threads, self.config.worker_setup))
            # At most one job per process is submitted at a time, so the jobs in flight are
            # the ones running: those a dead worker fails, and those an interrupt stops.
            futures: dict[Future[R], tuple[int, J, bool]] = {}
            broken = False
            try:
                while True:
                    while not broken:
                        if suspects:
                            if futures:
                                break
                            queue, retry = suspects, True
                        elif pending and len(futures) < processes:
                            queue, retry = pending, False
                        else:
                            break
                        index, job = queue.popleft()
                        try:
                            future = pool.submit(fn, job)
                        except BrokenProcessPool:
                            queue.appendleft((index, job))
                            broken = True
                            break
                        self._started(index, job)
                        futures[future] = (index, job, retry)
                    if not futures:
                        break
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    if self.interrupted:
                        return
                    for future in done:
                        index, job, retry = futures.pop(future)
                        self._finished(index)
                        exc = future.exception()
                        if exc is None:
                            yield Outcome(index, value=future.result())
                        elif isinstance(exc, BrokenProcessPool):
                            broken = True
                            if retry:
                                yield Outcome(index, error=WORKER_DIED)
                            else:
                                suspects.append((index, job))
                        else:
                            yield Outcome(index, error=describe_exception(exc))
            finally:
                # Normally nothing is left running; after an error in the caller, or an
                # interrupt, whatever is still running is stopped rather than waited for.
                if futures:
                    self._stop_workers()
                else:
                    pool.shutdown(wait=True)
                self._pool = None

    def _stop_workers(self) -> None:
        with self._lock:  # the interrupting thread and the run's own cleanup may both get here
            pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        # Dead workers are noticed at once; waiting lets the pool close its queues.
        pool.shutdown(wait=True, cancel_futures=True)
