from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from engine.errors import ConfigError, DataError
from engine.plan import SignalPlan
from strategies import NuancedConfig, NuancedStrategy, SimpleStrategy
from tests.strategies.conftest import build_panel, daily, signals_frame

T, F = True, False
NAN = np.nan


def _panel(n_bars: int = 4, n_assets: int = 3):
    return build_panel(np.full((n_bars, n_assets), 100.0), daily("2024-01-01", n_bars))


def _flags(plan: SignalPlan) -> dict[str, list[list[bool]]]:
    return {
        name: getattr(plan, name).tolist()
        for name in ("long_entry", "long_exit", "short_entry", "short_exit")
    }


SIMPLE_P = [
    [0.8, 0.2, NAN],
    [0.5, 0.6, 0.4],
    [0.1, NAN, 0.9],
    [0.55, 0.45, 0.5],
]
UP = [[T, F, F], [F, T, F], [F, F, T], [T, F, F]]
DOWN = [[F, T, F], [F, F, T], [T, F, F], [F, T, F]]
NONE = [[F, F, F]] * 4


def test_simple_long_above_short_below_and_no_view_at_the_threshold_or_without_signal():
    panel = _panel()
    plan = SimpleStrategy().plan(panel, signals_frame(panel, "prob_up", SIMPLE_P))
    assert isinstance(plan, SignalPlan)
    assert _flags(plan) == {"long_entry": UP, "long_exit": DOWN, "short_entry": DOWN,
                            "short_exit": UP}
    assert plan.size == pytest.approx(1 / 3)
    assert plan.size_type == "weight"


def test_simple_long_only_exits_instead_of_shorting():
    panel = _panel()
    plan = SimpleStrategy(allow_short=False, size=0.25).plan(
        panel, signals_frame(panel, "prob_up", SIMPLE_P)
    )
    assert _flags(plan) == {"long_entry": UP, "long_exit": DOWN, "short_entry": NONE,
                            "short_exit": NONE}
    assert plan.size == 0.25


def test_simple_custom_threshold():
    panel = _panel()
    plan = SimpleStrategy(threshold=0.6).plan(panel, signals_frame(panel, "prob_up", SIMPLE_P))
    assert plan.long_entry.tolist() == [[T, F, F], [F, F, F], [F, F, T], [F, F, F]]
    assert plan.short_entry.tolist() == [[F, T, F], [T, F, T], [T, F, F], [T, T, T]]


NUANCED_P = [
    [0.8, 0.2, 0.65],
    [0.5, 0.6, 0.4],
    [0.1, 0.75, 0.3],
    [0.71, 0.29, 0.7],
]


def test_nuanced_enters_only_outside_the_band_and_exits_when_crossing_mid():
    panel = _panel()
    plan = NuancedStrategy().plan(panel, signals_frame(panel, "prob_up", NUANCED_P))
    assert _flags(plan) == {
        "long_entry": [[T, F, F], [F, F, F], [F, T, F], [T, F, F]],
        "long_exit": [[F, T, F], [F, F, T], [T, F, T], [F, T, F]],
        "short_entry": [[F, T, F], [F, F, F], [T, F, F], [F, T, F]],
        "short_exit": [[T, F, T], [F, T, F], [F, T, F], [T, F, T]],
    }


def test_nuanced_custom_band_and_long_only():
    panel = _panel()
    strategy = NuancedStrategy(lower=0.2, mid=0.4, upper=0.6, allow_short=False, size=0.5)
    plan = strategy.plan(panel, signals_frame(panel, "prob_up", NUANCED_P))
    assert plan.long_entry.tolist() == [[T, F, T], [F, F, F], [F, T, F], [T, F, T]]
    assert plan.long_exit.tolist() == [[F, T, F], [F, F, F], [T, F, T], [F, T, F]]
    assert not plan.short_entry.any() and not plan.short_exit.any()
    assert plan.size == 0.5


def _walk(plan: SignalPlan, j: int = 0) -> list[int]:
    """Slow reference of how the engine reads flags against the held side (-1, 0, +1)."""
    side, sides = 0, []
    for t in range(plan.long_entry.shape[0]):
        le, lx = plan.long_entry[t, j], plan.long_exit[t, j]
        se, sx = plan.short_entry[t, j], plan.short_exit[t, j]
        if side > 0:
            side = -1 if se else (0 if lx else 1)
        elif side < 0:
            side = 1 if le else (0 if sx else -1)
        elif le != se:
            side = 1 if le else -1
        sides.append(side)
    return sides


def test_nuanced_position_walk_matches_the_design():
    # strong long, band above mid (hold), band below mid (exit), strong long, strong short
    # (reverse), band below mid (short still supported), band above mid (exit)
    p = np.array([[0.75, 0.6, 0.45, 0.8, 0.2, 0.4, 0.55]]).T
    panel = _panel(n_bars=7, n_assets=1)
    plan = NuancedStrategy().plan(panel, signals_frame(panel, "prob_up", p))
    assert _walk(plan) == [1, 1, 0, 1, -1, -1, 0]


def test_simple_position_walk_reverses_on_the_opposite_signal():
    p = np.array([[0.6, 0.7, 0.4, 0.5, 0.3, 0.9]]).T
    panel = _panel(n_bars=6, n_assets=1)
    assert _walk(SimpleStrategy().plan(panel, signals_frame(panel, "prob_up", p))) == [
        1, 1, -1, -1, -1, 1
    ]
    long_only = SimpleStrategy(allow_short=False).plan(panel, signals_frame(panel, "prob_up", p))
    assert _walk(long_only) == [1, 1, 0, 0, 0, 1]


def test_signal_dated_between_bars_acts_on_the_next_bar_not_before():
    panel = _panel(n_bars=3, n_assets=1)
    signals = pl.DataFrame(
        {"ts": [datetime(2024, 1, 1, 12)], "asset": ["A"], "prob_up": [0.9]}
    )
    plan = SimpleStrategy().plan(panel, signals)
    assert plan.long_entry[:, 0].tolist() == [F, T, F]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lower": 0.6}, "lower=0.6, mid=0.5, upper=0.7"),
        ({"upper": 0.5}, "lower=0.3, mid=0.5, upper=0.5"),
        ({"lower": 0.4, "mid": 0.35}, "lower=0.4, mid=0.35, upper=0.7"),
    ],
)
def test_nuanced_thresholds_out_of_order(values, message):
    with pytest.raises(ConfigError, match=message):
        NuancedStrategy(**values)


def test_threshold_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"'treshold' \(did you mean 'threshold'\?\)"):
        SimpleStrategy(treshold=0.6)
    with pytest.raises(ConfigError, match="threshold"):
        SimpleStrategy(threshold=1.5)
    with pytest.raises(ConfigError, match="size"):
        SimpleStrategy(size=-0.1)
    with pytest.raises(ConfigError, match="NuancedConfig"):
        SimpleStrategy(NuancedConfig())
    with pytest.raises(ConfigError, match="not both"):
        NuancedStrategy(NuancedConfig(), upper=0.8)
    assert NuancedStrategy(NuancedConfig(upper=0.8)).config.upper == 0.8


def test_prob_up_outside_unit_interval_is_a_data_error_naming_asset_and_bar():
    panel = _panel(n_bars=2, n_assets=2)
    signals = signals_frame(panel, "prob_up", [[0.5, 0.5], [0.5, 1.2]])
    with pytest.raises(DataError, match=r"1\.2 for asset 'B' at 2024-01-02"):
        SimpleStrategy().plan(panel, signals)


def test_missing_signals_or_column():
    panel = _panel()
    with pytest.raises(DataError, match="'simple' needs a signals frame"):
        SimpleStrategy().plan(panel, None)
    with pytest.raises(DataError, match="prob_up"):
        NuancedStrategy().plan(panel, signals_frame(panel, "score", SIMPLE_P))
