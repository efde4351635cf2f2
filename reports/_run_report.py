"""A run's report folder: metrics.json, parquet frames, tear sheet and plots.

Layout (everything :func:`rebuild_report` needs is in the folder itself)::

    metrics.json                  with_costs / without_costs / order_outcomes /
                                  definitions / settings
    equity.parquet                ts, equity, cash, gross, net, traded, fees, borrow, return
    trades.parquet, orders.parquet, fills.parquet
    equity_without_costs.parquet  the Costs.zero() run (when given), for "before costs"
    trades_without_costs.parquet
    benchmark.parquet             ts, return on the run's bars (when given)
    tearsheet.html, plots/*.png
    regimes.csv, regimes.md       strategy vs benchmark per market regime (with a benchmark)

Metrics are computed before anything is written, so bad input leaves the folder as it was;
each file is written to a temporary name and moved into place, and ``metrics.json`` goes
last, so its presence means the report is complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import ConfigError, DataError
from reports._inputs import RETURN_COLUMN, as_returns_array, returns_with_ts
from reports._plots import RunFigures, checked_returns, save_plots
from reports._tearsheet import save_tearsheet
from reports.metrics import compute_metrics, metrics_for_result, metrics_to_json, order_outcomes

METRICS_FILE = "metrics.json"
EQUITY_FILE = "equity.parquet"
TRADES_FILE = "trades.parquet"
ORDERS_FILE = "orders.parquet"
FILLS_FILE = "fills.parquet"
GROSS_EQUITY_FILE = "equity_without_costs.parquet"
GROSS_TRADES_FILE = "trades_without_costs.parquet"
BENCHMARK_FILE = "benchmark.parquet"
TEARSHEET_FILE = "tearsheet.html"
PLOTS_DIR = "plots"


def _existing_dir(run_dir: str | Path) -> Path:
    folder = Path(run_dir)
    if not folder.is_dir():
        raise ConfigError(f"report folder {folder} does not exist; create it first (reports "
                          "are written into an existing run folder)")
    return folder


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_parquet(path: Path, frame: pl.DataFrame) -> None:
    _write_atomic(path, frame.write_parquet)


def _write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def _equity_with_returns(result) -> pl.DataFrame:
    return result.equity.with_columns(result.returns[RETURN_COLUMN].alias(RETURN_COLUMN))


def _benchmark_frame(benchmark, result) -> pl.DataFrame | None:
    """The benchmark as a ``ts, return`` frame (values without ts take the run's bars)."""
    if benchmark is None:
        return None
    if isinstance(benchmark, pl.DataFrame) and "ts" in benchmark.columns:
        r, _ = returns_with_ts(benchmark, None, "benchmark")
        return pl.DataFrame({"ts": benchmark["ts"], RETURN_COLUMN: r})
    values = as_returns_array(benchmark, "benchmark")
    if values.size != result.equity.height:
        raise DataError(f"benchmark has {values.size} returns for {result.equity.height} bars; "
                        "pass a frame with ts and return columns to align on timestamps")
    return pl.DataFrame({"ts": result.equity["ts"], RETURN_COLUMN: values})


def _write_views(folder: Path, returns: pl.DataFrame, metrics: dict[str, Any],
                 benchmark: pl.DataFrame | None, *, tearsheet: bool, plots: bool) -> None:
    settings = metrics["settings"]
    title = settings.get("title") or "Strategy"
    label = settings.get("benchmark") or "Benchmark"
    ppy, rf = float(settings["periods_per_year"]), float(settings.get("rf") or 0.0)
    if tearsheet or plots:  # one set of figures, built and laid out once for SVG and PNG
        r, ts_ns = checked_returns(returns, "the tear sheet and plots")
        figures = RunFigures(r, ts_ns, benchmark, periods_per_year=ppy, title=title,
                             benchmark_label=label)
        if tearsheet:
            save_tearsheet(folder / TEARSHEET_FILE, figures, metrics=metrics, rf=rf)
        if plots:
            save_plots(folder / PLOTS_DIR, figures)
    if benchmark is not None and returns.height >= 2:
        from reports.regimes import regime_breakdown, write_regimes

        write_regimes(folder, regime_breakdown(returns, benchmark, ppy), title=title,
                      benchmark_label=label, plots=plots)


def write_report(run_dir: str | Path, result, *, gross_result=None, benchmark_returns=None,
                 title: str | None = None, benchmark_label: str | None = None,
                 rf: float = 0.0, tearsheet: bool = True, plots: bool = True,
                 notes: Sequence[str] = (), cost_curve: bool = True,
                 cost_sensitivity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a run's report files into the existing folder ``run_dir``; returns the metrics.

    ``gross_result`` is the same run under ``Costs.zero()`` (for the "without costs"
    figures); ``benchmark_returns`` a ``ts, return`` frame on the run's bars. ``notes`` are
    one-line caveats a reader must see next to the numbers (survivorship of the data, a
    price-only benchmark, a model on random weights or inside its pretraining period):
    they are kept in metrics.json and shown by every view built from it. With
    ``cost_curve`` the run is replayed under one-way costs of 0..50 bps: the curve and the
    break-even cost go into ``cost_sensitivity`` (see ``engine.sensitivity``), unless the
    caller passes that dict itself as ``cost_sensitivity`` (``alfred run`` computes it in
    the process that ran the backtest, whose kernels are loaded, and writes the report in
    another).
    """
    folder = _existing_dir(run_dir)
    if tearsheet and result.equity.height < 2:
        raise ConfigError(f"the run has {result.equity.height} bar(s); a tear sheet needs at "
                          "least 2 -- lengthen the period or turn the tear sheet off "
                          "(report.tearsheet: false in the scenario, tearsheet=False here)")
    bench = _benchmark_frame(benchmark_returns, result)
    metrics = metrics_for_result(result, gross_result=gross_result, benchmark=bench, rf=rf,
                                 benchmark_label=benchmark_label)
    metrics["settings"]["title"] = title or str(result.settings.get("strategy") or "Strategy")
    if cost_sensitivity is not None:
        metrics["cost_sensitivity"] = cost_sensitivity
    elif cost_curve and getattr(result, "plan", None) is not None:
        from engine.sensitivity import cost_sensitivity as replay_costs

        metrics["cost_sensitivity"] = replay_costs(result)
    metrics["notes"] = list(dict.fromkeys(notes))

    equity = _equity_with_returns(result)
    _write_parquet(folder / EQUITY_FILE, equity)
    _write_parquet(folder / TRADES_FILE, result.trades)
    _write_parquet(folder / ORDERS_FILE, result.orders)
    _write_parquet(folder / FILLS_FILE, result.fills)
    if gross_result is not None:
        _write_parquet(folder / GROSS_EQUITY_FILE, _equity_with_returns(gross_result))
        _write_parquet(folder / GROSS_TRADES_FILE, gross_result.trades)
    if bench is not None:
        _write_parquet(folder / BENCHMARK_FILE, bench)
    _write_views(folder, equity.select("ts", RETURN_COLUMN), metrics, bench,
                 tearsheet=tearsheet, plots=plots)
    _write_text(folder / METRICS_FILE, metrics_to_json(metrics))
    return metrics


def _read_parquet(path: Path, *, required: bool = True) -> pl.DataFrame | None:
    if not path.is_file():
        if required:
            raise DataError(f"{path} is missing; this folder was not written by "
                            "reports.write_report (or `alfred run`), or the file was removed "
                            "-- re-run the scenario to recreate it")
        return None
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # pyarrow/polars raise several types for a damaged file
        raise DataError(f"{path} cannot be read ({exc}); re-run the scenario to recreate "
                        "it") from None


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a run folder, checked to have the sections reports rely on."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing; pass a run folder written by `alfred run` "
                        "(or reports.write_report)")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); re-run the scenario or restore "
                        "the file") from None
    for key in ("with_costs", "settings"):
        if not isinstance(metrics.get(key), dict):
            raise DataError(f"{path} has no '{key}' section; it was not written by "
                            "reports.write_report")
    if not isinstance(metrics["settings"].get("periods_per_year"), int | float):
        raise DataError(f"{path}: settings.periods_per_year is missing; it was not written "
                        "by reports.write_report")
    return metrics


def _metrics_from_files(equity: pl.DataFrame, trades: pl.DataFrame | None,
                        benchmark: pl.DataFrame | None, ppy: float, rf: float
                        ) -> dict[str, float]:
    return compute_metrics(equity.select("ts", RETURN_COLUMN), ppy, rf=rf,
                           benchmark=benchmark, trades=trades, equity=equity)


def rebuild_report(run_dir: str | Path, *, tearsheet: bool = True, plots: bool = True
                   ) -> dict[str, Any]:
    """Recompute metrics.json, the tear sheet and the plots from a run folder's files.

    Uses the saved frames and settings only (no engine run), so a report can be rebuilt
    after the metric code changed or a file was deleted. Returns the new metrics.
    """
    folder = _existing_dir(run_dir)
    old = read_metrics(folder)
    settings = old["settings"]
    ppy, rf = float(settings["periods_per_year"]), float(settings.get("rf") or 0.0)
    equity = _read_parquet(folder / EQUITY_FILE)
    if RETURN_COLUMN not in equity.columns:
        raise DataError(f"{folder / EQUITY_FILE} has no '{RETURN_COLUMN}' column; re-run the "
                        "scenario to rewrite it")
    trades = _read_parquet(folder / TRADES_FILE)
    benchmark = _read_parquet(folder / BENCHMARK_FILE, required=False)
    gross_equity = _read_parquet(folder / GROSS_EQUITY_FILE, required=False)
    gross_trades = _read_parquet(folder / GROSS_TRADES_FILE, required=False)

    orders = _read_parquet(folder / ORDERS_FILE, required=False)

    from reports._definitions import METRIC_DEFINITIONS

    metrics = {
        "with_costs": _metrics_from_files(equity, trades, benchmark, ppy, rf),
        "without_costs": None if gross_equity is None else _metrics_from_files(
            gross_equity, gross_trades, benchmark, ppy, rf),
        "order_outcomes": None if orders is None else order_outcomes(
            orders, _read_parquet(folder / FILLS_FILE, required=False)),
        # replaying needs the plan, which a folder does not keep: the run's curve stays
        "cost_sensitivity": old.get("cost_sensitivity"),
        "definitions": dict(METRIC_DEFINITIONS),
        "settings": settings,
        "notes": list(old.get("notes") or []),
    }
    _write_views(folder, equity.select("ts", RETURN_COLUMN), metrics, benchmark,
                 tearsheet=tearsheet, plots=plots)
    _write_text(folder / METRICS_FILE, metrics_to_json(metrics))
    return metrics
