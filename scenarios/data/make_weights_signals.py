"""Build ``weights_signals.csv``, the bring-your-own-signals file of ``weights_file.yaml``.

Run from anywhere:  python scenarios/data/make_weights_signals.py

It stands in for weights computed outside Alfred (a notebook, another system): monthly
inverse-volatility weights over five bundled S&P 500 stocks, 2018-2022. Each row dated t
uses closes up to and including t only (a trailing 63-bar volatility), so the file obeys
the signals as-of rule; the engine then fills it at the next bar. The output is
deterministic, and a test checks that the committed file matches this script.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import engine

ASSETS = ["AAPL", "JNJ", "KO", "MSFT", "XOM"]
LOOKBACK_BARS = 63
OUTPUT = Path(__file__).with_name("weights_signals.csv")


def build() -> pl.DataFrame:
    bars = engine.load_bars("sp500_stocks", assets=ASSETS, start="2017-06-01", end="2022-12-31")
    vol = bars.sort("asset", "ts").with_columns(
        (pl.col("close") / pl.col("close").shift(1).over("asset") - 1.0)
        .rolling_std(LOOKBACK_BARS).over("asset").alias("vol")
    )
    # The last bar of each calendar month is the decision bar.
    month_end = vol.with_columns(pl.col("ts").dt.strftime("%Y-%m").alias("month")).filter(
        pl.col("ts") == pl.col("ts").max().over("month", "asset")
    )
    month_end = month_end.filter(pl.col("ts") >= pl.datetime(2018, 1, 1)).drop_nulls("vol")
    weights = month_end.with_columns((1.0 / pl.col("vol")).alias("inv")).with_columns(
        # Rounded *down* to 6 decimals so a month's weights never sum above 1 (the
        # engine rejects weights above max_gross leverage rather than scaling them).
        ((pl.col("inv") / pl.col("inv").sum().over("ts") * 1e6).floor() / 1e6)
        .alias("target_weight")
    )
    return weights.select("ts", "asset", "target_weight").sort("ts", "asset")


if __name__ == "__main__":
    frame = build()
    frame.write_csv(OUTPUT, datetime_format="%Y-%m-%d")
    print(f"wrote {frame.height} rows to {OUTPUT}")
