from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ConfigError
from strategies import REBALANCE_FREQUENCIES, rebalance_mask


def _ts(*stamps: str) -> np.ndarray:
    return np.array(stamps, dtype="datetime64[ns]")


def test_monthly_marks_the_last_bar_present_in_each_month():
    ts = _ts("2024-01-30", "2024-01-31", "2024-02-01", "2024-02-28", "2024-03-01", "2024-03-04")
    assert rebalance_mask(ts, "monthly").tolist() == [False, True, False, True, False, True]


def test_monthly_uses_the_bars_present_not_the_calendar_month_end():
    # 2024-03-29 is a Friday; the month's last *bar* is the rebalance bar.
    ts = _ts("2024-03-28", "2024-03-29", "2024-04-01")
    assert rebalance_mask(ts, "monthly").tolist() == [False, True, True]


def test_weekly_weeks_start_on_monday():
    # Thu, Fri | Mon, Tue, Sun | Mon
    ts = _ts("2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-14", "2024-01-15")
    assert rebalance_mask(ts, "weekly").tolist() == [False, True, False, False, True, True]


def test_weekly_before_1970_is_still_monday_based():
    # 1969-12-29 is a Monday, 1969-12-28 a Sunday.
    ts = _ts("1969-12-27", "1969-12-28", "1969-12-29", "1970-01-01", "1970-01-04", "1970-01-05")
    assert rebalance_mask(ts, "weekly").tolist() == [False, True, False, False, True, True]


def test_quarterly():
    ts = _ts("2023-12-29", "2024-01-02", "2024-03-28", "2024-04-01", "2024-06-28", "2024-07-01")
    assert rebalance_mask(ts, "quarterly").tolist() == [True, False, True, False, True, True]


def test_daily_on_daily_bars_is_every_bar_and_on_hourly_bars_the_last_hour():
    days = _ts("2024-01-02", "2024-01-03", "2024-01-04")
    assert rebalance_mask(days, "daily").all()
    hours = _ts("2024-01-02T14:00", "2024-01-02T15:00", "2024-01-03T14:00", "2024-01-03T15:00")
    assert rebalance_mask(hours, "daily").tolist() == [False, True, False, True]


def test_unknown_frequency_is_a_config_error():
    with pytest.raises(ConfigError, match="yearly"):
        rebalance_mask(_ts("2024-01-02"), "yearly")  # type: ignore[arg-type]
    assert REBALANCE_FREQUENCIES == ("daily", "weekly", "monthly", "quarterly")
