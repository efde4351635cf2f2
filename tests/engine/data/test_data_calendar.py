"""infer_periods_per_year: the annualisation rule, checked on hand-built calendars."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.data import infer_periods_per_year, load_bars
from engine.errors import DataError
from engine.synthetic import intraday_bars


def _days(start: str, end: str) -> np.ndarray:
    return np.arange(np.datetime64(start), np.datetime64(end)).astype("datetime64[ns]")


def _weekdays(start: str, end: str) -> np.ndarray:
    days = _days(start, end)
    return days[np.is_busday(days.astype("datetime64[D]"))]


def test_daily_weekday_data_is_252() -> None:
    assert infer_periods_per_year(_weekdays("2015-01-01", "2020-01-01")) == 252.0


def test_daily_with_holidays_is_still_252() -> None:
    days = _weekdays("2019-01-01", "2020-01-01")
    holidays = np.isin(days.astype("datetime64[D]"), np.array(["2019-07-04", "2019-12-25"], "datetime64[D]"))
    assert infer_periods_per_year(days[~holidays]) == 252.0


def test_seven_day_daily_data_is_365() -> None:
    assert infer_periods_per_year(_days("2021-01-01", "2022-01-01")) == 365.0


def test_weekly_is_52_even_with_a_short_holiday_week() -> None:
    fridays = np.arange(np.datetime64("2019-01-04"), np.datetime64("2020-01-01"), 7)
    stamps = fridays.astype("datetime64[ns]")
    stamps[10] -= np.timedelta64(1, "D")  # a Thursday close in a holiday week
    assert infer_periods_per_year(stamps) == 52.0


def test_monthly_quarterly_annual() -> None:
    month_ends = pl.date_range(dt.date(2010, 1, 31), dt.date(2015, 12, 31), "1mo", eager=True)
    month_ends = month_ends.dt.month_end()
    assert infer_periods_per_year(month_ends) == 12.0
    quarter_ends = pl.date_range(dt.date(2010, 3, 31), dt.date(2015, 12, 31), "1q", eager=True)
    assert infer_periods_per_year(quarter_ends.dt.month_end()) == 4.0
    years = [dt.datetime(y, 12, 31) for y in range(2000, 2010)]
    assert infer_periods_per_year(years) == 1.0


def test_odd_spacing_falls_back_to_days_per_year() -> None:
    stamps = np.arange(np.datetime64("2020-01-01"), np.datetime64("2021-01-01"), 14)
    assert infer_periods_per_year(stamps.astype("datetime64[ns]")) == pytest.approx(365.25 / 14)


def test_hourly_24x5_over_52_weeks() -> None:
    # 52 weeks of 24 bars on each weekday, Mon 2023-01-02 .. Fri 2023-12-29: 260 full days
    # over the 362 calendar days with data -> 24 x 260 / 362 x 365.25 = 6295.96 -> 6296
    # (the ideal 24 x 260.9 = 6261 differs by the missing final weekend, 0.6%).
    hours = np.arange(np.datetime64("2023-01-02T00"), np.datetime64("2024-01-01T00")).astype("datetime64[ns]")
    hours = hours[np.is_busday(hours.astype("datetime64[D]"))]
    assert infer_periods_per_year(hours) == 6296.0


def test_hourly_fx_with_sunday_evening_bars() -> None:
    # Each week: Sun 22:00 and 23:00 (2 bars), Mon-Thu 24 bars, Fri 00:00-21:00 (22 bars).
    # Median bars per day = 24; full days (>= 12 bars) = Mon-Fri = 260 over the 363 days
    # from Sun 2023-01-01 to Fri 2023-12-29: 24 x 260 / 363 x 365.25 = 6278.7 -> 6279.
    hours = np.arange(np.datetime64("2023-01-01T00"), np.datetime64("2023-12-29T22")).astype("datetime64[ns]")
    day = hours.astype("datetime64[D]")
    weekday = (day.astype(np.int64) + 3) % 7  # Monday = 0
    hour = (hours - day).astype("timedelta64[h]").astype(np.int64)
    keep = (weekday < 4) | ((weekday == 4) & (hour < 22)) | ((weekday == 6) & (hour >= 22))
    assert infer_periods_per_year(hours[keep]) == 6279.0


def test_short_intraday_sample_uses_252_convention() -> None:
    # 4 weeks of 7 hourly bars (09:30 .. 15:30) per weekday: 7 x 252 = 1764.
    days = _weekdays("2024-01-01", "2024-01-27")
    stamps = (days[:, None] + np.timedelta64(570, "m") + np.arange(7) * np.timedelta64(1, "h")).ravel()
    assert infer_periods_per_year(stamps) == 1764.0


def test_generated_fx_hourly_is_about_24_by_260() -> None:
    # 10 months of round-the-clock weekday hours, Christmas off and 1% missing bars
    # (the shape of backtesting.py's EUR/USD sample, which Alfred no longer ships).
    ts = intraday_bars("2017-04-19", days=210, session=None, holidays=["2017-12-25"],
                       seed=18, missing=0.01)["ts"]
    value = infer_periods_per_year(ts)
    assert 24 * 250 <= value <= 24 * 262
    span = (ts.max().date() - ts.min().date()).days + 1
    assert value == round(24 * 210 / span * 365.25)


def test_generated_equity_hourly_and_minute_sessions() -> None:
    # a year of 09:30-16:00 sessions: 7 hourly or 390 minute bars per full day
    holidays = ["2024-01-15", "2024-02-19", "2024-05-27", "2024-07-04", "2024-09-02"]
    hourly = intraday_bars("2024-01-02", days=250, holidays=holidays, seed=1)["ts"]
    span = (hourly.max().date() - hourly.min().date()).days + 1
    assert infer_periods_per_year(hourly) == round(7 * 250 / span * 365.25)
    minutes = intraday_bars("2024-01-02", days=10, every="1m", seed=1)["ts"]
    assert infer_periods_per_year(minutes) == 390 * 252


def test_bundled_daily_sets_are_252() -> None:
    for name in ("sp500_stocks", "nasdaq_ohlcv", "vix"):
        assert infer_periods_per_year(load_bars(name)["ts"]) == 252.0


def test_time_zone_days_are_local() -> None:
    # 7 hourly bars a weekday in New York; in UTC they would not straddle midnight anyway,
    # but the count must not depend on the zone: still 7 x 252.
    days = _weekdays("2024-01-01", "2024-01-13")
    stamps = (days[:, None] + np.timedelta64(570, "m") + np.arange(7) * np.timedelta64(1, "h")).ravel()
    series = pl.Series("ts", stamps).dt.replace_time_zone("America/New_York")
    assert infer_periods_per_year(series) == 1764.0


def test_needs_two_timestamps() -> None:
    with pytest.raises(DataError, match="at least two distinct"):
        infer_periods_per_year([dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2)])


def test_rejects_non_datetimes() -> None:
    with pytest.raises(DataError, match="expected datetime64"):
        infer_periods_per_year(np.arange(5))
