from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from analysts import FileAnalyst, get_analyst, read_signals_file
from engine.data import align_bars, signals_to_matrix
from engine.errors import ConfigError, DataError
from tests.analysts.conftest import make_bars

BARS = make_bars({"A": [10, 11, 12, 13], "B": [20, 21, 22, 23]})  # 2024-01-01 .. 04


def _signals() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [datetime(2024, 1, d) for d in (1, 1, 2, 3, 3)],
            "asset": ["A", "B", "A", "A", "B"],
            "prob_up": [0.6, 0.4, 0.55, 0.2, 0.9],
            "score": [1.0, -1.0, 0.5, -2.0, 3.0],
        }
    )


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_round_trip(tmp_path, suffix):
    path = tmp_path / f"signals.{suffix}"
    getattr(_signals(), f"write_{suffix}")(path)
    out = FileAnalyst(path=str(path)).fit(BARS).predict(BARS)
    expected = _signals().sort("ts", "asset")
    assert out.columns == ["ts", "asset", "prob_up", "score"]
    assert out["ts"].to_list() == expected["ts"].to_list()
    assert out.drop("ts").equals(expected.drop("ts"))
    # the output feeds the engine's converter as it is
    matrix = signals_to_matrix(out, align_bars(BARS), "prob_up")
    np.testing.assert_array_equal(
        matrix, [[0.6, 0.4], [0.55, np.nan], [0.2, 0.9], [np.nan, np.nan]]
    )


def test_columns_window_and_unsorted_file(tmp_path):
    path = tmp_path / "s.parquet"
    _signals().reverse().write_parquet(path)
    out = FileAnalyst(path=str(path), columns=("score",)).predict(
        BARS, start="2024-01-02", end="2024-01-03"
    )
    assert out.columns == ["ts", "asset", "score"]
    assert out.rows() == [
        (datetime(2024, 1, 2), "A", 0.5),
        (datetime(2024, 1, 3), "A", -2.0),
        (datetime(2024, 1, 3), "B", 3.0),
    ]


def _with_extra(tmp_path, ts: list[datetime], assets: list[str]) -> str:
    extra = pl.DataFrame({"ts": ts, "asset": assets, "prob_up": [0.5] * len(ts),
                          "score": [0.0] * len(ts)})
    path = tmp_path / "s.parquet"
    pl.concat([_signals(), extra]).write_parquet(path)
    return str(path)


def test_a_row_for_an_asset_the_bars_lack_is_an_error_naming_it(tmp_path):
    path = _with_extra(tmp_path, [datetime(2024, 1, 2)], ["AA"])
    with pytest.raises(DataError, match=r"s\.parquet': row 5 is for asset 'AA', which the "
                       r"data does not have \(did you mean 'A'\?\).*ignore_unknown_assets"):
        FileAnalyst(path=path).predict(BARS)


def test_ignore_unknown_assets_drops_them_with_a_warning(tmp_path):
    path = _with_extra(tmp_path, [datetime(2024, 1, 2)], ["ZZZ"])
    with pytest.warns(UserWarning, match=r"dropped 1 rows for 1 asset\(s\).*'ZZZ'"):
        out = FileAnalyst(path=path, ignore_unknown_assets=True).predict(BARS)
    assert out.height == 5 and set(out["asset"]) == {"A", "B"}


def test_a_row_after_the_last_bar_is_an_error_unless_past_the_end_asked_for(tmp_path):
    path = _with_extra(tmp_path, [datetime(2024, 1, 9)], ["A"])
    with pytest.raises(DataError, match=r"row 5 \(asset 'A', ts 2024-01-09 00:00:00\) is "
                       r"dated after the last bar"):
        FileAnalyst(path=path).predict(BARS)
    out = FileAnalyst(path=path).predict(BARS, end=BARS["ts"].max())
    assert out.height == 5 and out["ts"].max() <= BARS["ts"].max()
    with pytest.raises(DataError, match=r"row 5 \(asset 'A', ts 2024-01-09 00:00:00\)"):
        FileAnalyst(path=path).check_no_rows_after(BARS)
    FileAnalyst(path=path).check_no_rows_after(make_bars({"A": [1.0] * 9}))  # bars to the 9th


def test_time_zones_are_aligned_with_the_bars(tmp_path):
    path = tmp_path / "s.parquet"
    # 2024-01-02 05:00 in Tokyo is 2024-01-01 20:00 UTC
    aware = pl.DataFrame(
        {"ts": [datetime(2024, 1, 2, 5)], "asset": ["A"], "score": [1.0]}
    ).with_columns(pl.col("ts").dt.replace_time_zone("Asia/Tokyo"))
    aware.write_parquet(path)
    out = FileAnalyst(path=str(path)).predict(BARS)
    assert out["ts"].dtype == BARS["ts"].dtype
    assert out["ts"].to_list() == [datetime(2024, 1, 1, 20)]
    utc_bars = BARS.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    assert FileAnalyst(path=str(path)).predict(utc_bars)["ts"].dtype == pl.Datetime("us", "UTC")


def _write_csv(tmp_path, text: str):
    path = tmp_path / "s.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ts,ticker,score\n2024-01-01,A,1\n", r"lacks column\(s\) \['asset'\]"),
        ("tss,asset,score\n2024-01-01,A,1\n", r"\['ts'\] \(did you mean 'tss'\?\)"),
        ("ts,asset\n2024-01-01,A\n", "no signal column"),
        ("ts,asset,score\n2024-01-01,A,1\n2024-01-02,B,\n", r"score is nan at row 1 \(asset 'B'"),
        ("ts,asset,prob_up\n2024-01-01,A,0.5\n2024-01-02,A,1.5\n", r"prob_up must be in \[0, 1\], got 1.5 at row 1"),
        ("ts,asset,uncertainty\n2024-01-01,A,-0.1\n", "uncertainty must be >= 0"),
        ("ts,asset,score\n2024-01-01,A,1\n2024-01-01,A,2\n", "more than one row for row 0 \\(asset 'A'"),
        ("ts,asset,score\n2024-01-01,A,1\nlast tuesday,A,2\n", "row 1 has ts 'last tuesday'"),
        ("ts,asset,score\n2024-01-01,A,up\n", "'score' has type String"),
        ("ts,asset,score\n2024-01-01,,1\n", "row 0 has an empty ts or asset"),
    ],
)
def test_bad_files_are_data_errors_naming_the_problem(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_signals_file(_write_csv(tmp_path, text))


def test_file_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        FileAnalyst(path=str(tmp_path / "missing.parquet")).fit(BARS)
    wrong = tmp_path / "s.json"
    wrong.write_text("{}")
    with pytest.raises(ConfigError, match="suffix '.json'"):
        FileAnalyst(path=str(wrong)).predict(BARS)
    path = tmp_path / "s.parquet"
    _signals().write_parquet(path)
    with pytest.raises(ConfigError, match=r"\['prob'\] are not in .* \(did you mean 'prob_up'\?\)"):
        FileAnalyst(path=str(path), columns=("prob",)).predict(BARS)
    with pytest.raises(ConfigError, match="path is required"):
        get_analyst("file")
    with pytest.raises(ConfigError, match="'colums'"):
        get_analyst("file", path=str(path), colums=("score",))


def test_corrupt_parquet_and_foreign_assets(tmp_path):
    corrupt = tmp_path / "bad.parquet"
    corrupt.write_bytes(b"not a parquet file")
    with pytest.raises(DataError, match="cannot read"):
        FileAnalyst(path=str(corrupt)).predict(BARS)
    path = tmp_path / "s.parquet"
    _signals().with_columns(pl.lit("AA").alias("asset")).unique(["ts"]).write_parquet(path)
    with pytest.raises(DataError, match=r"no row for the bars' assets \['A', 'B'\]"):
        FileAnalyst(path=str(path)).predict(BARS)


def test_a_ts_column_of_garbage_names_the_row(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("ts,asset,score\n" + "x" * 5000 + ",A,1.0\n")
    with pytest.raises(DataError, match=r"row 0 has ts 'xxx.*\(5,002 characters\), which is "
                       r"not a date"):
        read_signals_file(path)
