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
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numba import njit

import engine.kernels  # noqa: F401  # sets numba's cache folder before the njit below

# Libraries whose versions can change a result; the others are reporting-only.
PACKAGES = ("alfred", "numpy", "numba", "polars", "pyarrow", "pandas", "pydantic", "pyyaml",
            "quantstats")

_REPO_ROOT = Path(__file__).resolve().parent.parent
# Below this many strings a Python loop is quicker than loading the numba loop's cache.
_LOOP_BELOW = 250_000


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
            strings = column.cast(pl.Utf8).fill_null("")
            if strings.len() < _LOOP_BELOW:  # the definition, value by value
                for value in strings.to_list():
                    encoded = value.encode()
                    digest.update(len(encoded).to_bytes(8, "little") + encoded)
            else:  # the same stream, built by numba
                for block in _length_prefixed(strings):
                    digest.update(block)
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


def _length_prefixed(strings: pl.Series, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Each string's UTF-8 length as 8 little-endian bytes, then its bytes, all strings in
    order, in blocks of ``chunk`` strings (a hash fed the blocks in order sees one stream).

    Built from the Arrow offsets and data buffers by a numba loop, not a Python loop over
    the values (W4's 33 M asset names took ~7 s that way). ``tests/alfred/
    test_fingerprint.py`` checks the stream against the per-value definition.
    """
    import pyarrow as pa

    array = strings.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    n = len(array)
    if n == 0:
        return
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset:array.offset + n + 1]
    data = np.frombuffer(array.buffers()[2] or b"\x00", dtype=np.uint8)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out = np.empty(8 * (stop - start) + int(offsets[stop] - offsets[start]), np.uint8)
        _interleave_nb(offsets, data, start, stop, out)
        yield out.tobytes()


@njit(cache=True)
def _interleave_nb(offsets, data, start, stop, out):
    """``out`` = for each string ``start..stop-1``: its length (8 bytes, little-endian),
    then its bytes."""
    pos = 0
    for i in range(start, stop):
        length = offsets[i + 1] - offsets[i]
        for k in range(8):
            out[pos + k] = (length >> (8 * k)) & 0xFF
        pos += 8
        for j in range(offsets[i], offsets[i + 1]):
            out[pos] = data[j]
            pos += 1


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
