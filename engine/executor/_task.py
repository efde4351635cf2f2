"""Tasks and their results: what every executor takes and gives back."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    """One unit of a fan-out.

    ``fn`` must be a module-level function (it travels to another process by reference).
    ``key`` identifies the task across restarts (a resumed sweep skips keys already done),
    ``config`` is what a failure report shows (the settings that make the task what it is)
    and ``resources`` what one task needs from a Ray cluster (``num_cpus``, ``num_gpus``).
    """

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    resources: dict[str, float] | None = None


@dataclass(frozen=True, eq=False)
class Shared:
    """A task argument that every task of a fan-out receives, sent to workers once.

    Wrap a large input (a sweep's bars) in one ``Shared`` and pass that same object as an
    argument of many tasks: the Ray executor puts it in the object store once per fan-out
    and hands every task a reference (each node fetches it once), so a cluster needs no
    shared disk; the local and inline executors pass it as it is. The task function
    receives ``value``, never the wrapper. Only a top-level positional or keyword argument
    is unwrapped.
    """

    value: Any


@dataclass(frozen=True)
class TaskResult:
    """How one task ended. ``error`` holds the exception line and traceback when not ok."""

    key: str
    ok: bool
    value: Any = None
    error: str | None = None
    error_type: str | None = None
    config: dict[str, Any] | None = None
    elapsed_s: float = 0.0
    resumed: bool = False  # read back from a journal, not run this time

    def describe_failure(self) -> str:
        """One paragraph a user can act on: which task, with what settings, what broke."""
        settings = "" if not self.config else f" with {self.config}"
        return f"task {self.key}{settings} failed: {self.error_line()}"

    def error_line(self) -> str:
        """The exception's own line from the traceback (``Type: message``).

        Not simply the traceback's last line: some libraries append notes after it
        (SQLAlchemy's "Background on this error at: ..."), which say nothing by themselves.
        """
        lines = [line for line in (self.error or "").strip().splitlines() if line.strip()]
        if not lines:
            return self.error_type or "unknown error"
        if self.error_type:
            for line in reversed(lines):
                head = line.split(":", 1)[0].strip()
                if not line.startswith(" ") and head.rsplit(".", 1)[-1] == self.error_type:
                    return line.strip()
        return lines[-1].strip()


def call_task(task: Task) -> TaskResult:
    """Run a task and capture its outcome; runs inside whichever worker gets it.

    Exceptions become failed results so one broken task never loses the others' results.
    KeyboardInterrupt and SystemExit are not caught: they stop the whole fan-out.
    """
    started = time.perf_counter()
    try:
        args = [a.value if isinstance(a, Shared) else a for a in task.args]
        kwargs = {k: v.value if isinstance(v, Shared) else v for k, v in task.kwargs.items()}
        value = task.fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every task error is reported, none is fatal
        return TaskResult(key=task.key, ok=False, error=traceback.format_exc(),
                          error_type=type(exc).__name__, config=task.config,
                          elapsed_s=time.perf_counter() - started)
    return TaskResult(key=task.key, ok=True, value=value, config=task.config,
                      elapsed_s=time.perf_counter() - started)
