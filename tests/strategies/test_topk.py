from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from engine.errors import ConfigError
from engine.plan import WeightPlan
from strategies import TopKLongShortStrategy
from tests.strategies.conftest import build_panel, signals_frame

NAN = np.nan
# Thu, Fri | Mon, Tue, Wed, Fri  -> weekly rebalance bars are rows 1 and 5
TS = np.array(
    ["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10", "2024-01-12"],
    dtype="datetime64[ns]",
)
PRED = np.array(
    [
        [0.09, 0.08, -0.09, 0.00, 0.01],  # not a weekly rebalance bar: must be ignored
        [0.03, -0.01, 0.05, -0.04, 0.00],
        [NAN, NAN, NAN, NAN, NAN],
        [-0.05, 0.05, 0.00, 0.02, 0.01],
        [NAN, NAN, NAN, NAN, NAN],
        [0.01, 0.02, 0.10, -0.03, NAN],  # C has no bar here, E no signal
    ]
)


def _panel():
    close = np.full((6, 5), 100.0)
    close[5, 2] = NAN
    return build_panel(close, TS)


def _plan(signals_values=PRED, column="pred_return", **config) -> np.ndarray:
    panel = _panel()
    plan = TopKLongShortStrategy(**config).plan(panel, signals_frame(panel, column, signals_values))
    assert isinstance(plan, WeightPlan)
    return plan.target_weight


def _expected(rows: dict[int, list[float]]) -> np.ndarray:
    out = np.full((6, 5), NAN)
    for t, row in rows.items():
        out[t] = row
    return out


def test_weekly_top1_bottom1_equal_weights():
    expected = _expected({1: [0, 0, 0.5, -0.5, 0], 5: [0, 0.5, 0, -0.5, 0]})
    np.testing.assert_array_equal(_plan(k=1, rebalance="weekly"), expected)


def test_daily_rebalances_every_bar_that_has_signals():
    expected = _expected(
        {
            0: [0.5, 0, -0.5, 0, 0],
            1: [0, 0, 0.5, -0.5, 0],
            3: [-0.5, 0.5, 0, 0, 0],
            5: [0, 0.5, 0, -0.5, 0],
        }
    )
    np.testing.assert_array_equal(_plan(k=1, rebalance="daily"), expected)


def test_monthly_uses_only_the_last_bar_of_the_month():
    np.testing.assert_array_equal(
        _plan(k=1, rebalance="monthly"), _expected({5: [0, 0.5, 0, -0.5, 0]})
    )


def test_top2_bottom2_signal_weighted_around_the_median():
    # row 1: median 0.00; longs C (0.05), A (0.03); shorts D (-0.04), B (-0.01)
    with pytest.warns(UserWarning, match=r"first at 2024-01-12\)"):  # row 5 ranks only 3
        target = _plan(k=2, rebalance="weekly", weighting="signal")
    np.testing.assert_allclose(target[1], [0.1875, -0.1, 0.3125, -0.4, 0.0])


def test_gross_and_net_exposure_split_the_sides():
    target = _plan(k=1, rebalance="weekly", gross_exposure=1.5, net_exposure=0.5)
    np.testing.assert_allclose(target[1], [0, 0, 1.0, -0.5, 0])


def test_long_only_and_short_only_variants():
    long_only = _plan(k_long=2, k_short=0, rebalance="weekly")
    np.testing.assert_allclose(long_only[1], [0.5, 0, 0.5, 0, 0])
    short_only = _plan(k_long=0, k_short=2, rebalance="weekly", gross_exposure=0.8)
    np.testing.assert_allclose(short_only[1], [0, -0.4, 0, -0.4, 0])


def test_rank_by_score():
    score = -PRED  # reversed ranking
    target = _plan(score, column="score", k=1, rank_by="score", rebalance="weekly")
    np.testing.assert_array_equal(target[1], [0, 0, -0.5, 0.5, 0])


def test_ties_go_to_the_asset_listed_first():
    values = np.full((6, 5), NAN)
    values[1] = [0.02, 0.02, 0.0, 0.0, 0.0]
    target = _plan(values, k=1, rebalance="weekly")
    np.testing.assert_array_equal(target[1], [0.5, 0, 0, 0, -0.5])


def test_small_cross_section_shrinks_both_sides_with_a_warning():
    # row 5 ranks A, B, D only (C untradable, E unsigned): k=2 per side shrinks to 1
    with pytest.warns(UserWarning, match="1 rebalance bar"):
        target = _plan(k=2, rebalance="weekly")
    np.testing.assert_array_equal(target[5], [0, 0.5, 0, -0.5, 0])
    np.testing.assert_allclose(target[1], [0.25, -0.25, 0.25, -0.25, 0])


def test_too_few_ranked_names_for_any_side_gives_no_instruction():
    values = np.full((6, 5), NAN)
    values[1, 0] = 0.05
    with pytest.warns(UserWarning):
        target = _plan(values, k=1, rebalance="weekly")
    assert np.isnan(target).all()


def test_no_warning_when_the_cross_section_is_full():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _plan(k=1, rebalance="weekly")


def test_signal_dated_after_the_rebalance_bar_is_not_used_there():
    panel = _panel()
    signals = signals_frame(panel, "pred_return", PRED)
    late = pl.DataFrame(
        {"ts": [datetime(2024, 1, 5, 12)], "asset": ["E"], "pred_return": [0.5]},
        schema_overrides={"ts": pl.Datetime("ns")},
    )
    plan = TopKLongShortStrategy(k=1, rebalance="weekly").plan(panel, pl.concat([signals, late]))
    np.testing.assert_array_equal(plan.target_weight[1], [0, 0, 0.5, -0.5, 0])


def test_changing_signals_after_t_never_changes_the_plan_up_to_t():
    rng = np.random.default_rng(7)
    n_bars, n_assets = 40, 6
    ts = np.datetime64("2024-01-01", "ns") + np.arange(n_bars) * np.timedelta64(1, "D")
    panel = build_panel(np.full((n_bars, n_assets), 10.0), ts)
    strategy = TopKLongShortStrategy(k=2, rebalance="weekly", weighting="signal")
    base = rng.normal(size=(n_bars, n_assets))
    reference = strategy.plan(panel, signals_frame(panel, "pred_return", base)).target_weight
    for cut in (3, 10, 25):
        changed = base.copy()
        changed[cut + 1 :] = rng.normal(size=(n_bars - cut - 1, n_assets))
        target = strategy.plan(panel, signals_frame(panel, "pred_return", changed)).target_weight
        np.testing.assert_array_equal(target[: cut + 1], reference[: cut + 1])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"k": 3}, r"k_long=3 \+ k_short=3 .* universe has 5"),
        ({"k_long": 4, "k_short": 2}, r"k_long=4 \+ k_short=2 .* universe has 5"),
    ],
)
def test_k_larger_than_half_the_universe(config, message):
    with pytest.raises(ConfigError, match=message):
        _plan(**config)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"k": 0}, "k"),
        ({"k_long": 0, "k_short": 0}, "both 0"),
        ({"net_exposure": 1.5}, "net_exposure=1.5 exceeds gross_exposure=1.0"),
        ({"k_short": 0, "net_exposure": 0.0}, "long only"),
        ({"k_long": 0, "net_exposure": 0.0}, "short only"),
        ({"weighting": "rank"}, "weighting"),
        ({"rebalance": "yearly"}, "rebalance"),
        ({"top_k": 2}, "'top_k'"),
    ],
)
def test_config_errors(config, message):
    with pytest.raises(ConfigError, match=message):
        TopKLongShortStrategy(**config)
