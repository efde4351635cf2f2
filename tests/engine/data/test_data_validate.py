"""validate_bars: every contract breach gives a DataError naming asset, ts and row."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from engine.data import validate_bars
from engine.errors import DataError


def _bars(**overrides: list) -> pl.DataFrame:
    """Two assets x three days, sorted by (ts, asset), with consistent OHLCV."""
    days = [dt.datetime(2024, 1, d) for d in (2, 2, 3, 3, 4, 4)]
    data = {
        "ts": days,
        "asset": ["A", "B"] * 3,
        "open": [10.0, 20.0, 11.0, 21.0, 12.0, 22.0],
        "high": [11.0, 21.0, 12.0, 22.0, 13.0, 23.0],
        "low": [9.0, 19.0, 10.0, 20.0, 11.0, 21.0],
        "close": [10.5, 20.5, 11.5, 21.5, 12.5, 22.5],
        "volume": [100.0, 200.0, 300.0, 400.0, 500.0, 600.0],
    }
    data.update(overrides)
    return pl.DataFrame(data)


def _with(column: str, row: int, value: float | None) -> pl.DataFrame:
    values = _bars()[column].to_list()
    values[row] = value
    return _bars(**{column: values})


def test_valid_frame_is_returned_in_canonical_form() -> None:
    frame = _bars().with_columns(pl.col("volume").cast(pl.Int64), extra=pl.lit("x"))
    frame = frame.select(["close", "asset", "ts", "volume", "extra", "open", "high", "low"])
    out = validate_bars(frame)
    assert out.columns == ["ts", "asset", "open", "high", "low", "close", "volume"]
    assert out.schema["ts"] == pl.Datetime("ns")
    assert out.schema["volume"] == pl.Float64
    assert out["close"].to_list() == _bars()["close"].to_list()


def test_close_only_frame_with_date_column_is_accepted() -> None:
    frame = pl.DataFrame(
        {"ts": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)], "asset": ["A", "A"], "close": [1, 2]}
    )
    out = validate_bars(frame)
    assert out.schema["close"] == pl.Float64
    assert out["ts"].to_list() == [dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3)]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "inf"),
        (0.0, "zero"),
        (-3.0, "negative value -3.0"),
        (None, "missing"),
    ],
)
def test_bad_close_names_asset_ts_and_row(value: float | None, words: str) -> None:
    with pytest.raises(DataError) as info:
        validate_bars(_with("close", 3, value))
    message = str(info.value)
    assert "asset 'B' at 2024-01-03 (row 3)" in message
    assert words in message
    assert "Fix:" in message


def test_bad_open_is_rejected_too() -> None:
    with pytest.raises(DataError, match=r"asset 'A' at 2024-01-04 \(row 4\): open is zero"):
        validate_bars(_with("open", 4, 0.0))


def test_count_of_affected_rows_is_reported() -> None:
    closes = [10.5, float("nan"), 11.5, float("nan"), 12.5, 22.5]
    with pytest.raises(DataError, match=r"2 rows affected"):
        validate_bars(_bars(close=closes))


def test_high_below_low() -> None:
    with pytest.raises(DataError, match=r"asset 'B' at 2024-01-02 \(row 1\): high 18.0 is below low 19.0"):
        validate_bars(_with("high", 1, 18.0))


def test_close_above_high() -> None:
    with pytest.raises(DataError, match=r"asset 'A' at 2024-01-03 \(row 2\): close 12.7 is outside"):
        validate_bars(_with("close", 2, 12.7))


def test_open_below_low() -> None:
    with pytest.raises(DataError, match=r"asset 'B' at 2024-01-04 \(row 5\): open 20.0 is outside"):
        validate_bars(_with("open", 5, 20.0))


def test_close_a_few_ulps_outside_range_is_tolerated() -> None:
    validate_bars(_with("close", 2, 12.0 * (1 + 1e-12)))


def test_negative_volume() -> None:
    with pytest.raises(DataError, match=r"asset 'A' at 2024-01-03 \(row 2\): volume is negative"):
        validate_bars(_with("volume", 2, -1.0))


def test_zero_volume_is_valid() -> None:
    validate_bars(_with("volume", 2, 0.0))


def test_duplicate_ts_asset_names_both_rows() -> None:
    frame = pl.concat([_bars().head(3), _bars().slice(2, 4)])
    with pytest.raises(DataError) as info:
        validate_bars(frame)
    message = str(info.value)
    assert "duplicate bar for asset 'A' at 2024-01-03: row 2 and row 3" in message
    assert "unique" in message


def test_unsorted_input_is_rejected_with_sort_fix() -> None:
    frame = _bars().sort(["asset", "ts"])
    with pytest.raises(DataError) as info:
        validate_bars(frame)
    message = str(info.value)
    assert "not sorted by (ts, asset)" in message
    assert "asset 'B' at 2024-01-02 (row 3)" in message
    assert ".sort(['ts', 'asset'])" in message


def test_assets_out_of_order_within_one_timestamp() -> None:
    frame = _bars()[[1, 0, 2, 3, 4, 5]]
    with pytest.raises(DataError, match=r"asset 'A' at 2024-01-02 \(row 1\) comes after asset 'B'"):
        validate_bars(frame)


def test_unsorted_with_duplicates_reports_the_duplicate() -> None:
    frame = pl.concat([_bars(), _bars().head(1)])
    with pytest.raises(DataError, match=r"duplicate bar for asset 'A' at 2024-01-02: row 0 and row 6"):
        validate_bars(frame)


def test_missing_close_column_suggests_rename() -> None:
    frame = _bars().rename({"close": "Close"})
    with pytest.raises(DataError, match=r"missing required column\(s\) 'close'.*'Close' -> 'close'"):
        validate_bars(frame)


def test_missing_ts_suggests_date_column() -> None:
    frame = _bars().rename({"ts": "date"})
    with pytest.raises(DataError, match=r"'date' -> 'ts'"):
        validate_bars(frame)


def test_empty_frame() -> None:
    with pytest.raises(DataError, match="empty"):
        validate_bars(_bars().head(0))


def test_null_asset_names_row() -> None:
    assets = ["A", "B", "A", None, "A", "B"]
    with pytest.raises(DataError, match=r"missing 'asset' value at row 3"):
        validate_bars(_bars(asset=assets))


def test_string_timestamps_are_rejected_with_parse_hint() -> None:
    frame = _bars().with_columns(pl.col("ts").dt.strftime("%Y-%m-%d"))
    with pytest.raises(DataError, match=r"'ts' has type String.*str.to_datetime"):
        validate_bars(frame)


def test_text_prices_are_rejected() -> None:
    frame = _bars().with_columns(pl.col("close").cast(pl.String))
    with pytest.raises(DataError, match=r"'close' has type String"):
        validate_bars(frame)


def test_pandas_frame_gets_conversion_hint() -> None:
    frame = pd.DataFrame({"close": [1.0]}, index=pd.DatetimeIndex(["2024-01-02"], name="ts"))
    with pytest.raises(DataError, match=r"pl.from_pandas"):
        validate_bars(frame)  # type: ignore[arg-type]


def test_data_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_bars(_with("close", 0, -1.0))


def test_source_name_leads_the_message() -> None:
    with pytest.raises(DataError, match=r"^my_bars: "):
        validate_bars(_with("close", 0, np.nan), source="my_bars")


def test_time_zone_is_kept() -> None:
    frame = _bars().with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    assert validate_bars(frame).schema["ts"] == pl.Datetime("ns", "UTC")
