"""A local worker: a fresh interpreter that runs tasks sent over its stdin.

Protocol: the parent writes ``8-byte big-endian length + pickle(Task)``; the worker
answers ``length + pickle(TaskResult)`` on the pipe that was its stdout. Anything a task
prints goes to stderr (fd 1 is re-pointed there), so no print can corrupt a result.
An empty read (the parent closed the pipe) ends the worker, and so does the end of the
parent itself, even by ``kill -9`` (:mod:`engine.executor._parent`): an interrupted task
unwinds (its ``finally`` blocks run) and the worker exits without a traceback.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys

_HEADER = struct.Struct(">Q")


def read_message(stream) -> bytes | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def write_message(stream, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def main() -> None:
    from engine.executor._parent import die_with_parent

    die_with_parent()
    try:
        _serve()
    except KeyboardInterrupt:  # the parent died or was interrupted: nobody reads results
        os._exit(130)


def _serve() -> None:
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # prints from tasks go to stderr, never into the result pipe
    sys.stdout = sys.stderr
    tasks = sys.stdin.buffer
    from engine.executor._task import TaskResult, call_task

    while True:
        payload = read_message(tasks)
        if payload is None:
            return
        try:
            task = pickle.loads(payload)
        except Exception as exc:  # noqa: BLE001 - e.g. the task's module is not importable here
            result = TaskResult(key="?", ok=False, error_type=type(exc).__name__,
                                error=f"the worker could not load the task: {exc!r}")
        else:
            result = call_task(task)
        try:
            data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - a result that does not pickle
            data = pickle.dumps(TaskResult(
                key=result.key, ok=False, error_type=type(exc).__name__, config=result.config,
                error=f"the task's result cannot be sent back (it does not pickle): {exc!r}"))
        write_message(results, data)


if __name__ == "__main__":
    main()
