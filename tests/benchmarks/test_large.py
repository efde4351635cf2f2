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

W4_TINY = {"copies": 2, "n_bars": 300, "seed": 7, "noise_sigma": 0.005, "lookback": 60,
           "skip": 5, "capital": 1_000_000.0}


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


@pytest.mark.slow
def test_w4_runs_through_alfred_run_and_matches_the_frame_call_and_vectorbt():
    """The W4 path on 40 assets x 300 bars: the scenario YAML through run_scenario, on a
    partitioned import; its equity equals the frame call's, the panel+plan call's and
    vectorbt's, and every stage is reported."""
    from analysts import MomentumAnalyst
    from benchmarks._large import _reset_peak, _stage
    from benchmarks._ours import COSTS
    from benchmarks._w4 import run_w4_scenario
    from engine import run_backtest
    from strategies import get_strategy

    out = run_w4_scenario(dict(W4_TINY), _stage, _reset_peak)
    assert out["n_assets"] == 40 and out["n_bars"] == 300 and out["bar_rows"] == 12_000
    assert out["signal_rows"] == 40 * (300 - 60)  # every asset once its look-back is full
    assert all(c["passed"] for c in out["checks"]), out["checks"]
    assert {c["peer"] for c in out["checks"]} == {"vectorbt", "alfred (panel+plan)"}
    names = [st["stage"] for st in out["stages"]]
    for prefix in ("load:", "panel:", "analyst:", "strategy:", "fingerprint:", "backtest: with costs",
                   "backtest: without costs", "reports:", "vectorbt from_orders"):
        stage = next(st for st in out["stages"] if st["stage"].startswith(prefix))
        assert stage["seconds"] > 0 and stage["peak_rss_mb"] > 0, (prefix, names)
    assert {"metrics.json", "tearsheet.html", "equity.parquet", "config.yaml"} <= set(
        out["files"])
    assert out["pipeline_s"] <= out["run_wall_s"]

    # the same decisions through the notebook call, no scenario, no partitioned files
    bars = large_universe_bars(2, 300, seed=7, noise_sigma=0.005)
    signals = MomentumAnalyst(lookback=60, skip=5).predict(bars)
    assert signals.height == out["signal_rows"]
    result = run_backtest(bars, signals, strategy=get_strategy(
        "topk_long_short", k=4, rebalance="monthly"), costs=COSTS, fill="next_close",
        capital=1_000_000.0, max_gross_leverage=100.0, max_net_leverage=1.0,
        limit_policy="clip")
    assert result.fills.height == out["n_fills"] > 0
    assert result.final_equity == pytest.approx(out["final_equity"], rel=1e-12)
    assert out["final_equity"] != pytest.approx(1_000_000.0, rel=1e-6)  # it traded
