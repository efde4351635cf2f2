"""Keep numba's on-disk cache honest.

numba keys a cached function on its own source file only: when ``step.py`` changes, the
cached ``simulate_weights_nb`` of ``loop.py`` (which inlines the old step) would still be
loaded and silently run the old semantics. We therefore place the cache in a directory
named after a hash of every kernel source file, so any kernel edit (or upgrade) starts a
fresh cache. A user's own ``NUMBA_CACHE_DIR`` is respected as given.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

import numba


def configure_kernel_cache() -> str | None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    here = pathlib.Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(here.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    base = os.environ.get("ALFRED_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "alfred")
    cache_dir = os.path.join(base, f"numba-{digest.hexdigest()[:16]}")
    numba.config.CACHE_DIR = cache_dir
    return cache_dir
