"""Technical indicators as polars expressions, one asset at a time.

Every expression here looks backward only (shifts by positive lags, trailing rolling
windows, recursive EWMs that start at the asset's first bar), so a value dated ``t``
depends on the asset's bars up to ``t`` and nothing later: the as-of rule holds by
construction. The builder applies them with ``.over("asset")`` on a frame sorted by
(asset, ts).

Ratios whose denominator can be zero (a flat high/low range, a flat Bollinger band) get
the neutral value of the indicator instead of an inf/NaN that would poison a whole
training batch.
"""

from __future__ import annotations

import math

import polars as pl

LN2 = math.log(2.0)


def _safe_div(num: pl.Expr, den: pl.Expr, neutral: float) -> pl.Expr:
    """``num / den``; ``neutral`` where ``den`` is 0; null while either is still unknown."""
    return (pl.when(num.is_null() | den.is_null() | num.is_nan() | den.is_nan()).then(None)
            .when(den.abs() > 0).then(num / den).otherwise(neutral))


def ret(n: int) -> pl.Expr:
    """Simple return over the last ``n`` bars."""
    return pl.col("close") / pl.col("close").shift(n) - 1.0


def log_ret() -> pl.Expr:
    return (pl.col("close") / pl.col("close").shift(1)).log()


def ma_gap(n: int) -> pl.Expr:
    """How far the close sits above its ``n``-bar simple moving average (a fraction)."""
    return pl.col("close") / pl.col("close").rolling_mean(n, min_samples=n) - 1.0


def wilder(expr: pl.Expr, n: int) -> pl.Expr:
    """Wilder's smoothing (an EWM with alpha = 1/n), undefined until n values are seen."""
    return expr.ewm_mean(alpha=1.0 / n, adjust=False, min_samples=n)


def ema(expr: pl.Expr, span: int) -> pl.Expr:
    return expr.ewm_mean(span=span, adjust=False, min_samples=span)


def rsi(n: int = 14) -> pl.Expr:
    """Wilder's RSI in 0..100 (50 when the asset has not moved at all)."""
    change = pl.col("close").diff()
    gain = wilder(change.clip(lower_bound=0.0), n)
    loss = wilder((-change).clip(lower_bound=0.0), n)
    return _safe_div(100.0 * gain, gain + loss, 50.0)


def macd(fast: int = 12, slow: int = 26, signal: int = 9) -> dict[str, pl.Expr]:
    """MACD line, signal and histogram divided by the close, so assets compare."""
    line = ema(pl.col("close"), fast) - ema(pl.col("close"), slow)
    sig = ema(line, signal)
    close = pl.col("close")
    return {
        "macd": line / close,
        "macd_signal": sig / close,
        "macd_hist": (line - sig) / close,
    }


def bollinger(n: int = 20, k: float = 2.0) -> dict[str, pl.Expr]:
    """%b (0 at the lower band, 1 at the upper) and band width relative to the mean."""
    mean = pl.col("close").rolling_mean(n, min_samples=n)
    std = pl.col("close").rolling_std(n, min_samples=n, ddof=0)
    lower = mean - k * std
    return {
        f"bb_pctb_{n}": _safe_div(pl.col("close") - lower, 2.0 * k * std, 0.5),
        f"bb_width_{n}": 2.0 * k * std / mean,
    }


def true_range() -> pl.Expr:
    prev = pl.col("close").shift(1)
    return pl.max_horizontal(
        pl.col("high") - pl.col("low"),
        (pl.col("high") - prev).abs(),
        (pl.col("low") - prev).abs(),
    )


def atr_pct(n: int = 14) -> pl.Expr:
    """Average true range (Wilder) as a fraction of the close."""
    return wilder(true_range(), n) / pl.col("close")


def stochastic(n: int = 14, d: int = 3) -> dict[str, pl.Expr]:
    """%K and its ``d``-bar mean %D in 0..100 (50 on a flat range)."""
    low = pl.col("low").rolling_min(n, min_samples=n)
    high = pl.col("high").rolling_max(n, min_samples=n)
    k = _safe_div(100.0 * (pl.col("close") - low), high - low, 50.0)
    return {f"stoch_k_{n}": k, f"stoch_d_{d}": k.rolling_mean(d, min_samples=d)}


def williams_r(n: int = 14) -> pl.Expr:
    """Williams %R in -100..0 (-50 on a flat range)."""
    low = pl.col("low").rolling_min(n, min_samples=n)
    high = pl.col("high").rolling_max(n, min_samples=n)
    return _safe_div(-100.0 * (high - pl.col("close")), high - low, -50.0)


def roc(n: int = 10) -> pl.Expr:
    """Rate of change in percent."""
    return 100.0 * ret(n)


def obv_change(n: int = 20) -> pl.Expr:
    """On-balance-volume change over ``n`` bars divided by the volume traded in them.

    OBV itself is a running sum whose level depends on where the data starts; its
    change per unit of volume is stationary and lies in -1..1.
    """
    direction = pl.col("close").diff().sign().fill_null(0.0)
    obv = (direction * pl.col("volume")).cum_sum()
    traded = pl.col("volume").rolling_sum(n, min_samples=n)
    return _safe_div(obv - obv.shift(n), traded, 0.0)


def volume_ratio(n: int) -> pl.Expr:
    """Today's volume relative to its ``n``-bar mean (1 on a zero-volume stretch)."""
    return _safe_div(pl.col("volume"), pl.col("volume").rolling_mean(n, min_samples=n), 1.0)


def hist_vol(n: int) -> pl.Expr:
    """Sample std of log returns over ``n`` bars (per bar, not annualised)."""
    return log_ret().rolling_std(n, min_samples=n, ddof=1)


def parkinson_vol(n: int = 20) -> pl.Expr:
    """Parkinson's high-low range estimator of per-bar volatility."""
    hl = (pl.col("high") / pl.col("low")).log()
    return ((hl * hl).rolling_mean(n, min_samples=n) / (4.0 * LN2)).sqrt()


def garman_klass_vol(n: int = 20) -> pl.Expr:
    """Garman-Klass OHLC estimator of per-bar volatility (clipped at 0 before the root)."""
    hl = (pl.col("high") / pl.col("low")).log()
    co = (pl.col("close") / pl.col("open")).log()
    term = 0.5 * hl * hl - (2.0 * LN2 - 1.0) * co * co
    return term.rolling_mean(n, min_samples=n).clip(lower_bound=0.0).sqrt()


def vol_regime_ratio(short: int = 5, long: int = 20) -> pl.Expr:
    """Short over long historical volatility: > 1 when volatility is rising."""
    return _safe_div(hist_vol(short), hist_vol(long), 1.0)


def regime_label(ratio: pl.Expr, low: float, high: float) -> pl.Expr:
    """LOW / NORMAL / HIGH from the vol-regime ratio (null while it warms up)."""
    return (
        pl.when(ratio.is_null()).then(None)
        .when(ratio < low).then(pl.lit("LOW"))
        .when(ratio > high).then(pl.lit("HIGH"))
        .otherwise(pl.lit("NORMAL"))
    )


def regime_code(ratio: pl.Expr, low: float, high: float) -> pl.Expr:
    """The regime label as a number for models: -1 LOW, 0 NORMAL, +1 HIGH."""
    return (
        pl.when(ratio.is_null()).then(None)
        .when(ratio < low).then(-1.0)
        .when(ratio > high).then(1.0)
        .otherwise(0.0)
    )
