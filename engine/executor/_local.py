"""Local executors: a pool of worker processes (the default) and inline (this process).

Workers are fresh interpreters (running ``engine.executor._worker``) fed tasks over a
pipe, not ``multiprocessing`` children: ``fork`` can deadlock a child of a process whose
numba, polars or torch thread pools are running, and ``spawn``/``forkserver`` re-import
the caller's main module, which re-runs a user's script that has no
``if __name__ == "__main__"`` guard. Each worker caps its BLAS/torch/numba/polars thread
pools at ``cores // workers`` before importing anything, so N workers never
oversubscribe the machine (an oversubscribed torch is 10-20x slower, not a bit slower).
Workers are reused across tasks, so the start-up cost is paid once per worker, and each
runs one task at a time: a worker that dies (out of memory, a crash in native code)
fails only the task it was running, and is replaced. Workers end with this process, even
when it is killed with SIGKILL (:mod:`engine.executor._parent`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from engine.executor._base import Executor
from engine.executor._parent import child_env
from engine.executor._task import Task, TaskResult, call_task
from engine.executor._worker import read_message, write_message

# Not ``-m engine.executor._worker``: the package imports that module first, and runpy
# warns about running a module that is already imported.
_WORKER = "from engine.executor._worker import main; main()"
WORKER_MARKER = "ALFRED_EXECUTOR_WORKER"
_GRACE_S = 2.0  # how long stopped workers may take to clean up before SIGKILL
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMBA_NUM_THREADS", "POLARS_MAX_THREADS", "ALFRED_TORCH_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """Environment of a worker: every library's thread pool capped at ``threads``, and a
    marker that code inside a worker reads to not fan out again (no nested pools)."""
    return {**dict.fromkeys(_THREAD_VARS, str(threads)), WORKER_MARKER: "1"}


class InlineExecutor(Executor):
    """Tasks one after another in this process; exceptions still become failed results."""

    kind = "inline"

    @property
    def workers(self) -> int:
        return 1

    def _execute(self, tasks: list[Task]) -> Iterator[TaskResult]:
        for task in tasks:
            yield call_task(task)


@dataclass
class _Worker:
    process: subprocess.Popen
    task: Task | None = None


class LocalExecutor(Executor):
    """A pool of worker processes on this machine, one task per worker at a time."""

    kind = "local"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._workers: list[_Worker] = []

    def _start(self) -> None:
        self._workers = [self._spawn() for _ in range(self.workers)]

    def _spawn(self) -> _Worker:
        env = {**child_env(), **thread_env(self.spec.worker_threads())}
        # The worker imports what this process can import (tests, a user's package).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        process = subprocess.Popen([sys.executable, "-c", _WORKER],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        return _Worker(process)

    def _execute(self, tasks: list[Task]) -> Iterator[TaskResult]:
        queue = list(reversed(tasks))
        selector = selectors.DefaultSelector()
        try:
            while queue or any(w.task is not None for w in self._workers):
                for worker in self._workers:
                    if worker.task is None and queue:
                        task = queue.pop()
                        if self._send(worker, task):
                            selector.register(worker.process.stdout, selectors.EVENT_READ,
                                              worker)
                        else:
                            yield _died(task, worker)
                            self._replace(worker)
                for key, _ in selector.select():
                    worker: _Worker = key.data
                    selector.unregister(key.fileobj)
                    task, worker.task = worker.task, None
                    payload = read_message(worker.process.stdout)
                    if payload is None:
                        yield _died(task, worker)
                        self._replace(worker)
                        continue
                    result = pickle.loads(payload)
                    if result.key == "?":  # the worker could not unpickle the task
                        result = TaskResult(key=task.key, ok=False, error=result.error,
                                            error_type=result.error_type, config=task.config)
                    yield result
        except BaseException:
            self._kill()
            raise
        finally:
            selector.close()

    def _send(self, worker: _Worker, task: Task) -> bool:
        worker.task = task
        try:
            payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - a lambda or an open file in the task
            raise TypeError(f"task {task.key} cannot be sent to a worker process: {exc}; "
                            "task functions must be module-level and their arguments "
                            "picklable") from None
        try:
            write_message(worker.process.stdin, payload)
        except (BrokenPipeError, OSError):
            return False
        return True

    def _replace(self, worker: _Worker) -> None:
        _end(worker.process)
        fresh = self._spawn()
        worker.process, worker.task = fresh.process, None

    def _stop(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.process.stdin.close()  # the worker's read ends: it exits
        for worker in self._workers:
            try:
                worker.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _end(worker.process)
            if worker.process.stdout is not None:
                worker.process.stdout.close()
        self._workers = []

    def _kill(self) -> None:
        """Stop now (Ctrl-C, SIGTERM, an abandoned iterator): end every worker, drop the
        queue. Workers get SIGTERM first, which interrupts their task so that its clean-up
        runs (a run's staging folder is removed), and SIGKILL after a grace period."""
        for worker in self._workers:
            if worker.process.poll() is None:
                with contextlib.suppress(OSError):
                    worker.process.terminate()
        deadline = time.monotonic() + _GRACE_S
        for worker in self._workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            _end(worker.process)
        self._workers = []
        self._started = False

    _abort = _kill


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _died(task: Task, worker: _Worker) -> TaskResult:
    code = worker.process.poll()
    return TaskResult(key=task.key, ok=False, error_type="WorkerDied", config=task.config,
                      error=f"the worker process running this task died (exit code {code}); "
                      "it may have run out of memory or crashed in native code")
