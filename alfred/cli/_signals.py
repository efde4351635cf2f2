"""SIGTERM stops a command the way Ctrl-C does.

``kill PID``, a CI job's timeout, ``docker stop`` and systemd all send SIGTERM, whose
default action ends Python at once: no ``finally`` block runs, so staging folders and
worker processes would be left behind. While a command runs, the first SIGTERM raises
``KeyboardInterrupt`` in the main thread instead, so the clean-up written for Ctrl-C runs
and the command exits 130 with its "interrupted" message; a second SIGTERM ends the
process at once (the usual meaning of asking twice).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM is not caught
    sys.stderr.write("alfred: received SIGTERM; stopping and cleaning up\n")
    sys.stderr.flush()
    raise KeyboardInterrupt("SIGTERM")


def sigterm_as_interrupt() -> Callable[[], None]:
    """Install the handler (main thread only; elsewhere a no-op) and return a function
    that puts back the handler that was there before."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    return restore
