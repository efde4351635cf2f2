"""Observation features against slow, obvious references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from portfolio import EnvConfig, build_market
from portfolio._features import log_returns, rolling_vol
from tests.portfolio.conftest import make_panel, make_signals


def test_rolling_vol_matches_pandas():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.02, (200, 3))
    expected = pd.DataFrame(r).rolling(15, min_periods=2).std(ddof=1).fillna(0.0).to_numpy()
    np.testing.assert_allclose(rolling_vol(r, 15), expected, atol=1e-12)


def test_log_returns_are_zero_across_gaps():
    close = np.array([[100.0], [110.0], [np.nan], [121.0], [133.1]])
    np.testing.assert_allclose(log_returns(close)[:, 0],
                               [0.0, np.log(1.1), 0.0, 0.0, np.log(1.1)])


def test_feature_values_by_hand():
    panel = make_panel(2, n_bars=60, holes=0.05)
    signals = make_signals(panel).filter(pl.col("ts").dt.weekday() == 1)  # weekly rows
    config = EnvConfig(signals=["pred_return", "prob_up"], window=2, vol_window=10,
                       signal_norm="zscore")
    market = build_market(panel, signals, config)
    f = market.features.reshape(panel.n_bars, panel.n_assets, config.n_asset_features)
    r = log_returns(panel.close)
    vol = rolling_vol(r, 10)
    raw = signals.pivot(on="asset", index="ts", values="pred_return").sort("ts")
    for t in (35, 47, 59):
        live = np.isfinite(panel.close[t])
        # as-of signal: the last weekly row at or before t, z-scored over tradable assets
        rows = raw.filter(pl.col("ts") <= pl.lit(panel.ts[t]).cast(pl.Datetime("ns")))
        last = np.array([rows[a].drop_nulls()[-1] for a in panel.assets])
        x = last[live]
        z = (x - x.mean()) / x.std()
        np.testing.assert_allclose(f[t, live, 0], z, rtol=1e-5, atol=1e-6)
        assert (f[t, ~live] == 0).all()
        j = int(np.flatnonzero(live)[0])
        expected = [r[t, j] / max(vol[t, j], 1e-4), r[t - 1, j] / max(vol[t, j], 1e-4),
                    vol[t, j] * np.sqrt(252)]
        np.testing.assert_allclose(f[t, j, 2:], np.clip(expected, -10, 10), rtol=1e-5)


def test_features_are_clipped_and_signals_can_be_raw():
    panel = make_panel(1, n_bars=50)
    signals = make_signals(panel).with_columns(pl.col("pred_return") * 1e4)
    market = build_market(panel, signals, EnvConfig(signal_norm="none", obs_clip=3.0))
    assert market.features.max() == 3.0 and market.features.min() == -3.0
    assert market.features.dtype == np.float32
