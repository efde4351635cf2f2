"""Building analysts from config values, with errors that name the key.

The config plumbing itself (``build_config``, ``did_you_mean``) lives in
``engine.configs``, shared with strategies and the RL manager.
"""

from __future__ import annotations

from typing import ClassVar

from analysts.base import AnalystConfig
from engine.configs import Configured, build_config, did_you_mean

__all__ = ["ConfiguredAnalyst", "build_config", "did_you_mean"]


class ConfiguredAnalyst(Configured):
    """Base class pairing an analyst with its frozen config class.

    Build one with keyword values (``MomentumAnalyst(lookback=60)``) or a ready config
    object, never both.
    """

    kind: ClassVar[str] = "analyst"
    config_class: ClassVar[type[AnalystConfig]]
