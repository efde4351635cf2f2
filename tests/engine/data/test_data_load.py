"""load_bars on directories and files: column spellings, dates, broken files, filters."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import polars as pl
import pytest

from engine.data import DataWarning, load_bars
from engine.errors import ConfigError, DataError


def _write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


@pytest.fixture
def mixed_dir(tmp_path: Path) -> Path:
    """Three assets, three spellings, two formats; BBB's rows are out of order."""
    _write(
        tmp_path / "AAA.csv",
        """
Date,Open,High,Low,Close,Volume
2024-01-02,10,11,9,10.5,100
2024-01-03,10.5,12,10,11.5,200
2024-01-05,11.5,12,11,11.8,300
""",
    )
    _write(
        tmp_path / "BBB.csv",
        """
timestamp,open,high,low,close,volume
2024-01-04 00:00:00,21,22,20,21.5,50
2024-01-02 00:00:00,20,21,19,20.5,40
""",
    )
    pl.DataFrame(
        {
            "Datetime": [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 4)],
            "OPEN": [5.0, 5.5],
            "HIGH": [6.0, 6.0],
            "LOW": [4.0, 5.0],
            "CLOSE": [5.5, 5.8],
            "VOLUME": [7, 8],
        }
    ).write_parquet(tmp_path / "CCC.parquet")
    _write(tmp_path / "README.md", "not data")
    return tmp_path


def test_directory_with_mixed_spellings(mixed_dir: Path) -> None:
    bars = load_bars(mixed_dir)
    assert bars.columns == ["ts", "asset", "open", "high", "low", "close", "volume"]
    assert bars.schema["ts"] == pl.Datetime("ns")
    expected = [
        (dt.datetime(2024, 1, 2), "AAA", 10.5, 100.0),
        (dt.datetime(2024, 1, 2), "BBB", 20.5, 40.0),
        (dt.datetime(2024, 1, 3), "AAA", 11.5, 200.0),
        (dt.datetime(2024, 1, 3), "CCC", 5.5, 7.0),
        (dt.datetime(2024, 1, 4), "BBB", 21.5, 50.0),
        (dt.datetime(2024, 1, 4), "CCC", 5.8, 8.0),
        (dt.datetime(2024, 1, 5), "AAA", 11.8, 300.0),
    ]
    assert bars.select("ts", "asset", "close", "volume").rows() == expected


def test_asset_filter_and_inclusive_dates(mixed_dir: Path) -> None:
    bars = load_bars(mixed_dir, assets=["AAA", "CCC"], start="2024-01-03", end="2024-01-04")
    assert bars.select("ts", "asset").rows() == [
        (dt.datetime(2024, 1, 3), "AAA"),
        (dt.datetime(2024, 1, 3), "CCC"),
        (dt.datetime(2024, 1, 4), "CCC"),
    ]


def test_unknown_asset_gets_did_you_mean(mixed_dir: Path) -> None:
    with pytest.raises(DataError, match=r"'AAB' not in the data.*Did you mean 'AAA'"):
        load_bars(mixed_dir, assets=["AAA", "AAB"])


def test_window_without_bars_is_an_empty_universe(mixed_dir: Path) -> None:
    with pytest.raises(DataError, match=r"no bars between.*spans 2024-01-02 to 2024-01-05"):
        load_bars(mixed_dir, start="2025-01-01")


def test_start_after_end(mixed_dir: Path) -> None:
    with pytest.raises(ConfigError, match="after end"):
        load_bars(mixed_dir, start="2024-01-05", end="2024-01-02")


def test_bad_date_argument(mixed_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"start='Jan 3' is not a date"):
        load_bars(mixed_dir, start="Jan 3")


def test_columns_missing_in_some_files_are_dropped_with_warning(tmp_path: Path) -> None:
    _write(tmp_path / "AAA.csv", "Date,Open,Close\n2024-01-02,1,1.5\n2024-01-03,1.5,2")
    _write(tmp_path / "BBB.csv", "Date,Close\n2024-01-02,3\n2024-01-03,4")
    with pytest.warns(DataWarning, match=r"dropping column\(s\) 'open'.*missing in 'BBB.csv'"):
        bars = load_bars(tmp_path)
    assert bars.columns == ["ts", "asset", "close"]
    assert bars["close"].to_list() == [1.5, 3.0, 2.0, 4.0]


def test_adjusted_close_kept_apart_when_ohlc_present(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "SPY.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,100,102,99,101,95.5,10\n"
        "2024-01-03,101,103,100,102,96.4,11",
    )
    bars = load_bars(path)
    assert bars.columns == ["ts", "asset", "open", "high", "low", "close", "adj_close", "volume"]
    assert bars["close"].to_list() == [101.0, 102.0]
    assert bars["adj_close"].to_list() == [95.5, 96.4]
    assert bars["asset"].unique().to_list() == ["SPY"]


def test_adjusted_close_becomes_close_without_ohlc(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "SPY.csv",
        "date,close,adj_close\n2024-01-02,101,95.5\n2024-01-03,102,96.4",
    )
    bars = load_bars(path)
    assert bars.columns == ["ts", "asset", "close"]
    assert bars["close"].to_list() == [95.5, 96.4]


def test_adjusted_close_with_ohlc_but_no_raw_close_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "SPY.csv", "Date,Open,High,Low,Adj Close\n2024-01-02,100,102,99,95")
    with pytest.raises(DataError, match=r"no raw close.*mix two price scales"):
        load_bars(path)


def test_long_file_with_symbol_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "universe.csv",
        "Symbol,Date,Close\nMSFT,2024-01-03,2\nAAPL,2024-01-03,1\nMSFT,2024-01-02,3",
    )
    bars = load_bars(path)
    assert bars.select("ts", "asset", "close").rows() == [
        (dt.datetime(2024, 1, 2), "MSFT", 3.0),
        (dt.datetime(2024, 1, 3), "AAPL", 1.0),
        (dt.datetime(2024, 1, 3), "MSFT", 2.0),
    ]


def test_gzipped_csv_and_unnamed_index_column(tmp_path: Path) -> None:
    # pandas' to_csv of a frame with an unnamed DatetimeIndex, as backtesting.py ships them.
    text = ",Open,High,Low,Close,Volume\n2024-01-02 09:00:00,1,2,0.5,1.5,10\n"
    (tmp_path / "EURUSD.csv.gz").write_bytes(gzip.compress(text.encode()))
    bars = load_bars(tmp_path / "EURUSD.csv.gz")
    assert bars.rows() == [(dt.datetime(2024, 1, 2, 9), "EURUSD", 1.0, 2.0, 0.5, 1.5, 10.0)]


def test_month_first_slash_dates_are_recognised(tmp_path: Path) -> None:
    path = _write(tmp_path / "X.csv", "Date,Close\n01/12/2024,1\n01/13/2024,2")
    assert load_bars(path)["ts"].to_list() == [dt.datetime(2024, 1, 12), dt.datetime(2024, 1, 13)]


def test_day_first_slash_dates_are_recognised(tmp_path: Path) -> None:
    path = _write(tmp_path / "X.csv", "Date,Close\n12/01/2024,1\n13/01/2024,2")
    assert load_bars(path)["ts"].to_list() == [dt.datetime(2024, 1, 12), dt.datetime(2024, 1, 13)]


def test_ambiguous_slash_dates_are_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "X.csv", "Date,Close\n01/02/2024,1\n01/03/2024,2")
    with pytest.raises(DataError, match=r"month-first and day-first.*ISO"):
        load_bars(path)


def test_unparseable_timestamp_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "X.csv", "Date,Close\n2024-01-02,1\n2024-01-03,2\nyesterday,3")
    with pytest.raises(DataError, match=r"'yesterday' at line 4 of X.csv"):
        load_bars(path)


def test_bad_price_names_file_and_line(mixed_dir: Path) -> None:
    _write(
        mixed_dir / "BBB.csv",
        "timestamp,open,high,low,close,volume\n"
        "2024-01-04,21,22,20,21.5,50\n2024-01-02,20,21,19,0,40",
    )
    with pytest.raises(DataError) as info:
        load_bars(mixed_dir)
    message = str(info.value)
    assert "BBB.csv" in message
    assert "asset 'BBB' at 2024-01-02 (line 3 of BBB.csv): close is zero" in message


def test_text_in_price_column_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "X.csv", "Date,Close\n2024-01-02,1\n2024-01-03,1,5")
    with pytest.raises(DataError, match=r"X.csv"):
        load_bars(path)
    path = _write(tmp_path / "Y.csv", 'Date,Close\n2024-01-02,1\n2024-01-03,"1,5"')
    with pytest.raises(DataError, match=r"not a number: '1,5' at line 3 of Y.csv"):
        load_bars(path)


def test_missing_value_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "X.csv", "Date,Close\n2024-01-02,1\n2024-01-03,\n2024-01-04,2")
    with pytest.raises(DataError, match=r"\(line 3 of X.csv\): close is a missing \(null\) value"):
        load_bars(path)


def test_broken_file_raises_naming_it(mixed_dir: Path) -> None:
    (mixed_dir / "DDD.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"DDD.parquet cannot be read.*skip_bad_files=True"):
        load_bars(mixed_dir)


def test_skip_bad_files_warns_and_loads_the_rest(mixed_dir: Path) -> None:
    (mixed_dir / "DDD.parquet").write_bytes(b"this is not parquet")
    _write(mixed_dir / "EEE.csv", "Date,Close\n2024-01-02,-1")
    with pytest.warns(DataWarning) as caught:
        bars = load_bars(mixed_dir, skip_bad_files=True)
    messages = " ".join(str(w.message) for w in caught)
    assert "DDD.parquet" in messages
    assert "EEE.csv" in messages
    assert sorted(bars["asset"].unique().to_list()) == ["AAA", "BBB", "CCC"]


def test_all_files_bad_is_an_empty_universe(tmp_path: Path) -> None:
    (tmp_path / "A.parquet").write_bytes(b"junk")
    with pytest.warns(DataWarning), pytest.raises(DataError, match="empty universe"):
        load_bars(tmp_path, skip_bad_files=True)


def test_empty_csv_is_a_bad_file(tmp_path: Path) -> None:
    _write(tmp_path / "A.csv", "Date,Close")
    with pytest.raises(DataError, match=r"A.csv has no rows"):
        load_bars(tmp_path)


def test_mixed_time_zones_across_files(tmp_path: Path) -> None:
    _write(tmp_path / "AAA.csv", "ts,close\n2024-01-02T00:00:00Z,1\n2024-01-03T00:00:00Z,2")
    _write(tmp_path / "BBB.csv", "ts,close\n2024-01-02 00:00:00,1\n2024-01-03 00:00:00,2")
    with pytest.raises(DataError) as info:
        load_bars(tmp_path)
    message = str(info.value)
    assert "different time zones" in message
    assert "UTC: 'AAA.csv'" in message
    assert "no time zone: 'BBB.csv'" in message


def test_utc_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    path = _write(tmp_path / "A.csv", "ts,close\n2024-01-02T10:00:00+01:00,1")
    bars = load_bars(path)
    assert bars.schema["ts"] == pl.Datetime("ns", "UTC")
    assert bars["ts"].dt.replace_time_zone(None).to_list() == [dt.datetime(2024, 1, 2, 9)]


def test_same_bar_in_two_files_names_both(mixed_dir: Path) -> None:
    _write(mixed_dir / "AAA.parquet.csv", "Date,Open,High,Low,Close,Volume,Ticker\n"
           "2024-01-03,1,1,1,1,1,AAA")
    with pytest.raises(DataError) as info:
        load_bars(mixed_dir)
    message = str(info.value)
    assert "duplicate bar for asset 'AAA' at 2024-01-03" in message
    assert "line 3 of AAA.csv" in message
    assert "line 2 of AAA.parquet.csv" in message


def test_duplicate_rows_in_one_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "A.csv", "Date,Close\n2024-01-02,1\n2024-01-03,2\n2024-01-02,3")
    with pytest.raises(DataError, match=r"duplicate bar for asset 'A' at 2024-01-02: line 2 of A.csv and line 4"):
        load_bars(path)


def test_two_columns_meaning_ts(tmp_path: Path) -> None:
    path = _write(tmp_path / "A.csv", "Date,Time,Close\n2024-01-02,09:30,1")
    with pytest.raises(DataError, match=r"'Date', 'Time' all mean 'ts'"):
        load_bars(path)


def test_missing_close_column_in_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "A.csv", "Date,Price\n2024-01-02,1")
    with pytest.raises(DataError, match=r"A.csv: no close column; found columns 'Date', 'Price'"):
        load_bars(path)


def test_directory_without_bar_files(tmp_path: Path) -> None:
    _write(tmp_path / "notes.txt", "hello")
    with pytest.raises(DataError, match=r"no bar files.*'notes.txt'"):
        load_bars(tmp_path)


def test_unknown_source_lists_bundled_and_suggests() -> None:
    with pytest.raises(DataError) as info:
        load_bars("sp500_stock")
    message = str(info.value)
    assert "neither a bundled dataset nor an existing file" in message
    assert "nasdaq_ohlcv" in message
    assert "Did you mean 'sp500_stocks'" in message


def test_intraday_end_date_keeps_the_whole_day(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "FX.csv",
        "ts,close\n2024-01-02 09:00,1\n2024-01-02 23:00,2\n2024-01-03 00:00,3",
    )
    bars = load_bars(path, end="2024-01-02")
    assert bars["close"].to_list() == [1.0, 2.0]
    bars = load_bars(path, end=dt.datetime(2024, 1, 2, 9))
    assert bars["close"].to_list() == [1.0]


def test_naive_bounds_on_zoned_data_use_the_data_zone(tmp_path: Path) -> None:
    path = _write(tmp_path / "A.csv", "ts,close\n2024-01-02T10:00:00Z,1\n2024-01-03T10:00:00Z,2")
    assert load_bars(path, start="2024-01-03")["close"].to_list() == [2.0]
    plus_two = dt.timezone(dt.timedelta(hours=2))
    # 13:00+02:00 is 11:00 UTC, after the first bar; 11:00+02:00 is 09:00 UTC, before it.
    assert load_bars(path, end=dt.datetime(2024, 1, 2, 13, tzinfo=plus_two))["close"].to_list() == [1.0]
    with pytest.raises(DataError, match="no bars between"):
        load_bars(path, end=dt.datetime(2024, 1, 2, 11, tzinfo=plus_two))
