"""Building analysts from config values, with errors that name the key.

The config plumbing itself (``build_config``, ``did_you_mean``) lives in
``engine.configs``, shared with strategies and the RL manager.
"""

from __future__ import annotations

from typing import Any, ClassVar

from analysts.base import AnalystConfig
from engine.configs import build_config, did_you_mean
from engine.errors import ConfigError

__all__ = ["ConfiguredAnalyst", "build_config", "did_you_mean"]


class ConfiguredAnalyst:
    """Base class pairing an analyst with its frozen config class.

    Build one with keyword values (``MomentumAnalyst(lookback=60)``) or a ready config
    object, never both.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[AnalystConfig]]

    def __init__(self, config: AnalystConfig | None = None, /, **values: Any) -> None:
        if config is not None and values:
            raise ConfigError(
                f"{self.name}: pass either a config object or keyword values, not both "
                f"(got a config and {sorted(values)})"
            )
        if config is None:
            config = build_config(self.config_class, f"analyst {self.name!r}", values)
        elif not isinstance(config, self.config_class):
            raise ConfigError(
                f"{self.name}: expected a {self.config_class.__name__}, got "
                f"{type(config).__name__}; build it with {self.config_class.__name__}(...)"
            )
        self.config = config

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({values})"
