"""What every built-in strategy shares: a frozen config and one way to build it.

A strategy is a small policy object holding a validated, immutable config. Building the
config from user values (a YAML mapping, keyword arguments) goes through
:func:`build_config` so that every mistake -- an unknown key, a value of the wrong type,
thresholds out of order -- surfaces as one :class:`~engine.errors.ConfigError` that names
the strategy and the key, instead of a pydantic traceback.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from engine.configs import Configured, build_config, describe_validation_error, did_you_mean

__all__ = ["StrategyConfig", "ConfiguredStrategy", "build_config", "describe_validation_error",
           "did_you_mean", "fmt_ts"]



class StrategyConfig(BaseModel):
    """Base of every strategy config: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def fmt_ts(ts: np.datetime64) -> str:
    """A bar timestamp for messages: ``2024-01-05`` for daily bars, else to the second."""
    text = np.datetime_as_string(np.datetime64(ts, "s"))
    return text.removesuffix("T00:00:00")


class ConfiguredStrategy(Configured):
    """Base class pairing a strategy with its config class.

    Build one with keyword values (``SimpleStrategy(threshold=0.6)``) or with a ready
    config object (``SimpleStrategy(SimpleConfig(threshold=0.6))``), never both.
    """

    kind: ClassVar[str] = "strategy"
    config_class: ClassVar[type[StrategyConfig]]
