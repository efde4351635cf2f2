"""Writing the report files of a scenario's strategy runs, in parallel when it pays.

The HTML tear sheet and the PNG plots cost seconds of CPU per strategy, far more than the
backtests, and the strategies' reports do not depend on each other. When a scenario
compares several strategies with those views on and the machine has more than one CPU,
each report is written by a fresh interpreter (``python -m alfred.report_jobs``)
while the main process goes on with the next strategy's backtests; otherwise reports are
written in-process. The files are identical either way.

The workers are started when the writer is made, before the run loads its data: a worker
spends its first seconds importing the reporting stack (matplotlib, pandas, scipy,
quantstats), and that happens on a CPU the main process leaves idle while it loads bars,
runs the analysts and backtests, instead of after the job arrives. A worker then waits on
its stdin for its job.

Why a fresh interpreter and not ``multiprocessing``: ``fork`` would copy the numba and
polars thread pools mid-flight, and ``spawn``/``forkserver`` re-import the caller's main
module, which breaks any user script without an ``if __name__ == "__main__"`` guard.
The job travels as a pickle over the worker's stdin (written by a thread, so the main
process goes on at once; the result's record arrays cut to the rows the kernel wrote) and
the outcome comes back over its stdout; only the worker's stderr is kept, in an anonymous
temporary file (no name on disk, gone when closed). A worker ends with the process that
started it, even after a ``kill -9`` of that process
(:func:`engine.executor.die_with_parent`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import subprocess
import sys
import tempfile
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
# Imported by quantstats and seaborn only to show things in a notebook, each inside a
# ``try: ... except ImportError``; a headless worker skips them (about half a second).
_NOTEBOOK_ONLY = ("IPython", "ipywidgets")


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        from reports import write_report

        write_report(job.run_dir, job.result, gross_result=job.gross,
                     benchmark_returns=job.benchmark, title=job.title,
                     benchmark_label=job.benchmark_label, tearsheet=job.tearsheet,
                     plots=job.plots, notes=job.notes)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def _compact(result: Any) -> Any:
    """``result`` with its order, fill and trade records cut to the rows written.

    The kernel preallocates them for the worst case (one order per asset and bar): for a
    20-asset daily run that is tens of MB of empty rows, which would otherwise be pickled,
    piped and unpickled. Every frame of the result reads only the first ``counts`` rows.
    """
    records = getattr(result, "records", None)
    if not dataclasses.is_dataclass(result) or records is None:
        return result
    n_orders, n_fills, n_trades = (int(n) for n in result.counts[:3])
    return dataclasses.replace(result, records=records._replace(
        orders=records.orders[:n_orders], fills=records.fills[:n_fills],
        trades=records.trades[:n_trades]))


@dataclass
class _Worker:
    process: subprocess.Popen
    log: Any  # the open stderr file
    job: ReportJob | None = None
    feeder: threading.Thread | None = None  # writes the pickled job to the worker's stdin


class ReportWriter:
    """Submit report jobs; ``finish`` waits for all, in order, raising the first error.

    With views on, several jobs and more than one CPU, ``min(n_jobs, CPUs)`` workers are
    started at once and wait for their jobs (see the module doc). ``scratch`` is the
    folder for the workers' anonymous stderr files (default: the system's temp folder).
    """

    def __init__(self, n_jobs: int, views: bool, scratch: Path | None = None) -> None:
        self.max_workers = min(n_jobs, os.cpu_count() or 1) if views else 1
        self._scratch = scratch
        self._idle: list[_Worker] = []  # started, waiting for a job
        self._running: list[_Worker] = []  # fed a job, in submission order
        self._started = 0
        self.warnings: list[str] = []
        if self.parallel:
            try:
                self._idle = [self._start() for _ in range(self.max_workers)]
            except BaseException:
                self.close()
                raise

    @property
    def parallel(self) -> bool:
        return self.max_workers > 1

    def submit(self, job: ReportJob, on_done: Callable[[ReportJob], None]) -> None:
        if not self.parallel:
            self.warnings.extend(write_report_job(job))
            on_done(job)
            return
        if not self._idle:
            if len(self._running) >= self.max_workers:
                self._collect(self._running.pop(0), on_done)
            self._idle.append(self._start())
        worker = self._idle.pop(0)
        self._running.append(worker)
        self._feed(worker, job)

    def finish(self, on_done: Callable[[ReportJob], None]) -> None:
        try:
            while self._running:
                self._collect(self._running.pop(0), on_done)
        finally:
            self.close()

    def close(self) -> None:
        """Stop any worker still running or waiting (after an error or Ctrl-C elsewhere,
        or one started for a job that never came)."""
        for worker in (*self._running, *self._idle):
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait()
            if worker.feeder is not None:
                worker.feeder.join()
            with contextlib.suppress(OSError):
                worker.process.stdin.close()
            worker.process.stdout.close()
            worker.log.close()
        self._running.clear()
        self._idle.clear()

    def _start(self) -> _Worker:
        from engine.executor import child_env

        self._started += 1
        env = child_env()
        # the worker must import this very checkout, whatever the caller's sys.path was
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        # closed by _collect or close(), after the worker ended
        log = tempfile.TemporaryFile("w+", encoding="utf-8", prefix=".report-",  # noqa: SIM115
                                     dir=self._scratch)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "alfred.report_jobs"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        except BaseException:
            log.close()
            raise
        return _Worker(process, log)

    def _feed(self, worker: _Worker, job: ReportJob) -> None:
        payload = pickle.dumps(dataclasses.replace(
            job, result=_compact(job.result), gross=_compact(job.gross)),
            protocol=pickle.HIGHEST_PROTOCOL)
        worker.job = job
        worker.feeder = threading.Thread(target=_feed, args=(worker.process.stdin, payload),
                                         name=f"report-job-{job.label}", daemon=True)
        worker.feeder.start()

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
            worker.log.close()
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


def _warm_up() -> list[str]:
    """Import what writing a report needs, before the job arrives; returns the warnings
    raised on the way (reported with the job's, as an in-process report would)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        blocked = [name for name in _NOTEBOOK_ONLY if name not in sys.modules]
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
        try:
            import quantstats  # noqa: F401

            import reports.regimes  # noqa: F401
            from engine import backtest, sensitivity  # noqa: F401
        finally:
            for name in blocked:
                sys.modules.pop(name, None)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def _worker_main() -> int:
    """Entry point of a report worker: the pickled job from stdin, the pickled outcome to
    stdout (prints of the reporting libraries go to stderr, never into the outcome)."""
    from engine.executor import die_with_parent

    die_with_parent()
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        try:
            imported = _warm_up()
        except Exception:  # reported with the job, as a failure to write its report
            imported, broken = [], traceback.format_exc()
        else:
            broken = None
        data = sys.stdin.buffer.read()
        if not data:  # closed without a job: the run ended before needing this worker
            return 0
        job = pickle.loads(data)
        try:
            if broken is not None:
                outcome: tuple[str, Any] = ("error_text", broken)
            else:
                outcome = ("ok", imported + write_report_job(job))
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
