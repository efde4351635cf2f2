"""A result journal: finished tasks streamed to disk, so a fan-out can resume.

One JSON line per finished task, appended and flushed the moment the task ends. A sweep
killed half-way (Ctrl-C, a lost machine, OOM) leaves the lines of every task that
finished; the next run with the same journal skips those keys and reruns only the rest
(failed tasks are retried). A last line cut short by the kill is repaired when the
journal is opened, before anything is appended to it: cut off (the task runs again), or
given its newline when only that was missing, so the next line never lands on its end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.executor._task import TaskResult


class Journal:
    """Append-only record of task results, keyed by task key (the last line of a key wins)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._done: dict[str, TaskResult] = {}
        if self.path.is_file():
            repair(self.path)
            for line in self.path.read_text(encoding="utf-8").splitlines():
                record = _parse(line)
                if record is None:
                    continue
                result = TaskResult(key=record["key"], ok=record["ok"],
                                    value=record.get("value"), error=record.get("error"),
                                    error_type=record.get("error_type"),
                                    config=record.get("config"),
                                    elapsed_s=record.get("elapsed_s", 0.0), resumed=True)
                if result.ok:
                    self._done[result.key] = result
                else:
                    self._done.pop(result.key, None)

    def finished(self) -> dict[str, TaskResult]:
        """Results of tasks that completed successfully in earlier runs."""
        return dict(self._done)

    def record(self, result: TaskResult) -> None:
        line = {"key": result.key, "ok": result.ok, "value": result.value,
                "error": result.error, "error_type": result.error_type,
                "config": result.config, "elapsed_s": round(result.elapsed_s, 6)}
        try:
            text = json.dumps(line, allow_nan=True, default=_plain)
        except TypeError as exc:
            raise ConfigError(
                f"task {result.key} returned a value that cannot be journaled ({exc}); a "
                "journaled fan-out needs results made of numbers, strings, lists and dicts"
            ) from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if result.ok:
            self._done[result.key] = result


def repair(path: Path) -> bool:
    """End ``path`` on a complete line: a last line without its newline (a write cut by a
    kill) is dropped, or kept with a newline added when it is a whole record. Returns
    whether the file was changed."""
    with path.open("rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return False
        start = data.rfind(b"\n") + 1
        if _parse(data[start:].decode("utf-8", errors="replace")) is not None:
            handle.write(b"\n")
        else:
            handle.truncate(start)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _parse(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line:
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None  # a line cut short when the previous run was killed
    if not isinstance(record, dict) or "key" not in record or "ok" not in record:
        return None
    return record


def _plain(value: Any) -> Any:
    """numpy scalars and paths, the usual non-JSON values in metrics dicts."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
