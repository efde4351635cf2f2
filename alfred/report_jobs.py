"""Writing the report files of a scenario's strategy runs, in parallel when it pays.

The HTML tear sheet and the PNG plots cost seconds of CPU per strategy, far more than the
backtests, and the strategies' reports do not depend on each other. When a scenario
compares several strategies with those views on and the machine has more than one CPU,
the reports are written outside the main process, at most one per CPU at a time, while
the main process goes on with the next strategy's backtests; otherwise they are written
in-process. The files are identical either way.

How: one *report server* (``python -m alfred.report_jobs``, a fresh interpreter) is
started when the writer is made -- or earlier, by :func:`early_report_server`, before the
caller's own imports -- and imports the reporting stack (matplotlib, pandas, quantstats,
about 3 s of CPU) once, on a CPU the main process leaves idle while it loads bars and
runs the analysts. For each job the server then ``fork``s a child that already has all of
that imported; the child writes the report and sends back its outcome. Before, each
worker was its own interpreter and paid the imports again (one per strategy).

Why a fresh interpreter and not ``multiprocessing``: forking the *caller* would copy the
numba and polars thread pools mid-flight, and ``spawn``/``forkserver`` re-import the
caller's main module, which breaks any user script without an ``if __name__ ==
"__main__"`` guard. The server itself is single-threaded and has run no polars or numba
work when it forks (it has only imported), so its children start clean. Off Linux
(``FORKS``: ``fork`` without ``exec`` is unsafe on macOS, missing on Windows) a server
writes its reports itself, one at a time, and the writer starts one server per report
written at once.

Jobs travel as pickles over the server's stdin (written in order by one thread, so the
main process goes on at once; the result's record arrays cut to the rows the kernel
wrote) and outcomes come back over its stdout, each framed with its job's number; only
stderr is kept, in an anonymous temporary file (no name on disk, gone when closed). The
server ends with the process that started it and each child with the server, even after
a ``kill -9`` (:func:`engine.executor.die_with_parent`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import queue
import selectors
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
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
    # engine.sensitivity.cost_sensitivity(result), computed where the kernels are loaded
    cost_sensitivity: dict[str, Any] | None = None


def write_report_job(job: ReportJob) -> list[str]:
    """Write one run's report; returns the warnings raised while doing it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        from reports import write_report

        write_report(job.run_dir, job.result, gross_result=job.gross,
                     benchmark_returns=job.benchmark, title=job.title,
                     benchmark_label=job.benchmark_label, tearsheet=job.tearsheet,
                     plots=job.plots, notes=job.notes,
                     cost_sensitivity=job.cost_sensitivity)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@dataclass(frozen=True, eq=False)
class ComparisonJob:
    """The comparison pages of several strategy runs, written into ``folder`` once their
    reports are (``reports.write_comparison``)."""

    folder: Path
    run_dirs: tuple[Path, ...]
    label: str = "comparison"


Job = ReportJob | ComparisonJob


def run_job(job: Job) -> list[str]:
    """Write what ``job`` asks for; returns the warnings raised while doing it."""
    if isinstance(job, ReportJob):
        return write_report_job(job)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        from reports import write_comparison

        write_comparison(job.folder, job.run_dirs)
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


# A server forks a child per report only on Linux: elsewhere ``fork`` without ``exec`` is
# unsafe once system libraries have started threads (macOS's Accelerate and libdispatch,
# which numpy may use) or does not exist (Windows); there a server writes one report at a
# time itself and the writer starts one server per report written at once.
FORKS = sys.platform.startswith("linux") and hasattr(os, "fork")
_NO_QUANTSTATS = "--no-quantstats"  # the server's flag: no tear sheets expected
_JOB = struct.Struct("<IQ")  # job number, payload bytes
_OUTCOME = struct.Struct("<IiQ")  # job number, the child's exit code, payload bytes


class _Server:
    """The main process's handle on a report server: jobs in, framed outcomes out."""

    def __init__(self, scratch: Path | None, tearsheet: bool = True) -> None:
        from engine.executor import child_env

        env = child_env()
        # the server must import this very checkout, whatever the caller's sys.path was
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        # closed by end() or kill(), after the server ended
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8", prefix=".report-",  # noqa: SIM115
                                          dir=scratch)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "alfred.report_jobs",
                 *([] if tearsheet else [_NO_QUANTSTATS])],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env)
        except BaseException:
            self.log.close()
            raise
        self.scratch, self.tearsheet = scratch, tearsheet
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._feeder = threading.Thread(target=_feed, args=(self.process.stdin, self._queue),
                                        name="report-jobs", daemon=True)
        self._feeder.start()
        self._outcomes: dict[int, tuple[int, bytes]] = {}

    def send(self, number: int, payload: bytes) -> None:
        self._queue.put(_JOB.pack(number, len(payload)) + payload)

    def outcome(self, number: int) -> tuple[int, bytes] | None:
        """The exit code and outcome bytes of job ``number`` (None: the server ended
        without sending it)."""
        stream = self.process.stdout
        while number not in self._outcomes:
            header = _read_exact(stream.read, _OUTCOME.size)
            if header is None:
                return None
            got, code, size = _OUTCOME.unpack(header)
            data = _read_exact(stream.read, size) if size else b""
            if data is None:
                return None
            self._outcomes[got] = (code, data)
        return self._outcomes.pop(number)

    def exit_text(self) -> str:
        """How the server ended and the end of what it and its children printed."""
        code = self.process.wait()
        return f"exit code {code}:\n{self.log_tail()}"

    def log_tail(self) -> str:
        """The end of what the server and its children printed (their shared stderr)."""
        self.log.seek(0)
        return self.log.read()[-4000:]

    def end(self) -> None:
        """No more jobs: the server ends once its children have (all were collected)."""
        self._queue.put(None)
        self._feeder.join()
        self.process.wait()
        self._close_files()

    def kill(self) -> None:
        """Stop the server now; its children die with it (after an error or Ctrl-C)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._queue.put(None)
        self._feeder.join()
        self._close_files()

    def _close_files(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        self.process.stdout.close()
        self.log.close()


def _read_exact(read: Callable[[int], bytes], size: int) -> bytes | None:
    """``size`` bytes from ``read``; None at the end of the stream, even mid-way."""
    parts, left = [], size
    while left:
        chunk = read(left)
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _feed(stream, jobs: queue.SimpleQueue) -> None:
    """Write each framed job in order; None closes the stream (no more jobs)."""
    broken = False
    while (frame := jobs.get()) is not None:
        if broken:
            continue
        try:
            stream.write(frame)
            stream.flush()
        except OSError:  # the server died: its exit code and log tell why
            broken = True
    with contextlib.suppress(OSError):
        stream.close()


_early: _Server | None = None  # started by early_report_server, taken by a ReportWriter


@contextlib.contextmanager
def early_report_server(views: bool = True, *, tearsheet: bool = True) -> Iterator[None]:
    """Start the report server now, for the next :class:`ReportWriter` made inside the
    block (the CLI opens this before importing the run's own modules, so the server's
    imports overlap with the main process's). With more than one CPU this pays even for a
    single report: the reporting stack is imported while the data loads, not after the
    backtest. ``tearsheet=False``: the server does not import quantstats. Stopped on
    leaving if nothing took it."""
    global _early
    if not views or (os.cpu_count() or 1) < 2 or _early is not None:
        yield
        return
    _early = _Server(None, tearsheet)
    try:
        yield
    finally:
        server, _early = _early, None
        if server is not None:
            server.kill()


def drop_early_server() -> None:
    """Stop a server :func:`early_report_server` started, if the run turns out not to need
    it (no tear sheet and no plots)."""
    global _early
    server, _early = _early, None
    if server is not None:
        server.kill()


def early_server_without_tearsheet() -> None:
    """The scenario writes no tear sheet: replace an early server that imports quantstats
    (about a second of CPU the reports would wait for) with one that does not."""
    global _early
    if _early is not None and _early.tearsheet:
        drop_early_server()
        _early = _Server(None, tearsheet=False)


def _take_early(scratch: Path | None) -> _Server | None:
    global _early
    server = _early
    if server is None or server.scratch != scratch or server.process.poll() is not None:
        return None
    _early = None
    return server


class ReportWriter:
    """Submit report jobs; ``finish`` waits for all, in order, raising the first error.

    With views on, several jobs and more than one CPU, reports are written outside this
    process, up to ``min(n_jobs, CPUs)`` at once (see the module doc): by one forking
    report server on Linux, elsewhere by as many servers as reports at once, each writing
    one at a time. So they are for a single job when :func:`early_report_server` started
    a server. ``scratch`` is the folder for the servers' anonymous stderr files (default:
    the system's temp folder).
    """

    def __init__(self, n_jobs: int, views: bool, scratch: Path | None = None) -> None:
        self.max_workers = min(n_jobs, os.cpu_count() or 1) if views else 1
        self._scratch = scratch
        # sent, in submission order: job number, job, what to call once it is written,
        # and the server writing it
        self._running: list[tuple[int, Job, Callable[[Job], None], _Server]] = []
        self._sent = 0
        self.warnings: list[str] = []
        early = _take_early(scratch) if views else None
        self._servers: list[_Server] = [] if early is None else [early]
        self._adopted = early is not None  # one report at a time is worth it then
        if not self._servers and self.parallel:
            self._servers.append(_Server(scratch))

    @property
    def parallel(self) -> bool:
        """Whether reports are written by a report server (else in this process)."""
        return self.max_workers > 1 or self._adopted

    @property
    def server_pid(self) -> int | None:
        return self._servers[0].process.pid if self._servers else None

    def submit(self, job: Job, on_done: Callable[[Job], None]) -> None:
        """Write ``job`` (now, or in a server); ``on_done(job)`` once it is written."""
        if not self.parallel:
            self.warnings.extend(run_job(job))
            on_done(job)
            return
        if len(self._running) >= self.max_workers:
            self._collect(*self._running.pop(0))
        if isinstance(job, ReportJob):
            job = dataclasses.replace(job, result=_compact(job.result),
                                      gross=_compact(job.gross))
        server = self._free_server()
        server.send(self._sent, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
        self._running.append((self._sent, job, on_done, server))
        self._sent += 1

    def _free_server(self) -> _Server:
        """A server that can take a job now: the forking one, or one writing nothing."""
        busy = {id(server) for *_, server in self._running}
        free = [s for s in self._servers if FORKS or id(s) not in busy]
        if free:
            return free[0]
        self._servers.append(_Server(self._scratch))
        return self._servers[-1]

    def wait(self) -> None:
        """Wait for every job submitted so far, in order, raising the first error."""
        try:
            while self._running:
                self._collect(*self._running.pop(0))
        except BaseException:
            self.close()
            raise

    def finish(self) -> None:
        """Wait for every job, then stop the servers."""
        try:
            self.wait()
            while self._servers:
                self._servers.pop().end()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the servers and any report still being written (after an error or Ctrl-C
        elsewhere, or a server started for jobs that never came)."""
        while self._servers:
            self._servers.pop().kill()
        self._running.clear()

    def _collect(self, number: int, job: Job, on_done: Callable[[Job], None],
                 server: _Server) -> None:
        try:
            got = server.outcome(number)
        except BaseException:  # Ctrl-C while waiting
            self.close()
            raise
        code, data = got if got is not None else (None, b"")
        outcome = pickle.loads(data) if data and code == 0 else None
        if outcome is None:
            why = (f"its process ended with exit code {code}:\n{server.log_tail()}"
                   if got is not None else
                   f"the report server ended ({server.exit_text()})")
            raise RunError(f"the report worker for {job.label!r} failed: {why}")
        kind, value = outcome
        if kind == "error":
            raise value
        if kind == "error_text":
            raise RunError(f"writing the report of {job.label!r} failed:\n{value}")
        self.warnings.extend(value)
        on_done(job)


def _warm_up(quantstats: bool = True) -> list[str]:
    """Import what writing a report needs, before the job arrives; returns the warnings
    raised on the way (reported with the job's, as an in-process report would).
    quantstats (~1 s more) is only for tear sheets: a child that needs it anyway imports
    it itself."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        blocked = [name for name in _NOTEBOOK_ONLY if name not in sys.modules]
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
        try:
            if quantstats:
                import quantstats as _  # noqa: F401
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.backends.backend_svg  # noqa: F401
            import matplotlib.figure  # noqa: F401
            import pandas  # noqa: F401

            import reports.regimes  # noqa: F401
            from engine import backtest  # noqa: F401  # the jobs' results unpickle into it
            from reports import write_comparison  # noqa: F401
        finally:
            for name in blocked:
                sys.modules.pop(name, None)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def _outcome(payload: bytes, imported: list[str], broken: str | None) -> tuple[str, Any]:
    """What writing one job's report came to, as the parent will read it."""
    if broken is not None:
        return ("error_text", broken)
    try:
        return ("ok", imported + run_job(pickle.loads(payload)))
    except AlfredError as exc:  # bad input: travels as itself, so exit codes stay right
        return ("error", exc)
    except OSError as exc:  # a full disk or a folder gone: the parent names the run folder
        return ("error", exc)
    except Exception:  # a bug: its traceback is what the user needs to report it
        return ("error_text", traceback.format_exc())


def _read_job(fd: int) -> tuple[int, bytes] | None:
    """The next framed job from ``fd``; None once the parent closed it (or died)."""
    def read(n: int) -> bytes:
        return os.read(fd, min(n, 1 << 20))

    header = _read_exact(read, _JOB.size)
    if header is None:
        return None
    number, size = _JOB.unpack(header)
    payload = _read_exact(read, size) if size else b""
    return None if payload is None else (number, payload)


def _fork_child(payload: bytes, imported: list[str], broken: str | None,
                parent_env: dict[str, str], closing: list[int]) -> tuple[int, int]:
    """Fork a child that writes one report and sends its pickled outcome down a pipe;
    returns (the pipe's read end, the child's pid). ``closing``: fds the child closes."""
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return read_end, pid
    code = 1
    try:  # the child: never returns into the server's loop
        for fd in (read_end, *closing):
            os.close(fd)
        os.environ.update(parent_env)
        from engine.executor import die_with_parent

        die_with_parent()  # the server is this child's parent
        data = pickle.dumps(_outcome(payload, imported, broken))
        with os.fdopen(write_end, "wb") as out:
            out.write(data)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _serve(results, imported: list[str], broken: str | None) -> None:
    """The server's loop: fork a child per job read from stdin, relay each child's
    outcome to ``results`` as it ends; returns once stdin is closed and all have ended."""
    from engine.executor import child_env

    if not FORKS:  # one report at a time, in this process
        while (job := _read_job(0)) is not None:
            data = pickle.dumps(_outcome(job[1], imported, broken))
            results.write(_OUTCOME.pack(job[0], 0, len(data)) + data)
            results.flush()
        return
    parent_env = child_env({})  # what a child needs to die with this process
    children: dict[int, tuple[int, int, list[bytes]]] = {}  # read fd: number, pid, data
    with selectors.DefaultSelector() as selector:
        selector.register(0, selectors.EVENT_READ)
        reading = True
        while reading or children:
            for key, _ in selector.select():
                if key.fd == 0:
                    job = _read_job(0)
                    if job is None:
                        selector.unregister(0)
                        reading = False
                        continue
                    fd, pid = _fork_child(job[1], imported, broken, parent_env,
                                          [0, results.fileno(), *children])
                    children[fd] = (job[0], pid, [])
                    selector.register(fd, selectors.EVENT_READ)
                    continue
                chunk = os.read(key.fd, 1 << 20)
                if chunk:
                    children[key.fd][2].append(chunk)
                    continue
                selector.unregister(key.fd)
                os.close(key.fd)
                number, pid, parts = children.pop(key.fd)
                code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
                data = b"".join(parts)
                results.write(_OUTCOME.pack(number, code, len(data)) + data)
                results.flush()


def _worker_main() -> int:
    """Entry point of the report server (see the module doc); pickled jobs from stdin,
    framed outcomes to stdout (prints of the reporting libraries go to stderr, never into
    the outcomes)."""
    from engine.executor import die_with_parent

    die_with_parent()
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        try:
            imported = _warm_up(quantstats=_NO_QUANTSTATS not in sys.argv[1:])
        except Exception:  # reported with each job, as a failure to write its report
            imported, broken = [], traceback.format_exc()
        else:
            broken = None
        _serve(results, imported, broken)
        results.close()
    except KeyboardInterrupt:  # the parent died or was interrupted: nobody reads this
        os._exit(130)
    return 0


if __name__ == "__main__":
    # run the module under its import name, so that the classes of unpickled jobs are
    # the ones its functions check against (not copies in ``__main__``)
    from alfred.report_jobs import _worker_main as _main

    sys.exit(_main())
