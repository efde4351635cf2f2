"""Plain numpy statistics behind the metrics (definitions in ``_definitions``).

Inputs are validated float64 arrays of finite simple returns; these functions never see a
frame. Each returns NaN where its metric is undefined instead of raising or dividing by
zero, so a flat run or a run without trades still produces a complete, serialisable table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NAN = float("nan")
_DAY_NS = 86_400 * 10**9


def per_period_rate(rf: float, periods_per_year: float) -> float:
    """Annual rate -> per-bar rate, compounded (quantstats' deannualisation)."""
    return (1.0 + rf) ** (1.0 / periods_per_year) - 1.0


def _std(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size >= 2 else NAN


def _ratio(num: float, den: float) -> float:
    if not (math.isfinite(num) and math.isfinite(den)) or den == 0:
        return NAN
    return num / den


def total_return(r: np.ndarray) -> float:
    return float(np.prod(1.0 + r) - 1.0) if r.size else NAN


def cagr(r: np.ndarray, periods_per_year: float) -> float:
    if r.size == 0:
        return NAN
    wealth = 1.0 + total_return(r)
    if wealth < 0:  # only reachable with returns below -100%: no real growth rate
        return NAN
    if wealth == 0:
        return -1.0
    exponent = math.log(wealth) * periods_per_year / r.size
    # a few lucky bars annualised at a high frequency overflow a float: report inf
    return math.expm1(exponent) if exponent < 700 else math.inf


def volatility(r: np.ndarray, periods_per_year: float) -> float:
    return _std(r) * math.sqrt(periods_per_year)


def sharpe(r: np.ndarray, periods_per_year: float, rf: float = 0.0) -> float:
    excess = r - per_period_rate(rf, periods_per_year)
    return _ratio(float(np.mean(excess)) if r.size else NAN, _std(excess)) * math.sqrt(
        periods_per_year)


def per_period_sharpe(r: np.ndarray, rf_per_period: float = 0.0) -> float:
    excess = r - rf_per_period
    return _ratio(float(np.mean(excess)) if r.size else NAN, _std(excess))


def sortino(r: np.ndarray, periods_per_year: float, rf: float = 0.0) -> float:
    if r.size == 0:
        return NAN
    excess = r - per_period_rate(rf, periods_per_year)
    downside = math.sqrt(float(np.sum(np.minimum(excess, 0.0) ** 2)) / excess.size)
    return _ratio(float(np.mean(excess)), downside) * math.sqrt(periods_per_year)


def wealth_and_drawdown(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compounded wealth (starting at 1 before bar 0) and its drawdown per bar (<= 0)."""
    wealth = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    return wealth, wealth / peak - 1.0


@dataclass(frozen=True)
class Spell:
    """One underwater spell: bars ``first..last`` inclusive, with its deepest drawdown."""

    first: int
    last: int
    depth: float

    @property
    def bars(self) -> int:
        return self.last - self.first + 1


def underwater_spells(drawdown: np.ndarray) -> list[Spell]:
    """Maximal runs of consecutive bars below the running peak."""
    under = drawdown < 0
    if not under.any():
        return []
    edges = np.diff(np.concatenate(([False], under, [False])).astype(np.int8))
    firsts = np.flatnonzero(edges == 1)
    lasts = np.flatnonzero(edges == -1) - 1
    return [Spell(int(a), int(b), float(drawdown[a:b + 1].min()))
            for a, b in zip(firsts, lasts, strict=True)]


def spell_days(spell: Spell, ts_ns: np.ndarray | None) -> float:
    """Calendar days a spell touches, counted as quantstats does: whole days + 1."""
    if ts_ns is None:
        return NAN
    return float((int(ts_ns[spell.last]) - int(ts_ns[spell.first])) // _DAY_NS + 1)


def drawdown_stats(r: np.ndarray, ts_ns: np.ndarray | None) -> dict[str, float]:
    if r.size == 0:
        return dict.fromkeys(("max_drawdown", "max_drawdown_duration_bars",
                              "max_drawdown_duration_days", "longest_drawdown_bars",
                              "longest_drawdown_days"), NAN)
    _, dd = wealth_and_drawdown(r)
    spells = underwater_spells(dd)
    if not spells:
        return {"max_drawdown": 0.0, "max_drawdown_duration_bars": 0.0,
                "max_drawdown_duration_days": 0.0 if ts_ns is not None else NAN,
                "longest_drawdown_bars": 0.0,
                "longest_drawdown_days": 0.0 if ts_ns is not None else NAN}
    deepest = min(spells, key=lambda s: s.depth)
    return {
        "max_drawdown": float(dd.min()),
        "max_drawdown_duration_bars": float(deepest.bars),
        "max_drawdown_duration_days": spell_days(deepest, ts_ns),
        "longest_drawdown_bars": float(max(s.bars for s in spells)),
        "longest_drawdown_days": (max(spell_days(s, ts_ns) for s in spells)
                                  if ts_ns is not None else NAN),
    }


def quantile(r: np.ndarray, q: float) -> float:
    return float(np.quantile(r, q)) if r.size else NAN


def historical_var(r: np.ndarray, confidence: float = 0.95) -> float:
    return quantile(r, 1.0 - confidence)


def historical_cvar(r: np.ndarray, confidence: float = 0.95) -> float:
    if r.size == 0:
        return NAN
    tail = r[r <= historical_var(r, confidence)]
    return float(tail.mean()) if tail.size else NAN


def _central_moments(r: np.ndarray) -> tuple[float, float, float] | None:
    """m2, m3, m4, or None when the spread is only rounding noise (skew/kurt undefined)."""
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if m2 <= (np.finfo(np.float64).eps * float(np.max(np.abs(r)))) ** 2 or m2 < 1e-150:
        return None  # also keeps m2 ** 2 clear of underflow
    return m2, float(np.mean(d**3)), float(np.mean(d**4))


def skewness(r: np.ndarray) -> float:
    """Bias-corrected sample skewness G1 (pandas ``Series.skew``)."""
    n = r.size
    moments = _central_moments(r) if n >= 3 else None
    if moments is None:
        return NAN
    m2, m3, _ = moments
    return m3 / m2**1.5 * math.sqrt(n * (n - 1)) / (n - 2)


def excess_kurtosis(r: np.ndarray) -> float:
    """Bias-corrected excess kurtosis G2 (pandas ``Series.kurt``)."""
    n = r.size
    moments = _central_moments(r) if n >= 4 else None
    if moments is None:
        return NAN
    m2, _, m4 = moments
    g2 = m4 / m2**2 - 3.0
    return (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6.0)


def tail_ratio(r: np.ndarray, cutoff: float = 0.95) -> float:
    return abs(_ratio(quantile(r, cutoff), quantile(r, 1.0 - cutoff)))


def win_rate(values: np.ndarray) -> float:
    decided = np.count_nonzero(values != 0)
    return float(np.count_nonzero(values > 0)) / decided if decided else NAN


def profit_factor(values: np.ndarray, zero_is_win: bool) -> float:
    wins = values[values >= 0] if zero_is_win else values[values > 0]
    gains, losses = float(wins.sum()), float(-values[values < 0].sum())
    if losses == 0:
        return math.inf if gains > 0 else NAN
    return gains / losses


def mean_or_nan(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else NAN


def benchmark_stats(r: np.ndarray, b: np.ndarray, periods_per_year: float) -> dict[str, float]:
    """Alpha, beta, correlation, tracking error and IR on paired bars."""
    out = dict.fromkeys(("benchmark_total_return", "alpha", "beta", "correlation",
                         "tracking_error", "information_ratio"), NAN)
    if r.size == 0:
        return out
    out["benchmark_total_return"] = total_return(b)
    if r.size < 2:
        return out
    cov = np.cov(r, b, ddof=1)
    beta = _ratio(float(cov[0, 1]), float(cov[1, 1]))
    active = r - b
    out.update(
        beta=beta,
        alpha=(float(r.mean()) - beta * float(b.mean())) * periods_per_year,
        correlation=_ratio(float(cov[0, 1]), math.sqrt(float(cov[0, 0]) * float(cov[1, 1]))),
        tracking_error=_std(active) * math.sqrt(periods_per_year),
        information_ratio=_ratio(float(active.mean()), _std(active))
        * math.sqrt(periods_per_year),
    )
    return out
