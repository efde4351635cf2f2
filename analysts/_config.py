"""Building analysts from config values, with errors that name the key.

The config plumbing itself (``build_config``, ``did_you_mean``) lives in
``engine.configs``, shared with strategies and the RL manager.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any, ClassVar

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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every predict honours the config's ``calibrate`` (analysts.calibration), however
        # the analyst was built or loaded
        super().__init_subclass__(**kwargs)
        raw = cls.__dict__.get("predict")
        if raw is not None and not getattr(raw, "_calibrates", False):
            cls.predict = _calibrating(raw)

    def __repr__(self) -> str:
        # the analyst's own keys first; the calibration keys only when calibrating
        values = self.config.model_dump()
        shared = {"calibrate", "calibration_history"}
        if values.get("calibrate") is None:
            values = {k: v for k, v in values.items() if k not in shared}
        order = [k for k in values if k not in shared] + [k for k in values if k in shared]
        return f"{type(self).__name__}({', '.join(f'{k}={values[k]!r}' for k in order)})"


# Set while a calibrated predict runs: nested predicts (base classes, members) stay raw.
_CALIBRATING: ContextVar[bool] = ContextVar("calibrating", default=False)


def _calibrating(raw: Any) -> Any:
    @functools.wraps(raw)
    def predict(self: Any, bars: Any, start: Any = None, end: Any = None) -> Any:
        if getattr(self.config, "calibrate", None) is None or _CALIBRATING.get():
            return raw(self, bars, start, end)
        from analysts.calibration import calibrated_predict

        token = _CALIBRATING.set(True)
        try:
            return calibrated_predict(self, lambda b, s, e: raw(self, b, s, e), bars, start, end)
        finally:
            _CALIBRATING.reset(token)

    predict._calibrates = True  # type: ignore[attr-defined]
    return predict
