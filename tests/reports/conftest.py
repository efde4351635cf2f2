"""Shared inputs for the reports tests: real returns and one small real backtest."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine

# A tiny series whose metrics are worked out by hand in test_metrics_hand.py.
TINY_RETURNS = np.array([0.10, -0.05, 0.02, -0.03, 0.04])
TINY_TS = np.array(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
                   dtype="datetime64[ns]")
TINY_BENCHMARK = np.array([0.05, -0.02, 0.01, -0.01, 0.03])


def close_to_returns(bars: pl.DataFrame) -> pl.DataFrame:
    """Simple close-to-close returns (ts, return) of a single-asset bars frame."""
    return (bars.sort("ts")
            .select("ts", (pl.col("close") / pl.col("close").shift(1) - 1.0).alias("return"))
            .drop_nulls())


@pytest.fixture(scope="session")
def sp500_returns() -> pl.DataFrame:
    """33 years of daily S&P 500 returns from the bundled data."""
    return close_to_returns(engine.load_bars("sp500_index"))


@pytest.fixture(scope="session")
def backtest_pair():
    """Three stocks over 2011-2012, a long/short weight schedule, with and without costs,
    and the S&P 500 as benchmark (returns on the index's own dates)."""
    bars = engine.load_bars("sp500_stocks", assets=["AAPL", "JNJ", "CVX"],
                            start="2011-01-01", end="2012-12-31")
    ts = bars["ts"].unique().sort()
    phase = (np.arange(ts.len()) // 15) % 3
    rows = []
    for asset, weights in (("AAPL", (0.5, -0.3, 0.0)), ("JNJ", (0.3, 0.3, 0.0)),
                           ("CVX", (-0.2, 0.4, 0.0))):
        w = np.asarray(weights)[phase]
        rows.append(pl.DataFrame({"ts": ts, "asset": asset, "target_weight": w}))
    plan = pl.concat(rows).sort("ts", "asset")
    result = engine.run_backtest(bars, plan)
    gross = engine.run_backtest(bars, plan, costs=engine.Costs.zero())
    index = engine.load_bars("sp500_index", start="2010-12-01", end="2012-12-31")
    benchmark = close_to_returns(index).filter(pl.col("ts") >= ts[0])
    return result, gross, benchmark
