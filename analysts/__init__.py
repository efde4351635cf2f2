"""Analysts: models that turn bars into signals (DESIGN.md "Signals").

Pick one by name with :func:`get_analyst` (``get_analyst("momentum", lookback=60)``);
:func:`available` lists the names. The built-ins here are torch-free: ``naive``
(persistence), ``momentum`` and ``file`` (bring your own signals). The trainable
``lstm`` (prob_up) and ``magnitude`` (pred_return) import torch only when they fit,
predict or load; :func:`load_analyst` reads one saved with ``analyst.save(path)``.
Features live in ``analysts.features``, networks and losses in ``analysts.nn``, the
training loop in ``analysts.training``, metrics in ``analysts.evaluation`` and the
Optuna search in ``analysts.tuning``.
"""

from analysts._config import ConfiguredAnalyst
from analysts._file import FileAnalyst, FileConfig, read_signals_file
from analysts._foundation import ForecastAnalyst
from analysts._loading import load_analyst
from analysts._lstm import LSTMAnalyst, LSTMConfig
from analysts._magnitude import MagnitudeAnalyst, MagnitudeConfig
from analysts._price import MomentumAnalyst, MomentumConfig, NaiveAnalyst, NaiveConfig
from analysts._registry import REGISTRY, available, get_analyst
from analysts._samples import feature_store
from analysts._trainable import TrainableAnalyst, TrainableConfig
from analysts.base import SIGNAL_COLUMNS, Analyst, AnalystConfig, TimeLike

__all__ = [
    "ForecastAnalyst",
    "feature_store",
    "REGISTRY",
    "SIGNAL_COLUMNS",
    "Analyst",
    "AnalystConfig",
    "ConfiguredAnalyst",
    "FileAnalyst",
    "FileConfig",
    "LSTMAnalyst",
    "LSTMConfig",
    "MagnitudeAnalyst",
    "MagnitudeConfig",
    "MomentumAnalyst",
    "MomentumConfig",
    "NaiveAnalyst",
    "NaiveConfig",
    "TimeLike",
    "TrainableAnalyst",
    "TrainableConfig",
    "available",
    "get_analyst",
    "load_analyst",
    "read_signals_file",
]
