"""Local executors: a process pool (the default) and inline (this process).

Workers are *spawned* fresh interpreters, not forked: forking a process that has started
numba's, polars' or torch's thread pools can deadlock the child, and a fresh worker
imports only what its tasks need. Each worker limits its BLAS/torch/numba/polars
threads to ``cores // workers`` before any of them is imported, so N workers never
oversubscribe the machine (an oversubscribed torch is 10-20x slower, not a bit slower).
A worker pool is reused across tasks, so the start-up cost is paid once per worker.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from engine.executor._base import Executor
from engine.executor._task import Task, TaskResult, call_task

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMBA_NUM_THREADS", "POLARS_MAX_THREADS", "ALFRED_TORCH_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """Environment that caps every library's thread pool at ``threads``."""
    return dict.fromkeys(_THREAD_VARS, str(threads))


def _init_worker(threads: int) -> None:
    os.environ.update(thread_env(threads))


class InlineExecutor(Executor):
    """Tasks one after another in this process; exceptions still become failed results."""

    kind = "inline"

    @property
    def workers(self) -> int:
        return 1

    def _execute(self, tasks: list[Task]) -> Iterator[TaskResult]:
        for task in tasks:
            yield call_task(task)


class LocalExecutor(Executor):
    """A pool of spawned worker processes on this machine."""

    kind = "local"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._pool: ProcessPoolExecutor | None = None

    def _start(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(self.spec.worker_threads(),),
        )

    def _execute(self, tasks: list[Task]) -> Iterator[TaskResult]:
        pending: dict[Future, Task] = {}
        queue = list(reversed(tasks))
        # A worker that dies (OOM, a crash in native code) breaks the whole pool and every
        # task in flight with it. Those tasks are rerun one at a time in a fresh pool, so
        # only the task that really kills its worker is reported as failed.
        suspects: list[Task] = []
        solo: Task | None = None
        # Keep the queue short (2 per worker) so an interrupt cancels little in flight and
        # results arrive in roughly task order.
        depth = 2 * self.workers
        try:
            while queue or pending or suspects:
                if suspects:
                    if not pending:
                        solo = suspects.pop()
                        pending[self._pool.submit(call_task, solo)] = solo
                else:
                    solo = None
                    while queue and len(pending) < depth:
                        task = queue.pop()
                        pending[self._pool.submit(call_task, task)] = task
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    task = pending.pop(future)
                    outcome = _outcome(future, task)
                    if outcome.error_type == "WorkerDied":
                        broken = True
                        if task is not solo:
                            suspects.append(task)
                            continue
                    yield outcome
                if broken:
                    suspects.extend(pending.values())
                    pending.clear()
                    self._restart()
        except BaseException:
            self._kill()
            raise

    def _restart(self) -> None:
        self._kill()
        self._start()
        self._started = True

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _kill(self) -> None:
        """Stop now (Ctrl-C, an abandoned iterator): cancel queued tasks, end the workers."""
        pool, self._pool = self._pool, None
        self._started = False
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


def _outcome(future: Future, task: Task) -> TaskResult:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        return TaskResult(key=task.key, ok=False, error_type="WorkerDied", config=task.config,
                          error=f"the worker process running this task died ({exc}); it may "
                          "have run out of memory or crashed in native code")
    except Exception as exc:  # noqa: BLE001 - e.g. the task or its result does not pickle
        return TaskResult(key=task.key, ok=False, error_type=type(exc).__name__,
                          config=task.config, error=f"{type(exc).__name__}: {exc}")
