from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from engine.errors import ConfigError, DataError
from engine.plan import WeightPlan
from strategies import BuyAndHoldStrategy, EqualWeightStrategy, WeightsStrategy
from tests.strategies.conftest import build_panel, daily

NAN = np.nan
# Tue Jan 30, Wed Jan 31 | Thu Feb 1, Wed Feb 28, Thu Feb 29 | Fri Mar 1
TS = np.array(
    ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-28", "2024-02-29", "2024-03-01"],
    dtype="datetime64[ns]",
)


def _panel():
    close = np.full((6, 3), 50.0)
    close[:3, 2] = NAN  # C starts trading on Feb 28
    close[4, 1] = NAN  # B has no bar on Feb 29
    return build_panel(close, TS)


def test_equal_weight_monthly_with_initial_investment():
    plan = EqualWeightStrategy().plan(_panel())
    assert isinstance(plan, WeightPlan)
    third = 1 / 3
    expected = np.array(
        [
            [0.5, 0.5, 0.0],  # first bar (invest_at_start)
            [0.5, 0.5, 0.0],  # end of January
            [NAN, NAN, NAN],
            [NAN, NAN, NAN],
            [0.5, 0.0, 0.5],  # end of February: B has no bar, C is listed
            [third, third, third],  # last bar of the panel
        ]
    )
    np.testing.assert_allclose(plan.target_weight, expected)


def test_equal_weight_quarterly_without_initial_investment_and_custom_exposure():
    plan = EqualWeightStrategy(rebalance="quarterly", exposure=0.9, invest_at_start=False)
    target = plan.plan(_panel()).target_weight
    assert np.isnan(target[:5]).all()
    np.testing.assert_allclose(target[5], [0.3, 0.3, 0.3])


def test_buy_and_hold_one_asset_buys_on_its_first_bar_only():
    target = BuyAndHoldStrategy(asset="C").plan(_panel()).target_weight
    expected = np.full((6, 3), NAN)
    expected[3, 2] = 1.0
    np.testing.assert_array_equal(target, expected)
    target = BuyAndHoldStrategy(asset="A", weight=0.6).plan(_panel()).target_weight
    assert target[0, 0] == 0.6 and np.isnan(target).sum() == 17


def test_buy_and_hold_all_assets_equally_on_the_first_bar():
    target = BuyAndHoldStrategy().plan(_panel()).target_weight
    expected = np.full((6, 3), NAN)
    expected[0, :2] = 0.5  # C is not trading yet and is never bought
    np.testing.assert_array_equal(target, expected)


def test_buy_and_hold_unknown_asset_suggests_the_closest():
    panel = build_panel(np.full((2, 2), 1.0), daily("2024-01-01", 2), assets=("SPY", "QQQ"))
    with pytest.raises(ConfigError, match=r"'SPX' is not in the data \(did you mean 'SPY'\?\)"):
        BuyAndHoldStrategy(asset="SPX").plan(panel)


def test_buy_and_hold_asset_without_any_bar():
    close = np.array([[1.0, NAN], [1.0, NAN]])
    panel = build_panel(close, daily("2024-01-01", 2))
    with pytest.raises(DataError, match="'B' has no bar"):
        BuyAndHoldStrategy(asset="B").plan(panel)


def test_weights_pass_through_lands_each_row_on_the_next_bar_at_or_after_it():
    panel = build_panel(np.full((3, 2), 1.0), daily("2024-01-01", 3))
    frame = pl.DataFrame(
        {
            "ts": [datetime(2024, 1, 1), datetime(2024, 1, 1, 12), datetime(2024, 1, 3)],
            "asset": ["A", "B", "A"],
            "w": [0.4, -0.2, 0.0],
        }
    )
    target = WeightsStrategy(column="w").plan(panel, frame).target_weight
    expected = np.array([[0.4, NAN], [NAN, -0.2], [0.0, NAN]])
    np.testing.assert_array_equal(target, expected)
    with pytest.raises(DataError, match="target_weight"):
        WeightsStrategy().plan(panel, frame)


def test_allocation_config_errors():
    with pytest.raises(ConfigError, match="rebalance: Input should be 'daily'"):
        EqualWeightStrategy(rebalance="yearly")
    with pytest.raises(ConfigError, match="exposure"):
        EqualWeightStrategy(exposure=0.0)
    with pytest.raises(ConfigError, match=r"'assets' \(did you mean 'asset'\?\)"):
        BuyAndHoldStrategy(assets="A")
    with pytest.raises(ConfigError, match="weight"):
        BuyAndHoldStrategy(weight=float("nan"))
