"""align_bars: union calendar, NaN (never forward-filled) where an asset has no bar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.data import align_bars, load_bars
from engine.errors import DataError
from engine.panel import Panel


def _day(d: int) -> dt.datetime:
    return dt.datetime(2024, 1, d)


def test_two_calendars_union_with_nan_gaps() -> None:
    # A trades Jan 2, 3, 5; B trades Jan 3, 4, 5: the union is Jan 2..5.
    bars = pl.DataFrame(
        {
            "ts": [_day(2), _day(3), _day(3), _day(4), _day(5), _day(5)],
            "asset": ["A", "A", "B", "B", "A", "B"],
            "open": [1.0, 2.0, 10.0, 11.0, 3.0, 12.0],
            "high": [1.5, 2.5, 10.5, 11.5, 3.5, 12.5],
            "low": [0.5, 1.5, 9.5, 10.5, 2.5, 11.5],
            "close": [1.2, 2.2, 10.2, 11.2, 3.2, 12.2],
            "volume": [5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        }
    )
    panel = align_bars(bars)
    assert isinstance(panel, Panel)
    assert panel.assets == ("A", "B")
    assert panel.ts.dtype == np.dtype("datetime64[ns]")
    assert panel.ts.tolist() == [np.datetime64(f"2024-01-0{d}", "ns").item() for d in (2, 3, 4, 5)]
    nan = np.nan
    np.testing.assert_array_equal(panel.close, [[1.2, nan], [2.2, 10.2], [nan, 11.2], [3.2, 12.2]])
    np.testing.assert_array_equal(panel.open, [[1.0, nan], [2.0, 10.0], [nan, 11.0], [3.0, 12.0]])
    np.testing.assert_array_equal(panel.high[:, 1], [nan, 10.5, 11.5, 12.5])
    np.testing.assert_array_equal(panel.low[:, 0], [0.5, 1.5, nan, 2.5])
    np.testing.assert_array_equal(panel.volume[:, 0], [5.0, 6.0, nan, 9.0])
    np.testing.assert_array_equal(
        panel.tradable, [[True, False], [True, True], [False, True], [True, True]]
    )
    assert panel.has_open is True
    assert panel.periods_per_year == 252.0


def test_close_only_data_sets_open_to_close_and_flags_it() -> None:
    bars = pl.DataFrame(
        {"ts": [_day(2), _day(3), _day(3)], "asset": ["B", "A", "B"], "close": [1.0, 2.0, 3.0]}
    )
    panel = align_bars(bars)
    assert panel.has_open is False
    np.testing.assert_array_equal(panel.open, panel.close)
    np.testing.assert_array_equal(panel.high, panel.close)
    np.testing.assert_array_equal(panel.low, panel.close)
    assert np.isnan(panel.volume).all()
    np.testing.assert_array_equal(panel.close, [[np.nan, 1.0], [2.0, 3.0]])


def test_open_without_high_low_bounds_the_bar() -> None:
    bars = pl.DataFrame({"ts": [_day(2), _day(3)], "asset": ["A", "A"], "open": [1.0, 4.0],
                         "close": [2.0, 3.0]})
    panel = align_bars(bars)
    np.testing.assert_array_equal(panel.high[:, 0], [2.0, 4.0])
    np.testing.assert_array_equal(panel.low[:, 0], [1.0, 3.0])


def test_asset_order_is_bytewise_sorted() -> None:
    bars = pl.DataFrame({"ts": [_day(2)] * 3 + [_day(3)] * 3, "asset": ["B", "a", "ä"] * 2,
                         "close": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    panel = align_bars(bars)
    assert panel.assets == ("B", "a", "ä")
    np.testing.assert_array_equal(panel.close, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def test_zoned_timestamps_become_utc_instants() -> None:
    bars = pl.DataFrame({"ts": [dt.datetime(2024, 1, 2, 9), dt.datetime(2024, 1, 3, 9)],
                         "asset": ["A", "A"], "close": [1.0, 2.0]})
    bars = bars.with_columns(pl.col("ts").dt.replace_time_zone("America/New_York"))
    panel = align_bars(bars)
    assert panel.ts[0] == np.datetime64("2024-01-02T14:00", "ns")


def test_invalid_bars_are_rejected_before_alignment() -> None:
    bars = pl.DataFrame({"ts": [_day(3), _day(2)], "asset": ["A", "A"], "close": [1.0, 2.0]})
    with pytest.raises(DataError, match="not sorted"):
        align_bars(bars)


def test_single_timestamp_needs_explicit_periods_per_year() -> None:
    bars = pl.DataFrame({"ts": [_day(2)], "asset": ["A"], "close": [1.0]})
    with pytest.raises(DataError, match="at least two distinct timestamps"):
        align_bars(bars)
    assert align_bars(bars, periods_per_year=252).n_bars == 1


def test_bundled_stocks_panel_matches_long_frame() -> None:
    bars = load_bars("sp500_stocks")
    panel = align_bars(bars)
    assert (panel.n_bars, panel.n_assets) == (8313, 20)
    assert not np.isnan(panel.close).any()
    # Slow reference: every long row sits in its (ts, asset) cell.
    sample = bars.sample(300, seed=7)
    for row in sample.iter_rows(named=True):
        i = int(np.searchsorted(panel.ts, np.datetime64(row["ts"], "ns")))
        assert panel.close[i, panel.asset_index(row["asset"])] == row["close"]


def test_large_random_panel_matches_a_pivot() -> None:
    rng = np.random.default_rng(3)
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-04-01")).astype("datetime64[ns]")
    assets = [f"S{i:02d}" for i in range(30)]
    full = pl.DataFrame({"ts": np.repeat(days, len(assets)), "asset": assets * len(days)})
    bars = full.filter(pl.Series(rng.random(full.height) > 0.3))
    bars = bars.with_columns(close=pl.Series(rng.uniform(1, 2, bars.height)))
    panel = align_bars(bars)
    pivot = bars.pivot(on="asset", index="ts", values="close", sort_columns=True).sort("ts")
    expected = pivot.select(list(panel.assets)).to_numpy()
    np.testing.assert_array_equal(panel.close, expected)
    assert panel.periods_per_year == 365.0  # every calendar day has bars
