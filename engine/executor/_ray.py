"""The Ray executor: the same tasks on a Ray cluster (or a private local Ray instance).

Tasks carry their own config; data travels as task arguments, never as a path: a
:class:`Shared` argument is put in Ray's object store once per fan-out and every task
gets a reference to it (each node fetches it once), so a cluster needs no shared disk.
Results come back to the driver as values; task functions write nothing the driver
needs (a sweep variant returns its run folder as data). Before joining a
remote cluster the address is probed with a plain TCP connection and a timeout, because
``ray.init`` on an unreachable address retries for minutes; a user who mistyped a host
gets an error naming it within ``connect_timeout_s``. An open port is not yet a Ray
cluster (a proxy or another service may answer), so the handshake itself is then tried
in a child process that is killed at the timeout: ``ray.init`` cannot be cancelled.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

from engine.errors import ConfigError, RunError
from engine.executor._base import Executor
from engine.executor._local import thread_env
from engine.executor._task import Shared, Task, TaskResult, call_task


class RayExecutor(Executor):
    kind = "ray"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._owns_ray = False
        self._remote = None

    def describe(self) -> str:
        return f"ray ({self.spec.address}, {self.workers} CPUs)"

    def _start(self) -> None:
        try:
            import ray
        except ImportError:  # pragma: no cover - ray is the optional 'scale' extra
            raise ConfigError("executor kind 'ray' needs the ray package: pip install "
                              "'alfred[scale]' (or pip install ray)") from None
        address = self.spec.address
        env = {"env_vars": thread_env(self.spec.worker_threads())}
        if ray.is_initialized():
            self._owns_ray = False  # the caller's own Ray session: use it, leave it running
        elif address == "local":
            # address="local": a new private instance even when another Ray runs on this
            # machine (or a dead one left its address file behind)
            ray.init(address="local", num_cpus=self.workers, include_dashboard=False,
                     log_to_driver=False, configure_logging=False, runtime_env=env)
            self._owns_ray = True
        else:
            if address != "auto":
                probe_address(address, self.spec.connect_timeout_s)
                probe_handshake(address, self.spec.connect_timeout_s)
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False,
                         runtime_env=env)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RunError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
            self._owns_ray = True
        self._remote = ray.remote(call_shared_task)

    @property
    def workers(self) -> int:
        if self.spec.address == "local" or self.spec.workers != "auto":
            return self.spec.n_workers()
        try:
            import ray

            if ray.is_initialized():
                return int(ray.cluster_resources().get("CPU", 1))
        except ImportError:  # pragma: no cover
            pass
        return self.spec.n_workers()

    def _execute(self, tasks: list[Task]) -> Iterator[TaskResult]:
        import ray

        refs = {}
        stored: dict[int, tuple[Shared, Any]] = {}  # id -> (the Shared, its object ref)
        for task in tasks:
            options = {"num_cpus": 1, **self.spec.resources, **(task.resources or {})}
            sent, shared = _slotted(task, stored, ray.put)
            refs[self._remote.options(**options).remote(sent, *shared)] = task
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    task = refs.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - worker died, task lost, ...
                        yield TaskResult(key=task.key, ok=False, error_type=type(exc).__name__,
                                         config=task.config,
                                         error=f"{type(exc).__name__}: {exc}")
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise

    def _stop(self) -> None:
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False


@dataclass(frozen=True)
class _Slot:
    """Stands in a task's arguments for the ``index``-th shared value passed beside it."""

    index: int


def _slotted(task: Task, stored: dict[int, tuple[Shared, Any]], put) -> tuple[Task, list[Any]]:
    """The task with each :class:`Shared` argument replaced by a slot, and the object refs
    to pass beside it (top-level remote arguments, so Ray resolves them in the worker).
    Each Shared object is put once, however many tasks carry it."""
    shared: list[Any] = []

    def swap(value: Any) -> Any:
        if not isinstance(value, Shared):
            return value
        if id(value) not in stored:
            stored[id(value)] = (value, put(value.value))
        shared.append(stored[id(value)][1])
        return _Slot(len(shared) - 1)

    args = tuple(swap(a) for a in task.args)
    kwargs = {k: swap(v) for k, v in task.kwargs.items()}
    if not shared:
        return task, shared
    return replace(task, args=args, kwargs=kwargs), shared


def call_shared_task(task: Task, *shared: Any) -> TaskResult:
    """Ray's task function: put the shared values (resolved by Ray) back in their slots."""
    if shared:
        fill = lambda v: shared[v.index] if isinstance(v, _Slot) else v  # noqa: E731
        task = replace(task, args=tuple(fill(a) for a in task.args),
                       kwargs={k: fill(v) for k, v in task.kwargs.items()})
    return call_task(task)


def probe_address(address: str, timeout_s: float) -> None:
    """Raise a RunError naming ``address`` unless a TCP connection opens within the timeout."""
    target = address if "://" in address else f"tcp://{address}"
    parsed = urlparse(target)
    if not parsed.hostname or parsed.port is None:
        raise ConfigError(
            f"Ray address {address!r} is not 'local', 'auto', 'host:port' or "
            "'ray://host:port'"
        )
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise RunError(
            f"cannot reach the Ray cluster at {address!r} ({exc.strerror or exc}; waited up "
            f"to {timeout_s:g} s). Check the host and port, that the head node runs "
            "(`ray status` on it), or use executor kind 'local'."
        ) from None


_HANDSHAKE = (
    "import sys, ray\n"
    "ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)\n"
    "ray.shutdown()\n"
)


def probe_handshake(address: str, timeout_s: float) -> None:
    """Join and leave the cluster in a child process; RunError if that does not finish
    within ``timeout_s`` (plus the few seconds Ray takes to import) or fails."""
    try:
        done = subprocess.run([sys.executable, "-c", _HANDSHAKE, address],
                              capture_output=True, text=True, timeout=timeout_s + 5)
    except subprocess.TimeoutExpired:
        raise RunError(
            f"the service at {address!r} accepts connections but did not answer as a Ray "
            f"cluster within {timeout_s:g} s; check the address (the head node's GCS port, "
            "6379 by default, or ray://host:10001 for Ray Client)"
        ) from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        raise RunError(f"cannot join the Ray cluster at {address!r}: "
                       f"{lines[-1] if lines else 'exit code ' + str(done.returncode)}")
