"""Seeded synthetic markets (engine.synthetic) whose output is an ordinary bars frame.

Two generators and three shocks, all reproducible for a given integer seed.

**Regime-switching Gaussian model** (:class:`RegimeModel`, :func:`calibrate`,
:func:`simulate_regimes`). The market is always in one of ``k`` regimes (by default
``bull``, ``bear``, ``sideways``, ``high_vol``). The regime follows a first-order Markov
chain with a ``k x k`` row-stochastic daily transition matrix. On a day spent in regime
``s`` the vector of daily close-to-close log returns of the ``n`` assets is drawn from a
multivariate normal distribution with mean ``means[s]`` and covariance ``covs[s]``.
Mixing the regimes in their stationary proportions gives the unconditional mean
``sum_s pi_s * means[s]`` and covariance
``sum_s pi_s * (covs[s] + means[s] means[s]') - mu mu'``; because :func:`calibrate`
estimates every regime from the same days it labels, this mixture reproduces the
full-sample mean and covariance of the calibration data (approximately: the stationary
distribution of the counted transitions is close to, not equal to, the label frequencies).

**Stationary block bootstrap** (:func:`block_bootstrap`, Politis and Romano 1994). Whole
cross-sectional days of historical log returns are resampled, so the cross-correlation of
the assets is kept exactly and short-range serial dependence is kept within blocks.
Blocks start at a uniformly drawn historical day, their lengths are geometric with mean
``mean_block``, and a block that reaches the last historical day wraps to the first.

**Bars from returns.** Both generators turn a ``(n_days x n_assets)`` matrix of log
returns ``r`` into OHLCV bars the same way. With ``P0`` the initial price,
``close[t] = P0 * exp(r[0] + ... + r[t])`` (so ``r[0]`` is the return from ``P0`` to the
first close). ``open[t] = close[t-1] * exp(g)`` with ``close[-1] = P0`` and
``g ~ N(0, (0.2 * sigma)^2)``, where ``sigma`` is the asset's daily volatility (that of the
day's regime for the regime model, the historical one for the bootstrap);
``high = max(open, close) * exp(0.5 * sigma * |z1|)`` and
``low = min(open, close) * exp(-0.5 * sigma * |z2|)`` with standard normal ``z1, z2``;
``volume = 1e6 * exp(0.3 * z3)``. Timestamps are consecutive business days
(Monday to Friday, no holidays) starting on ``start`` (rolled forward to a Monday if it
falls on a weekend), as timezone-naive ``Datetime('ns')``.

**Shocks** (:func:`crash`, :func:`vol_spike`, :func:`correlation_shock`,
:func:`apply_shocks`) edit the close-to-close log returns of a :class:`SyntheticPath` in
a window of bars and rebuild the prices: every close from the window on is multiplied by
the exponential of the cumulative change in log return, each open by the factor of the
previous close, and the high/low wicks keep their original log distance from
``max(open, close)`` / ``min(open, close)``. Bars before the window, timestamps, assets and
volume are unchanged. The return of bar ``t`` is ``log(close[t] / close[t-1])``, so a
window cannot start at bar 0 (which has no previous close in the frame).

**Intraday bars** (:func:`intraday_bars`): seeded minute-to-hourly OHLCV with trading
sessions, holidays and missing bars, for tests and examples (see its module).

Every path is a :class:`SyntheticPath`: the bars, a frame of the regime of each bar and
the seed. Path ``i`` of a call is generated from child ``i`` of
``np.random.SeedSequence(seed)``, so it does not depend on how many paths were asked for.
"""

from engine.synthetic._bootstrap import block_bootstrap, stationary_bootstrap_indices
from engine.synthetic._intraday import intraday_bars
from engine.synthetic._paths import REGIME_NAMES, SHOCK_KINDS, SyntheticPath
from engine.synthetic._planted import planted_signal_market
from engine.synthetic._regimes import (
    RegimeModel,
    calibrate,
    count_transitions,
    label_regimes,
    simulate_regimes,
    stationary_distribution,
)
from engine.synthetic._shocks import apply_shocks, correlation_shock, crash, vol_spike

__all__ = [
    "REGIME_NAMES", "SHOCK_KINDS", "RegimeModel", "SyntheticPath", "apply_shocks",
    "block_bootstrap", "calibrate", "correlation_shock", "count_transitions", "crash",
    "intraday_bars",
    "label_regimes", "planted_signal_market", "simulate_regimes", "stationary_bootstrap_indices",
    "stationary_distribution", "vol_spike",
]
