"""One vocabulary: every metric has one label and one number format in every view."""

from __future__ import annotations

import math

import pytest

from reports import LABELS, METRIC_DEFINITIONS, format_metric, format_windowed, return_metric
from reports._definitions import metric_kind


def test_every_metric_has_a_label_and_labels_are_unique():
    assert set(METRIC_DEFINITIONS) <= set(LABELS)
    assert len(set(LABELS.values())) == len(LABELS)


def test_open_and_closed_trades_and_both_win_rates_are_named_apart():
    assert LABELS["n_trades"] == "Closed trades" and LABELS["n_open_trades"] == "Open trades"
    assert LABELS["win_rate_trades"] != LABELS["win_rate_periods"]
    assert "per closed trade" in LABELS["win_rate_trades"]
    assert "per bar" in LABELS["win_rate_periods"]


@pytest.mark.parametrize(("name", "value", "text"), [
    ("total_return", 0.123456, "12.35%"), ("cagr", -0.05, "-5.00%"),
    ("win_rate_trades", 0.5, "50.00%"), ("win_rate_periods", 0.5123, "51.23%"),
    ("sharpe", 1.23456, "1.23"), ("calmar", 0.5, "0.50"), ("beta", -1.0, "-1.00"),
    ("n_trades", 610.0, "610"), ("n_open_trades", 6.0, "6"),
    ("avg_win_trade_pnl", 12345.678, "12,345.68"),
    ("sharpe", math.nan, "n/a"), ("sharpe", None, "n/a"), ("profit_factor_trades",
                                                           math.inf, "inf"),
])
def test_one_format_per_kind(name, value, text):
    assert format_metric(name, value) == text
    assert "+" not in format_metric(name, value)  # no stray plus signs


def test_kinds_cover_returns_as_percent():
    for name in ("total_return", "cagr", "max_drawdown", "volatility", "var_95", "alpha"):
        assert metric_kind(name) == "percent"
    for name in ("sharpe", "sortino", "information_ratio", "turnover"):
        assert metric_kind(name) == "ratio"


def test_windows_under_a_year_show_total_return():
    assert return_metric(24, 252) == "total_return"  # the COVID crash: 24 bars
    assert return_metric(251, 252) == "total_return"
    assert return_metric(252, 252) == "cagr"
    assert return_metric(None, 252) == "total_return"
    assert format_windowed("cagr", -0.98, 24, 252) == "< 1 year"
    assert format_windowed("cagr", 0.05, 500, 252) == "5.00%"
    assert format_windowed("total_return", -0.3, 24, 252) == "-30.00%"
