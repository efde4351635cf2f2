"""The walk-forward run folder: stitched out-of-sample report, fold table, fold charts.

With one strategy the run folder holds its report; with several, one sub-folder per
strategy label plus ``summary.md`` and ``report.html`` (every strategy's stitched curve
and headline figures, linking to each strategy's own page) at the top. Each report folder holds::

    config.yaml            the resolved scenario (rerun with alfred walkforward)
    metrics.json           stitched OOS metrics with costs, the in-sample run, the benchmark
    returns.parquet        stitched per-bar returns (ts, return, fold)
    equity.parquet         the engine's equity frame of every fold (with a fold column)
    trades.parquet
    folds.parquet/.csv     one row per fold: dates, Sharpe, drawdown, win rate, turnover,
                           exit cost, benchmark, analyst forecast metrics vs naive
    folds.md               the same as a table, plus the headline comparison
    regimes.csv/.md        OOS vs benchmark per market regime, with the folds behind each
    plots/                 equity/drawdown/monthly/rolling Sharpe of the stitched curve,
                           folds.png (equity with fold boundaries, Sharpe per fold)
    tearsheet.html         quantstats tear sheet of the stitched curve (report.tearsheet)
    report.html            stitched curve, in-sample vs out-of-sample, per-fold table

Everything is written into a hidden staging folder renamed into place at the end.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from alfred.scenario import Scenario, scenario_to_dict

_HEADLINE = ("total_return", "cagr", "sharpe", "max_drawdown", "win_rate_periods",
             "win_rate_trades", "turnover")


def write_walkforward(result, scenario: Scenario, inputs, target: Path, overwrite: bool,
                      started_at: datetime, horizon: int) -> None:
    from alfred.outputs import staged_folder

    with staged_folder(target, overwrite) as staging:
        multi = len(result.strategies) > 1
        for run in result.strategies:
            folder = staging / run.label if multi else staging
            folder.mkdir(exist_ok=True)
            _write_one(folder, run, result, scenario, inputs, started_at, horizon, multi)
        if multi:
            (staging / "summary.md").write_text(_summary_md(result), encoding="utf-8")
            write_walkforward_index(staging, [staging / run.label
                                              for run in result.strategies])


def write_walkforward_index(root: Path, folders: list[Path], name: str | None = None
                            ) -> Path:
    """``root/report.html`` of a multi-strategy walk-forward, from the strategies' saved
    folders (metrics.json, returns.parquet, folds.parquet, benchmark.parquet): written at
    the end of the run and by ``alfred report``."""
    from reports import render_walkforward_index, write_page

    strategies, settings, bench_metrics, benchmark, spans = [], {}, None, None, []
    for folder in folders:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        settings = settings or metrics.get("settings") or {}
        bench_metrics = bench_metrics or metrics.get("benchmark")
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) \
            if (folder / "config.yaml").is_file() else {}
        name = name or (config or {}).get("name")
        if benchmark is None and (folder / "benchmark.parquet").is_file():
            benchmark = pl.read_parquet(folder / "benchmark.parquet")
        if not spans and (folder / "folds.parquet").is_file():
            folds = pl.read_parquet(folder / "folds.parquet", columns=["test_start",
                                                                        "test_end"])
            spans = list(zip(folds["test_start"].to_list(), folds["test_end"].to_list(),
                             strict=True))
        strategies.append({
            "label": folder.name, "href": f"{folder.name}/report.html",
            "returns": pl.read_parquet(folder / "returns.parquet", columns=["ts", "return"]),
            "metrics": metrics.get("with_costs") or {}, "in_sample": metrics.get("in_sample"),
            "beat": metrics.get("folds_beating_benchmark")})
    page = render_walkforward_index(
        title=f"{name or root.name}: walk-forward", strategies=strategies,
        periods_per_year=float(settings.get("periods_per_year") or 252.0),
        n_folds=int(settings.get("n_folds") or len(spans)), benchmark=benchmark,
        benchmark_label=settings.get("benchmark") or "Benchmark",
        benchmark_metrics=bench_metrics, spans=spans)
    return write_page(root / "report.html", page)


def _write_one(folder: Path, run, result, scenario: Scenario, inputs, started_at: datetime,
               horizon: int, multi: bool = False) -> None:
    spec = scenario.walkforward
    single = next(s for s in scenario.strategy_list if s.run_label == run.label)
    resolved = scenario_to_dict(scenario.model_copy(update={"strategy": single,
                                                            "strategies": None}))
    resolved["output"] = {"directory": None}
    header = (f"# Resolved scenario {scenario.name!r} as run at "
              f"{started_at.isoformat(timespec='seconds')}; rerun with `alfred walkforward "
              "config.yaml`.\n")
    (folder / "config.yaml").write_text(
        header + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), "utf-8")
    ppy = inputs.panel.periods_per_year
    folds = _with_analysts(run.folds, result.analysts)
    beats = _beats(run.folds)
    settings = {
        "strategy": single.name, "fill": scenario.fill, "capital": scenario.capital,
        "costs": scenario.costs.model_dump(), "periods_per_year": ppy,
        "n_bars": int(run.returns.height), "start": str(run.returns["ts"].min()),
        "end": str(run.returns["ts"].max()), "benchmark": result.benchmark_label,
        "walkforward": spec.model_dump(mode="json"), "label_horizon": horizon,
        "embargo": spec.embargo if spec.embargo is not None else horizon,
        "n_folds": len(result.folds), "executor": result.executor,
        "fold_boundaries": "positions liquidated at each fold's last close with one-way "
                           "costs; the next fold starts from that cash",
    }
    metrics = {"kind": "walkforward", "with_costs": _clean(run.metrics),
               "in_sample": _clean(run.in_sample), "benchmark": _clean(result.benchmark),
               "folds_beating_benchmark": beats, "settings": settings,
               # folds whose test window tuned hyperparameters saw (allow_tuned_overlap)
               "tuned_overlap_folds": [int(f) for f, m in zip(
                   run.folds["fold"], run.folds["tuned_overlap"], strict=True) if m]
               if "tuned_overlap" in run.folds.columns else [],
               "forecasts": _clean(result.forecasts)}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    run.returns.write_parquet(folder / "returns.parquet")
    run.equity.write_parquet(folder / "equity.parquet")
    run.trades.write_parquet(folder / "trades.parquet")
    folds.write_parquet(folder / "folds.parquet")
    folds.write_csv(folder / "folds.csv")
    if inputs.benchmark is not None:
        inputs.benchmark.write_parquet(folder / "benchmark.parquet")
    (folder / "folds.md").write_text(_folds_md(run, folds, result, beats), encoding="utf-8")
    title = f"{scenario.name}: {run.label} (walk-forward OOS)"
    if scenario.report.plots:
        from reports import write_plots

        plots = folder / "plots"
        write_plots(plots, run.returns.select("ts", "return"), benchmark=inputs.benchmark,
                    periods_per_year=ppy, title=run.label,
                    benchmark_label=result.benchmark_label or "Benchmark")
        fold_chart(plots / "folds.png", run, result.benchmark_label)
    if inputs.benchmark is not None:
        from reports.regimes import regime_breakdown, write_regimes

        table = regime_breakdown(run.returns.select("ts", "return"), inputs.benchmark, ppy,
                                 folds=[(d["test_start"], d["test_end"])
                                        for d in result.fold_dates])
        write_regimes(folder, table, title=f"{scenario.name}: {run.label} (walk-forward OOS)",
                      benchmark_label=result.benchmark_label or "Benchmark",
                      plots=scenario.report.plots)
    if scenario.report.tearsheet:
        from reports import write_tearsheet

        write_tearsheet(folder / "tearsheet.html", run.returns.select("ts", "return"),
                        inputs.benchmark, title=title, periods_per_year=ppy,
                        metrics=run.metrics,
                        benchmark_label=result.benchmark_label or "Benchmark")
    from reports import render_walkforward, write_page

    write_page(folder / "report.html", render_walkforward(
        title=title, returns=run.returns, folds=folds, metrics=run.metrics,
        in_sample=run.in_sample, benchmark=inputs.benchmark,
        benchmark_label=result.benchmark_label or "Benchmark", periods_per_year=ppy,
        tearsheet_href="tearsheet.html" if scenario.report.tearsheet else None,
        crumbs=[("../report.html", "all strategies")] if multi else ()))


def fold_chart(path: Path, run, benchmark_label: str | None) -> Path:
    """Stitched growth of 1 with fold boundaries, and each fold's Sharpe vs benchmark."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from reports import plot_style

    with plot_style():
        fig = Figure(figsize=(10, 7), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, height_ratios=[3, 2])
        ts = run.returns["ts"].to_numpy()
        wealth = np.cumprod(1.0 + run.returns["return"].to_numpy())
        top.plot(ts, wealth, color="#1f5fa8", lw=1.3, label=f"{run.label} (OOS, after costs)")
        for start in run.folds["test_start"].to_list()[1:]:
            top.axvline(np.datetime64(start), color="#999999", lw=0.6, ls="--")
        top.axhline(1.0, color="black", lw=0.6, ls=":")
        top.set_title("Walk-forward: stitched out-of-sample growth of 1 (dashed: fold starts)")
        top.grid(alpha=0.3)
        top.legend(loc="upper left")
        x = np.arange(run.folds.height)
        sharpe = np.nan_to_num(run.folds["sharpe"].to_numpy().astype(float))
        bottom.bar(x - 0.2, sharpe, width=0.4, color="#1f5fa8", label=run.label)
        bench = run.folds["benchmark_sharpe"].to_numpy()
        if bench.dtype != object and np.isfinite(bench.astype(float)).any():
            bottom.bar(x + 0.2, np.nan_to_num(bench.astype(float)), width=0.4,
                       color="#999999", label=benchmark_label or "benchmark")
        bottom.set_xticks(x, [s[:7] for s in run.folds["test_start"].to_list()],
                          rotation=45, fontsize=8)
        bottom.axhline(0.0, color="black", lw=0.6)
        bottom.set_title("Sharpe ratio per fold (test window)")
        bottom.legend(loc="upper left")
        bottom.grid(alpha=0.3, axis="y")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return path


def _with_analysts(folds: pl.DataFrame, analysts: pl.DataFrame) -> pl.DataFrame:
    if analysts.height == 0:
        return folds
    oos = analysts.filter(pl.col("fold") >= 0)
    wide = None
    for name in oos["analyst"].unique(maintain_order=True).to_list():
        part = oos.filter(pl.col("analyst") == name).select(
            "fold",
            pl.col("pct_return_mae").alias(f"{name}.pct_return_mae"),
            *(pl.col(c).alias(f"{name}.{c}") for c in (
                "zero_pct_return_mae", "drift_pct_return_mae", "last_pct_return_mae",
                "zero_dm_p", "drift_dm_p", "accuracy", "majority_accuracy", "rank_ic",
                "verdict", "notes") if c in oos.columns),
            pl.col("fit_s").alias(f"{name}.fit_s"))
        wide = part if wide is None else wide.join(part, on="fold", how="full", coalesce=True)
    return folds.join(wide, on="fold", how="left")


def _beats(folds: pl.DataFrame) -> dict[str, Any]:
    both = folds.filter(pl.col("benchmark_return").is_not_null())
    wins = int((both["total_return"] > both["benchmark_return"]).sum()) if both.height else 0
    return {"folds": int(both.height), "beat": wins}


def _folds_md(run, folds: pl.DataFrame, result, beats: dict[str, Any]) -> str:
    lines = [f"# Walk-forward: {run.label}", "",
             f"{len(result.folds)} folds, out of sample {run.returns['ts'].min():%Y-%m-%d} to "
             f"{run.returns['ts'].max():%Y-%m-%d}; after costs. The strategy beat the "
             f"benchmark in {beats['beat']} of {beats['folds']} folds.", "",
             "| | " + " | ".join(_HEADLINE) + " |", "|---|" + "---|" * len(_HEADLINE)]
    rows = [("walk-forward OOS", run.metrics), ("in-sample (analysts fit on the span)",
                                               run.in_sample),
            (f"benchmark ({result.benchmark_label})", result.benchmark)]
    for name, metrics in rows:
        if metrics:
            lines.append(f"| {name} | " + " | ".join(_fmt(metrics.get(k), k) for k in _HEADLINE)
                         + " |")
    lines += ["", "## Folds", ""]
    columns = [c for c in folds.columns if c not in ("start_equity", "end_equity")]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in folds.iter_rows(named=True):
        lines.append("| " + " | ".join(_fmt(row[c], c) for c in columns) + " |")
    if result.forecasts:
        from analysts.evaluation import tests_markdown

        lines += ["", "## Forecasts out of sample, pooled over folds", "",
                  "Baselines: zero (no change), drift (training-window mean return), last "
                  "(last h-bar return repeats), always_up, majority (of each fold's training "
                  "labels); flat rows are left out of direction scores. DM tests on absolute "
                  "errors with Newey-West (h-1 lags), per-date means over assets.", ""]
        for name, tests in result.forecasts.items():
            mark = f"; {tests['tuned_overlap']}" if tests.get("tuned_overlap") else ""
            lines += [f"### {name} ({tests['rows']} rows, horizon {tests['horizon']}{mark})",
                      "",
                      tests_markdown(tests, name)]
    return "\n".join(lines) + "\n"


def _summary_md(result) -> str:
    lines = [f"# Walk-forward {result.name}: {len(result.folds)} folds", "",
             "| strategy | " + " | ".join(_HEADLINE) + " | in-sample sharpe |",
             "|---|" + "---|" * (len(_HEADLINE) + 1)]
    for run in result.strategies:
        ins = (run.in_sample or {}).get("sharpe")
        lines.append(f"| {run.label} | " + " | ".join(_fmt(run.metrics.get(k), k)
                                                     for k in _HEADLINE)
                     + f" | {_fmt(ins, 'sharpe')} |")
    return "\n".join(lines) + "\n"


def _fmt(value: Any, key: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        if key in ("total_return", "cagr", "max_drawdown", "win_rate_periods",
                   "win_rate_trades", "benchmark_return"):
            return f"{value:+.1%}"
        return f"{value:.3f}"
    return str(value)


def _clean(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if metrics is None:
        return None
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in metrics.items()}
