"""What every built-in strategy shares: a frozen config and one way to build it.

A strategy is a small policy object holding a validated, immutable config. Building the
config from user values (a YAML mapping, keyword arguments) goes through
:func:`build_config` so that every mistake -- an unknown key, a value of the wrong type,
thresholds out of order -- surfaces as one :class:`~engine.errors.ConfigError` that names
the strategy and the key, instead of a pydantic traceback.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from engine.configs import build_config, describe_validation_error, did_you_mean
from engine.errors import ConfigError

__all__ = ["StrategyConfig", "ConfiguredStrategy", "build_config", "describe_validation_error",
           "did_you_mean", "fmt_ts"]



class StrategyConfig(BaseModel):
    """Base of every strategy config: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def fmt_ts(ts: np.datetime64) -> str:
    """A bar timestamp for messages: ``2024-01-05`` for daily bars, else to the second."""
    text = np.datetime_as_string(np.datetime64(ts, "s"))
    return text.removesuffix("T00:00:00")


class ConfiguredStrategy:
    """Base class pairing a strategy with its config class.

    Build one with keyword values (``SimpleStrategy(threshold=0.6)``) or with a ready
    config object (``SimpleStrategy(SimpleConfig(threshold=0.6))``), never both.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[StrategyConfig]]

    def __init__(self, config: StrategyConfig | None = None, /, **values: Any) -> None:
        if config is not None and values:
            raise ConfigError(
                f"{self.name}: pass either a config object or keyword values, not both "
                f"(got a config and {sorted(values)})"
            )
        if config is None:
            config = build_config(self.config_class, f"strategy {self.name!r}", values)
        elif not isinstance(config, self.config_class):
            raise ConfigError(
                f"{self.name}: expected a {self.config_class.__name__}, got "
                f"{type(config).__name__}; build it with {self.config_class.__name__}(...)"
            )
        self.config = config

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({values})"
