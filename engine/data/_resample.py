"""Roll bars up to a coarser frequency without look-ahead.

A resampled bar is stamped with the timestamp of the *last* bar inside its bucket, not the
bucket's start or nominal end: that is the moment its close is known, so a decision keyed
on the resampled bar can never see data from later in the bucket (and a holiday-shortened
week is stamped Thursday, not a Friday that never traded).
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from engine.errors import ConfigError

from ._columns import CANONICAL_ORDER
from ._validate import validate_bars

_UNIT_NS = {
    "ns": 1,
    "us": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86_400 * 10**9,
    "w": 7 * 86_400 * 10**9,
    "mo": 30 * 86_400 * 10**9,
    "q": 91 * 86_400 * 10**9,
    "y": 365 * 86_400 * 10**9,
}
_SEGMENT = re.compile(r"(\d+)(ns|us|ms|mo|s|m|h|d|w|q|y)")

_AGGREGATIONS = {
    "open": pl.col("open").first(),
    "high": pl.col("high").max(),
    "low": pl.col("low").min(),
    "close": pl.col("close").last(),
    "adj_close": pl.col("adj_close").last(),
    "volume": pl.col("volume").sum(),
}


def _approx_ns(every: str) -> int:
    """Approximate length of a polars duration string; raises ConfigError if it is not one."""
    text = every.strip()
    segments = _SEGMENT.findall(text)
    if not segments or "".join(n + u for n, u in segments) != text:
        raise ConfigError(
            f"resample_bars: every={every!r} is not a bar size. Fix: use a polars duration such "
            f"as '1w' (week), '1mo' (month), '1q' (quarter), '1d' (day), '4h' or '15m' "
            f"(minutes; months are 'mo')."
        )
    total = sum(int(n) * _UNIT_NS[u] for n, u in segments)
    if total <= 0:
        raise ConfigError(f"resample_bars: every={every!r} is zero length. Fix: use e.g. '1w'.")
    return total


def resample_bars(bars: pl.DataFrame, every: str) -> pl.DataFrame:
    """Aggregate long bars per asset into ``every``-long buckets (calendar-aligned).

    ``every`` is a polars duration: ``"1w"`` (weeks starting Monday), ``"1mo"``, ``"1q"``
    (quarters starting Jan/Apr/Jul/Oct), ``"1y"``, ``"1d"`` (calendar days in the data's
    time zone) or intraday sizes such as ``"4h"``. Each bucket gives one bar: first open,
    max high, min low, last close (and last adj_close), summed volume, stamped with the
    last timestamp in the bucket that has data; buckets with no bars produce nothing.
    Asking for a bucket shorter than the data's bar spacing (e.g. ``"1m"``, one *minute*,
    on daily bars when months were meant) raises ConfigError.
    """
    bars = validate_bars(bars, source="resample_bars input")
    length_ns = _approx_ns(every)
    distinct = bars["ts"].unique().sort().to_physical().to_numpy()
    if distinct.shape[0] > 1:
        spacing = float(np.median(np.diff(distinct)))
        if length_ns < spacing:
            raise ConfigError(
                f"resample_bars: every={every!r} is shorter than the data's bar spacing "
                f"(median {spacing / 3.6e12:.4g} hours), so it cannot coarsen the bars. Fix: "
                f"pick a longer bucket (months are '1mo', minutes are 'm')."
            )
    value_columns = [c for c in CANONICAL_ORDER[2:] if c in bars.columns]
    by_asset = bars.sort(["asset", "ts"])
    out = (
        by_asset.group_by_dynamic(
            "ts", every=every.strip(), group_by="asset", closed="left", label="left"
        )
        .agg(pl.col("ts").last().alias("_last_ts"), *[_AGGREGATIONS[c] for c in value_columns])
        .drop("ts")
        .rename({"_last_ts": "ts"})
    )
    return out.select(["ts", "asset", *value_columns]).sort(["ts", "asset"])
