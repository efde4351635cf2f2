"""Writing the report files of a scenario's strategy runs, in parallel when it pays.

The HTML tear sheet and the PNG plots cost seconds of CPU per strategy, far more than the
backtests, and the strategies' reports do not depend on each other. When a scenario
compares several strategies with those views on and the machine has more than one CPU,
each report is written by a fresh interpreter (``python -m alfred.report_jobs``)
while the main process goes on with the next strategy's backtests; otherwise reports are
written in-process. The files are identical either way.

Why a fresh interpreter and not ``multiprocessing``: ``fork`` would copy the numba and
polars thread pools mid-flight, and ``spawn``/``forkserver`` re-import the caller's main
module, which breaks any user script without an ``if __name__ == "__main__"`` guard.
The job travels as a pickle over the worker's stdin (written by a thread, so the main
process goes on at once) and the outcome comes back over its stdout; only the worker's
stderr is kept, in a small log file in the run's private staging folder, deleted with it.
A worker ends with the process that started it, even after a ``kill -9`` of that process
(:func:`engine.executor.die_with_parent`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import AlfredError, RunError

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, eq=False)
class ReportJob:
    """Everything ``reports.write_report`` needs for one strategy run (picklable)."""

    label: str
    run_dir: Path
    result: Any  # BacktestResult with costs
    gross: Any  # the same run under Costs.zero()
    benchmark: pl.DataFrame | None
    benchmark_label: str | None
    title: str
    tearsheet: bool
    plots: bool
    notes: tuple[str, ...] = ()


def write_report_job(job: ReportJob) -> list[str]:
    """Write one run's report; returns the warnings raised while doing it."""
    from reports import write_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        write_report(job.run_dir, job.result, gross_result=job.gross,
                     benchmark_returns=job.benchmark, title=job.title,
                     benchmark_label=job.benchmark_label, tearsheet=job.tearsheet,
                     plots=job.plots, notes=job.notes)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@dataclass
class _Worker:
    job: ReportJob
    process: subprocess.Popen
    feeder: threading.Thread  # writes the pickled job to the worker's stdin
    log: Any  # the open stderr file


class ReportWriter:
    """Submit report jobs; ``finish`` waits for all, in order, raising the first error."""

    def __init__(self, n_jobs: int, views: bool, scratch: Path) -> None:
        self.max_workers = min(n_jobs, os.cpu_count() or 1) if views else 1
        self._scratch = scratch
        self._running: list[_Worker] = []
        self._started = 0
        self.warnings: list[str] = []

    @property
    def parallel(self) -> bool:
        return self.max_workers > 1

    def submit(self, job: ReportJob, on_done: Callable[[ReportJob], None]) -> None:
        if not self.parallel:
            self.warnings.extend(write_report_job(job))
            on_done(job)
            return
        if len(self._running) >= self.max_workers:
            self._collect(self._running.pop(0), on_done)
        self._running.append(self._start(job))

    def finish(self, on_done: Callable[[ReportJob], None]) -> None:
        try:
            while self._running:
                self._collect(self._running.pop(0), on_done)
        finally:
            self.close()

    def close(self) -> None:
        """Stop any worker still running (after an error or Ctrl-C elsewhere)."""
        for worker in self._running:
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait()
            worker.feeder.join()
            worker.process.stdout.close()
            _close_log(worker.log)
        self._running.clear()

    def _start(self, job: ReportJob) -> _Worker:
        from engine.executor import child_env

        self._started += 1
        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        env = child_env()
        # the worker must import this very checkout, whatever the caller's sys.path was
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        log = (self._scratch / f".report-{self._started}.log").open("w+", encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "alfred.report_jobs"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        feeder = threading.Thread(target=_feed, args=(process.stdin, payload),
                                  name=f"report-job-{self._started}", daemon=True)
        feeder.start()
        return _Worker(job, process, feeder, log)

    def _collect(self, worker: _Worker, on_done: Callable[[ReportJob], None]) -> None:
        try:
            data = worker.process.stdout.read()
            code = worker.process.wait()
        except BaseException:  # Ctrl-C while waiting: this worker is no longer in _running
            worker.process.kill()
            worker.process.wait()
            raise
        finally:
            worker.process.stdout.close()
            worker.feeder.join()
            worker.log.seek(0)
            log_text = worker.log.read()
            _close_log(worker.log)
        outcome = pickle.loads(data) if data and code == 0 else None
        if outcome is None:
            raise RunError(f"the report worker for {worker.job.label!r} exited with code "
                           f"{code}:\n{log_text[-4000:]}")
        kind, value = outcome
        if kind == "error":
            raise value
        if kind == "error_text":
            raise RunError(f"writing the report of {worker.job.label!r} failed:\n{value}")
        self.warnings.extend(value)
        on_done(worker.job)


def _feed(stream, payload: bytes) -> None:
    """Write the job and close the pipe (the worker reads to its end)."""
    with contextlib.suppress(OSError):  # the worker died early: its exit code tells why
        try:
            stream.write(payload)
        finally:
            stream.close()


def _close_log(log) -> None:
    log.close()
    Path(log.name).unlink(missing_ok=True)


def _worker_main() -> int:
    """Entry point of a report worker: the pickled job from stdin, the pickled outcome to
    stdout (prints of the reporting libraries go to stderr, never into the outcome)."""
    from engine.executor import die_with_parent

    die_with_parent()
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        job = pickle.loads(sys.stdin.buffer.read())
        try:
            outcome: tuple[str, Any] = ("ok", write_report_job(job))
        except AlfredError as exc:  # bad input: travels as itself, so exit codes stay right
            outcome = ("error", exc)
        except OSError as exc:  # a full disk or a folder gone: the parent names the run folder
            outcome = ("error", exc)
        except Exception:  # a bug: its traceback is what the user needs to report it
            outcome = ("error_text", traceback.format_exc())
        results.write(pickle.dumps(outcome))
        results.close()
    except KeyboardInterrupt:  # the parent died or was interrupted: nobody reads this
        os._exit(130)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())
