"""Live progress of a fan-out: done, failed, remaining and ETA, drawn with rich."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from engine.executor._task import TaskResult


class FanoutProgress:
    """A progress bar over ``total`` tasks; silent when stderr is not a terminal.

    Tasks resumed from a journal count as done from the start but do not feed the ETA,
    which is estimated from the tasks actually run in this session.
    """

    def __init__(self, label: str | None, total: int, *, force: bool = False) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self._started = time.perf_counter()
        self._ran = 0
        console = Console(stderr=True)
        enabled = label is not None and (force or sys.stderr.isatty())
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed, {task.fields[left]} left"), TextColumn("ETA"),
            TimeRemainingColumn(), TimeElapsedColumn(), console=console,
            disable=not enabled, transient=False,
        ) if enabled else None
        self._task = None
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(label or "", total=total, failed=0, left=total)

    def update(self, result: TaskResult) -> None:
        self.done += 1
        if not result.ok:
            self.failed += 1
        if not result.resumed:
            self._ran += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, failed=self.failed, left=self.remaining)

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def eta_s(self) -> float | None:
        """Seconds left at the pace of this session's tasks (None before the first)."""
        if self._ran == 0:
            return None
        return (time.perf_counter() - self._started) / self._ran * self.remaining

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
