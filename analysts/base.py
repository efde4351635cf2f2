"""The analyst protocol: bars in, a signals frame out, with no look-ahead.

An analyst learns (``fit``) from bars up to a cut-off and forecasts (``predict``) a long
signals frame ``ts, asset`` plus any of ``score, prob_up, pred_return, uncertainty``
(DESIGN.md "Signals"). The **as-of rule** binds every implementation: a prediction
dated ``t`` may use bars up to and including the close of ``t`` and nothing later, so
appending or changing bars after ``t`` can never change a prediction dated ``<= t``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, Protocol, Self, runtime_checkable

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

# The signal columns DESIGN.md defines; an analyst emits any subset of them.
SIGNAL_COLUMNS: tuple[str, ...] = ("score", "prob_up", "pred_return", "uncertainty")

# A point in time given to fit/predict: a datetime, a date, or an ISO 8601 string.
TimeLike = datetime | date | str


class AnalystConfig(BaseModel):
    """Base of every analyst config: immutable, and unknown keys are errors.

    ``calibrate``: map ``prob_up`` through an isotonic or Platt calibrator refit on past
    outcomes only (:mod:`analysts.calibration`); ``calibration_history``: bars before a
    prediction window whose forecasts and outcomes train it; ``calibration_pairs``:
    ``out_of_sample`` (default) uses only forecasts the analyst made on bars it did not
    learn from, ``all`` also its in-sample (over-confident) ones.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    calibrate: Literal["isotonic", "platt"] | None = None
    calibration_history: int = Field(504, ge=1)
    calibration_pairs: Literal["out_of_sample", "all"] = "out_of_sample"


@runtime_checkable
class Analyst(Protocol):
    """Anything that turns bars into signals. Registered by name in ``analysts``."""

    name: str

    def fit(self, bars: pl.DataFrame, until: TimeLike | None = None) -> Self:
        """Learn from bars dated ``<= until`` (all bars when None); return self."""
        ...

    def predict(
        self, bars: pl.DataFrame, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pl.DataFrame:
        """Signals dated in ``[start, end]``, each using bars up to its own ts only."""
        ...
