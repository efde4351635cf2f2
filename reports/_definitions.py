"""The one table of metric definitions.

Every number in ``metrics.json``, the tear sheet's Alfred table and the comparison
tables is defined here, once. ``reports.metrics`` appends this table to its docstring and
``metrics.json`` carries it under ``"definitions"`` so a saved run explains itself.

The notation the definitions use is ``NOTATION`` below.
"""

from __future__ import annotations

NOTATION = """\
Notation: r_t is the simple return of equity over bar t (the first bar is measured against
the starting capital), n the number of bars, P the periods per year of the bar frequency
(passed in, never assumed), rf the *annual* risk-free rate and rf_p = (1 + rf) ** (1 / P) - 1
its per-bar equivalent (geometric, as quantstats). Standard deviations use ddof=1.
Quantiles interpolate linearly (numpy's and pandas' default). A metric that is undefined on
the input (no trades, zero variance, no benchmark) is NaN, written as null in JSON.
"""

# Keys are grouped in the order tables show them.
RETURN_METRICS: dict[str, str] = {
    "n_periods": "number of bars (return observations) the metrics were computed on",
    "total_return": "prod(1 + r_t) - 1: compounded return over the whole run",
    "cagr": "(1 + total_return) ** (P / n) - 1: years counted as n / P, as quantstats 0.0.86 "
            "does (not calendar days), so CAGR and Sharpe share one clock",
    "volatility": "std(r_t, ddof=1) * sqrt(P): annualised volatility; rf is not subtracted",
    "sharpe": "mean(r_t - rf_p) / std(r_t - rf_p, ddof=1) * sqrt(P); NaN when the std is 0",
    "sortino": "mean(r_t - rf_p) / sqrt(sum(min(r_t - rf_p, 0)^2) / n) * sqrt(P): downside "
               "deviation against 0 over all n bars (quantstats, Red Rock Capital)",
    "max_drawdown": "min_t W_t / max_{s<=t} W_s - 1 on the compounded wealth W that starts at 1 "
                    "before the first bar (so a first-bar loss counts); <= 0",
    "max_drawdown_duration_bars": "bars in the underwater spell holding the deepest trough: "
                                  "first bar below the previous peak to the last bar before "
                                  "the peak is regained (or the last bar)",
    "max_drawdown_duration_days": "calendar days of that spell: (last ts - first ts).days + 1, "
                                  "counted as quantstats' drawdown_details counts 'days'",
    "longest_drawdown_bars": "bars in the longest underwater spell",
    "longest_drawdown_days": "calendar days of the longest underwater spell, counted as above "
                             "(quantstats' 'Longest DD Days')",
    "calmar": "cagr / |max_drawdown|; NaN without a drawdown",
    "win_rate_periods": "bars with r_t > 0 / bars with r_t != 0 (flat bars are not counted; "
                        "quantstats win_rate)",
    "profit_factor_periods": "sum(r_t >= 0) / |sum(r_t < 0)| (quantstats profit_factor); inf "
                             "when no bar lost",
    "avg_win_period": "mean of the positive r_t",
    "avg_loss_period": "mean of the negative r_t (< 0)",
    "best_period": "largest r_t",
    "worst_period": "smallest r_t",
    "var_95": "historical value at risk: the 5% quantile of r_t, a return (negative = loss). "
              "quantstats' var() is parametric (normal); ours is empirical",
    "cvar_95": "historical expected shortfall: mean of r_t <= var_95 (quantstats "
               "cvar(method='historical'))",
    "skew": "sample skewness, bias-corrected (adjusted Fisher-Pearson G1, pandas .skew())",
    "kurtosis": "excess kurtosis, bias-corrected (G2, pandas .kurt(); 0 for a normal)",
    "tail_ratio": "|q95(r_t) / q05(r_t)|: right tail over left tail; NaN when q05 is 0",
    "psr": "probabilistic Sharpe ratio against 0: probability that the true per-bar Sharpe "
           "exceeds 0 given n, skew and kurtosis (Bailey & Lopez de Prado 2012)",
}

TRADE_METRICS: dict[str, str] = {
    "n_trades": "closed trades: round trips (flat to flat, per asset) closed by the last bar; "
                "every trade statistic below counts these only",
    "n_open_trades": "open trades: round trips still open at the last bar (excluded from the "
                     "trade stats; the trades frame lists them with is_open = true)",
    "win_rate_trades": "closed trades with pnl > 0 / closed trades with pnl != 0; pnl is net "
                       "of fees",
    "profit_factor_trades": "sum of winning trade pnl / |sum of losing trade pnl| (closed "
                            "trades); inf when no trade lost",
    "avg_win_trade": "mean return of the winning closed trades (the trade's own return)",
    "avg_loss_trade": "mean return of the losing closed trades (< 0)",
    "avg_win_trade_pnl": "mean pnl of the winning closed trades, in account currency",
    "avg_loss_trade_pnl": "mean pnl of the losing closed trades, in account currency (< 0)",
}

BOOK_METRICS: dict[str, str] = {
    "exposure": "share of bars that end holding a position (gross exposure > 0)",
    "avg_gross_leverage": "mean over bars of gross exposure / equity",
    "turnover": "sum of traded notional / mean equity * P / n: annualised two-sided turnover "
                "(2.0 = the whole book bought and sold once a year)",
}

BENCHMARK_METRICS: dict[str, str] = {
    "benchmark_total_return": "prod(1 + b_t) - 1 of the benchmark over the bars paired with "
                              "the strategy (inner join on ts)",
    "alpha": "(mean(r_t) - beta * mean(b_t)) * P: annualised arithmetic alpha, rf not "
             "subtracted (quantstats greeks)",
    "beta": "cov(r, b) / var(b), ddof=1, on the paired bars",
    "correlation": "Pearson correlation of r_t and b_t",
    "tracking_error": "std(r_t - b_t, ddof=1) * sqrt(P)",
    "information_ratio": "mean(r_t - b_t) / std(r_t - b_t, ddof=1) * sqrt(P): annualised. "
                         "quantstats' information_ratio is per bar (ours / sqrt(P))",
}

METRIC_DEFINITIONS: dict[str, str] = {
    **RETURN_METRICS,
    **TRADE_METRICS,
    **BOOK_METRICS,
    **BENCHMARK_METRICS,
}

# One label per metric, the same in every view (console, Markdown, HTML, CSV headers of
# tables meant for people, `alfred runs`). Words, not keys: "Closed trades", never "trades".
LABELS: dict[str, str] = {
    "n_periods": "Bars",
    "total_return": "Total return",
    "cagr": "CAGR",
    "volatility": "Volatility (ann.)",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "max_drawdown": "Max drawdown",
    "max_drawdown_duration_bars": "Max DD duration (bars)",
    "max_drawdown_duration_days": "Max DD duration (days)",
    "longest_drawdown_bars": "Longest DD (bars)",
    "longest_drawdown_days": "Longest DD (days)",
    "calmar": "Calmar",
    "win_rate_periods": "Win rate (per bar)",
    "profit_factor_periods": "Profit factor (per bar)",
    "avg_win_period": "Avg winning bar",
    "avg_loss_period": "Avg losing bar",
    "best_period": "Best bar",
    "worst_period": "Worst bar",
    "var_95": "VaR 95% (1 bar)",
    "cvar_95": "CVaR 95% (1 bar)",
    "skew": "Skew",
    "kurtosis": "Excess kurtosis",
    "tail_ratio": "Tail ratio",
    "psr": "Probabilistic Sharpe",
    "n_trades": "Closed trades",
    "n_open_trades": "Open trades",
    "win_rate_trades": "Win rate (per closed trade)",
    "profit_factor_trades": "Profit factor (closed trades)",
    "avg_win_trade": "Avg winning trade",
    "avg_loss_trade": "Avg losing trade",
    "avg_win_trade_pnl": "Avg winning trade (pnl)",
    "avg_loss_trade_pnl": "Avg losing trade (pnl)",
    "exposure": "Exposure",
    "avg_gross_leverage": "Avg gross leverage",
    "turnover": "Turnover (ann.)",
    "benchmark_total_return": "Benchmark total return",
    "alpha": "Alpha (ann.)",
    "beta": "Beta",
    "correlation": "Correlation",
    "tracking_error": "Tracking error (ann.)",
    "information_ratio": "Information ratio",
    "dsr": "Deflated Sharpe",
}

# One number format per kind: returns and rates in percent with 2 decimals, ratios with 2
# decimals, counts as integers, money with 2 decimals and thousands separators.
PERCENT_METRICS = frozenset({
    "total_return", "cagr", "volatility", "max_drawdown", "win_rate_periods",
    "avg_win_period", "avg_loss_period", "best_period", "worst_period", "var_95", "cvar_95",
    "psr", "win_rate_trades", "avg_win_trade", "avg_loss_trade", "exposure",
    "benchmark_total_return", "alpha", "tracking_error", "dsr",
})
COUNT_METRICS = frozenset({
    "n_periods", "n_trades", "n_open_trades", "max_drawdown_duration_bars",
    "max_drawdown_duration_days", "longest_drawdown_bars", "longest_drawdown_days",
})
MONEY_METRICS = frozenset({"avg_win_trade_pnl", "avg_loss_trade_pnl"})
MISSING = "n/a"


def metric_kind(name: str) -> str:
    """"percent", "count", "money" or "ratio" (the default for anything else)."""
    if name in PERCENT_METRICS:
        return "percent"
    if name in COUNT_METRICS:
        return "count"
    if name in MONEY_METRICS:
        return "money"
    return "ratio"


def metric_label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def format_value(value: object, kind: str) -> str:
    """``value`` written the way every view writes a number of ``kind``."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING if value is None else str(value)
    if value != value:  # NaN
        return MISSING
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if kind == "percent":
        return f"{value * 100:.2f}%"
    if kind == "count":
        return f"{value:.0f}"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:.2f}"


def format_metric(name: str, value: object) -> str:
    """One metric as text: ``format_metric("cagr", 0.0512) == "5.12%"``."""
    return format_value(value, metric_kind(name))


def return_metric(n_periods: float | None, periods_per_year: float | None) -> str:
    """The return a window is shown with: ``cagr`` for a year or more, else ``total_return``.

    Annualising a few weeks turns a -30% crash into -98% a year; a window shorter than
    one year of bars is shown with its total (compounded, not annualised) return.
    """
    if not n_periods or not periods_per_year or n_periods < periods_per_year:
        return "total_return"
    return "cagr"


SHORT_WINDOW = "< 1 year"


def format_windowed(name: str, value: object, n_periods: float | None,
                    periods_per_year: float | None) -> str:
    """``format_metric``, except that CAGR of a window under a year reads "< 1 year"."""
    if name == "cagr" and return_metric(n_periods, periods_per_year) == "total_return":
        return SHORT_WINDOW
    return format_metric(name, value)


# How tables label the headline figures (name -> label, shown as a percentage or not).
HEADLINE: dict[str, tuple[str, bool]] = {
    "total_return": ("Total return", True),
    "cagr": ("CAGR", True),
    "volatility": ("Volatility (ann.)", True),
    "sharpe": ("Sharpe", False),
    "sortino": ("Sortino", False),
    "max_drawdown": ("Max drawdown", True),
    "max_drawdown_duration_days": ("Max DD duration (days)", False),
    "calmar": ("Calmar", False),
    "win_rate_trades": ("Win rate (per closed trade)", True),
    "profit_factor_trades": ("Profit factor (closed trades)", False),
    "n_trades": ("Closed trades", False),
    "n_open_trades": ("Open trades", False),
    "win_rate_periods": ("Win rate (per bar)", True),
    "exposure": ("Exposure", True),
    "turnover": ("Turnover (ann.)", False),
    "var_95": ("VaR 95% (1 bar)", True),
    "cvar_95": ("CVaR 95% (1 bar)", True),
    "psr": ("Probabilistic Sharpe", True),
    "alpha": ("Alpha (ann.)", True),
    "beta": ("Beta", False),
    "information_ratio": ("Information ratio", False),
}
