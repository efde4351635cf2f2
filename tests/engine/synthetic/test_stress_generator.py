"""Tests for alfred.stress: calibration reproduction, bootstrap, seeds, contract, shocks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl
import pytest

from engine.data import load_bars, validate_bars
from engine.errors import ConfigError, DataError
from engine.synthetic import (
    REGIME_NAMES,
    RegimeModel,
    apply_shocks,
    block_bootstrap,
    calibrate,
    correlation_shock,
    crash,
    simulate_regimes,
    stationary_bootstrap_indices,
    vol_spike,
)

ASSETS = ["AAPL", "JPM", "KO", "MSFT", "XOM"]  # sorted, as in the output frames
START, END = "2000-01-01", "2019-12-31"
N_PATHS, N_DAYS = 20, 5000  # 100_000 simulated days in total (one path would pass 2262)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return load_bars("sp500_stocks")


@pytest.fixture(scope="module")
def hist_returns(bars) -> np.ndarray:
    wide = (
        bars.filter(
            pl.col("asset").is_in(ASSETS)
            & pl.col("ts").is_between(pl.datetime(2000, 1, 1), pl.datetime(2019, 12, 31))
        )
        .pivot(on="asset", index="ts", values="close")
        .sort("ts")
        .select(ASSETS)
        .drop_nulls()
        .to_numpy()
    )
    return np.diff(np.log(wide), axis=0)


@pytest.fixture(scope="module")
def model(bars) -> RegimeModel:
    return calibrate(bars, assets=ASSETS, start=START, end=END)


@pytest.fixture(scope="module")
def sim_paths(model):
    return simulate_regimes(model, N_DAYS, N_PATHS, seed=7)


def path_returns(path) -> np.ndarray:
    """Close-to-close log returns (T-1 x n) in ASSETS order."""
    wide = path.bars.pivot(on="asset", index="ts", values="close").sort("ts").select(ASSETS)
    return np.diff(np.log(wide.to_numpy()), axis=0)


def corr(x: np.ndarray) -> np.ndarray:
    return np.corrcoef(x, rowvar=False)


def check_moments(
    paths_returns: list[np.ndarray], hist: np.ndarray, *, vol_rtol=0.05, corr_atol=0.05
):
    """Mean within 4 batch standard errors, annualised vol within vol_rtol, corr within corr_atol.

    The standard error of the simulated mean is estimated from the spread of the
    per-path means (batch means), which accounts for the serial dependence that regimes
    or bootstrap blocks introduce.
    """
    pooled = np.vstack(paths_returns)
    path_means = np.array([r.mean(axis=0) for r in paths_returns])
    se = path_means.std(axis=0, ddof=1) / np.sqrt(len(paths_returns))
    z = (pooled.mean(axis=0) - hist.mean(axis=0)) / se
    hist_vol = hist.std(axis=0, ddof=1) * np.sqrt(252)
    sim_vol = pooled.std(axis=0, ddof=1) * np.sqrt(252)
    corr_err = np.abs(corr(pooled) - corr(hist)).max()
    assert np.all(np.abs(z) < 4), f"mean off by {z} standard errors"
    np.testing.assert_allclose(sim_vol, hist_vol, rtol=vol_rtol)
    assert corr_err < corr_atol, f"correlation off by {corr_err:.3f}"
    return z, hist_vol, sim_vol, corr_err


# ------------------------------------------------------------------ calibration


def test_calibrated_model_is_well_formed(model):
    assert model.names == REGIME_NAMES
    assert model.assets == tuple(ASSETS)
    np.testing.assert_allclose(model.transition.sum(axis=1), 1.0, atol=1e-12)
    assert (model.transition > 0).all()
    np.testing.assert_allclose(model.initial @ model.transition, model.initial, atol=1e-10)
    for c in model.covs:
        assert np.linalg.eigvalsh(c).min() > 0
    # Regimes are persistent and high_vol really has higher vol than bull.
    assert np.diag(model.transition).min() > 0.5
    hv, bull = REGIME_NAMES.index("high_vol"), REGIME_NAMES.index("bull")
    assert (np.diag(model.covs[hv]) > np.diag(model.covs[bull])).all()


def test_stationary_mixture_reproduces_full_sample_moments(model, hist_returns):
    np.testing.assert_allclose(model.stationary_mean(), hist_returns.mean(axis=0), atol=2e-5)
    np.testing.assert_allclose(
        np.sqrt(np.diag(model.stationary_cov())), hist_returns.std(axis=0, ddof=1), rtol=0.01
    )


def test_simulation_reproduces_historical_moments(sim_paths, hist_returns, model):
    sims = [path_returns(p) for p in sim_paths]
    z, hist_vol, sim_vol, corr_err = check_moments(sims, hist_returns)
    # The checks have power: historical correlations are far from 0, so a generator that
    # dropped the cross-correlation would fail the 0.05 tolerance by a wide margin ...
    off = corr(hist_returns)[np.triu_indices(len(ASSETS), 1)]
    assert off.min() > 0.15
    # ... and it does: the same model with diagonal covariances fails the check.
    diag = dataclasses.replace(model, covs=np.stack([np.diag(np.diag(c)) for c in model.covs]))
    bad = [path_returns(p) for p in simulate_regimes(diag, 2000, N_PATHS, seed=7)]
    with pytest.raises(AssertionError, match="correlation off"):
        check_moments(bad, hist_returns)
    # A generator with zero drift is rejected by the mean check (large daily drift vs SE).
    zero = dataclasses.replace(model, means=np.zeros_like(model.means))
    bad = [path_returns(p) for p in simulate_regimes(zero, N_DAYS, N_PATHS, seed=7)]
    with pytest.raises(AssertionError, match="standard errors"):
        check_moments(bad, hist_returns)


def test_model_dict_round_trip(model):
    again = RegimeModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    with pytest.raises(ConfigError, match="missing keys"):
        RegimeModel.from_dict({"names": ["a"]})


def test_model_rejects_bad_transition(model):
    bad = model.transition.copy()
    bad[0, 0] += 0.5
    with pytest.raises(ConfigError, match="summing to 1"):
        dataclasses.replace(model, transition=bad)


# ------------------------------------------------------------------ bootstrap


def test_block_bootstrap_reproduces_moments(bars, hist_returns):
    paths = block_bootstrap(
        bars, N_DAYS, N_PATHS, seed=11, assets=ASSETS, hist_start=START, hist_end=END
    )
    check_moments([path_returns(p) for p in paths], hist_returns)
    # source_ts points at real historical days.
    src = paths[0].regimes["source_ts"]
    assert src.min().year >= 2000 and src.max().year <= 2019
    assert set(paths[0].regimes["regime"].unique()) == {"bootstrap"}


def test_bootstrap_block_lengths_have_requested_mean():
    rng = np.random.default_rng(3)
    n_obs, n_days, mean_block = 5000, 200_000, 20.0
    idx = stationary_bootstrap_indices(n_obs, n_days, mean_block=mean_block, rng=rng)
    continues = idx[1:] == (idx[:-1] + 1) % n_obs
    n_blocks = 1 + int((~continues).sum())
    assert n_days / n_blocks == pytest.approx(mean_block, rel=0.03)
    assert idx.min() >= 0 and idx.max() < n_obs
    # Wrapping happens: some block runs from the last observation to the first.
    assert ((idx[:-1] == n_obs - 1) & (idx[1:] == 0)).any()
    # Every observation is roughly equally likely (uniform starts plus wrap-around).
    counts = np.bincount(idx, minlength=n_obs)
    assert counts.mean() == pytest.approx(n_days / n_obs)


# ------------------------------------------------------------------ seeds and contract


def test_same_seed_same_output_different_seed_different(model, bars):
    a = simulate_regimes(model, 300, 2, seed=5)
    b = simulate_regimes(model, 300, 2, seed=5)
    c = simulate_regimes(model, 300, 2, seed=6)
    for x, y in zip(a, b, strict=True):
        assert x.bars.equals(y.bars) and x.regimes.equals(y.regimes)
    assert not a[0].bars.equals(c[0].bars)
    assert not a[0].bars.equals(a[1].bars)
    # Path i does not depend on how many paths were asked for.
    assert simulate_regimes(model, 300, 1, seed=5)[0].bars.equals(a[0].bars)
    kw = {"seed": 9, "assets": ASSETS, "hist_start": START, "hist_end": END}
    assert block_bootstrap(bars, 300, **kw)[0].bars.equals(block_bootstrap(bars, 300, **kw)[0].bars)
    kw["seed"] = 10
    assert not block_bootstrap(bars, 300, **kw)[0].bars.equals(
        block_bootstrap(bars, 300, **{**kw, "seed": 9})[0].bars
    )


def test_output_is_a_valid_bars_frame(sim_paths, bars):
    boot = block_bootstrap(bars, 500, seed=1, assets=ASSETS, hist_start=START, hist_end=END)[0]
    for path in (sim_paths[0], boot):
        frame = path.bars
        validate_bars(frame)
        assert frame.columns == ["ts", "asset", "open", "high", "low", "close", "volume"]
        assert frame.schema["ts"] == pl.Datetime("ns")
        assert frame.schema["asset"] == pl.Utf8
        assert frame["ts"].dtype.time_zone is None
        assert (frame["volume"] > 0).all()
        n_ts = frame["ts"].n_unique()
        assert path.regimes.height == n_ts
        assert path.regimes["ts"].n_unique() == n_ts
        assert path.regimes["ts"].equals(frame["ts"].unique(maintain_order=True))
        assert frame["ts"].dt.weekday().max() <= 5  # Monday=1 .. Friday=5
    assert set(sim_paths[0].regimes["regime"].unique()) <= set(REGIME_NAMES)


def test_initial_prices_and_start(model):
    p = simulate_regimes(
        model, 10, seed=1, start="2021-01-02", initial_prices={a: 50.0 for a in ASSETS}
    )[0]
    assert str(p.bars["ts"][0].date()) == "2021-01-04"  # Saturday rolls to Monday
    assert p.bars["open"].max() < 80
    with pytest.raises(ConfigError, match="initial_prices"):
        simulate_regimes(model, 10, seed=1, initial_prices={"AAPL": 1.0})
    with pytest.raises(ConfigError, match="2262"):
        simulate_regimes(model, 100_000, seed=1)


# ------------------------------------------------------------------ shocks


@pytest.fixture(scope="module")
def base(model):
    return simulate_regimes(model, 250, seed=3)[0]


def wide_close(path) -> np.ndarray:
    return (
        path.bars.pivot(on="asset", index="ts", values="close").sort("ts").select(ASSETS).to_numpy()
    )


def test_crash_scales_prices_after_window_exactly(base):
    at, days = 100, 5
    shocked = crash(base, drop=0.3, days=days, at=at)
    validate_bars(shocked.bars)
    ratio = wide_close(shocked) / wide_close(base)
    np.testing.assert_allclose(ratio[:at], 1.0, rtol=1e-12)
    np.testing.assert_allclose(ratio[at + days - 1 :], 0.7, rtol=1e-9)
    # Spread evenly in log terms over the window.
    np.testing.assert_allclose(
        np.diff(np.log(ratio[at - 1 : at + days]), axis=0), np.log(0.7) / days
    )
    assert shocked.bars["ts"].equals(base.bars["ts"]) and shocked.bars["asset"].equals(
        base.bars["asset"]
    )
    assert shocked.bars["volume"].equals(base.bars["volume"])
    # A date works like an index; one asset only.
    date = base.bars["ts"].unique().sort()[at]
    by_date = crash(base, drop=0.3, days=days, at=str(date.date()), assets=["XOM"])
    r = wide_close(by_date) / wide_close(base)
    np.testing.assert_allclose(r[-1], [1, 1, 1, 1, 0.7], rtol=1e-9)


@pytest.mark.parametrize("drop", [1.2, 1.0])
def test_crash_of_100_percent_or_more_is_refused(base, drop):
    with pytest.raises(ConfigError, match="100%"):
        crash(base, drop=drop, days=5, at=10)


def test_crash_rejects_non_positive_drop_and_overrun(base):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        crash(base, drop=0.0, days=5, at=10)
    with pytest.raises(ConfigError, match="overruns the path .* by 7 bars"):
        crash(base, drop=0.3, days=10, at=247)
    with pytest.raises(ConfigError, match="bar 0"):
        crash(base, drop=0.3, days=5, at=0)


def test_correlation_shock_drives_correlation_to_one(base):
    at, days = 50, 60
    before = corr(np.diff(np.log(wide_close(base)), axis=0)[at - 1 : at + days - 1])
    shocked = correlation_shock(base, days=days, at=at, strength=1.0)
    r_base = np.diff(np.log(wide_close(base)), axis=0)[at - 1 : at + days - 1]
    r = np.diff(np.log(wide_close(shocked)), axis=0)[at - 1 : at + days - 1]
    c = corr(r)
    off = np.triu_indices(len(ASSETS), 1)
    assert before[off].mean() < 0.8
    assert c[off].mean() > 0.95
    # Each asset keeps its own volatility and mean in the window.
    np.testing.assert_allclose(r.std(axis=0, ddof=1), r_base.std(axis=0, ddof=1), rtol=1e-9)
    np.testing.assert_allclose(r.mean(axis=0), r_base.mean(axis=0), atol=1e-12)
    validate_bars(shocked.bars)


def test_vol_spike_multiplies_window_std(base):
    at, days, factor = 30, 40, 3.0
    shocked = vol_spike(base, factor=factor, days=days, at=at)
    r0 = np.diff(np.log(wide_close(base)), axis=0)
    r1 = np.diff(np.log(wide_close(shocked)), axis=0)
    w = slice(at - 1, at + days - 1)
    np.testing.assert_allclose(r1[w].std(axis=0), factor * r0[w].std(axis=0), rtol=1e-9)
    np.testing.assert_allclose(r1[at + days :], r0[at + days :], atol=1e-12)
    validate_bars(shocked.bars)
    with pytest.raises(ConfigError, match="> 0"):
        vol_spike(base, factor=0.0, days=5, at=10)


def test_apply_shocks_chains_and_rejects_unknown_kind(base):
    chained = apply_shocks(
        base,
        [
            {"kind": "crash", "drop": 0.2, "days": 3, "at": 20},
            {"kind": "vol_spike", "factor": 2.0, "days": 10, "at": 40},
            {"kind": "correlation", "days": 10, "at": 60},
        ],
    )
    manual = correlation_shock(
        vol_spike(crash(base, drop=0.2, days=3, at=20), factor=2.0, days=10, at=40), days=10, at=60
    )
    assert chained.bars.equals(manual.bars)
    with pytest.raises(ConfigError, match="crash.*vol_spike.*correlation"):
        apply_shocks(base, [{"kind": "meteor"}])
    with pytest.raises(ConfigError, match="bad arguments"):
        apply_shocks(base, [{"kind": "crash", "drop": 0.2, "days": 3, "at": 20, "speed": 1}])


# ------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("n_paths", [0, -3])
def test_bad_n_paths(model, bars, n_paths):
    with pytest.raises(ConfigError, match="n_paths must be .* at least 1"):
        simulate_regimes(model, 10, n_paths, seed=1)
    with pytest.raises(ConfigError, match="n_paths must be .* at least 1"):
        block_bootstrap(bars, 10, n_paths, seed=1, assets=ASSETS)


@pytest.mark.parametrize("n_days", [1, 0, -5])
def test_bad_n_days(model, n_days):
    with pytest.raises(ConfigError, match="n_days must be .* at least 2"):
        simulate_regimes(model, n_days, seed=1)


def test_unknown_asset(bars):
    with pytest.raises(DataError, match=r"unknown assets \['ZZZ'\].*AAPL"):
        calibrate(bars, assets=["AAPL", "ZZZ"])
    with pytest.raises(DataError, match="unknown assets"):
        block_bootstrap(bars, 10, seed=1, assets=["ZZZ"])


def test_too_little_data(bars):
    with pytest.raises(DataError, match="needs at least 126"):
        calibrate(bars, assets=ASSETS, start="2019-01-01", end="2019-03-31")
    with pytest.raises(ConfigError, match="window must be"):
        calibrate(bars, assets=ASSETS, window=1)


def test_bad_bars_are_rejected(bars):
    broken = (
        bars.filter(pl.col("asset") == "AAPL")
        .head(300)
        .with_columns(
            pl.when(pl.int_range(pl.len()) == 5)
            .then(-1.0)
            .otherwise(pl.col("close"))
            .alias("close")
        )
    )
    with pytest.raises(DataError):
        calibrate(broken)
