"""Module-level tasks for the fault tests (spawned workers import them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def announce_then_sleep(folder: str, seconds: float) -> int:
    """Write ``<pid>.pid`` into ``folder``, sleep, and leave ``<pid>.cleaned`` on the way out
    (a ``finally`` block, as a run's staging clean-up is)."""
    pid = os.getpid()
    Path(folder, f"{pid}.pid").write_text(str(pid))
    try:
        time.sleep(seconds)
    finally:
        Path(folder, f"{pid}.cleaned").write_text("1")
    return pid
