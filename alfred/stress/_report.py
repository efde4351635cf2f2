"""The stress run folder::

    config.yaml          the resolved scenario (rerun with alfred stress config.yaml)
    metrics.json         kind "stress": paths, generator, seed, the quantile table, the
                         share of paths in which each strategy beat the benchmark
    paths.parquet/.csv   one row per (path, strategy): metrics, benchmark's, beats_benchmark
    returns.parquet      per-bar returns: path, strategy (or "benchmark"), ts, return
    quantiles.csv/.md    quantiles and mean of each metric across paths
    regimes.csv          per-regime breakdown (regimes generator only)
    report.html          fan chart per strategy, quantile table, paths beating the benchmark
    plots/               stress_hist.png (Sharpe, max drawdown, CAGR histograms, strategy vs
                         benchmark), stress_paths.png (equity fan: median, 5-95% band)
                         -- only with report.plots

Everything is written into a hidden staging folder renamed into place at the end, so an
interrupted or failed run leaves nothing half-written.
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

_PERCENT = ("max_drawdown", "cagr", "total_return", "volatility", "win_rate_periods",
            "mean_return_ann")
_HIST = (("sharpe", "Sharpe ratio"), ("max_drawdown", "Max drawdown"), ("cagr", "CAGR"))
_COLORS = ("#1f5fa8", "#d9822b", "#2e8b57", "#8e44ad", "#c0392b", "#16a085")


def write_stress(result, scenario: Scenario, target: Path, overwrite: bool,
                 started_at: datetime) -> None:
    from alfred.outputs import staged_folder

    with staged_folder(target, overwrite) as staging:
        _write(staging, result, scenario, started_at)


def _write(folder: Path, result, scenario: Scenario, started_at: datetime) -> None:
    resolved = scenario_to_dict(scenario)
    resolved["output"] = {"directory": None}
    resolved["stress"]["paths"] = result.n_paths
    resolved["stress"]["seed"] = result.seed
    header = (f"# Resolved scenario {scenario.name!r} as run at "
              f"{started_at.isoformat(timespec='seconds')}; rerun with `alfred stress "
              "config.yaml`.\n")
    (folder / "config.yaml").write_text(
        header + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), "utf-8")
    result.paths.write_parquet(folder / "paths.parquet")
    result.paths.write_csv(folder / "paths.csv")
    result.returns.write_parquet(folder / "returns.parquet")
    result.quantiles.write_csv(folder / "quantiles.csv")
    (folder / "quantiles.md").write_text(quantiles_md(result), encoding="utf-8")
    if result.regimes is not None:
        result.regimes.write_csv(folder / "regimes.csv")
    spec = scenario.stress
    metrics = {
        "kind": "stress", "name": scenario.name, "n_paths": result.n_paths,
        "generator": result.generator, "seed": result.seed, "days": result.days,
        "shocks": [s.model_dump(mode="json", exclude_none=True) for s in spec.shocks],
        "calibration": {"start": _iso(spec.calibration_start),
                        "end": _iso(spec.calibration_end or scenario.data.end)},
        "benchmark": "equal weight of the path's assets, rebalanced every bar, no costs",
        "beats_benchmark": result.beats(),
        "beats_benchmark_rule": "strategy total return above the benchmark's on the path",
        "quantiles": _nested(result.quantiles),
        "regimes": _clean_rows(result.regimes) if result.regimes is not None else None,
        "settings": {"capital": scenario.capital, "fill": scenario.fill,
                     "costs": scenario.costs.model_dump(), "executor": result.executor,
                     "strategies": [s.run_label for s in scenario.strategy_list],
                     "analysts": [a.name for a in scenario.analysts]},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    from reports import render_stress, write_page

    write_page(folder / "report.html", render_stress(
        title=f"{scenario.name}: stress test", returns=result.returns,
        quantiles=result.quantiles, beats=result.beats(),
        info=[f"{result.n_paths} paths, generator {result.generator}, seed {result.seed}",
              "benchmark: equal weight of the path's assets, rebalanced every bar, no costs"]))
    if scenario.report.plots:
        plots = folder / "plots"
        plots.mkdir()
        histogram_chart(plots / "stress_hist.png", result)
        fan_chart(plots / "stress_paths.png", result)


def quantiles_md(result) -> str:
    columns = [c for c in result.quantiles.columns if c not in ("strategy", "metric")]
    beats = result.beats()
    shocks = ", ".join(f"{s['kind']} at {s['at']}" for s in result.shocks) or "none"
    lines = [f"# Stress test {result.name}: {result.n_paths} paths of {result.days} bars", "",
             f"Generator {result.generator}, seed {result.seed}, shocks: {shocks}. Benchmark: "
             "equal weight of the path's assets, rebalanced every bar, no costs.", ""]
    for label, b in beats.items():
        lines.append(f"- {label} beat the benchmark (total return) in {b['beat']} of "
                     f"{b['paths']} paths ({_fmt(b['share'], 'share')}).")
    lines += ["", "| strategy | metric | " + " | ".join(columns) + " |",
              "|---|---|" + "---:|" * len(columns)]
    for row in result.quantiles.iter_rows(named=True):
        lines.append(f"| {row['strategy']} | {row['metric']} | "
                     + " | ".join(_fmt(row[c], row["metric"] if c != "paths" else "paths")
                                  for c in columns) + " |")
    if result.regimes is not None:
        lines += ["", "## Per regime (returns pooled over paths)", "",
                  "| regime | strategy | paths | bars | sharpe | mean return (ann.) |",
                  "|---|---|---:|---:|---:|---:|"]
        for row in result.regimes.iter_rows(named=True):
            lines.append(f"| {row['regime']} | {row['strategy']} | {row['paths']} | "
                         f"{row['bars']} | {_fmt(row['sharpe'], 'sharpe')} | "
                         f"{_fmt(row['mean_return_ann'], 'mean_return_ann')} |")
    return "\n".join(lines) + "\n"


def histogram_chart(path: Path, result) -> Path:
    """One histogram per metric (Sharpe, max drawdown, CAGR): each strategy and the
    benchmark overlaid, dashed lines at the medians."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from reports import plot_style

    labels = result.paths["strategy"].unique(maintain_order=True).to_list()
    first = result.paths.filter(pl.col("strategy") == labels[0])
    with plot_style():
        fig = Figure(figsize=(13, 4.2), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(_HIST))
        for ax, (metric, title) in zip(axes, _HIST, strict=True):
            series = [(label, result.paths.filter(pl.col("strategy") == label)[metric], color)
                      for label, color in zip(labels, _COLORS, strict=False)]
            series.append(("benchmark (equal weight)", first[f"benchmark_{metric}"], "#777777"))
            values = [_finite(s) for _, s, _ in series]
            pooled = np.concatenate(values)
            if pooled.size == 0:
                ax.set_title(f"{title}: no finite values")
                continue
            lo, hi = float(pooled.min()), float(pooled.max())
            bins = np.linspace(lo, hi if hi > lo else lo + 1e-9, 31)
            for (label, _, color), v in zip(series, values, strict=True):
                if v.size:
                    ax.hist(v, bins=bins, alpha=0.45, color=color, label=label)
                    ax.axvline(float(np.median(v)), color=color, lw=1.2, ls="--")
            if metric in _PERCENT:
                from matplotlib.ticker import PercentFormatter

                ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.set_title(f"{title} across {result.n_paths} paths")
            ax.set_ylabel("paths")
            ax.grid(alpha=0.3)
        axes[0].legend(loc="upper left", fontsize=8)
        fig.suptitle(f"{result.name}: stress test ({result.generator}, seed {result.seed}); "
                     "dashed: medians")
        fig.savefig(path)
    return path


def fan_chart(path: Path, result) -> Path:
    """Per strategy: median growth of 1 across paths and the 5-95% band, with the
    benchmark's median."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from reports import plot_style

    labels = result.paths["strategy"].unique(maintain_order=True).to_list()
    bench_ts, bench = _wealth(result.returns, "benchmark")
    with plot_style():
        fig = Figure(figsize=(10, 3.6 * len(labels) + 0.6), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        axes = np.atleast_1d(fig.subplots(len(labels), 1, squeeze=False)[:, 0])
        for ax, label, color in zip(axes, labels, _COLORS * 10, strict=False):
            ts, wealth = _wealth(result.returns, label)
            q05, q50, q95 = np.quantile(wealth, [0.05, 0.5, 0.95], axis=0)
            ax.fill_between(ts, q05, q95, color=color, alpha=0.2, label="5-95% of paths")
            ax.plot(ts, q50, color=color, lw=1.5, label=f"{label}: median")
            b05, b50, b95 = np.quantile(bench, [0.05, 0.5, 0.95], axis=0)
            ax.plot(bench_ts, b50, color="#777777", lw=1.2, label="benchmark: median")
            ax.plot(bench_ts, b05, color="#777777", lw=0.7, ls=":")
            ax.plot(bench_ts, b95, color="#777777", lw=0.7, ls=":",
                    label="benchmark: 5% / 95%")
            ax.axhline(1.0, color="black", lw=0.6, ls=":")
            ax.set_title(f"{label}: growth of 1 across {result.n_paths} synthetic paths "
                         "(after costs)")
            ax.grid(alpha=0.3)
            ax.legend(loc="upper left", fontsize=8)
        fig.savefig(path)
    return path


def _wealth(returns: pl.DataFrame, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(ts, paths x bars matrix of growth of 1) for one strategy; paths share a calendar."""
    own = returns.filter(pl.col("strategy") == label).sort("path", "ts")
    ts = own.filter(pl.col("path") == own["path"][0])["ts"].to_numpy()
    wide = own.pivot(on="ts", index="path", values="return").drop("path").to_numpy()
    wide = np.nan_to_num(wide.astype(float))
    return ts, np.cumprod(1.0 + wide, axis=1)


def _finite(values: pl.Series) -> np.ndarray:
    arr = values.to_numpy().astype(float)
    return arr[np.isfinite(arr)]


def _nested(quantiles: pl.DataFrame) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in quantiles.iter_rows(named=True):
        values = {k: _clean(v) for k, v in row.items() if k not in ("strategy", "metric")}
        out.setdefault(row["strategy"], {})[row["metric"]] = values
    return out


def _clean_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _iso(value) -> str | None:
    return None if value is None else str(value)


def _fmt(value: Any, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if metric == "paths":
        return str(value)
    if metric in _PERCENT or metric == "share":
        return f"{value:+.1%}" if metric != "share" else f"{value:.0%}"
    return f"{value:.2f}"
