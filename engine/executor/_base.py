"""What every executor shares: resume from a journal, progress, order of results."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from engine.errors import ConfigError
from engine.executor._journal import Journal
from engine.executor._progress import FanoutProgress
from engine.executor._spec import ExecutorSpec
from engine.executor._task import Task, TaskResult


class Executor:
    """Runs :class:`Task` objects and yields their :class:`TaskResult` as they finish.

    Subclasses provide ``_start`` (acquire workers), ``_execute`` (yield results of the
    given tasks in completion order) and ``_stop``. Use as a context manager, or call
    :meth:`close`; workers are started on first use, so building an executor is free.
    """

    kind = "base"

    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec = spec
        self._started = False

    @property
    def workers(self) -> int:
        return self.spec.n_workers()

    # -- public API ----------------------------------------------------------------------

    def imap(self, tasks: Iterable[Task], *, progress: str | None = None,
             journal: str | os.PathLike[str] | Journal | None = None,
             progress_force: bool = False,
             receive: Callable[[TaskResult], TaskResult] | None = None
             ) -> Iterator[TaskResult]:
        """Results in completion order. With ``journal``, tasks it records as done are
        yielded first (``resumed=True``) and not run again; every new result is appended
        to it as soon as it arrives.

        ``receive`` runs here, in the driver, on each new successful result before the
        journal records it, and what it returns is recorded and yielded instead: a task
        returns its files as data and ``receive`` writes them to this machine's disk and
        returns the result without them, so a journal never says done for a result that
        is not on disk. An exception from it stops the fan-out."""
        tasks = list(tasks)
        _check_keys(tasks)
        book = journal if isinstance(journal, Journal) or journal is None else Journal(journal)
        finished = book.finished() if book is not None else {}
        todo = [t for t in tasks if t.key not in finished]
        bar = FanoutProgress(progress, len(tasks), force=progress_force)
        try:
            for task in tasks:
                if task.key in finished:
                    bar.update(finished[task.key])
                    yield finished[task.key]
            if todo:
                if not self._started:
                    self._start()
                    self._started = True
                for result in self._execute(todo):
                    if receive is not None and result.ok:
                        result = receive(result)
                    if book is not None:
                        book.record(result)
                    bar.update(result)
                    yield result
        finally:
            bar.close()

    def run(self, tasks: Iterable[Task], **options) -> list[TaskResult]:
        """Every result, in the order of ``tasks`` (failures included, never raised)."""
        tasks = list(tasks)
        by_key = {r.key: r for r in self.imap(tasks, **options)}
        return [by_key[t.key] for t in tasks]

    def close(self) -> None:
        if self._started:
            self._started = False
            self._stop()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None and self._started:
            # an error or Ctrl-C/SIGTERM in the consumer: stop the tasks still running now,
            # rather than wait for them to finish (their results would be thrown away)
            self._started = False
            self._abort()
        self.close()

    def describe(self) -> str:
        return f"{self.kind} ({self.workers} worker{'s' if self.workers != 1 else ''})"

    # -- what a kind provides -----------------------------------------------------------

    def _start(self) -> None:
        return None

    def _execute(self, tasks: list[Task]) -> Iterator[TaskResult]:
        raise TypeError(f"{type(self).__name__} does not run tasks")

    def _stop(self) -> None:
        return None

    def _abort(self) -> None:
        """Stop at once, dropping running tasks (default: the orderly stop)."""
        self._stop()


def _check_keys(tasks: list[Task]) -> None:
    seen: set[str] = set()
    dupes = sorted({t.key for t in tasks if t.key in seen or seen.add(t.key)})
    if dupes:
        raise ConfigError(f"task keys must be unique; repeated: {dupes[:5]}")
    for task in tasks:
        if not isinstance(task, Task):
            raise ConfigError(f"expected Task objects, got {type(task).__name__}")


def journal_path(folder: str | os.PathLike[str], name: str = "tasks.jsonl") -> Path:
    return Path(folder) / name
