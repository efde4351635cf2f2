"""Probabilistic and deflated Sharpe ratios (Bailey & Lopez de Prado, 2012 and 2014).

A Sharpe ratio estimated on n bars is noisy, more so when returns are skewed or
fat-tailed, and the best of many backtests is biased upwards. PSR turns the estimate into
the probability that the true Sharpe beats a threshold; DSR raises the threshold to the
Sharpe one expects from the best of ``n_trials`` unskilled strategies.

Conventions (the same as quantstats' ``probabilistic_sharpe_ratio``): the Sharpe ratio is
per bar (not annualised), std with ddof=1; skewness and kurtosis are the bias-corrected
sample estimates (pandas), kurtosis raw (3 for a normal).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from engine.errors import ConfigError
from reports._inputs import as_returns_array
from reports._stats import NAN, excess_kurtosis, per_period_sharpe, skewness

_EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def _per_bar(value: float, periods_per_year: float | None, power: float) -> float:
    if periods_per_year is None:
        return value
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ConfigError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    return value / periods_per_year**power


def probabilistic_sharpe_ratio(returns, sr_benchmark: float = 0.0, *,
                               periods_per_year: float | None = None) -> float:
    """P[true Sharpe > ``sr_benchmark``] given the sample's length, skew and kurtosis.

    ``sr_benchmark`` is per bar, like the Sharpe ratio inside the formula; pass
    ``periods_per_year`` to give it annualised instead. NaN for fewer than 4 bars or zero
    variance, where the moments are undefined.
    """
    r = as_returns_array(returns, "returns")
    threshold = _per_bar(float(sr_benchmark), periods_per_year, 0.5)
    if r.size < 4:
        return NAN
    sr = per_period_sharpe(r)
    g3, g4 = skewness(r), excess_kurtosis(r) + 3.0
    if not all(map(math.isfinite, (sr, g3, g4))):
        return NAN
    var = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2
    if var <= 0:  # moments so extreme the approximation breaks down
        return NAN
    return _NORMAL.cdf((sr - threshold) * math.sqrt(r.size - 1) / math.sqrt(var))


def expected_max_sharpe(n_trials: int, sr_variance_across_trials: float) -> float:
    """Expected best per-bar Sharpe of ``n_trials`` strategies whose true Sharpe is 0.

    The false-strategy theorem's approximation; exactly 0 for a single trial (no
    selection, so no selection bias).
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise ConfigError(f"n_trials must be an integer >= 1 (how many configurations were "
                          f"tried), got {n_trials!r}")
    v = float(sr_variance_across_trials)
    if not (math.isfinite(v) and v >= 0):
        raise ConfigError("sr_variance_across_trials must be a finite number >= 0 (the "
                          f"variance of the trials' Sharpe ratios), got {sr_variance_across_trials!r}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    z = ((1.0 - _EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n)
         + _EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e)))
    return math.sqrt(v) * z


def deflated_sharpe_ratio(returns, n_trials: int, sr_variance_across_trials: float, *,
                          periods_per_year: float | None = None) -> float:
    """PSR against the Sharpe expected from the best of ``n_trials`` unskilled trials.

    ``sr_variance_across_trials`` is the variance of the per-bar Sharpe ratios of all the
    configurations tried (pass ``periods_per_year`` to give it for annualised Sharpes).
    """
    v = _per_bar(float(sr_variance_across_trials), periods_per_year, 1.0)
    return probabilistic_sharpe_ratio(returns, expected_max_sharpe(n_trials, v))
