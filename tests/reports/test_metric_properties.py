"""Invariants every metric table must satisfy, on generated return series."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reports import compute_metrics, metrics_to_json

returns_arrays = arrays(np.float64, st.integers(1, 120),
                        elements=st.floats(-0.5, 0.5, allow_nan=False, width=64))


@settings(max_examples=60, deadline=None)
@given(returns_arrays, st.sampled_from([12.0, 52.0, 252.0, 6048.0]))
def test_metric_invariants(r, periods_per_year):
    m = compute_metrics(r, periods_per_year)
    assert m["n_periods"] == r.size
    assert -1.0 <= m["max_drawdown"] <= 0.0
    assert math.isclose(m["total_return"], np.prod(1.0 + r) - 1.0, rel_tol=1e-9,
                        abs_tol=1e-12)
    assert m["worst_period"] <= m["var_95"] + 1e-15
    assert m["cvar_95"] <= m["var_95"] + 1e-15
    assert m["max_drawdown_duration_bars"] <= m["longest_drawdown_bars"] <= r.size
    if m["max_drawdown"] < 0:
        assert m["max_drawdown_duration_bars"] >= 1
    if math.isfinite(m["sharpe"]) and math.isfinite(m["sortino"]):
        assert np.sign(m["sharpe"]) == np.sign(m["sortino"])
    if math.isfinite(m["calmar"]):
        assert np.sign(m["calmar"]) == np.sign(m["cagr"])
    if math.isfinite(m["win_rate_periods"]):
        assert 0.0 <= m["win_rate_periods"] <= 1.0
    metrics_to_json(m)  # always serialisable (NaN -> null)


@settings(max_examples=30, deadline=None)
@given(returns_arrays, st.floats(0.1, 10.0))
def test_scaling_returns_keeps_sharpe_and_scales_volatility(r, k):
    small = r * 0.01
    base, scaled = compute_metrics(small, 252), compute_metrics(small * k, 252)
    if math.isfinite(base["sharpe"]) and base["volatility"] > 1e-9:
        assert math.isclose(scaled["sharpe"], base["sharpe"], rel_tol=1e-6, abs_tol=1e-9)
        assert math.isclose(scaled["volatility"], base["volatility"] * k, rel_tol=1e-9)
