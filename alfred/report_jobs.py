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
The job travels as a pickle in the run's private staging folder, written and read only by
this module, and is deleted with it.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
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


def write_report_job(job: ReportJob) -> list[str]:
    """Write one run's report; returns the warnings raised while doing it."""
    from reports import write_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        write_report(job.run_dir, job.result, gross_result=job.gross,
                     benchmark_returns=job.benchmark, title=job.title,
                     benchmark_label=job.benchmark_label, tearsheet=job.tearsheet,
                     plots=job.plots)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@dataclass
class _Worker:
    job: ReportJob
    job_file: Path
    process: subprocess.Popen
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
            worker.log.close()
        self._running.clear()

    def _start(self, job: ReportJob) -> _Worker:
        self._started += 1
        job_file = self._scratch / f".report-{self._started}.job"
        job_file.write_bytes(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
        env = dict(os.environ)
        # the worker must import this very checkout, whatever the caller's sys.path was
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        log = job_file.with_suffix(".log").open("w+", encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "alfred.report_jobs", str(job_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
        return _Worker(job, job_file, process, log)

    def _collect(self, worker: _Worker, on_done: Callable[[ReportJob], None]) -> None:
        code = worker.process.wait()
        outcome_file = worker.job_file.with_suffix(".out")
        worker.log.seek(0)
        log_text = worker.log.read()
        worker.log.close()
        outcome = pickle.loads(outcome_file.read_bytes()) if outcome_file.is_file() else None
        for path in (worker.job_file, outcome_file, worker.job_file.with_suffix(".log")):
            path.unlink(missing_ok=True)
        if outcome is None or code != 0:
            raise RunError(f"the report worker for {worker.job.label!r} exited with code "
                           f"{code}:\n{log_text[-4000:]}")
        kind, value = outcome
        if kind == "error":
            raise value
        if kind == "error_text":
            raise RunError(f"writing the report of {worker.job.label!r} failed:\n{value}")
        self.warnings.extend(value)
        on_done(worker.job)


def _worker_main(job_path: str) -> int:
    """Entry point of a report worker: run the pickled job, pickle the outcome beside it."""
    job_file = Path(job_path)
    job = pickle.loads(job_file.read_bytes())
    try:
        outcome: tuple[str, Any] = ("ok", write_report_job(job))
    except AlfredError as exc:  # bad input: travels as itself, so exit codes stay right
        outcome = ("error", exc)
    except Exception:  # a bug: its traceback is what the user needs to report it
        outcome = ("error_text", traceback.format_exc())
    job_file.with_suffix(".out").write_bytes(pickle.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1]))
