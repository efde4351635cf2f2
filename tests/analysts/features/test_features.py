from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from analysts.features import (
    FeatureConfig,
    FeatureScaler,
    ablation_report,
    add_targets,
    build_features,
    clear_feature_cache,
    feature_label_correlation,
    pick_least_correlated,
)
from engine.errors import ConfigError, DataError
from tests.analysts._ml_helpers import close_only, ohlcv_bars


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return ohlcv_bars(260, 3, seed=1)


@pytest.fixture(scope="module")
def feats(bars):
    return build_features(bars)


def _asset(frame: pl.DataFrame, asset: str, column: str) -> np.ndarray:
    return frame.filter(pl.col("asset") == asset)[column].fill_null(np.nan).to_numpy()


def _raw(bars: pl.DataFrame, asset: str, column: str) -> np.ndarray:
    return bars.filter(pl.col("asset") == asset).sort("ts")[column].to_numpy()


def _sma(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for i in range(n - 1, len(x)):
        out[i] = x[i - n + 1:i + 1].mean()
    return out


def _ewm(x: np.ndarray, alpha: float, min_samples: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    value, seen = np.nan, 0
    for i, v in enumerate(x):
        if np.isnan(v):
            out[i] = value if seen >= min_samples else np.nan
            continue
        value = v if seen == 0 else alpha * v + (1 - alpha) * value
        seen += 1
        out[i] = value if seen >= min_samples else np.nan
    return out


def test_auto_groups_follow_the_columns(bars):
    full = build_features(bars)
    assert {"atr", "stochastic", "williams_r", "obv", "volume", "parkinson",
            "garman_klass", "price"} <= set(full.groups)
    only_close = build_features(close_only(bars))
    assert "atr" not in only_close.groups and "obv" not in only_close.groups
    assert "ma_gap_180" in only_close.columns and "rsi_14" in only_close.columns
    assert "vix" not in full.groups


def test_returns_and_moving_average_gaps_match_numpy(bars, feats):
    close = _raw(bars, "S1", "close")
    np.testing.assert_allclose(_asset(feats.frame, "S1", "ret_5")[5:], close[5:] / close[:-5] - 1)
    np.testing.assert_allclose(_asset(feats.frame, "S1", "ma_gap_30"), close / _sma(close, 30) - 1)
    assert np.isnan(_asset(feats.frame, "S1", "ma_gap_180")[:179]).all()


def test_rsi_macd_bollinger_match_slow_references(bars, feats):
    close = _raw(bars, "S0", "close")
    change = np.concatenate([[np.nan], np.diff(close)])
    gain = _ewm(np.where(np.isnan(change), np.nan, np.clip(change, 0, None)), 1 / 14, 14)
    loss = _ewm(np.where(np.isnan(change), np.nan, np.clip(-change, 0, None)), 1 / 14, 14)
    np.testing.assert_allclose(_asset(feats.frame, "S0", "rsi_14"), 100 * gain / (gain + loss))

    def ema(x, span):
        return _ewm(x, 2 / (span + 1), span)

    line = ema(close, 12) - ema(close, 26)
    np.testing.assert_allclose(_asset(feats.frame, "S0", "macd"), line / close)
    signal = ema(line, 9)
    np.testing.assert_allclose(_asset(feats.frame, "S0", "macd_hist"), (line - signal) / close)

    mean = _sma(close, 20)
    std = np.array([close[max(i - 19, 0):i + 1].std() if i >= 19 else np.nan
                    for i in range(len(close))])
    np.testing.assert_allclose(_asset(feats.frame, "S0", "bb_pctb_20"),
                               (close - (mean - 2 * std)) / (4 * std))


def test_range_and_volume_indicators_match_slow_references(bars, feats):
    o, h, lo, c, v = (_raw(bars, "S2", k) for k in ("open", "high", "low", "close", "volume"))
    n = 14
    low_n = np.array([lo[i - n + 1:i + 1].min() if i >= n - 1 else np.nan for i in range(len(c))])
    high_n = np.array([h[i - n + 1:i + 1].max() if i >= n - 1 else np.nan for i in range(len(c))])
    np.testing.assert_allclose(_asset(feats.frame, "S2", "stoch_k_14"),
                               100 * (c - low_n) / (high_n - low_n))
    np.testing.assert_allclose(_asset(feats.frame, "S2", "williams_r_14"),
                               -100 * (high_n - c) / (high_n - low_n))
    prev = np.concatenate([[np.nan], c[:-1]])
    tr = np.nanmax(np.vstack([h - lo, np.abs(h - prev), np.abs(lo - prev)]), axis=0)
    np.testing.assert_allclose(_asset(feats.frame, "S2", "atr_pct_14"), _ewm(tr, 1 / 14, 14) / c)
    obv = np.cumsum(np.concatenate([[0.0], np.sign(np.diff(c))]) * v)
    traded = np.array([v[i - 19:i + 1].sum() if i >= 19 else np.nan for i in range(len(c))])
    expected = np.full(len(c), np.nan)
    expected[20:] = (obv[20:] - obv[:-20]) / traded[20:]
    np.testing.assert_allclose(_asset(feats.frame, "S2", "obv_change_20"), expected)
    np.testing.assert_allclose(_asset(feats.frame, "S2", "volume_ratio_20"), v / _sma(v, 20))
    log_ret = np.concatenate([[np.nan], np.log(c[1:] / c[:-1])])
    hv = np.array([log_ret[i - 19:i + 1].std(ddof=1) if i >= 20 else np.nan
                   for i in range(len(c))])
    np.testing.assert_allclose(_asset(feats.frame, "S2", "hist_vol_20"), hv)
    park = np.sqrt(_sma(np.log(h / lo) ** 2, 20) / (4 * np.log(2)))
    np.testing.assert_allclose(_asset(feats.frame, "S2", "parkinson_vol_20"), park)
    gk = np.sqrt(_sma(0.5 * np.log(h / lo) ** 2 - (2 * np.log(2) - 1) * np.log(c / o) ** 2, 20))
    np.testing.assert_allclose(_asset(feats.frame, "S2", "garman_klass_vol_20"), gk)


def test_vol_regime_ratio_and_label(feats):
    frame = feats.frame.drop_nulls("vol_regime_ratio")
    ratio = frame["vol_regime_ratio"].to_numpy()
    expected = np.where(ratio < 0.8, "LOW", np.where(ratio > 1.2, "HIGH", "NORMAL"))
    assert frame["vol_regime"].to_list() == expected.tolist()
    np.testing.assert_array_equal(frame["vol_regime_code"].to_numpy(),
                                  np.where(ratio < 0.8, -1.0, np.where(ratio > 1.2, 1.0, 0.0)))
    assert set(expected) == {"LOW", "NORMAL", "HIGH"}


def test_cross_sectional_ranks_are_scaled_ranks_within_each_ts(feats):
    frame = feats.frame.drop_nulls("cs_rank_ret_1")
    for _, part in frame.group_by("ts"):
        values = part["ret_1"].to_numpy()
        ranks = values.argsort().argsort() / (len(values) - 1)
        np.testing.assert_allclose(part["cs_rank_ret_1"].to_numpy(), ranks)


def test_vix_features_are_joined_as_of(bars):
    days = sorted(bars["ts"].unique().to_list())
    # VIX every other day: a bar between two VIX closes sees the earlier one
    vix = pl.DataFrame({"ts": days[::2], "close": np.linspace(10, 40, len(days[::2]))})
    feats = build_features(close_only(bars), vix=vix)
    assert "vix" in feats.groups
    level = feats.frame.filter(pl.col("asset") == "S0").sort("ts")["vix_level"].to_numpy()
    np.testing.assert_allclose(level[::2], vix["close"].to_numpy())
    np.testing.assert_allclose(level[1::2], vix["close"].to_numpy()[: len(level[1::2])])


def test_missing_columns_and_all_nan_features_are_clear_errors(bars):
    with pytest.raises(DataError, match=r"'atr' needs bars column\(s\) \['high', 'low'\]"):
        build_features(close_only(bars), FeatureConfig(groups=("atr",)))
    with pytest.raises(DataError, match="'vix' needs a VIX series"):
        build_features(bars, FeatureConfig(groups=("vix",)))
    short = bars.filter(pl.col("ts") < datetime(2020, 3, 1))  # 60 bars < 180
    with pytest.raises(DataError, match=r"'ma_gap_180'\] are NaN on every row.*needs 181 bars"):
        build_features(short, FeatureConfig(groups=("ma_gaps",)))
    no_volume = bars.with_columns(pl.lit(None, pl.Float64).alias("volume"))
    assert "volume" not in build_features(no_volume).groups  # auto skips the empty column
    with pytest.raises(ValueError, match="unknown feature group"):
        FeatureConfig(groups=("rsii",))


def test_features_are_cached_per_dataset_and_config(bars, tmp_path):
    clear_feature_cache()
    first = build_features(bars)
    assert build_features(bars.clone()) is first  # same content, same cache entry
    other = build_features(bars, FeatureConfig(ma_windows=(5, 10)))
    assert other is not first and "ma_gap_5" in other.columns
    on_disk = build_features(bars, cache_dir=tmp_path)
    files = list(tmp_path.glob("features-*.parquet"))
    assert len(files) == 1
    clear_feature_cache()
    again = build_features(bars, cache_dir=tmp_path)
    assert again.columns == on_disk.columns
    assert again.frame.equals(on_disk.frame)


def test_targets_are_the_assets_own_future_bars():
    ts = [datetime(2024, 1, 1) + timedelta(days=i) for i in range(4)]
    frame = pl.DataFrame({"ts": ts * 2, "asset": ["A"] * 4 + ["B"] * 4,
                          "close": [10.0, 11.0, 9.9, 12.0, 5.0, 5.0, 6.0, 3.0]})
    out = add_targets(frame, (1, 2)).sort("asset", "ts")
    a = out.filter(pl.col("asset") == "A")
    np.testing.assert_allclose(a["target_return_1"].to_numpy()[:3], [0.1, -0.1, 12 / 9.9 - 1])
    assert a["target_up_1"].to_list() == [1.0, 0.0, 1.0, None]
    assert a["target_return_2"].to_list()[2:] == [None, None]
    assert a["label_ts_2"].to_list()[:2] == [ts[2], ts[3]]
    b = out.filter(pl.col("asset") == "B")
    assert b["target_up_1"].to_list() == [0.0, 1.0, 0.0, None]  # flat counts as not up
    with pytest.raises(ConfigError):
        add_targets(frame, (0,))


def test_scaler_fits_the_training_window_and_refuses_other_columns():
    train = pl.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0, 5.0, 5.0, 5.0]})
    scaler = FeatureScaler().fit(train)
    np.testing.assert_allclose(scaler.mean, [2.5, 5.0])
    np.testing.assert_allclose(scaler.std, [np.std([1, 2, 3, 4]), 1.0])  # constant -> 1
    later = pl.DataFrame({"a": [100.0], "b": [7.0]})
    np.testing.assert_allclose(scaler.transform(later),
                               [[(100 - 2.5) / np.std([1, 2, 3, 4]), 2.0]], rtol=1e-6)
    with pytest.raises(DataError, match=r"missing \['b'\], unexpected \['c'\]"):
        scaler.transform(pl.DataFrame({"a": [1.0], "c": [2.0]}))
    with pytest.raises(DataError, match="different order"):
        scaler.transform(later.select("b", "a"))
    with pytest.raises(DataError, match=r"\['c'\] have no finite value"):
        FeatureScaler().fit(pl.DataFrame({"a": [1.0, 2.0], "c": [None, float("nan")]}))
    restored = FeatureScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(restored.transform(later), scaler.transform(later))


def test_feature_label_correlation_matches_numpy():
    rng = np.random.default_rng(4)
    x = rng.normal(size=300)
    frame = pl.DataFrame({"ts": np.arange(300), "strong": x, "weak": rng.normal(size=300),
                          "y": 0.8 * x + rng.normal(scale=0.5, size=300)})
    out = feature_label_correlation(frame, ["weak", "strong"], "y")
    assert out["feature"].to_list() == ["strong", "weak"]
    np.testing.assert_allclose(out["pearson"][0], np.corrcoef(x, frame["y"].to_numpy())[0, 1])
    ranks = [frame[c].rank().to_numpy() for c in ("strong", "y")]
    np.testing.assert_allclose(out["spearman"][0], np.corrcoef(*ranks)[0, 1])


def test_ablation_finds_the_feature_that_carries_the_signal():
    rng = np.random.default_rng(5)
    n = 400
    frame = pl.DataFrame({"ts": np.arange(n), "signal": rng.normal(size=n),
                          "noise1": rng.normal(size=n), "noise2": rng.normal(size=n)})
    frame = frame.with_columns((2 * pl.col("signal") + 0.1 * pl.Series(rng.normal(size=n)))
                               .alias("y"))
    out = ablation_report(frame, ["signal", "noise1", "noise2"], "y")
    assert out["removed"][0] == "signal"
    assert out.filter(pl.col("removed") == "signal")["delta_mse"][0] > 1.0
    assert abs(out.filter(pl.col("removed") == "noise1")["delta_mse"][0]) < 0.01
    assert out.filter(pl.col("removed") == "<none>")["delta_mse"][0] == 0.0


def test_greedy_universe_picks_the_least_correlated_stock_first():
    rng = np.random.default_rng(6)
    n = 300
    base = rng.normal(0, 0.01, n)
    returns = {"A": base, "B": base + rng.normal(0, 0.002, n), "C": rng.normal(0, 0.01, n),
               "D": 0.7 * base + rng.normal(0, 0.01, n)}
    ts = [datetime(2021, 1, 1) + timedelta(days=i) for i in range(n)]
    bars = pl.concat([pl.DataFrame({"ts": ts, "asset": a, "close": 100 * np.cumprod(1 + r)})
                      for a, r in returns.items()])
    assert pick_least_correlated(bars, "A", 2) == ["A", "C"]
    assert pick_least_correlated(bars, "A", 4) == ["A", "C", "D", "B"]
    with pytest.raises(ConfigError, match="not in the bars' assets"):
        pick_least_correlated(bars, "Z", 2)
