"""Choosing where to train: CUDA > MPS > CPU for ``auto``, a clear error otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from engine.errors import ConfigError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(request: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; a named device must exist.

    Asking for ``cuda`` on a machine without one is an error rather than a silent CPU
    run: a user who asked for the GPU wants to know their 40-minute job is not on it.
    """
    request = str(request).strip().lower()
    if request == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if request == "cpu":
        return torch.device("cpu")
    if request.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise ConfigError(
                f"device {request!r} was requested but no CUDA GPU is available (torch "
                f"{torch.__version__}, {build}); use device: auto to fall back to the CPU, "
                f"or device: cpu"
            )
        try:
            device = torch.device(request)
        except RuntimeError:
            raise ConfigError(f"device {request!r} is not a valid CUDA device name; use "
                              f"'cuda' or 'cuda:N'") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {request!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s) (cuda:0..)"
            )
        return device
    if request == "mps":
        if not _mps_available():
            raise ConfigError("device 'mps' was requested but Apple MPS is not available; "
                              "use device: auto or device: cpu")
        return torch.device("mps")
    raise ConfigError(f"unknown device {request!r}; use auto, cpu, cuda, cuda:N or mps")


def default_threads() -> int:
    """Half the cores, at least one (see ``TrainConfig.threads``)."""
    return max(1, (os.cpu_count() or 2) // 2)


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run torch CPU ops with ``threads`` threads (None: :func:`default_threads`), then
    restore the previous setting (it is process-wide)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads if threads is not None else default_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)
