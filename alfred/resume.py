"""Long jobs that resume: folder locks, atomic files, journals of tasks that return frames.

A sweep, a walk-forward or a stress run fans out tasks through :mod:`engine.executor`,
whose journal (``tasks.jsonl``) records each finished task the moment it ends. What this
module adds, for every such command:

* **One writer per folder.** :func:`folder_lock` takes an exclusive ``flock`` on a file in
  the folder; a second command on the same folder is refused with a ConfigError (exit 2)
  naming the pid that holds it. The operating system drops the lock when its process
  ends, however it ends (``kill -9`` included), so a stale lock never blocks a resume.
* **Atomic files.** :func:`write_atomic` writes beside the target and renames it into
  place: a reader (or a kill) sees the old file or the new one, never half of one.
* **Identity, not paths.** :func:`scenario_identity` is the resolved scenario (data source
  and model paths made absolute) and its SHA-256, so the same scenario reached by a
  relative path, an absolute path or from another working directory is the same job.
* **Tasks that return frames.** Walk-forward folds and stress paths return polars frames,
  which a JSON journal cannot hold. :class:`FrameJournal` stores each frame as parquet
  beside the journal and journals a reference to it; resumed results come back with
  their frames read from disk. :func:`resume_folder` is the hidden folder beside a run's
  target that holds the journal, the frames and the lock until the run is published.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import ConfigError
from engine.executor import Journal, TaskResult

LOCK_NAME = ".alfred.lock"
_FRAME = "__parquet__"


# --------------------------------------------------------------------------- locks


@contextlib.contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (which must exist) while the block runs.

    ``what`` names the job in the refusal, e.g. ``"sweep"``. Without ``fcntl`` (Windows)
    there is no lock and the block simply runs.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = folder / LOCK_NAME
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(
                f"another alfred {what} is running on {folder} (lock held by {holder}); wait "
                "for it to finish, or pass another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the file releases the lock


# --------------------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed to ``path`` when the block succeeds,
    removed when it fails."""
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    with atomic_path(path) as temporary:
        if isinstance(data, str):
            temporary.write_text(data, encoding="utf-8")
        else:
            temporary.write_bytes(data)


# --------------------------------------------------------------------------- identity


def scenario_identity(scenario: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved scenario as plain data and its SHA-256.

    The data source and analysts' ``config.path`` are resolved against the scenario's
    folder (so the identity does not depend on the working directory); ``drop`` names
    dotted keys that do not change what the job computes (e.g. ``sweep.metric``).
    """
    from alfred.inputs import resolve_source
    from alfred.scenario import scenario_to_dict

    tree = scenario_to_dict(scenario)
    with contextlib.suppress(Exception):  # an unknown source fails later, with its message
        tree["data"]["source"] = str(resolve_source(scenario.data.source, scenario.base_dir))
    for analyst in tree.get("analysts") or []:
        value = (analyst.get("config") or {}).get("path")
        if isinstance(value, str):
            analyst["config"]["path"] = str(scenario.resolve_path(value).resolve())
    tree.pop("executor", None)  # where tasks run does not change what they compute
    tree.pop("output", None)
    for key in drop:
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return {"scenario": tree, "sha256": digest(tree)}


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- journals


class FrameJournal(Journal):
    """A task journal whose results may hold polars frames (in dicts and lists).

    Each frame of a finished task is written as ``frames/<key>/<n>.parquet`` (atomically,
    before the journal line that points to it); :meth:`finished` reads them back.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        super().__init__(folder / "tasks.jsonl")

    def record(self, result: TaskResult) -> None:
        value = result.value
        if result.ok:
            where = self.folder / "frames" / _safe(result.key)
            shutil.rmtree(where, ignore_errors=True)  # an earlier, unjournaled attempt
            value = _store(result.value, where, [0])
        super().record(replace(result, value=value))

    def finished(self) -> dict[str, TaskResult]:
        return {key: replace(result, value=_load(result.value,
                                                 self.folder / "frames" / _safe(key)))
                for key, result in super().finished().items()}


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def _store(value: Any, where: Path, counter: list[int]) -> Any:
    if isinstance(value, pl.DataFrame):
        where.mkdir(parents=True, exist_ok=True)
        name = f"{counter[0]}.parquet"
        counter[0] += 1
        with atomic_path(where / name) as temporary:
            value.write_parquet(temporary)
        return {_FRAME: name}
    if isinstance(value, dict):
        return {k: _store(v, where, counter) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_store(v, where, counter) for v in value]
    return value


def _load(value: Any, where: Path) -> Any:
    if isinstance(value, dict):
        if set(value) == {_FRAME}:
            return pl.read_parquet(where / str(value[_FRAME]))
        return {k: _load(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_load(v, where) for v in value]
    return value


@contextlib.contextmanager
def resume_folder(target: Path, identity: dict[str, Any], what: str) -> Iterator[FrameJournal]:
    """The hidden ``.<name>.resume`` folder beside ``target``, locked, with its journal.

    It holds the finished tasks of an unfinished run into ``target``: a rerun with the same
    target and the same identity resumes from them; another identity starts over (the old
    tasks answer a different question). Remove it with :func:`discard` once the run is
    published.
    """
    folder = target.parent / f".{target.name}.resume"
    folder.mkdir(parents=True, exist_ok=True)
    with folder_lock(folder, what):
        manifest = folder / "identity.json"
        if manifest.is_file():
            try:
                known = json.loads(manifest.read_text(encoding="utf-8")).get("sha256")
            except (OSError, ValueError):
                known = None
            if known != identity["sha256"]:
                for stale in ("tasks.jsonl", "frames"):
                    path = folder / stale
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink(missing_ok=True)
        write_atomic(manifest, json.dumps(identity, indent=1, default=str) + "\n")
        yield FrameJournal(folder)


def discard(journal: FrameJournal) -> None:
    """Remove a resume folder whose run has been published."""
    shutil.rmtree(journal.folder, ignore_errors=True)
