"""A synthetic market with a planted, known predictable component: a power test.

The base returns come from the regime-switching generator (a calm and a turbulent
regime, assets correlated 0.3); on top of them each asset's daily log return carries a
delayed reversal of known strength ``c``::

    r[t] = e[t] - c * (r[t-2] + r[t-3] + r[t-4] + r[t-5] + r[t-6])

the five-day return that ended two bars ago partly reverses. A strategy deciding at the
close of ``t`` fills at the next close and holds the bar from ``t+1`` to ``t+2``, whose
expected log return, given every bar up to ``t``, is
``-c * (E[r[t+1]] + r[t] + r[t-1] + r[t-2] + r[t-3])`` with
``E[r[t+1]] = -c * (r[t-1] + ... + r[t-5])``. That expectation is the *oracle* signal:
computed from bars up to ``t`` only, it is the best forecast any analyst could trade on.
Its correlation with the realised return is about ``2 c``. An analyst that recovers the
planted signal earns a share of the oracle's Sharpe ratio; at ``c = 0`` nothing is
predictable and an honest evaluation finds no skill.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.errors import ConfigError
from engine.synthetic._regimes import RegimeModel, simulate_regimes


def planted_signal_market(strength: float, *, n_assets: int = 10, n_days: int = 1500,
                          seed: int = 0, start: str = "2010-01-04"
                          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Close-only bars (``ts, asset, close``) and the oracle signals (``ts, asset,
    planted_return``: the true expected simple return of the bar after next).

    ``strength``: the reversal coefficient ``c`` in [0, 0.25] (module docstring).
    """
    if not 0.0 <= strength <= 0.25:
        raise ConfigError(f"strength must lie in [0, 0.25], got {strength}")
    if n_assets < 2:
        raise ConfigError(f"n_assets must be at least 2, got {n_assets}")
    assets = tuple(f"P{i:02d}" for i in range(n_assets))
    corr = np.full((n_assets, n_assets), 0.3) + 0.7 * np.eye(n_assets)
    model = RegimeModel(
        names=("calm", "turbulent"), transition=np.array([[0.98, 0.02], [0.05, 0.95]]),
        means=np.array([[3e-4] * n_assets, [-5e-4] * n_assets]),
        covs=np.stack([corr * 0.01**2, corr * 0.025**2]), assets=assets,
        initial=np.array([5 / 7, 2 / 7]))
    [path] = simulate_regimes(model, n_days, seed=seed, start=start)
    wide = path.bars.pivot(on="asset", index="ts", values="close").sort("ts")
    closes = wide.select(assets).to_numpy()
    base = np.diff(np.log(np.vstack([np.full(n_assets, 100.0), closes])), axis=0)
    returns = np.zeros_like(base)
    for t in range(n_days):  # the planted delayed reversal, in log returns
        returns[t] = base[t] - strength * returns[max(t - 6, 0):max(t - 1, 0)].sum(axis=0)
    close = 100.0 * np.exp(np.cumsum(returns, axis=0))
    window = np.cumsum(np.vstack([np.zeros((1, n_assets)), returns]), axis=0)
    last5 = window[1:] - window[np.maximum(np.arange(1, n_days + 1) - 5, 0)]  # r[t-4..t]
    last4 = window[1:] - window[np.maximum(np.arange(1, n_days + 1) - 4, 0)]  # r[t-3..t]
    previous5 = np.vstack([np.zeros((1, n_assets)), last5[:-1]])  # r[t-5..t-1]
    expected = np.expm1(-strength * (last4 - strength * previous5))  # known at t
    ts = wide["ts"]
    frame = lambda values, name: pl.DataFrame(  # noqa: E731
        {"ts": ts, **{a: values[:, i] for i, a in enumerate(assets)}}).unpivot(
        index="ts", variable_name="asset", value_name=name).sort("ts", "asset")
    return frame(close, "close"), frame(expected, "planted_return")
