"""Run folders: where a command writes, how it writes, and what it may replace.

One rule for every command (run, sweep, walk-forward, stress, train-rl, analyst train):

- **Target.** ``--out`` wins, then the scenario's ``output.directory``, then
  ``runs/<name>/<UTC time>`` under the working directory. Relative paths are made
  absolute once, here, so a worker or a later ``chdir`` sees the same folder.
- **Marker.** Every folder Alfred writes holds a :data:`MARKER` file. ``--overwrite``
  replaces only a folder with that marker; any other existing folder (your notes, the
  scenario's own folder, the current directory or a parent of the scenario file) is
  refused with exit 2 and left untouched.
- **Staging.** A run is written to a hidden ``.<name>.partial-*`` folder beside the
  target and renamed into place only when complete; an old run stays in place until the
  new one is complete. Stale staging folders of killed runs are removed by the next run
  into the same parent.
- **Folders as data.** A task on another machine (a sweep variant, an RL seed) writes in
  its own temporary folder and returns it as data (:func:`pack_folder`); the driver
  alone writes it into place (:func:`unpack_folder`, staged like any run), so a cluster
  needs no shared disk.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from engine.errors import ConfigError
from engine.files import swap_in

MARKER = ".alfred-run"
_STALE_AFTER_S = 60.0  # a staging folder untouched this long belongs to a dead run


def default_target(name: str, started_at: datetime, prefix: str = "") -> Path:
    """``runs/<name>/<prefix><UTC time>`` (a suffix keeps two runs of one second apart)."""
    base = Path("runs") / name / f"{prefix}{started_at:%Y%m%d-%H%M%S}"
    target, n = base, 1
    while target.exists():
        target, n = base.with_name(f"{base.name}-{n}"), n + 1
    return target.resolve()


def target_dir(chosen: str | os.PathLike[str] | None, name: str, started_at: datetime, *,
               overwrite: bool, protect: tuple[Path, ...] = (), prefix: str = "") -> Path:
    """The absolute folder a command writes, checked against what it may replace."""
    if chosen is None:
        return default_target(name, started_at, prefix)
    target = Path(chosen).expanduser().resolve()
    check_replaceable(target, overwrite=overwrite, protect=protect)
    return target


def check_replaceable(target: Path, *, overwrite: bool, protect: tuple[Path, ...] = ()) -> None:
    """Raise ConfigError unless ``target`` is free, or an Alfred run folder and ``overwrite``."""
    check_not_protected(target, protect)
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise ConfigError(f"output {target} exists and is a file; choose a folder path")
    if not overwrite:
        raise ConfigError(f"output folder {target} already exists; pass --overwrite to replace "
                          "it or --out to write somewhere else")
    if not is_run_folder(target):
        raise ConfigError(
            f"output folder {target} exists and was not written by Alfred (no {MARKER} file "
            "in it), so --overwrite will not replace it; choose another --out or remove it "
            "yourself")


def check_not_protected(target: Path, protect: tuple[Path, ...] = ()) -> None:
    """The current directory, the scenario's folder and their parents are never targets."""
    cwd = Path.cwd().resolve()
    guarded = [cwd, *[p.resolve() for p in protect]]
    for folder in guarded:
        if target == folder or target in folder.parents:
            what = "the current directory" if folder == cwd else f"the scenario's folder {folder}"
            raise ConfigError(
                f"output folder {target} is {what} or a parent of it; Alfred never writes "
                "over it. Pass --out with a new folder (e.g. runs/try1)")


def is_run_folder(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def mark(folder: Path, kind: str) -> None:
    """Write the marker that makes ``folder`` replaceable by a later ``--overwrite``."""
    (folder / MARKER).write_text(json.dumps({"kind": kind, "alfred": 1}) + "\n",
                                 encoding="utf-8")


def remove_run_folder(folder: Path) -> None:
    """Delete a folder Alfred wrote (refuses one without the marker)."""
    if not is_run_folder(folder):
        raise ConfigError(f"{folder} was not written by Alfred (no {MARKER}); not removing it")
    shutil.rmtree(folder)


def make_parents(folder: Path) -> list[Path]:
    """mkdir -p that returns the folders it created, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return list(reversed(missing))


def remove_stale_staging(parent: Path, min_age_s: float = _STALE_AFTER_S) -> None:
    """Staging folders of runs killed earlier (untouched for a while) are Alfred's garbage.

    ``min_age_s=0`` removes every one: for a parent that a lock keeps to one writer (a
    sweep's ``runs/``), where any staging folder present at the start is a dead run's."""
    now = time.time()
    for stale in parent.glob(".*.partial-*"):
        with contextlib.suppress(OSError):
            if stale.is_dir() and now - stale.stat().st_mtime >= min_age_s:
                shutil.rmtree(stale, ignore_errors=True)


def publish(staging: Path, target: Path, overwrite: bool) -> None:
    """Move the finished run into place; an old run is removed only once the new one is in."""
    if target.exists():
        if not overwrite:  # created by someone else while we ran
            raise ConfigError(f"output folder {target} appeared during the run; pass "
                              "--overwrite")
        check_replaceable(target, overwrite=True)
    swap_in(staging, target)


@contextlib.contextmanager
def staged_folder(target: Path, overwrite: bool, kind: str = "run") -> Iterator[Path]:
    """Yield a hidden staging folder beside ``target``; on success move it into place
    (:func:`publish`), on any error remove it and the parents made for it, so nothing
    half-written is ever left at ``target``."""
    created: list[Path] = []
    try:
        created = make_parents(target.parent)
        remove_stale_staging(target.parent)
        staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    except OSError as exc:
        _remove_created(created)
        raise output_error(exc, target) from None
    try:
        mark(staging, kind)
        yield staging
        publish(staging, target, overwrite)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_created(created)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            raise output_error(exc, target) from None
        raise


def pack_folder(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` as {relative POSIX path: bytes} (empty folders and
    links are not carried)."""
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file() and not path.is_symlink()}


def unpack_folder(files: dict[str, bytes], target: Path, *, overwrite: bool,
                  kind: str = "run") -> None:
    """Write a packed folder to ``target`` through a staging folder (see
    :func:`staged_folder`); a path that would leave the folder is refused."""
    with staged_folder(target, overwrite, kind) as staging:
        for name, data in files.items():
            relative = Path(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise ConfigError(f"a packed folder for {target} names the file {name!r}, "
                                  "which is outside it; refusing to write it")
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


# A full disk or quota is the environment's fault, not Alfred's: exit 2 with the folder.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_OUTPUT_FIXES = {
    errno.ENOTDIR: "a part of that path is a file, not a folder; pass --out with a folder "
                   "path",
    errno.EROFS: "that file system is read-only; pass --out on a writable disk",
    errno.EACCES: "you may not write there; pass --out with a folder you own",
    errno.EPERM: "the system does not allow writing there; pass --out with a folder you own",
    errno.ENOENT: "a parent folder is missing and cannot be created (a missing mount or a "
                  "virtual file system such as /proc); pass --out with a folder on a disk",
    errno.ENAMETOOLONG: "the path is too long; pass a shorter --out",
}


PATH_ERRNOS = frozenset(_OUTPUT_FIXES)


def output_error(exc: OSError, target: Path | None = None) -> ConfigError:
    """A ConfigError naming the folder or file an OSError hit and how to get past it."""
    where = exc.filename if exc.filename is not None else target
    if exc.errno in DISK_FULL:
        if target is None and where is None:
            return ConfigError(f"the disk filled up ({exc.strerror}); free some space or "
                               "pass --out with a folder on another disk")
        folder = target.parent if target is not None else Path(where).parent
        return ConfigError(
            f"the disk holding {folder} filled up ({exc.strerror}) while writing "
            f"{target if target is not None else where}; nothing was published there. Free "
            "some space or pass --out with a folder on another disk")
    run = f"cannot write the run folder {target}: " if target is not None else "cannot write: "
    fix = _OUTPUT_FIXES.get(exc.errno, "check the path and its permissions")
    return ConfigError(f"{run}{where}: {exc.strerror or exc}; {fix}")
