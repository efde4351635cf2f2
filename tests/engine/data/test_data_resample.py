"""resample_bars: OHLCV roll-ups stamped at the last bar of each bucket (no look-ahead)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import polars as pl
import pytest

from engine.data import load_bars, resample_bars
from engine.errors import ConfigError, DataError
from engine.synthetic import intraday_bars


def _d(month: int, day: int) -> dt.datetime:
    return dt.datetime(2024, month, day)


@pytest.fixture
def daily() -> pl.DataFrame:
    rows = [
        # ts, asset, open, high, low, close, volume
        (_d(1, 2), "X", 10.0, 12.0, 9.0, 11.0, 100.0),  # Tue
        (_d(1, 3), "X", 11.0, 13.0, 10.0, 12.0, 200.0),
        (_d(1, 3), "Y", 5.0, 6.0, 4.0, 5.5, 10.0),
        (_d(1, 5), "X", 12.0, 12.5, 8.0, 9.0, 300.0),  # Fri
        (_d(1, 8), "X", 9.0, 10.0, 8.5, 9.5, 400.0),  # Mon
        (_d(1, 10), "Y", 5.5, 7.0, 5.0, 6.0, 20.0),
        (_d(1, 12), "X", 9.5, 11.0, 9.0, 10.0, 500.0),
        (_d(2, 1), "X", 10.0, 15.0, 10.0, 14.0, 600.0),
        (_d(4, 2), "X", 14.0, 16.0, 13.0, 15.0, 700.0),  # nothing in March
    ]
    columns = ["ts", "asset", "open", "high", "low", "close", "volume"]
    return pl.DataFrame(rows, schema=columns, orient="row")


def test_weekly_hand_computed(daily: pl.DataFrame) -> None:
    out = resample_bars(daily, "1w")
    assert out.columns == ["ts", "asset", "open", "high", "low", "close", "volume"]
    assert out.rows() == [
        (_d(1, 3), "Y", 5.0, 6.0, 4.0, 5.5, 10.0),
        (_d(1, 5), "X", 10.0, 13.0, 8.0, 9.0, 600.0),
        (_d(1, 10), "Y", 5.5, 7.0, 5.0, 6.0, 20.0),
        (_d(1, 12), "X", 9.0, 11.0, 8.5, 10.0, 900.0),
        (_d(2, 1), "X", 10.0, 15.0, 10.0, 14.0, 600.0),
        (_d(4, 2), "X", 14.0, 16.0, 13.0, 15.0, 700.0),
    ]


def test_monthly_hand_computed_drops_empty_months(daily: pl.DataFrame) -> None:
    out = resample_bars(daily, "1mo")
    assert out.rows() == [
        (_d(1, 10), "Y", 5.0, 7.0, 4.0, 6.0, 30.0),
        (_d(1, 12), "X", 10.0, 13.0, 8.0, 10.0, 1500.0),
        (_d(2, 1), "X", 10.0, 15.0, 10.0, 14.0, 600.0),
        (_d(4, 2), "X", 14.0, 16.0, 13.0, 15.0, 700.0),
    ]


def test_quarterly_hand_computed(daily: pl.DataFrame) -> None:
    out = resample_bars(daily, "1q")
    assert out.rows() == [
        (_d(1, 10), "Y", 5.0, 7.0, 4.0, 6.0, 30.0),
        (_d(2, 1), "X", 10.0, 15.0, 8.0, 14.0, 2100.0),
        (_d(4, 2), "X", 14.0, 16.0, 13.0, 15.0, 700.0),
    ]


def test_close_only_and_adj_close() -> None:
    bars = pl.DataFrame(
        {
            "ts": [_d(1, 2), _d(1, 3), _d(2, 1)],
            "asset": ["A"] * 3,
            "open": [1.0, 2.0, 3.0],
            "high": [1.0, 2.0, 3.0],
            "low": [1.0, 2.0, 3.0],
            "close": [1.0, 2.0, 3.0],
            "adj_close": [0.5, 1.5, 2.5],
        }
    )
    out = resample_bars(bars, "1mo")
    assert out["adj_close"].to_list() == [1.5, 2.5]
    out = resample_bars(bars.select("ts", "asset", "close"), "1mo")
    assert out.rows() == [(_d(1, 3), "A", 2.0), (_d(2, 1), "A", 3.0)]


def _reference(bars: pl.DataFrame, key) -> list[tuple]:
    """Slow, obvious roll-up: Python dict of buckets, rows visited in time order."""
    buckets: dict[tuple, list[dict]] = defaultdict(list)
    for row in bars.iter_rows(named=True):
        buckets[(row["asset"], key(row["ts"]))].append(row)
    out = []
    for rows in buckets.values():
        out.append(
            (
                rows[-1]["ts"],
                rows[0]["asset"],
                rows[0]["open"],
                max(r["high"] for r in rows),
                min(r["low"] for r in rows),
                rows[-1]["close"],
                sum(r["volume"] for r in rows),
            )
        )
    return sorted(out, key=lambda r: (r[0], r[1]))


@pytest.fixture(scope="module")
def fx_hourly() -> pl.DataFrame:
    """Round-the-clock weekday hourly bars, two assets, a holiday and missing bars."""
    return intraday_bars("2024-01-01", days=120, every="1h", session=None,
                         assets=("EURUSD", "GBPUSD"), holidays=["2024-01-01", "2024-03-29"],
                         seed=18, missing=0.05)


def _assert_rows(out: pl.DataFrame, expected: list[tuple]) -> None:
    assert out.height == len(expected)
    for got, want in zip(out.rows(), expected, strict=True):
        assert got[:6] == want[:6]
        assert got[6] == pytest.approx(want[6], rel=1e-12)


def test_fx_hourly_to_daily_matches_reference(fx_hourly: pl.DataFrame) -> None:
    bars = fx_hourly
    out = resample_bars(bars, "1d")
    expected = _reference(bars, lambda ts: ts.date())
    assert out.height == len(expected) == 2 * 120
    _assert_rows(out, expected)


def test_fx_hourly_to_4h_matches_reference(fx_hourly: pl.DataFrame) -> None:
    bars = fx_hourly
    out = resample_bars(bars, "4h")
    expected = _reference(bars, lambda ts: (ts.date(), ts.hour // 4))
    _assert_rows(out, expected)


def test_no_look_ahead_every_label_is_a_real_bar_with_its_close() -> None:
    bars = load_bars("sp500_stocks", assets=["AAPL", "XOM"], start="2020-01-01")
    for every in ("1w", "1mo", "1q"):
        out = resample_bars(bars, every)
        joined = out.join(bars, on=["ts", "asset"], how="left", suffix="_bar")
        assert joined["close_bar"].null_count() == 0
        assert (joined["close"] == joined["close_bar"]).all()


def test_equity_session_minutes_to_hourly_and_daily() -> None:
    # 09:30-16:00 minute bars: hourly buckets are clock hours (09:30-09:59 is the first),
    # daily buckets one per session, each stamped at its last minute bar.
    bars = intraday_bars("2024-03-04", days=3, every="1m", seed=18, missing=0.02)
    hourly = resample_bars(bars, "1h")
    expected = _reference(bars, lambda ts: (ts.date(), ts.hour))
    assert hourly.height == len(expected) == 3 * 7
    _assert_rows(hourly, expected)
    daily = resample_bars(bars, "1d")
    _assert_rows(daily, _reference(bars, lambda ts: ts.date()))
    assert daily["ts"].dt.hour().to_list() == [15] * 3


def test_weekly_daily_ohlcv_volume_is_conserved() -> None:
    bars = load_bars("nasdaq_ohlcv").drop("adj_close")
    out = resample_bars(bars, "1w")
    assert out["volume"].sum() == pytest.approx(bars["volume"].sum(), rel=1e-12)
    assert out["ts"].dt.weekday().max() <= 5  # stamped on a trading day, never a weekend


def test_bad_every_strings() -> None:
    bars = load_bars("nasdaq_ohlcv")
    with pytest.raises(ConfigError, match="is not a bar size"):
        resample_bars(bars, "weekly")
    with pytest.raises(ConfigError, match=r"'1m' is shorter than the data's bar spacing.*'1mo'"):
        resample_bars(bars, "1m")


def test_unsorted_input_is_rejected() -> None:
    bars = load_bars("nasdaq_ohlcv").reverse()
    with pytest.raises(DataError, match="not sorted"):
        resample_bars(bars, "1w")
