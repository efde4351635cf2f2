"""The W3-frames / W4 / W5 inputs: seeded, sorted, and the decisions they encode."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks._frames import long_frames
from benchmarks._large import (
    MINUTES_PER_SESSION,
    daily_topk_weights,
    large_universe_bars,
    minute_panel,
)
from benchmarks._signals import momentum_topk_weights
from engine import align_bars, validate_bars


def test_minute_panel_is_seeded_and_session_shaped():
    a, b = minute_panel(3, 4, seed=5), minute_panel(3, 4, seed=5)
    np.testing.assert_array_equal(a.close, b.close)
    assert not np.array_equal(a.close, minute_panel(3, 4, seed=6).close)
    assert a.close.shape == (4 * MINUTES_PER_SESSION, 3) and np.isfinite(a.close).all()
    stamps = a.ts[:MINUTES_PER_SESSION].astype("datetime64[m]").astype(str)
    assert stamps[0].endswith("09:30") and stamps[-1].endswith("15:59")
    assert (np.diff(a.ts.view(np.int64)) > 0).all()
    # asset j depends on the seed and its position only
    np.testing.assert_array_equal(minute_panel(2, 4, seed=5).close, a.close[:, :2])


def test_daily_topk_weights_match_a_loop():
    close = minute_panel(6, 5, seed=1).close
    got = daily_topk_weights(close, k=2, gross=1.0)
    expected = np.full_like(close, np.nan)
    for day in range(1, 5):
        t = (day + 1) * MINUTES_PER_SESSION - 1
        ret = close[t] / close[t - MINUTES_PER_SESSION] - 1
        order = np.argsort(ret, kind="stable")
        expected[t] = 0.0
        expected[t, order[-2:]] = 0.25
        expected[t, order[:2]] = -0.25
    np.testing.assert_array_equal(got, expected)


def test_large_universe_bars_are_valid_sorted_and_tiled():
    bars = large_universe_bars(copies=3, n_bars=40, seed=2)
    assert bars.height == 40 * 60 and bars["asset"].n_unique() == 60
    validate_bars(bars)  # sorted by (ts, asset), positive prices
    assert bars.equals(large_universe_bars(copies=3, n_bars=40, seed=2))


@pytest.mark.parametrize("copies", [1, 3])
def test_long_frames_round_trip_to_the_panel(copies):
    from benchmarks._data import stocks_panel, tiled_panel

    panel = tiled_panel(stocks_panel(300), copies)
    weights = momentum_topk_weights(panel.close, panel.ts, lookback=20, k=2)
    bars, frame = long_frames(panel, weights)
    aligned = align_bars(bars)
    order = [panel.assets.index(a) for a in aligned.assets]
    np.testing.assert_array_equal(aligned.close, panel.close[:, order])
    rows = np.flatnonzero(np.isfinite(weights).any(axis=1))
    assert frame.height == rows.size * panel.n_assets
