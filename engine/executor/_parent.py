"""Child processes that die with their parent, however the parent ends.

A worker interpreter started by Alfred (an executor worker, a report worker) must not
outlive the process that started it: after a ``kill -9`` of the parent nobody reads its
results, and a worker that goes on would publish folders no journal knows about. The
parent puts its pid in the child's environment (:func:`child_env`); the child calls
:func:`die_with_parent` first thing, which

* on Linux asks the kernel for SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``),
  when the parent started the child from its main thread (the kernel sends the signal
  when the *thread* that forked the child exits). SIGKILL, not a catchable signal: a
  worker inside native code that holds the GIL (a numba compile, a long polars call) runs
  no Python signal handler for seconds, and the point is that it stops now. What it was
  writing is a hidden staging folder, removed by the next run into the same place;
* elsewhere (other systems, a child started from another thread) starts a daemon thread
  that polls ``os.getppid()`` and, once the parent is gone, interrupts the main thread
  (so ``finally`` blocks remove staging folders) and ends the process if it has not
  ended itself within :data:`GRACE_S` seconds;
* turns SIGTERM into ``KeyboardInterrupt`` in the child, so a parent that stops its
  workers with SIGTERM (``terminate``) lets their clean-up run.

The variables are removed from the child's environment once read, so a grandchild never
checks against the wrong parent.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
import time

PARENT_ENV = "ALFRED_PARENT_PID"
_PDEATHSIG_ENV = "ALFRED_PDEATHSIG"
POLL_S = 0.2
GRACE_S = 1.5
_PR_SET_PDEATHSIG = 1


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) plus what :func:`die_with_parent` reads."""
    out = dict(os.environ if env is None else env)
    out[PARENT_ENV] = str(os.getpid())
    main = threading.current_thread() is threading.main_thread()
    out[_PDEATHSIG_ENV] = "1" if main else "0"
    return out


def die_with_parent() -> None:
    """Make this process end when the parent named by :func:`child_env` ends (no-op
    without it). Call it from the child's main thread before any long work."""
    raw = os.environ.pop(PARENT_ENV, None)
    pdeathsig = os.environ.pop(_PDEATHSIG_ENV, "0") == "1"
    if not raw or not raw.isdigit():
        return
    parent = int(raw)
    signal.signal(signal.SIGTERM, _interrupt)
    watched = pdeathsig and sys.platform.startswith("linux") and _set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:  # gone before the kernel was asked to tell us
        os._exit(143)
    if watched:
        return
    threading.Thread(target=_watch, args=(parent,), name="alfred-parent-watch",
                     daemon=True).start()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _set_pdeathsig(signum: int) -> bool:
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    _thread.interrupt_main()  # KeyboardInterrupt in the main thread: clean-up runs
    time.sleep(GRACE_S)
    os._exit(143)  # the main thread is stuck (native code, a blocking read): end anyway
