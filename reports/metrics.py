"""Performance metrics of a backtest, defined once.

Conventions follow quantstats 0.0.86 wherever it defines the same metric, so our numbers
can be checked against it (the tests do, to 1e-6): Sharpe on simple returns with ddof=1
times sqrt(P); Sortino with quantstats' downside deviation; CAGR with years = n / P;
max drawdown on the compounded curve that starts at 1 before the first bar. Where we
differ, on purpose:

* ``var_95`` is historical (an empirical quantile); quantstats' ``var`` is parametric.
  ``cvar_95`` equals quantstats' ``cvar(method="historical")``.
* ``information_ratio`` is annualised (quantstats' is per bar: ours / sqrt(P) = theirs),
  so it is comparable with the Sharpe ratio next to it.
* Win rate and profit factor exist per trade (from the engine's round trips, the
  figures traders mean) and per bar (``*_periods``, quantstats' definitions).
* Undefined ratios (zero variance, no drawdown) are NaN rather than inf or 0, so a table
  never shows a misleading number; NaN and inf are written as ``null`` in JSON.
* The risk-free rate is annual and deannualised geometrically, as quantstats does; it
  enters Sharpe, Sortino and PSR only.

The full table (``METRIC_DEFINITIONS``, also saved in every ``metrics.json``) follows.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import polars as pl

from engine.errors import ConfigError, DataError
from reports import _stats as st
from reports._definitions import METRIC_DEFINITIONS, NOTATION
from reports._inputs import align_benchmark, ensure_columns, returns_with_ts
from reports._psr import probabilistic_sharpe_ratio

__doc__ = (__doc__ or "") + "\n" + NOTATION + "\n".join(
    f"\n{name}\n    {text}" for name, text in METRIC_DEFINITIONS.items())

_TRADE_COLUMNS = ("pnl", "return", "is_open")
_EQUITY_COLUMNS = ("equity", "gross", "traded")


def _check_settings(periods_per_year: float, rf: float) -> None:
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, int | float) \
            or not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ConfigError(f"periods_per_year must be a positive number (bars per year, e.g. "
                          f"252 for daily stock bars), got {periods_per_year!r}")
    if not (isinstance(rf, int | float) and math.isfinite(rf) and rf > -1):
        raise ConfigError(f"rf is the annual risk-free rate as a fraction (0.02 = 2%), got "
                          f"{rf!r}")


def _trade_metrics(trades: pl.DataFrame | None) -> dict[str, float]:
    out = dict.fromkeys(("n_trades", "n_open_trades", "win_rate_trades",
                         "profit_factor_trades", "avg_win_trade", "avg_loss_trade",
                         "avg_win_trade_pnl", "avg_loss_trade_pnl"), st.NAN)
    if trades is None:
        return out
    ensure_columns(trades, _TRADE_COLUMNS, "trades")
    is_open = trades["is_open"].to_numpy().astype(bool)
    pnl = trades["pnl"].to_numpy().astype(np.float64)[~is_open]
    ret = trades["return"].to_numpy().astype(np.float64)[~is_open]
    win, loss = pnl > 0, pnl < 0
    out.update(
        n_trades=float(pnl.size),
        n_open_trades=float(is_open.sum()),
        win_rate_trades=st.win_rate(pnl),
        profit_factor_trades=st.profit_factor(pnl, zero_is_win=False),
        avg_win_trade=st.mean_or_nan(ret[win]),
        avg_loss_trade=st.mean_or_nan(ret[loss]),
        avg_win_trade_pnl=st.mean_or_nan(pnl[win]),
        avg_loss_trade_pnl=st.mean_or_nan(pnl[loss]),
    )
    return out


def _book_metrics(equity: pl.DataFrame | None, n: int, periods_per_year: float
                  ) -> dict[str, float]:
    out = dict.fromkeys(("exposure", "avg_gross_leverage", "turnover"), st.NAN)
    if equity is None:
        return out
    ensure_columns(equity, _EQUITY_COLUMNS, "equity")
    if equity.height != n:
        raise DataError(f"equity frame has {equity.height} rows for {n} returns; pass the "
                        "equity frame of the same run")
    value = equity["equity"].to_numpy().astype(np.float64)
    gross = equity["gross"].to_numpy().astype(np.float64)
    traded = equity["traded"].to_numpy().astype(np.float64)
    if n == 0:
        return out
    mean_equity = float(value.mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        leverage = np.where(value > 0, gross / value, np.nan)
    out.update(
        exposure=float(np.count_nonzero(gross > 0)) / n,
        avg_gross_leverage=float(np.nanmean(leverage)) if np.isfinite(leverage).any()
        else st.NAN,
        turnover=(float(traded.sum()) / mean_equity * periods_per_year / n
                  if mean_equity > 0 else st.NAN),
    )
    return out


def compute_metrics(returns, periods_per_year: float, *, ts=None, rf: float = 0.0,
                    benchmark=None, trades: pl.DataFrame | None = None,
                    equity: pl.DataFrame | None = None) -> dict[str, float]:
    """Every metric of ``METRIC_DEFINITIONS`` for one return series, as floats.

    ``returns`` are simple per-bar returns (array, Series, or a frame with ``ts`` and
    ``return``). ``periods_per_year`` annualises (from the bar frequency; never assumed).
    ``benchmark`` (returns, or a frame with ``ts`` and ``return``) is aligned on ``ts``.
    ``trades`` and ``equity`` are a run's frames; without them the trade and book metrics
    are NaN. Undefined metrics are NaN; the key set is always complete.
    """
    _check_settings(periods_per_year, rf)
    r, ts_ns = returns_with_ts(returns, ts)
    if r.size == 0:
        raise DataError("returns are empty: a run needs at least one bar to measure")
    ppy = float(periods_per_year)
    out: dict[str, float] = {
        "n_periods": float(r.size),
        "total_return": st.total_return(r),
        "cagr": st.cagr(r, ppy),
        "volatility": st.volatility(r, ppy),
        "sharpe": st.sharpe(r, ppy, rf),
        "sortino": st.sortino(r, ppy, rf),
    }
    out.update(st.drawdown_stats(r, ts_ns))
    mdd = out["max_drawdown"]
    out["calmar"] = out["cagr"] / abs(mdd) if mdd < 0 and math.isfinite(out["cagr"]) else st.NAN
    out.update(
        win_rate_periods=st.win_rate(r),
        profit_factor_periods=st.profit_factor(r, zero_is_win=True),
        avg_win_period=st.mean_or_nan(r[r > 0]),
        avg_loss_period=st.mean_or_nan(r[r < 0]),
        best_period=float(r.max()),
        worst_period=float(r.min()),
        var_95=st.historical_var(r),
        cvar_95=st.historical_cvar(r),
        skew=st.skewness(r),
        kurtosis=st.excess_kurtosis(r),
        tail_ratio=st.tail_ratio(r),
        psr=probabilistic_sharpe_ratio(r - st.per_period_rate(rf, ppy)),
    )
    out.update(_trade_metrics(trades))
    out.update(_book_metrics(equity, r.size, ppy))
    if benchmark is None:
        out.update(st.benchmark_stats(np.empty(0), np.empty(0), ppy))
    else:
        out.update(st.benchmark_stats(*align_benchmark(r, ts_ns, benchmark), ppy))
    return {name: float(out[name]) for name in METRIC_DEFINITIONS}


def _run_metrics(result, benchmark, rf: float) -> dict[str, float]:
    return compute_metrics(result.returns, result.periods_per_year, rf=rf, benchmark=benchmark,
                           trades=result.trades, equity=result.equity)


def run_settings(result, *, gross_result=None, rf: float = 0.0,
                 benchmark_label: str | None = None) -> dict[str, Any]:
    """The engine settings of a run plus what the metrics assumed (JSON-ready)."""
    ts = result.equity["ts"]
    settings = dict(result.settings)
    settings.update(
        capital=float(result.capital),
        periods_per_year=float(result.periods_per_year),
        rf=float(rf),
        n_bars=int(result.equity.height),
        start=str(ts[0]),
        end=str(ts[-1]),
        costs=result.costs.to_dict(),
        benchmark=benchmark_label,
        without_costs=None if gross_result is None else {"costs": gross_result.costs.to_dict()},
    )
    return settings


def order_outcomes(orders: pl.DataFrame, fills: pl.DataFrame | None = None
                   ) -> dict[str, Any]:
    """Orders counted by status, and the partial / rejected ones by reason.

    With ``fills`` (``BacktestResult.fills``) also the fills a price level triggered, by
    kind (``triggered_fills``: stop exits, limit and stop entries), and
    ``ambiguous_intrabar_fills``: fills whose price depended on the unknowable order of
    prices inside a bar (see the README's intrabar rule).
    ``orders`` is ``BacktestResult.orders`` (or a run folder's ``orders.parquet``):
    ``{"orders": n, "filled": n, "partial": n, "rejected": n,
    "by_reason": {"partial": {reason: n}, "rejected": {reason: n}}}``, plus
    ``scaled_fill_ratio_min`` (smallest filled / requested) when orders were ``scaled``.
    """
    ensure_columns(orders, ("status", "reason"), "orders")
    out: dict[str, Any] = {"orders": int(orders.height)}
    by_reason: dict[str, dict[str, int]] = {}
    for status in ("filled", "partial", "rejected"):
        rows = orders.filter(pl.col("status") == status)
        out[status] = int(rows.height)
        if status != "filled" and rows.height:
            counts = rows.group_by("reason").len().sort("len", "reason",
                                                          descending=[True, False])
            by_reason[status] = {(r or "unspecified"): int(n)
                                 for r, n in counts.iter_rows()}
    out["by_reason"] = by_reason
    scaled = orders.filter(pl.col("reason") == "scaled")
    if scaled.height and "requested_qty" in orders.columns:
        # limit_policy scale: how far the whole-book factor cut (a flip's ratio counts its
        # unscaled reduction too, so this is an upper bound on the smallest factor)
        out["scaled_fill_ratio_min"] = float(
            (scaled["filled_qty"] / scaled["requested_qty"]).min())
    if fills is not None and {"trigger", "ambiguous"} <= set(fills.columns):
        stops = fills.filter(pl.col("trigger") != "market")
        out["triggered_fills"] = {t: int(n) for t, n in
                             stops.group_by("trigger").len().sort("trigger").iter_rows()}
        out["ambiguous_intrabar_fills"] = int(fills["ambiguous"].sum())
    return out


def metrics_for_result(result, *, gross_result=None, benchmark=None, rf: float = 0.0,
                       benchmark_label: str | None = None) -> dict[str, Any]:
    """Metrics of a ``BacktestResult`` with costs and, from ``gross_result``, without.

    ``gross_result`` is the same run under ``Costs.zero()``; without it
    ``"without_costs"`` is None (it cannot be reconstructed honestly from the net run:
    costs change positions and so the path). Returns ``{"with_costs", "without_costs",
    "order_outcomes", "definitions", "settings"}``.
    """
    if gross_result is not None and gross_result.equity.height != result.equity.height:
        raise DataError(f"gross_result has {gross_result.equity.height} bars, the run "
                        f"{result.equity.height}; pass the same run under Costs.zero()")
    return {
        "with_costs": _run_metrics(result, benchmark, rf),
        "without_costs": None if gross_result is None else _run_metrics(gross_result,
                                                                          benchmark, rf),
        "order_outcomes": order_outcomes(result.orders, result.fills),
        "definitions": dict(METRIC_DEFINITIONS),
        "settings": run_settings(result, gross_result=gross_result, rf=rf,
                                 benchmark_label=benchmark_label),
    }


def to_jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and +-inf become None (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def metrics_to_json(metrics: dict[str, Any]) -> str:
    """Strict JSON text (NaN -> null), indented for diffs between runs."""
    return json.dumps(to_jsonable(metrics), indent=2, allow_nan=False)
