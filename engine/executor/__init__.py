"""One executor for every fan-out: walk-forward folds, sweeps, tuning trials, seeds.

Build one with :func:`make_executor` from a spec (``None`` = local processes, one per
core), hand it :class:`Task` objects and read :class:`TaskResult` objects back as tasks
finish. Three kinds share one interface, so switching from a laptop to a Ray cluster is
a config change::

    with make_executor({"kind": "ray", "address": "ray://head:10001"}) as ex:
        for result in ex.imap(tasks, progress="sweep", journal="runs/sweep/tasks.jsonl"):
            ...

A failed task becomes a result with ``ok=False`` and the task's config, never an
exception that loses the other results; a journal makes an interrupted fan-out resume
where it stopped. A large input every task needs goes in one :class:`Shared` (sent to a
Ray cluster once, through its object store); ``receive`` lets the caller land each
result on its own disk before the journal records it.
"""

from __future__ import annotations

from typing import Any

from engine.executor._base import Executor
from engine.executor._journal import Journal
from engine.executor._local import WORKER_MARKER, InlineExecutor, LocalExecutor, thread_env
from engine.executor._parent import child_env, die_with_parent
from engine.executor._progress import FanoutProgress
from engine.executor._ray import RayExecutor, probe_address
from engine.executor._spec import ExecutorKind, ExecutorSpec, parse_executor_spec
from engine.executor._task import Shared, Task, TaskResult, call_task

_KINDS: dict[str, type[Executor]] = {
    "local": LocalExecutor, "ray": RayExecutor, "inline": InlineExecutor,
}


def make_executor(spec: ExecutorSpec | str | dict[str, Any] | None = None,
                  **overrides: Any) -> Executor:
    """An executor for ``spec`` (see :class:`ExecutorSpec`); ``overrides`` (e.g. CLI flags
    ``workers=2``) replace the spec's values when not None."""
    parsed = parse_executor_spec(spec, **overrides)
    return _KINDS[parsed.kind](parsed)


def in_worker() -> bool:
    """True inside an executor's worker process (where a task must not fan out again)."""
    import os

    return os.environ.get(WORKER_MARKER) == "1"


def apply_worker_threads() -> None:
    """Cap torch's threads inside a worker (env set by the executor; no-op elsewhere).

    BLAS, numba and polars read their variables at import; torch needs a call, made by
    task code that uses torch.
    """
    import os

    value = os.environ.get("ALFRED_TORCH_THREADS")
    if value:
        import torch

        torch.set_num_threads(int(value))


__all__ = [
    "WORKER_MARKER",
    "Executor",
    "ExecutorKind",
    "ExecutorSpec",
    "FanoutProgress",
    "InlineExecutor",
    "Journal",
    "LocalExecutor",
    "RayExecutor",
    "Shared",
    "Task",
    "TaskResult",
    "apply_worker_threads",
    "call_task",
    "child_env",
    "die_with_parent",
    "in_worker",
    "make_executor",
    "parse_executor_spec",
    "probe_address",
    "thread_env",
]
