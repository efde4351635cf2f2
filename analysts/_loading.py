"""Loading a saved analyst by the registry name its folder records."""

from __future__ import annotations

from pathlib import Path

from analysts._registry import REGISTRY
from analysts._trainable import TrainableAnalyst, read_meta
from engine.errors import DataError


def load_analyst(path: str | Path) -> TrainableAnalyst:
    """A saved trainable analyst, whatever its registry name (read from config.json)."""
    meta = read_meta(Path(path))
    cls = REGISTRY.get(meta["analyst"])
    if cls is None or not issubclass(cls, TrainableAnalyst):
        raise DataError(f"{path}: analyst {meta['analyst']!r} is not a trainable analyst "
                        f"registered in analysts.REGISTRY")
    return cls.load(path)
