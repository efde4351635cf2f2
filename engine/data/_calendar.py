"""How many bars make a year: the annualisation factor behind every Sharpe ratio.

Getting this wrong silently scales every annualised metric, so the rule is explicit and
written down once (see :func:`infer_periods_per_year`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from engine.errors import DataError

_DAY_NS = 86_400 * 10**9
# Spacing bands (in days) of the usual bar sizes and their conventional bars per year.
_BANDS: tuple[tuple[float, float, float], ...] = (
    (5.0, 10.0, 52.0),  # weekly
    (25.0, 35.0, 12.0),  # monthly
    (80.0, 100.0, 4.0),  # quarterly
    (170.0, 190.0, 2.0),  # semi-annual
    (350.0, 380.0, 1.0),  # annual
)
# A market "trades on weekends" when more than this share of its days are Sat/Sun (crypto:
# 2/7 of days; equities and FX: a few Sunday-evening bars at most).
_WEEKEND_SHARE = 0.10
# With fewer calendar days than this, a count of trading days per year is noise; fall
# back to the 252 / 365 conventions.
_MIN_DAYS_FOR_COUNT = 90


def infer_periods_per_year(ts: pl.Series | np.ndarray | Sequence) -> float:
    """Annualisation factor inferred from bar timestamps.

    The rule, from the median spacing between distinct timestamps:

    - **daily** (median spacing 0.75 to 3.5 days): 252 when the data trades on weekdays
      (at most 10% of bars fall on a Saturday or Sunday), else 365 (crypto-style 7-day
      markets). 252 is the equity convention, so daily equity data gives exactly 252
      however many holidays the sample has.
    - **weekly / monthly / quarterly / semi-annual / annual** (spacing 5-10, 25-35, 80-100,
      170-190, 350-380 days): 52 / 12 / 4 / 2 / 1.
    - any **other spacing of a day or more**: 365.25 / spacing in days.
    - **intraday** (spacing under 0.75 day): *bars per day* x *trading days per year*,
      both measured on the data. Bars per day is the median count of bars per calendar
      day that has any bar; a "full" day is one with at least half that many bars (so the
      few Sunday-evening bars of FX data do not count as a day). Trading days per year is
      the number of full days / calendar days spanned x 365.25 when the sample spans at
      least 90 calendar days; shorter samples use 252 (weekday markets) or 365. Hourly
      24h FX data comes out near 24 x 260; 6.5h equity sessions at 7 x ~252.
      The result is rounded to a whole number of bars.

    Timestamps with a time zone are counted in that zone's calendar days. Raises
    DataError when there are fewer than two distinct timestamps.
    """
    series = _as_datetime_series(ts).drop_nulls()
    ns = series.dt.cast_time_unit("ns").to_physical().to_numpy()
    if not (ns[1:] > ns[:-1]).all():  # a panel's calendar is already sorted and distinct
        series = series.unique().sort()
        ns = series.dt.cast_time_unit("ns").to_physical().to_numpy()
    if series.len() < 2:
        raise DataError(
            f"infer_periods_per_year: need at least two distinct timestamps, got "
            f"{series.len()}. Fix: load more bars, or pass periods_per_year explicitly."
        )
    spacing_days = float(np.median(np.diff(ns))) / _DAY_NS
    if spacing_days < 0.75:
        return _intraday(series.dt.date())
    if spacing_days < 3.5:
        return 365.0 if _weekend_share(series, ns) > _WEEKEND_SHARE else 252.0
    for low, high, per_year in _BANDS:
        if low <= spacing_days <= high:
            return per_year
    return 365.25 / spacing_days


def _weekend_share(series: pl.Series, ns: np.ndarray) -> float:
    """Share of the timestamps on a Saturday or Sunday, in their zone's calendar."""
    if series.dtype.time_zone is not None:  # type: ignore[union-attr]
        return float((series.dt.weekday() >= 6).mean())
    weekday = (ns // _DAY_NS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return float((weekday >= 5).mean())


def _intraday(dates: pl.Series) -> float:
    per_day = dates.value_counts(name="n")
    bars_per_day = float(per_day["n"].median())  # type: ignore[arg-type]
    full = per_day.filter(pl.col("n") >= 0.5 * bars_per_day)[dates.name]
    span_days = (dates.max() - dates.min()).days + 1  # type: ignore[operator]
    if span_days >= _MIN_DAYS_FOR_COUNT:
        days_per_year = full.len() / span_days * 365.25
    else:
        weekend = float((full.dt.weekday() >= 6).mean())
        days_per_year = 365.0 if weekend > _WEEKEND_SHARE else 252.0
    return float(round(bars_per_day * days_per_year))


def _as_datetime_series(ts: pl.Series | np.ndarray | Sequence) -> pl.Series:
    if isinstance(ts, pl.Series):
        series = ts
    elif isinstance(ts, np.ndarray):
        if not np.issubdtype(ts.dtype, np.datetime64):
            raise DataError(
                f"infer_periods_per_year: expected datetime64 timestamps, got dtype {ts.dtype}. "
                f"Fix: pass bar timestamps (e.g. panel.ts or bars['ts'])."
            )
        series = pl.Series("ts", ts.astype("datetime64[ns]"))
    else:
        series = pl.Series("ts", list(ts))
    if series.dtype == pl.Date:
        series = series.cast(pl.Datetime("ns"))
    if not isinstance(series.dtype, pl.Datetime):
        raise DataError(
            f"infer_periods_per_year: expected datetimes, got {series.dtype}. Fix: pass bar "
            f"timestamps (e.g. panel.ts or bars['ts'])."
        )
    return series.alias("ts")


def match_ts_type(frame: pl.DataFrame, target: pl.DataType, column: str = "ts") -> pl.DataFrame:
    """``frame[column]`` in ``target``'s time unit and zone, by the one rule for naive time.

    The rule (docs/architecture.md, "Time zones"): a timestamp without a zone is UTC. A
    zoned column meeting a naive target is converted to UTC and its zone dropped; a naive
    column meeting a zoned target is read as UTC and converted to that zone. Dates become
    midnight datetimes.
    """
    source = frame[column].dtype
    ts = pl.col(column)
    if source == pl.Date:
        ts, source = ts.cast(pl.Datetime("us")), pl.Datetime("us")
    if not (isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime)):
        return frame
    if source.time_zone is not None and target.time_zone is None:
        ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    elif source.time_zone is None and target.time_zone is not None:
        ts = ts.dt.replace_time_zone("UTC").dt.convert_time_zone(target.time_zone)
    elif source.time_zone is not None:
        ts = ts.dt.convert_time_zone(target.time_zone)
    return frame.with_columns(ts.dt.cast_time_unit(target.time_unit))
