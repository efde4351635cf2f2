"""Portfolio construction (risk_parity, hrp, mean_variance, vol_target): causal by
construction (the look-ahead perturbation test), weights that add up, skfolio's answers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ConfigError
from strategies import get_strategy
from tests.strategies.conftest import build_panel, daily, signals_frame

N_BARS, N = 300, 4


def _market(seed=0):
    rng = np.random.default_rng(seed)
    vols = np.array([0.005, 0.01, 0.02, 0.03])
    close = 100 * np.cumprod(1 + rng.normal(0.0003, vols, (N_BARS, N)), axis=0)
    panel = build_panel(close, daily("2020-01-01", N_BARS))
    forecasts = rng.normal(0, 0.01, (N_BARS, N))
    return panel, signals_frame(panel, "pred_return", forecasts), forecasts


CASES = [("risk_parity", {}), ("hrp", {}), ("mean_variance", {}),
         ("hrp", {"vol_target": 0.05, "max_leverage": 1.0})]


@pytest.mark.parametrize(("name", "config"), CASES)
def test_no_lookahead_weights_up_to_t_ignore_data_after_t(name, config):
    panel, signals, forecasts = _market()
    strategy = get_strategy(name, lookback=60, **config)
    base = strategy.plan(panel, signals).target_weight
    t = 200
    close = panel.close.copy()
    close[t + 1:] *= np.random.default_rng(1).uniform(0.5, 1.5, close[t + 1:].shape)
    moved = forecasts.copy()
    moved[t + 1:] += 1.0
    later = build_panel(close, panel.ts)
    perturbed = strategy.plan(later, signals_frame(later, "pred_return", moved)).target_weight
    np.testing.assert_array_equal(base[: t + 1], perturbed[: t + 1])
    assert np.isfinite(base).any()


@pytest.mark.parametrize("name", ["risk_parity", "hrp"])
def test_risk_based_weights_are_long_and_favour_the_calm_assets(name):
    panel, _, _ = _market()
    w = get_strategy(name, lookback=60).plan(panel, None).target_weight
    rows = w[np.isfinite(w).any(axis=1)]
    assert rows.shape[0] >= 8  # monthly over ~10 months after the warm-up
    np.testing.assert_allclose(np.abs(rows).sum(axis=1), 1.0, rtol=1e-9)
    assert (rows >= 0).all()
    assert (rows[:, 0] > rows[:, 3]).all()  # 0.5% daily vol gets more than 3%


def test_mean_variance_follows_the_forecast_sign_and_needs_one():
    panel, signals, forecasts = _market()
    w = get_strategy("mean_variance", lookback=60).plan(panel, signals).target_weight
    rows = np.flatnonzero(np.isfinite(w).any(axis=1))
    np.testing.assert_allclose(np.abs(w[rows]).sum(axis=1), 1.0, rtol=1e-9)
    # with a near-diagonal covariance the weights share the forecasts' signs
    agree = np.sign(w[rows]) == np.sign(forecasts[rows])
    assert agree.mean() > 0.8
    with pytest.raises(ConfigError, match="pred_return"):
        get_strategy("mean_variance").plan(panel, None)


def test_vol_target_scales_the_book_down_to_the_target():
    panel, _, _ = _market()
    plain = get_strategy("hrp", lookback=60).plan(panel, None).target_weight
    scaled = get_strategy("hrp", lookback=60, vol_target=0.02).plan(panel, None).target_weight
    rows = np.flatnonzero(np.isfinite(plain).any(axis=1))
    gross = np.abs(scaled[rows]).sum(axis=1)
    assert (gross < 1.0).all()  # an HRP book of these assets runs well above 2% a year
    t = rows[-1]
    rets = panel.close[t - 59: t + 1] / panel.close[t - 60: t] - 1
    w = scaled[t]
    vol = np.sqrt(w @ np.cov(rets, rowvar=False) @ w * 252)
    assert vol == pytest.approx(0.02, rel=1e-9)


def test_vol_target_overlay_wraps_any_weights_strategy_causally():
    panel, _, _ = _market()
    overlay = get_strategy("vol_target", strategy="equal_weight", target=0.03, lookback=60)
    base = get_strategy("equal_weight").plan(panel, None).target_weight
    w = overlay.plan(panel, None).target_weight
    t = np.flatnonzero(np.isfinite(w).any(axis=1))[-1]
    rets = panel.close[t - 59: t + 1] / panel.close[t - 60: t] - 1
    vol = np.sqrt(w[t] @ np.cov(rets, rowvar=False) @ w[t] * 252)
    assert vol == pytest.approx(0.03, rel=1e-9)
    assert np.array_equal(np.isfinite(w), np.isfinite(base))  # the same instruction bars
    close = panel.close.copy()
    close[t:] *= 3.0  # data from the decision bar on moves; rows before t may not
    moved = overlay.plan(build_panel(close, panel.ts), None).target_weight
    np.testing.assert_array_equal(moved[:t], w[:t])


def test_vol_target_refuses_a_signal_strategy():
    panel, _, forecasts = _market()
    prob_up = signals_frame(panel, "prob_up", 1 / (1 + np.exp(-100 * forecasts)))
    with pytest.raises(ConfigError, match="target weights"):
        get_strategy("vol_target", strategy="simple").plan(panel, prob_up)
