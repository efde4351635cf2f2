"""The frame API's fast paths give exactly what the exact (slow) paths give, and the
panel cache never serves a stale panel."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine.data._align as align_module
from engine.data import align_bars, signals_to_matrix
from engine.data._align import _build, _checked_layout
from engine.errors import DataError
from engine.kernels.scatter import intern_layout_nb, lookup_keys_nb, place_asof_nb


def _random_bars(seed: int, n_bars: int = 60, n_assets: int = 7, *, ohlcv: bool = True,
                 tz: str | None = None, full: bool = False) -> pl.DataFrame:
    """Gappy bars: assets list and delist, names not in listing order (``full``: no gap)."""
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2021-01-04", "ns") + np.arange(n_bars) * np.timedelta64(1, "D")
    names = [f"Z{j}" if j % 2 else f"A{j}" for j in range(n_assets)]
    present = (rng.random((n_bars, n_assets)) < 0.8) | full
    present[:, 0] = True
    t, j = np.nonzero(present)
    close = 50 + rng.random(t.size) * 10
    frame = pl.DataFrame({"ts": ts[t], "asset": np.array(names)[j], "close": close})
    if ohlcv:
        frame = frame.with_columns(open=pl.col("close") * 0.99, high=pl.col("close") * 1.02,
                                   low=pl.col("close") * 0.97,
                                   volume=pl.Series(rng.integers(0, 1000, t.size) * 1.0))
    if tz:
        frame = frame.with_columns(pl.col("ts").dt.replace_time_zone(tz))
    return frame.sort("ts", "asset")


def _assert_same_panel(a, b) -> None:
    assert a.assets == b.assets and a.has_open == b.has_open
    assert a.periods_per_year == b.periods_per_year
    np.testing.assert_array_equal(a.ts, b.ts)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ohlcv", [True, False])
@pytest.mark.parametrize("full", [True, False])  # one pass, or names seen out of order
def test_fast_alignment_equals_the_checked_path(seed: int, ohlcv: bool, full: bool) -> None:
    bars = _random_bars(seed, ohlcv=ohlcv, tz="America/New_York" if seed == 2 else None,
                        full=full)
    fast = align_bars(bars, cache=False)
    exact = _build(_checked_layout(bars), None)
    _assert_same_panel(fast, exact)
    # wide pivot as an independent reference for the close matrix
    wide = bars.pivot(on="asset", index="ts", values="close", sort_columns=True).sort("ts")
    np.testing.assert_array_equal(fast.close, wide.select(fast.assets).to_numpy())


@pytest.mark.parametrize("full", [True, False])
def test_fast_path_rejects_what_validation_rejects(full: bool) -> None:
    bars = _random_bars(3, full=full)
    swapped = pl.concat([bars.slice(1, 1), bars.slice(0, 1), bars.slice(2)])
    duplicated = pl.concat([bars.slice(0, 1), bars])
    for bad in (swapped, duplicated, bars.with_columns(pl.col("close").shift(1))):
        with pytest.raises(DataError) as fast:
            align_bars(bad)
        with pytest.raises(DataError) as exact:
            _checked_layout(bad)
        assert str(fast.value) == str(exact.value)


def test_interning_many_names_matches_unique() -> None:
    rng = np.random.default_rng(5)
    hashes = rng.integers(-(2**62), 2**62, 5000)[rng.integers(0, 5000, 50_000)]
    keys = np.zeros((hashes.size, 2), np.uint64)
    keys[:, 0] = hashes.view(np.uint64)
    keys[::3, 1] = 7  # the second word counts: these rows are other names
    codes, first_rows, _, _ = intern_layout_nb(keys, np.arange(hashes.size))
    assert first_rows.size == np.unique(keys, axis=0).shape[0]
    np.testing.assert_array_equal(keys[first_rows][codes], keys)
    assert (np.diff(first_rows) > 0).all()  # numbered in order of first sight
    table = keys[first_rows]
    np.testing.assert_array_equal(lookup_keys_nb(table, keys), codes)
    assert (lookup_keys_nb(table, np.array([[2**62 + 1, 0]], np.uint64)) == -1).all()


def test_asof_placement_reports_the_first_bad_row() -> None:
    bar_ns = np.array([10, 20, 30])
    out = np.full((3, 2), np.nan)
    ts = np.array([5, 20, 25, 25])
    assert place_asof_nb(ts, np.array([0, 1, 0, 1]), np.array([1.0, 2.0, 3.0, 4.0]), bar_ns,
                         False, out) == -1
    np.testing.assert_array_equal(out, [[1.0, np.nan], [np.nan, 2.0], [3.0, 4.0]])
    for codes, values, last in (([0, -1], [1.0, 1.0], 30), ([0, 0], [1.0, 1.0], 30),
                                ([0, 1], [1.0, np.inf], 30), ([0, 1], [1.0, np.nan], 30),
                                ([0, 1], [1.0, 1.0], 31)):
        row = place_asof_nb(np.array([30, last]), np.array(codes), np.array(values), bar_ns,
                            False, np.full((3, 2), np.nan))
        assert row == 1


def test_unsorted_signals_take_the_fast_path_and_latest_wins() -> None:
    bars = _random_bars(4, ohlcv=False)
    panel = align_bars(bars)
    rng = np.random.default_rng(4)
    sample = bars.sample(200, seed=4).with_columns(
        ts=pl.col("ts") - pl.duration(hours=pl.Series(rng.integers(0, 60, 200))),
        score=pl.Series(rng.normal(size=200)))
    sample = sample.unique(["ts", "asset"])
    got = signals_to_matrix(sample, panel, "score")
    expected = np.full((panel.n_bars, panel.n_assets), np.nan)
    bar_ns = panel.ts.view(np.int64)
    for ts, asset, score in sorted(sample.select("ts", "asset", "score").iter_rows(),
                                   key=lambda r: r[0]):
        bar = int(np.searchsorted(bar_ns, np.datetime64(ts, "ns").astype(np.int64)))
        expected[bar, panel.assets.index(asset)] = score
    np.testing.assert_array_equal(got, expected)


def test_cache_returns_the_same_panel_for_equal_content_only() -> None:
    align_module._cache.clear()
    bars = _random_bars(6)
    first = align_bars(bars)
    assert align_bars(bars.clone()) is first  # same content, another object
    assert align_bars(bars, periods_per_year=12) is not first
    changed = bars.clone()
    changed[3, "close"] = float(changed[3, "close"]) * 1.001  # in place: same object
    other = align_bars(changed)
    assert other is not first and other.close[np.isfinite(other.close)].sum() != \
        first.close[np.isfinite(first.close)].sum()
    assert align_bars(bars, cache=False) is not first
    for seed in (7, 8, 9):
        align_bars(_random_bars(seed))
    assert len(align_module._cache) == align_module.CACHE_ENTRIES
