"""Building analysts from config values, with errors that name the key.

The config plumbing itself (``build_config``, ``did_you_mean``) lives in
``engine.configs``, shared with strategies and the RL manager.
"""

from __future__ import annotations

import functools
import warnings
from contextvars import ContextVar
from typing import Any, ClassVar

from analysts.base import AnalystConfig
from engine.configs import Configured, build_config, did_you_mean
from engine.errors import ConfigError

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
        fit = cls.__dict__.get("fit")
        if fit is not None and not getattr(fit, "_records", False):
            cls.fit = _recording(fit)

    def __repr__(self) -> str:
        # the analyst's own keys first; the calibration keys only when calibrating
        values = self.config.model_dump()
        shared = {"calibrate", "calibration_history", "calibration_pairs"}
        if values.get("calibrate") is None:
            values = {k: v for k, v in values.items() if k not in shared}
        order = [k for k in values if k not in shared] + [k for k in values if k in shared]
        return f"{type(self).__name__}({', '.join(f'{k}={values[k]!r}' for k in order)})"


# Set while a calibrated predict runs: nested predicts (base classes, members) stay raw.
_CALIBRATING: ContextVar[bool] = ContextVar("calibrating", default=False)
# Set while the outermost predict runs: the tuned-period check runs once, on its window.
_CHECKED: ContextVar[bool] = ContextVar("tuned_checked", default=False)


def _calibrating(raw: Any) -> Any:
    @functools.wraps(raw)
    def predict(self: Any, bars: Any, start: Any = None, end: Any = None) -> Any:
        checked = _CHECKED.set(True) if not _CHECKED.get() else None
        try:
            if checked is not None:
                _check_tuned_window(self, bars, start, end)
            if getattr(self.config, "calibrate", None) is None or _CALIBRATING.get():
                return raw(self, bars, start, end)
            from analysts.calibration import calibrated_predict

            token = _CALIBRATING.set(True)
            try:
                return calibrated_predict(self, lambda b, s, e: raw(self, b, s, e), bars,
                                          start, end)
            finally:
                _CALIBRATING.reset(token)
        finally:
            if checked is not None:
                _CHECKED.reset(checked)

    predict._calibrates = True  # type: ignore[attr-defined]
    return predict


def _recording(raw: Any) -> Any:
    """``fit`` that remembers its cut-off (``fit_cutoff``: ``until``, or the bars' last
    ts): forecasts dated up to it are in sample for an analyst that learns, and an
    out-of-sample calibration leaves them out (analysts.calibration)."""
    @functools.wraps(raw)
    def fit(self: Any, bars: Any, until: Any = None, *args: Any, **kwargs: Any) -> Any:
        out = raw(self, bars, until, *args, **kwargs)
        self.fit_cutoff = until if until is not None or bars.height == 0 else bars["ts"].max()
        return out

    fit._records = True  # type: ignore[attr-defined]
    return fit


def _check_tuned_window(analyst: Any, bars: Any, start: Any, end: Any) -> None:
    """Hyperparameters count as training: forecasts inside or before the period a
    ``tuned_configs`` file was tuned on are refused (ConfigError) unless the config sets
    ``allow_tuned_overlap``, when a warning says so."""
    path = getattr(analyst.config, "tuned_configs", None)
    if not path or bars.height == 0:
        return
    from analysts._tuned import check_tuned_overlap, tuned_meta

    allow = bool(getattr(analyst.config, "allow_tuned_overlap", False))
    try:
        meta = tuned_meta(path)
    except ConfigError:
        if allow:
            return
        raise
    note = check_tuned_overlap(meta, start if start is not None else bars["ts"].min(),
                               end if end is not None else bars["ts"].max(), allow=allow,
                               where=f"analyst {analyst.name!r}: the forecast window")
    if note:
        warnings.warn(note, stacklevel=3)
