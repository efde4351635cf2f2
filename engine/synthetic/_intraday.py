"""Seeded intraday bars (minute to hourly) with trading sessions and gaps.

:func:`intraday_bars` returns an ordinary long bars frame (``ts, asset, open, high, low,
close, volume``, timestamps ``Datetime('ns')``, sorted by ``(ts, asset)``) for tests and
examples that need intraday data Alfred may ship: it is generated, not downloaded.

**Calendar.** Trading days are Monday to Friday from ``start`` (rolled forward to a
weekday), skipping the dates in ``holidays``, ``days`` of them in all. With a ``session``
``(open, close)`` given as ``"HH:MM"`` strings, a day has the bars stamped at ``open``,
``open + every``, ... that start before ``close`` (09:30-16:00 hourly: 09:30 .. 15:30,
seven bars, the last one a half hour as exchanges report it). With ``session=None`` the market trades round the clock on each
trading day (24 hourly bars, 1440 minute bars). Each bar is stamped at its start.

**Prices.** Each asset follows its own geometric random walk. The close-to-close log
return of a bar within a session is ``N(0, s^2)`` with ``s = annual_vol / sqrt(b * 252)``
and ``b`` the bars per full day, so the annualised volatility of the bars is
``annual_vol``. The first bar of a day opens at the previous close times
``exp(N(0, (gap_vol * s * sqrt(b))^2))`` (an overnight gap, ``gap_vol`` daily
volatilities); every other bar opens at the previous close. ``high = max(open, close) *
exp(0.5 * s * |z1|)``, ``low = min(open, close) * exp(-0.5 * s * |z2|)`` and
``volume = 1e4 * exp(0.3 * z3)`` with standard normal ``z``.

**Missing bars.** ``missing`` is the probability that an asset's bar inside a session is
absent (a gap within the day); prices carry on through the missing bar, so its return
shows up in the next bar's open. The first bar of the whole sample is never dropped.

Asset ``i`` is drawn from child ``i`` of ``np.random.SeedSequence(seed)``: the bars of an
asset depend on the seed and its position only, not on how many assets follow it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

import numpy as np
import polars as pl

from engine.data import validate_bars
from engine.errors import ConfigError

TRADING_DAYS_PER_YEAR = 252
INTRADAY_BASE_VOLUME = 1e4
_EVERY = re.compile(r"^(\d+)(m|h)$")
_DayLike = date | datetime | str


def _step_minutes(every: str) -> int:
    match = _EVERY.match(every.strip()) if isinstance(every, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise ConfigError(
            f"intraday_bars: every={every!r} is not an intraday bar size; use minutes or "
            f"hours such as '1m', '15m', '1h' or '4h'"
        )
    return int(match.group(1)) * (60 if match.group(2) == "h" else 1)


def _clock(text: str, what: str) -> int:
    try:
        parsed = time.fromisoformat(text)
    except (TypeError, ValueError):
        raise ConfigError(
            f"intraday_bars: session {what} {text!r} is not a time of day; write it as 'HH:MM'"
        ) from None
    return parsed.hour * 60 + parsed.minute


def _offsets(session: tuple[str, str] | None, step: int) -> np.ndarray:
    """Minutes after midnight at which the bars of one trading day start."""
    if session is None:
        if (24 * 60) % step:
            raise ConfigError(
                f"intraday_bars: a round-the-clock day (session=None) does not split into "
                f"{step}-minute bars; pick a bar size that divides 24 hours"
            )
        return np.arange(0, 24 * 60, step)
    opens, closes = _clock(session[0], "open"), _clock(session[1], "close")
    if closes <= opens:
        raise ConfigError(
            f"intraday_bars: session {session[0]}-{session[1]} closes before it opens; "
            f"write (open, close) within one day, e.g. ('09:30', '16:00')"
        )
    return np.arange(opens, closes, step)


def _as_date(value: _DayLike, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"intraday_bars: {what} {value!r} is not a date (YYYY-MM-DD)") from None


def _trading_days(start: _DayLike, days: int, holidays: Sequence[_DayLike]) -> list[date]:
    skip = {_as_date(h, "holiday") for h in holidays}
    day, out = _as_date(start, "start"), []
    while len(out) < days:
        if day.weekday() < 5 and day not in skip:
            out.append(day)
        day += timedelta(days=1)
    return out


def _timestamps(days: list[date], offsets: np.ndarray) -> np.ndarray:
    midnights = np.array(days, dtype="datetime64[D]").astype("datetime64[ns]")
    minutes = offsets.astype("timedelta64[m]").astype("timedelta64[ns]")
    return (midnights[:, None] + minutes[None, :]).ravel()


def _asset_bars(rng: np.random.Generator, n_days: int, per_day: int, price: float,
                annual_vol: float, gap_vol: float, missing: float) -> dict[str, np.ndarray]:
    n = n_days * per_day
    s = annual_vol / math.sqrt(per_day * TRADING_DAYS_PER_YEAR)
    returns = rng.normal(0.0, s, n)
    gaps = np.zeros(n)
    gaps[::per_day] = rng.normal(0.0, gap_vol * s * math.sqrt(per_day), n_days)
    gaps[0] = 0.0
    close = price * np.exp(np.cumsum(returns + gaps))
    previous = np.concatenate(([price], close[:-1]))
    open_ = previous * np.exp(gaps)
    wick = 0.5 * s
    high = np.maximum(open_, close) * np.exp(wick * np.abs(rng.standard_normal(n)))
    low = np.minimum(open_, close) * np.exp(-wick * np.abs(rng.standard_normal(n)))
    volume = INTRADAY_BASE_VOLUME * np.exp(0.3 * rng.standard_normal(n))
    keep = rng.random(n) >= missing
    keep[0] = True
    return {"open": open_[keep], "high": high[keep], "low": low[keep], "close": close[keep],
            "volume": volume[keep], "keep": keep}


def intraday_bars(
    start: _DayLike = "2024-01-02",
    days: int = 20,
    *,
    every: str = "1h",
    assets: Sequence[str] = ("SYN",),
    session: tuple[str, str] | None = ("09:30", "16:00"),
    holidays: Sequence[_DayLike] = (),
    seed: int = 0,
    price: float = 100.0,
    annual_vol: float = 0.2,
    gap_vol: float = 0.5,
    missing: float = 0.0,
    tz: str | None = None,
) -> pl.DataFrame:
    """Seeded intraday OHLCV bars for ``assets`` over ``days`` trading days (see module doc).

    ``tz`` names the time zone the session times are in (the frame is then zone-aware);
    by default the timestamps are naive.
    """
    if not isinstance(days, int) or days < 1:
        raise ConfigError(f"intraday_bars: days={days!r} must be a positive whole number")
    if not assets or len(set(assets)) != len(assets):
        raise ConfigError(f"intraday_bars: assets={list(assets)!r} must be distinct names")
    if not 0.0 <= missing < 1.0:
        raise ConfigError(f"intraday_bars: missing={missing!r} must be in [0, 1)")
    if price <= 0 or annual_vol < 0 or gap_vol < 0:
        raise ConfigError("intraday_bars: price must be > 0, annual_vol and gap_vol >= 0")
    offsets = _offsets(session, _step_minutes(every))
    ts = _timestamps(_trading_days(start, days, holidays), offsets)
    children = np.random.SeedSequence(int(seed)).spawn(len(assets))
    parts = []
    for asset, child in zip(assets, children, strict=True):
        cols = _asset_bars(np.random.default_rng(child), days, len(offsets), float(price),
                           float(annual_vol), float(gap_vol), float(missing))
        keep = cols.pop("keep")
        parts.append(pl.DataFrame({"ts": ts[keep], "asset": [str(asset)] * int(keep.sum()),
                                   **cols}))
    frame = pl.concat(parts).with_columns(pl.col("ts").cast(pl.Datetime("ns")))
    if tz is not None:
        frame = frame.with_columns(pl.col("ts").dt.replace_time_zone(tz, non_existent="null",
                                                                     ambiguous="earliest"))
        frame = frame.drop_nulls("ts")
    return validate_bars(frame.sort(["ts", "asset"]), source="intraday_bars")
