"""Analysts: models that turn bars into signals (DESIGN.md "Signals").

Pick one by name with :func:`get_analyst` (``get_analyst("momentum", lookback=60)``);
:func:`available` lists the names. The built-ins here are torch-free: ``naive``
(persistence), ``momentum`` and ``file`` (bring your own signals).
"""

from analysts._config import ConfiguredAnalyst
from analysts._file import FileAnalyst, FileConfig, read_signals_file
from analysts._price import MomentumAnalyst, MomentumConfig, NaiveAnalyst, NaiveConfig
from analysts._registry import REGISTRY, available, get_analyst
from analysts.base import SIGNAL_COLUMNS, Analyst, AnalystConfig, TimeLike

__all__ = [
    "REGISTRY",
    "SIGNAL_COLUMNS",
    "Analyst",
    "AnalystConfig",
    "ConfiguredAnalyst",
    "FileAnalyst",
    "FileConfig",
    "MomentumAnalyst",
    "MomentumConfig",
    "NaiveAnalyst",
    "NaiveConfig",
    "TimeLike",
    "available",
    "get_analyst",
    "read_signals_file",
]
