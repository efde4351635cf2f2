"""No look-ahead: changing any price or signal after t changes nothing up to t."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Costs, SignalPlan, WeightPlan, run_backtest
from tests.engine.conftest import make_panel, random_prices

N_BARS, N_ASSETS = 30, 3


def _upto(res, t):
    """Everything the run knows at the close of bar t."""
    r = res.records
    o = r.orders[: res.counts[0]]
    f = r.fills[: res.counts[1]]
    o = o[o["fill_bar"] <= t]
    f = f[f["bar"] <= t]
    return (r.equity[: t + 1], r.cash[: t + 1], r.gross[: t + 1], r.positions[: t + 1],
            o.tolist(), f.tolist())


def _assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        if isinstance(x, list):
            assert x == y
        else:
            np.testing.assert_array_equal(x, y)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(0, N_BARS - 2),
       fill=st.sampled_from(["next_open", "next_close"]), use_signals=st.booleans())
def test_future_changes_leave_the_past_alone(seed, t, fill, use_signals):
    rng = np.random.default_rng(seed)
    open_, close = random_prices(rng, N_BARS, N_ASSETS, holes=0.05)
    volume = rng.uniform(1e3, 1e5, (N_BARS, N_ASSETS))
    if use_signals:
        flags = [rng.random((N_BARS, N_ASSETS)) < 0.2 for _ in range(4)]
        plan = SignalPlan(*flags, size=0.3)
    else:
        w = rng.uniform(-0.3, 0.3, (N_BARS, N_ASSETS))
        w[rng.random(w.shape) < 0.5] = np.nan
        plan = WeightPlan(w)
    costs = Costs(participation_cap=0.5)
    base = run_backtest(make_panel(close, open_, volume), plan, costs=costs, fill=fill,
                        max_gross_leverage=1.5)

    # perturb every price, volume and instruction strictly after t
    o2, c2, v2 = open_.copy(), close.copy(), volume.copy()
    o2[t + 1:] *= rng.uniform(0.5, 1.5, o2[t + 1:].shape)
    c2[t + 1:] *= rng.uniform(0.5, 1.5, c2[t + 1:].shape)
    v2[t + 1:] = rng.uniform(1, 1e6, v2[t + 1:].shape)
    if use_signals:
        flags2 = [f.copy() for f in flags]
        for f in flags2:
            f[t + 1:] = rng.random(f[t + 1:].shape) < 0.5
        plan2 = SignalPlan(*flags2, size=0.3)
    else:
        w2 = w.copy()
        w2[t + 1:] = rng.uniform(-0.3, 0.3, w2[t + 1:].shape)
        plan2 = WeightPlan(w2)
    other = run_backtest(make_panel(c2, o2, v2), plan2, costs=costs, fill=fill,
                         max_gross_leverage=1.5)
    _assert_same(_upto(base, t), _upto(other, t))


def test_a_decision_at_t_fills_at_t_plus_1():
    close = np.array([[100.0], [110.0], [121.0], [133.1]])
    open_ = np.array([[99.0], [105.0], [115.0], [130.0]])
    w = np.full((4, 1), np.nan)
    w[1, 0] = 1.0
    res = run_backtest(make_panel(close, open_), WeightPlan(w), costs=Costs.zero())
    fills = res.fills
    assert fills.height == 1
    assert fills["ts"][0] == res.equity["ts"][2]  # decided at bar 1, filled at bar 2's open
    assert fills["price"][0] == 115.0
