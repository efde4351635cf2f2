"""Our metrics against quantstats 0.0.86 on 33 years of real S&P 500 daily returns.

Agreement is required to 1e-6 relative wherever quantstats defines the same metric; the
deliberate differences (documented in reports.metrics) are tested as exactly what they
are: historical VaR vs parametric, and an annualised information ratio.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest

from reports import compute_metrics, probabilistic_sharpe_ratio
from tests.reports.conftest import close_to_returns

qs = pytest.importorskip("quantstats")

REL = 1e-6
P = 252


@pytest.fixture(scope="module")
def series(sp500_returns) -> pd.Series:
    return pd.Series(sp500_returns["return"].to_numpy(),
                     index=pd.DatetimeIndex(sp500_returns["ts"].to_numpy()), name="SP500")


@pytest.fixture(scope="module")
def ours(sp500_returns) -> dict[str, float]:
    return compute_metrics(sp500_returns, P, rf=0.02)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_the_data_is_long_and_real(sp500_returns):
    assert sp500_returns.height > 8000
    assert sp500_returns["return"].min() < -0.1  # 1987 is not in it, 2008/2020 are


@pytest.mark.parametrize("key, reference", [
    ("sharpe", lambda s: qs.stats.sharpe(s, rf=0.02, periods=P)),
    ("sortino", lambda s: qs.stats.sortino(s, rf=0.02, periods=P)),
    ("cagr", lambda s: qs.stats.cagr(s, periods=P)),
    ("volatility", lambda s: qs.stats.volatility(s, periods=P)),
    ("max_drawdown", lambda s: qs.stats.max_drawdown(s)),
    ("calmar", lambda s: qs.stats.calmar(s, periods=P)),
    ("cvar_95", lambda s: qs.stats.cvar(s, method="historical")),
    ("total_return", lambda s: qs.stats.comp(s)),
    ("skew", lambda s: qs.stats.skew(s)),
    ("kurtosis", lambda s: qs.stats.kurtosis(s)),
    ("tail_ratio", lambda s: qs.stats.tail_ratio(s)),
    ("win_rate_periods", lambda s: qs.stats.win_rate(s)),
    ("profit_factor_periods", lambda s: qs.stats.profit_factor(s)),
    ("avg_win_period", lambda s: qs.stats.avg_win(s)),
    ("avg_loss_period", lambda s: qs.stats.avg_loss(s)),
    ("best_period", lambda s: qs.stats.best(s)),
    ("worst_period", lambda s: qs.stats.worst(s)),
    ("psr", lambda s: qs.stats.probabilistic_sharpe_ratio(s, rf=0.02, periods=P)),
    ("longest_drawdown_days",
     lambda s: qs.stats.drawdown_details(qs.stats.to_drawdown_series(s))["days"].max()),
])
def test_agrees_with_quantstats(ours, series, key, reference):
    expected = float(reference(series))
    assert math.isfinite(expected)
    assert ours[key] == pytest.approx(expected, rel=REL)


def test_max_drawdown_duration_is_quantstats_spell_of_the_deepest_trough(ours, series):
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(series))
    deepest = details.loc[details["max drawdown"].idxmin()]
    assert ours["max_drawdown_duration_days"] == deepest["days"]


def test_var_is_historical_not_quantstats_parametric(ours, series):
    assert ours["var_95"] == pytest.approx(float(series.quantile(0.05)), rel=1e-12)
    parametric = float(qs.stats.var(series))
    # fat tails: the empirical 5% quantile and the normal one really differ
    assert abs(ours["var_95"] - parametric) > 1e-4


def test_benchmark_figures_against_quantstats(sp500_returns, series):
    import engine

    nasdaq = close_to_returns(engine.load_bars("nasdaq_ohlcv"))
    g = pd.Series(nasdaq["return"].to_numpy(), index=pd.DatetimeIndex(nasdaq["ts"].to_numpy()))
    common = g.index.intersection(series.index)
    r, b = g.loc[common], series.loc[common]
    ours = compute_metrics(nasdaq, P, benchmark=sp500_returns)
    greeks = qs.stats.greeks(r, b, periods=P)
    assert ours["beta"] == pytest.approx(float(greeks["beta"]), rel=REL)
    assert ours["alpha"] == pytest.approx(float(greeks["alpha"]), rel=REL)
    # quantstats' information ratio is per bar; ours is annualised
    assert ours["information_ratio"] == pytest.approx(
        float(qs.stats.information_ratio(r, b)) * math.sqrt(P), rel=REL)
    assert ours["correlation"] == pytest.approx(float(np.corrcoef(r, b)[0, 1]), rel=REL)
    assert ours["correlation"] ** 2 == pytest.approx(float(qs.stats.r_squared(r, b)), rel=REL)


def test_seeded_random_series_and_non_daily_annualisation():
    rng = np.random.default_rng(7)
    r = rng.standard_t(4, size=2000) * 0.004 + 0.0001
    ts = pd.date_range("2020-01-01", periods=r.size, freq="h")
    s = pd.Series(r, index=ts)
    periods = 24 * 365
    m = compute_metrics(pl.DataFrame({"ts": ts.to_numpy(), "return": r}), periods)
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(s, periods=periods), rel=REL)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(s, periods=periods), rel=REL)
    assert m["cagr"] == pytest.approx(qs.stats.cagr(s, periods=periods), rel=REL)
    assert m["volatility"] == pytest.approx(qs.stats.volatility(s, periods=periods), rel=REL)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(s), rel=REL)


def test_psr_function_matches_quantstats(series):
    assert probabilistic_sharpe_ratio(series) == pytest.approx(
        qs.stats.probabilistic_sharpe_ratio(series), rel=REL)
