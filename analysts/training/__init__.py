"""The shared training loop, splits, sample windows, checkpoints and device choice.

:class:`TrainConfig` and the split helpers are torch-free; the rest imports torch on
first use (this package's attributes load lazily), so configs that embed a
``TrainConfig`` keep ``import analysts`` light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from analysts.training._config import TrainConfig
from analysts.training._split import TimeSplit, check_fractions, chronological_split

_LAZY = {
    "check_state": "_checkpoint", "load_checkpoint": "_checkpoint", "load_weights": "_checkpoint",
    "save_checkpoint": "_checkpoint", "save_weights": "_checkpoint", "SampleSet": "_data",
    "resolve_device": "_device", "cpu_threads": "_device", "TrainResult": "_loop", "seed_everything": "_loop",
    "train_model": "_loop",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"analysts.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'analysts.training' has no attribute {name!r}")


__all__ = [
    "cpu_threads",
    "SampleSet",
    "TimeSplit",
    "TrainConfig",
    "TrainResult",
    "check_fractions",
    "check_state",
    "chronological_split",
    "load_checkpoint",
    "load_weights",
    "resolve_device",
    "save_checkpoint",
    "save_weights",
    "seed_everything",
    "train_model",
]
