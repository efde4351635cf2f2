"""The ``walkforward:`` section: training windows, test windows, step, embargo."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SPAN = re.compile(r"^([1-9][0-9]*)(y|mo|w|d)$")
_UNIT_NAMES = {"y": "years", "mo": "months", "w": "weeks", "d": "calendar days"}

Span = int | str


def check_span(value: Span, key: str) -> Span:
    """A window: a number of bars, or a calendar length like ``5y``, ``6mo``, ``13w``, ``90d``."""
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number of bars or a length like 5y, 6mo, 13w")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{key} must be at least 1 bar, got {value}")
        return value
    if not _SPAN.match(str(value)):
        raise ValueError(
            f"{key} {value!r} is not a window: give a number of bars (252) or a calendar "
            "length: a count and y (years), mo (months), w (weeks) or d (calendar days), "
            "e.g. 5y, 6mo, 13w"
        )
    return value


def add_span(ts: np.datetime64, span: str, sign: int = 1) -> np.datetime64:
    """``ts`` moved by ``sign`` times a calendar span (months and years by the calendar,
    not by 30 days; the 31st moves to the last day of a shorter month)."""
    count, unit = _SPAN.match(span).groups()
    n = int(count) * sign
    if unit == "d":
        return ts + np.timedelta64(n, "D")
    if unit == "w":
        return ts + np.timedelta64(7 * n, "D")
    months = n * (12 if unit == "y" else 1)
    day = ts.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    offset = day - month  # days into the month
    target = month + np.timedelta64(months, "M")
    last_day = (target + np.timedelta64(1, "M")).astype("datetime64[D]") - np.timedelta64(1, "D")
    moved = min(target.astype("datetime64[D]") + offset, last_day)
    return (moved.astype("datetime64[ns]") + (ts - day.astype("datetime64[ns]"))).astype(
        "datetime64[ns]")


def _days(span: str) -> float:
    count, unit = _SPAN.match(span).groups()
    return int(count) * {"y": 365.25, "mo": 30.44, "w": 7.0, "d": 1.0}[unit]


class WalkForwardSpec(BaseModel):
    """How ``alfred walkforward`` cuts the data into folds.

    Each fold fits the analysts on its training window, skips ``embargo`` bars, and trades
    its test window; test windows follow each other (``step`` = ``test`` by default), and
    their equity is stitched into one out-of-sample curve.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    train: Span = Field(description="training window: bars, or a length like 5y")
    test: Span = Field(description="test window: bars, or a length like 1y")
    step: Span | None = Field(default=None, description="distance between test starts "
                              "(default: test; larger leaves untested gaps)")
    mode: Literal["rolling", "expanding"] = "rolling"
    embargo: int | None = Field(
        default=None, ge=0, description="bars skipped between the last training bar and "
        "the first test bar; at least the analysts' label horizon (default: that horizon)")
    start: date | None = Field(default=None, description="first test day (default: data.start, "
                               "else as early as the first training window allows)")
    validation: float | None = Field(
        default=None, gt=0, lt=1, description="share of each training window the trainable "
        "analysts hold out for early stopping (default: their own validation_fraction)")
    in_sample: bool = Field(True, description="also run one in-sample backtest of the same "
                            "span (analysts fit on all of it) for comparison")

    @field_validator("train", "test", "step")
    @classmethod
    def _spans(cls, value, info):
        return value if value is None else check_span(value, info.field_name)

    @model_validator(mode="after")
    def _step_covers(self) -> WalkForwardSpec:
        step, test = self.step, self.test
        if step is None or type(step) is not type(test):
            return self
        shorter = step < test if isinstance(step, int) else _days(step) < _days(test)
        if shorter:
            raise ValueError(
                f"step {step} is shorter than test {test}: test windows would overlap and "
                "the out-of-sample curve could not be stitched; use step >= test"
            )
        return self

    def describe(self) -> str:
        def one(span: Span) -> str:
            if isinstance(span, int):
                return f"{span} bars"
            count, unit = _SPAN.match(span).groups()
            return f"{count} {_UNIT_NAMES[unit]}"

        step = "" if self.step is None else f", step {one(self.step)}"
        return (f"{self.mode} train {one(self.train)}, test {one(self.test)}{step}, "
                f"embargo {self.embargo if self.embargo is not None else 'auto'} bars")
