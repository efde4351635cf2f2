"""Asset names as kernel keys: string views read in place when every name fits in one
(at most 12 bytes), polars hashes otherwise; both give exactly the checked path's panel."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.data import align_bars, signals_to_matrix
from engine.data._align import (
    AssetKeys,
    _build,
    _check_values,
    _checked_layout,
    _fast_layout,
    asset_keys,
)
from engine.errors import DataError
from engine.kernels.scatter import (
    checked_digest_nb,
    fingerprint_nb,
    full_grid_nb,
    inline_views_nb,
    intern_layout_nb,
)


def _bars(names: list[str], n_bars: int = 30, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2022-03-01", "ns") + np.arange(n_bars) * np.timedelta64(1, "D")
    present = rng.random((n_bars, len(names))) < 0.85
    present[:, 0] = True
    t, j = np.nonzero(present)
    frame = pl.DataFrame({"ts": ts[t], "asset": pl.Series(names).gather(j),
                          "close": 10 + rng.random(t.size)})
    return frame.sort("ts", "asset")


SHORT = ["AAPL", "MSFT", "BRK.B", "exactly12byt"]
LONG = ["AAPL", "a name longer than twelve bytes", "MSFT", "ZZZ"]


@pytest.mark.parametrize(("names", "exact"), [(SHORT, True), (LONG, False)])
def test_keys_are_views_for_short_names_and_hashes_for_long_ones(names, exact) -> None:
    bars = _bars(names)
    keys = asset_keys(bars["asset"])
    assert keys.exact is exact and keys.words.shape == (bars.height, 2)
    assert (asset_keys(bars["asset"], exact_only=True) is None) is not exact
    panel = align_bars(bars, cache=False)
    exact_panel = _build(_checked_layout(bars), None)
    assert panel.assets == exact_panel.assets == tuple(sorted(names))
    np.testing.assert_array_equal(panel.close, exact_panel.close)


@pytest.mark.parametrize("shape", ["sliced", "chunked", "categorical"])
def test_views_of_sliced_chunked_and_categorical_columns(shape: str) -> None:
    bars = _bars(SHORT, n_bars=40, seed=1)
    if shape == "sliced":  # the column starts at an offset into its buffers
        bars = bars.slice(bars.height // 3)
    elif shape == "chunked":
        half = bars.height // 2
        bars = pl.concat([bars.slice(0, half), bars.slice(half)], rechunk=False)
        assert bars["asset"].n_chunks() == 2
    else:
        bars = bars.with_columns(pl.col("asset").cast(pl.Categorical))
    keys = asset_keys(bars["asset"].cast(pl.String))
    assert keys.exact
    codes, first_rows, _, _ = intern_layout_nb(keys.words, np.zeros(bars.height, np.int64))
    names = bars["asset"].cast(pl.String)
    np.testing.assert_array_equal(names.gather(first_rows).gather(codes).to_numpy(),
                                  names.to_numpy())
    panel = align_bars(bars, cache=False)
    exact_panel = _build(_checked_layout(bars), None)
    assert panel.assets == exact_panel.assets
    np.testing.assert_array_equal(panel.close, exact_panel.close)
    np.testing.assert_array_equal(panel.ts, exact_panel.ts)


def test_one_name_under_two_keys_falls_back_to_the_exact_path() -> None:
    bars = pl.DataFrame({"ts": np.array([1, 1, 2, 2], dtype="datetime64[D]"),
                         "asset": ["A", "B", "A", "B"], "close": [1.0, 2.0, 3.0, 4.0]})
    frame = bars.with_columns(pl.col("ts").cast(pl.Datetime("ns")))
    words = np.array([[1, 0], [2, 0], [3, 0], [2, 0]], np.uint64)  # "A" twice, two keys
    values = _check_values(frame)
    assert _fast_layout(frame, AssetKeys(words, True, 0), values.ts_ns) is None
    good = np.array([[1, 0], [2, 0], [1, 0], [2, 0]], np.uint64)
    layout = _fast_layout(frame, AssetKeys(good, True, 0), values.ts_ns)
    assert layout is not None and layout.assets == ("A", "B")


def test_signals_with_long_names_take_the_hashed_path() -> None:
    bars = _bars(LONG, n_bars=10, seed=2)
    panel = align_bars(bars, cache=False)
    rows = bars.filter(pl.col("ts") == bars["ts"].max()).with_columns(
        score=pl.int_range(pl.len()).cast(pl.Float64))
    got = signals_to_matrix(rows.select("ts", "asset", "score"), panel, "score")
    for asset, score in rows.select("asset", "score").iter_rows():
        assert got[-1, panel.assets.index(asset)] == score
    assert np.isnan(got[:-1]).all()


def test_inline_check_and_digests() -> None:
    short = asset_keys(pl.Series(["ab", "abcdefghijkl"]))
    assert short.exact
    long = pl.Series(["ab", "abcdefghijklm"]).to_arrow(compat_level=pl.CompatLevel.newest())
    words = np.frombuffer(long.buffers()[1], np.uint64, count=4)
    inline, digest = inline_views_nb(words, np.uint64(1))
    assert not inline and digest == fingerprint_nb(words, np.uint64(1))
    assert short.digest == fingerprint_nb(short.words.reshape(-1), np.uint64(1))
    for values, allow_zero, ok in (([1.0, 2.0], False, True), ([1.0, 0.0], False, False),
                                   ([1.0, 0.0], True, True), ([1.0, np.nan], True, False),
                                   ([np.inf, 1.0], True, False), ([-1.0, 1.0], True, False)):
        array = np.array(values)
        got_ok, got = checked_digest_nb(array, array.view(np.uint64), np.uint64(3), allow_zero)
        assert got_ok is ok and got == fingerprint_nb(array.view(np.uint64), np.uint64(3))


def test_interning_lays_out_many_bars_and_names() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**63, (3000, 2)).astype(np.uint64)[rng.integers(0, 3000, 20_000)]
    ts = np.sort(rng.integers(0, 5000, keys.shape[0]))
    codes, first_rows, starts, bad_row = intern_layout_nb(keys, ts)
    np.testing.assert_array_equal(keys[first_rows][codes], keys)
    expected_bad = [i for i in range(1, ts.size) if ts[i] == ts[i - 1]
                    and codes[i] <= codes[i - 1]]
    assert expected_bad and bad_row == expected_bad[0]
    new_bar = np.flatnonzero(np.r_[True, np.diff(ts) > 0])
    np.testing.assert_array_equal(starts, new_bar[new_bar < bad_row])  # laid out up to it
    ok_ts = np.arange(keys.shape[0])  # one row a bar: nothing out of order
    codes2, _, starts2, bad2 = intern_layout_nb(keys, ok_ts)
    np.testing.assert_array_equal(codes2, codes)
    np.testing.assert_array_equal(starts2, ok_ts)
    assert bad2 == -1


def test_full_grid_needs_every_block_equal_to_the_first() -> None:
    keys = np.tile(np.array([[1, 9], [2, 9], [3, 9]], np.uint64), (4, 1))
    ts = np.repeat(np.arange(4) * 10, 3)
    assert full_grid_nb(keys, ts) == 3
    other = keys.copy()
    other[7, 1] = 8  # one row's name differs from its first-block counterpart
    flat = ts.copy()
    flat[6:9] = ts[3]  # a block no later than the one before
    step = ts.copy()
    step[10] += 1  # a timestamp change inside a block
    for k, t in ((other, ts), (keys, flat), (keys, step), (keys[:-1], ts[:-1])):
        assert full_grid_nb(k, t) == -1
    assert full_grid_nb(keys[:1], ts[:1]) == 1


def test_a_full_panel_takes_the_grid_path_and_a_swapped_first_bar_does_not() -> None:
    names = ["AAA", "BBB", "CCC"]
    ts = np.repeat(np.datetime64("2024-01-01", "ns") + np.arange(5) * np.timedelta64(1, "D"), 3)
    bars = pl.DataFrame({"ts": ts, "asset": names * 5, "close": np.arange(1.0, 16.0)})
    frame = bars.with_columns(pl.col("asset").cast(pl.String))
    keys = asset_keys(frame["asset"])
    layout = _fast_layout(frame, keys, _check_values(frame).ts_ns)
    assert layout is not None and layout.codes is None and layout.assets == tuple(names)
    np.testing.assert_array_equal(align_bars(bars, cache=False).close,
                                  np.arange(1.0, 16.0).reshape(5, 3))
    swapped = pl.concat([bars.slice(1, 1), bars.slice(0, 1), bars.slice(2)])
    with pytest.raises(DataError, match="not sorted"):
        align_bars(swapped, cache=False)


def test_weekend_share_of_a_sorted_naive_calendar_matches_polars_weekdays() -> None:
    from engine.data._calendar import _weekend_share

    start = np.datetime64("1965-03-01T07:00", "ns")  # before 1970: negative nanoseconds
    ts = pl.Series(start + np.cumsum(np.r_[0, np.random.default_rng(4).integers(1, 3, 400)])
                   * np.timedelta64(1, "D"))
    ns = ts.to_physical().to_numpy()
    assert _weekend_share(ts, ns) == float((ts.dt.weekday() >= 6).mean())
