"""intraday_bars: seeded minute/hourly bars with sessions, holidays and missing bars."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from engine.data import infer_periods_per_year, validate_bars
from engine.errors import ConfigError
from engine.synthetic import intraday_bars


def test_same_seed_same_bars_and_assets_do_not_depend_on_each_other() -> None:
    one = intraday_bars(days=5, assets=("A",), seed=11)
    two = intraday_bars(days=5, assets=("A", "B"), seed=11)
    assert one.equals(intraday_bars(days=5, assets=("A",), seed=11))
    assert two.filter(pl.col("asset") == "A").equals(one)
    assert not one["close"].equals(intraday_bars(days=5, assets=("A",), seed=12)["close"])


def test_hourly_equity_session_calendar() -> None:
    # Tue 2024-01-02 .. : weekends and the listed holiday are skipped; 7 bars a day,
    # 09:30 .. 15:30 (the last one the half hour to the 16:00 close).
    bars = intraday_bars("2024-01-05", days=3, holidays=["2024-01-08"], seed=1)
    days = bars["ts"].dt.date().unique().sort().to_list()
    assert days == [dt.date(2024, 1, 5), dt.date(2024, 1, 9), dt.date(2024, 1, 10)]
    first_day = bars.filter(pl.col("ts").dt.date() == dt.date(2024, 1, 5))
    assert first_day["ts"].dt.strftime("%H:%M").to_list() == [
        "09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]
    assert bars.columns == ["ts", "asset", "open", "high", "low", "close", "volume"]
    assert bars.schema["ts"] == pl.Datetime("ns")
    validate_bars(bars)


def test_minute_bars_and_round_the_clock_sessions() -> None:
    minutes = intraday_bars(days=2, every="1m", seed=2)
    assert minutes.height == 2 * 390
    assert minutes["ts"][0] == dt.datetime(2024, 1, 2, 9, 30)
    assert minutes["ts"][389] == dt.datetime(2024, 1, 2, 15, 59)
    fx = intraday_bars(days=2, every="4h", session=None, seed=3)
    assert fx["ts"].dt.hour().to_list() == [0, 4, 8, 12, 16, 20] * 2


def test_opens_continue_within_a_session_and_gap_overnight() -> None:
    bars = intraday_bars(days=30, seed=4, gap_vol=1.0)
    close = bars["close"].to_numpy()
    open_ = bars["open"].to_numpy()
    first_of_day = bars["ts"].dt.hour().to_numpy() == 9
    same = np.isclose(open_[1:], close[:-1], rtol=0, atol=0)
    assert same[~first_of_day[1:]].all()
    assert not same[first_of_day[1:]].any()
    assert bars.select((pl.col("high") >= pl.max_horizontal("open", "close")).all()).item()
    assert bars.select((pl.col("low") <= pl.min_horizontal("open", "close")).all()).item()


def test_bar_returns_have_the_asked_annual_volatility() -> None:
    bars = intraday_bars(days=1000, seed=5, annual_vol=0.3, gap_vol=0.0)
    log_returns = np.diff(np.log(bars["close"].to_numpy()))
    annualised = log_returns.std(ddof=1) * math.sqrt(7 * 252)
    # 6,999 returns: the standard error of the estimate is about 0.85%
    assert annualised == pytest.approx(0.3, rel=0.03)


def test_missing_bars_leave_ragged_gaps_inside_sessions() -> None:
    full = intraday_bars(days=40, assets=("A", "B"), seed=6)
    holey = intraday_bars(days=40, assets=("A", "B"), seed=6, missing=0.1)
    assert full.height == 2 * 40 * 7
    assert 0.85 * full.height < holey.height < 0.95 * full.height
    counts = holey.group_by("asset").len().sort("asset")["len"].to_list()
    assert counts[0] != counts[1]  # each asset misses its own bars
    assert holey["ts"][0] == full["ts"][0]
    # the kept bars are the full path's bars, except that the price moved on meanwhile
    joined = holey.join(full, on=["ts", "asset"], suffix="_full")
    assert joined.height == holey.height
    assert (joined["close"] == joined["close_full"]).all()


def test_annualisation_follows_the_bar_frequency() -> None:
    # short samples use the 252-day convention: bars per day x 252
    assert infer_periods_per_year(intraday_bars(days=20)["ts"]) == 7 * 252
    assert infer_periods_per_year(intraday_bars(days=5, every="1m")["ts"]) == 390 * 252
    # a year of round-the-clock weekday FX: 24 bars x 260 full days over 362 calendar days
    fx = intraday_bars("2023-01-02", days=260, session=None, seed=7, missing=0.02)
    assert infer_periods_per_year(fx["ts"]) == round(24 * 260 / 362 * 365.25) == 6296


def test_time_zone_aware_output() -> None:
    bars = intraday_bars(days=2, tz="America/New_York")
    assert bars.schema["ts"] == pl.Datetime("ns", "America/New_York")
    assert bars["ts"][0].hour == 9
    assert bars["ts"].dt.convert_time_zone("UTC")[0].hour == 14


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every": "1d"}, "not an intraday bar size"),
        ({"every": "0h"}, "not an intraday bar size"),
        ({"session": ("16:00", "09:30")}, "closes before it opens"),
        ({"session": ("9h30", "16:00")}, "not a time of day"),
        ({"session": None, "every": "7h"}, "does not split into 420-minute bars"),
        ({"days": 0}, "positive whole number"),
        ({"missing": 1.0}, r"must be in \[0, 1\)"),
        ({"assets": ("A", "A")}, "distinct"),
        ({"start": "2024-13-01"}, "not a date"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        intraday_bars(**kwargs)
