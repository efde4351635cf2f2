"""Probabilistic and deflated Sharpe ratios against the formulas computed with scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from engine.errors import ConfigError
from reports import deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio

EULER_GAMMA = 0.5772156649015329


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    rng = np.random.default_rng(11)
    # skewed, fat-tailed daily returns so the higher moments matter
    return 0.0006 + 0.01 * rng.standard_t(5, size=750) + 0.004 * rng.exponential(size=750) - 0.004


def psr_by_hand(r: np.ndarray, sr_star: float) -> float:
    """Bailey & Lopez de Prado (2012), eq. for PSR, written out with scipy."""
    sr = r.mean() / r.std(ddof=1)
    g3 = stats.skew(r, bias=False)
    g4 = stats.kurtosis(r, fisher=False, bias=False)
    sigma = math.sqrt((1 - g3 * sr + (g4 - 1) / 4 * sr**2) / (r.size - 1))
    return float(stats.norm.cdf((sr - sr_star) / sigma))


def test_psr_against_scipy(returns):
    for sr_star in (0.0, 0.02, 0.05, -0.03):
        assert probabilistic_sharpe_ratio(returns, sr_star) == pytest.approx(
            psr_by_hand(returns, sr_star), rel=1e-9)


def test_psr_with_an_annualised_threshold(returns):
    assert probabilistic_sharpe_ratio(returns, 0.5, periods_per_year=252) == pytest.approx(
        psr_by_hand(returns, 0.5 / math.sqrt(252)), rel=1e-9)


def test_psr_falls_as_the_threshold_rises(returns):
    values = [probabilistic_sharpe_ratio(returns, s) for s in np.linspace(-0.1, 0.2, 7)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert 0.0 < values[-1] < values[0] < 1.0


def test_dsr_against_scipy(returns):
    n_trials, variance = 40, 0.0009
    sr0 = math.sqrt(variance) * ((1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials)
                                 + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n_trials * math.e)))
    assert expected_max_sharpe(n_trials, variance) == pytest.approx(sr0, rel=1e-12)
    dsr = deflated_sharpe_ratio(returns, n_trials, variance)
    assert dsr == pytest.approx(psr_by_hand(returns, sr0), rel=1e-9)
    assert dsr < probabilistic_sharpe_ratio(returns)  # selection bias costs confidence


def test_dsr_annualised_variance_and_a_single_trial(returns):
    assert deflated_sharpe_ratio(returns, 10, 0.25, periods_per_year=252) == pytest.approx(
        deflated_sharpe_ratio(returns, 10, 0.25 / 252), rel=1e-12)
    # one trial: no selection, so DSR is PSR against 0
    assert deflated_sharpe_ratio(returns, 1, 0.01) == pytest.approx(
        probabilistic_sharpe_ratio(returns), rel=1e-12)
    more = [deflated_sharpe_ratio(returns, n, 0.0009) for n in (2, 10, 100, 1000)]
    assert all(a > b for a, b in zip(more, more[1:], strict=False))


def test_short_or_flat_series_give_nan_and_bad_settings_raise():
    assert math.isnan(probabilistic_sharpe_ratio([0.01, 0.02, -0.01]))
    assert math.isnan(probabilistic_sharpe_ratio(np.zeros(30)))
    with pytest.raises(ConfigError, match="n_trials"):
        deflated_sharpe_ratio(np.ones(10) * 0.01, 0, 0.1)
    with pytest.raises(ConfigError, match="sr_variance_across_trials"):
        deflated_sharpe_ratio(np.ones(10) * 0.01, 5, -1.0)
    with pytest.raises(ConfigError, match="periods_per_year"):
        probabilistic_sharpe_ratio(np.ones(10) * 0.01, 0.5, periods_per_year=-1)
