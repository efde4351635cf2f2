"""Fingerprints: what a run needs to be reproduced, written as ``fingerprint.json``.

A result is only as trustworthy as our ability to say what produced it: the exact data
(a content hash, not a file name, since files get overwritten), the code (git commit and
whether the tree had uncommitted edits), the interpreter and library versions, the seed
and when it ran. Two runs with equal fingerprints and configs must give equal numbers.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

# Libraries whose versions can change a result; the others are reporting-only.
PACKAGES = ("alfred", "numpy", "numba", "polars", "pyarrow", "pandas", "pydantic", "pyyaml",
            "quantstats")

_REPO_ROOT = Path(__file__).resolve().parent.parent


def frame_sha256(frame: pl.DataFrame) -> str:
    """A hash of a frame's content: column names, dtypes and values, in order.

    Built from the values themselves rather than a serialised file so that it does not
    depend on the parquet writer, compression or chunk layout.
    """
    digest = hashlib.sha256()
    digest.update(f"{frame.height}x{frame.width}".encode())
    for name in frame.columns:
        column = frame.get_column(name)
        digest.update(b"\x00col\x00" + name.encode() + b"\x00" + str(column.dtype).encode())
        nulls = column.is_null().to_numpy()
        digest.update(np.packbits(nulls).tobytes())
        if column.dtype == pl.Utf8 or column.dtype == pl.Categorical or column.dtype == pl.Enum:
            values = column.cast(pl.Utf8).fill_null("").to_list()
            for value in values:
                encoded = value.encode()
                digest.update(len(encoded).to_bytes(8, "little") + encoded)
        elif column.dtype.is_temporal():
            digest.update(column.to_physical().fill_null(0).to_numpy().astype(np.int64).tobytes())
        elif column.dtype.is_numeric() or column.dtype == pl.Boolean:
            values = column.to_numpy()
            if values.dtype.kind == "f":
                # +0.0/-0.0 and NaN payloads must not change the hash of equal data.
                values = np.where(np.isnan(values), np.nan, values + 0.0)
            digest.update(np.ascontiguousarray(values).tobytes())
        else:
            digest.update(repr(column.to_list()).encode())
    return digest.hexdigest()


def git_state(repo_root: Path = _REPO_ROOT) -> dict[str, Any]:
    """Commit and dirty flag of the checkout the code runs from (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(repo_root), *args], capture_output=True,
                                  text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def make_fingerprint(
    *,
    bars: pl.DataFrame,
    signals: pl.DataFrame | None,
    seed: int,
    benchmark: pl.DataFrame | None = None,
    data_source: str,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """The ``fingerprint.json`` content of one run.

    ``bars`` is every bar the run read (warm-up history included, since analysts see it),
    ``signals`` the merged analyst output and ``benchmark`` the benchmark returns.
    """
    started_at = started_at or datetime.now(UTC)
    return {
        "data": {
            "source": data_source,
            "sha256": frame_sha256(bars),
            "rows": bars.height,
            "columns": bars.columns,
        },
        "signals_sha256": None if signals is None else frame_sha256(signals),
        "benchmark_sha256": None if benchmark is None else frame_sha256(benchmark),
        "code": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "seed": seed,
        "timestamp": started_at.isoformat(timespec="seconds"),
    }
