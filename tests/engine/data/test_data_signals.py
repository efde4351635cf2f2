"""signals_to_matrix: as-of placement (first bar at or after the signal), strict checks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.data import align_bars, signals_to_matrix
from engine.errors import DataError
from engine.panel import Panel


def _d(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour)


@pytest.fixture
def panel() -> Panel:
    # Bars on Jan 2, 3, 5 (no bar on Jan 4) for AAPL and MSFT.
    days = [_d(2), _d(2), _d(3), _d(3), _d(5), _d(5)]
    bars = pl.DataFrame({"ts": days, "asset": ["AAPL", "MSFT"] * 3, "close": [1.0] * 6})
    return align_bars(bars)


def _signals(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["ts", "asset", "score"], orient="row")


def test_as_of_mapping_never_earlier(panel: Panel) -> None:
    frame = _signals(
        [
            (_d(1), "AAPL", 0.1),  # before the first bar -> bar 0 (Jan 2)
            (_d(2), "MSFT", 0.2),  # exactly on a bar -> that bar
            (_d(3, 12), "AAPL", 0.3),  # intraday Jan 3 -> next bar, Jan 5
            (_d(4), "MSFT", 0.4),  # no bar on Jan 4 -> Jan 5
        ]
    )
    nan = np.nan
    expected = [[0.1, 0.2], [nan, nan], [0.3, 0.4]]
    np.testing.assert_array_equal(signals_to_matrix(frame, panel, "score"), expected)


def test_latest_signal_wins_when_two_land_on_one_bar(panel: Panel) -> None:
    frame = _signals([(_d(4, 12), "AAPL", 2.0), (_d(3, 1), "AAPL", 1.0), (_d(4), "AAPL", 1.5)])
    matrix = signals_to_matrix(frame, panel, "score")
    assert matrix[2, 0] == 2.0
    assert np.isnan(matrix[:2]).all()


def test_matches_slow_reference_on_random_signals() -> None:
    rng = np.random.default_rng(11)
    days = np.sort(rng.choice(np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-03-01")), 30, replace=False))
    assets = ["A", "B", "C"]
    bars = pl.DataFrame({"ts": np.repeat(days, 3).astype("datetime64[ns]"), "asset": assets * 30,
                         "close": np.ones(90)})
    panel = align_bars(bars)
    stamps = np.arange(np.datetime64("2023-12-20T00"), panel.ts[-1].astype("datetime64[h]") + 1, 7)
    stamps = stamps.astype("datetime64[ns]")
    pairs = [(i, a) for i in range(len(stamps)) for a in assets if rng.random() < 0.3]
    frame = pl.DataFrame(
        {
            "ts": stamps[[i for i, _ in pairs]],
            "asset": [a for _, a in pairs],
            "score": rng.normal(size=len(pairs)),
        }
    ).sample(fraction=1.0, shuffle=True, seed=1)
    assert frame.height > 50
    got = signals_to_matrix(frame, panel, "score")
    expected = np.full((panel.n_bars, 3), np.nan)
    latest = np.full((panel.n_bars, 3), np.datetime64("NaT", "ns"))
    for row in frame.iter_rows(named=True):
        ts = np.datetime64(row["ts"], "ns")
        bar = next(i for i, b in enumerate(panel.ts) if b >= ts)
        j = assets.index(row["asset"])
        if np.isnat(latest[bar, j]) or ts > latest[bar, j]:
            latest[bar, j], expected[bar, j] = ts, row["score"]
    np.testing.assert_array_equal(got, expected)


def test_booleans_become_ones_and_zeros(panel: Panel) -> None:
    frame = pl.DataFrame({"ts": [_d(2), _d(3)], "asset": ["AAPL", "MSFT"], "long_entry": [True, False]})
    matrix = signals_to_matrix(frame, panel, "long_entry")
    assert matrix[0, 0] == 1.0
    assert matrix[1, 1] == 0.0


def test_unknown_asset_is_listed_with_suggestion(panel: Panel) -> None:
    frame = _signals([(_d(2), "APPL", 1.0), (_d(2), "MSFT", 1.0)])
    with pytest.raises(DataError, match=r"asset\(s\) 'APPL' are not in the bars.*Did you mean 'AAPL'"):
        signals_to_matrix(frame, panel, "score")


def test_rows_after_the_last_bar_are_named(panel: Panel) -> None:
    frame = _signals([(_d(2), "AAPL", 1.0), (_d(5, 1), "MSFT", 1.0), (_d(6), "AAPL", 1.0)])
    with pytest.raises(DataError, match=r"row 1 \(asset 'MSFT', ts 2024-01-05 01:00:00\) is dated after the last bar 2024-01-05.*2 such rows"):
        signals_to_matrix(frame, panel, "score")


def test_duplicates_are_rejected(panel: Panel) -> None:
    frame = _signals([(_d(2), "AAPL", 1.0), (_d(3), "MSFT", 1.0), (_d(2), "AAPL", 2.0)])
    with pytest.raises(DataError, match=r"duplicate rows for asset 'AAPL' at 2024-01-02: rows 0, 2"):
        signals_to_matrix(frame, panel, "score")


@pytest.mark.parametrize("value", [float("nan"), None])
def test_nan_and_null_rejected_unless_allowed(panel: Panel, value: float | None) -> None:
    frame = _signals([(_d(2), "AAPL", 1.0), (_d(3), "MSFT", value)])
    with pytest.raises(DataError, match=r"'score' is .* at row 1 \(asset 'MSFT', ts 2024-01-03.*allow_nan=True"):
        signals_to_matrix(frame, panel, "score")
    matrix = signals_to_matrix(frame, panel, "score", allow_nan=True)
    assert matrix[0, 0] == 1.0
    assert np.isnan(matrix[1, 1])


def test_inf_rejected_even_when_nan_allowed(panel: Panel) -> None:
    frame = _signals([(_d(2), "AAPL", float("inf"))])
    with pytest.raises(DataError, match=r"'score' is inf at row 0"):
        signals_to_matrix(frame, panel, "score", allow_nan=True)


def test_missing_column_suggests(panel: Panel) -> None:
    frame = _signals([(_d(2), "AAPL", 1.0)])
    with pytest.raises(DataError, match=r"missing column\(s\) 'scores'.*Did you mean 'score'"):
        signals_to_matrix(frame, panel, "scores")


def test_text_values_rejected(panel: Panel) -> None:
    frame = pl.DataFrame({"ts": [_d(2)], "asset": ["AAPL"], "score": ["high"]})
    with pytest.raises(DataError, match=r"'score' has type String"):
        signals_to_matrix(frame, panel, "score")


def test_empty_frame_gives_all_nan(panel: Panel) -> None:
    frame = _signals([(_d(2), "AAPL", 1.0)]).head(0)
    assert np.isnan(signals_to_matrix(frame, panel, "score")).all()


def test_source_names_the_origin(panel: Panel) -> None:
    frame = _signals([(_d(2), "ZZZ", 1.0)])
    with pytest.raises(DataError, match=r"^analyst lstm: "):
        signals_to_matrix(frame, panel, "score", source="analyst lstm")


def test_zoned_signals_compare_as_utc() -> None:
    bars = pl.DataFrame({"ts": [_d(2, 14), _d(3, 14)], "asset": ["A", "A"], "close": [1.0, 2.0]})
    panel = align_bars(bars.with_columns(pl.col("ts").dt.replace_time_zone("UTC")))
    # 10:00 New York = 15:00 UTC, after the 14:00 UTC bar of Jan 2 -> lands on Jan 3.
    frame = pl.DataFrame({"ts": [_d(2, 10)], "asset": ["A"], "score": [1.0]}).with_columns(
        pl.col("ts").dt.replace_time_zone("America/New_York")
    )
    matrix = signals_to_matrix(frame, panel, "score")
    assert np.isnan(matrix[0, 0])
    assert matrix[1, 0] == 1.0
