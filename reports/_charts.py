"""Figures of the HTML report family, drawn by us (matplotlib object API, no pyplot).

Category axes (years, folds, parameter values) are placed by position with the labels set
explicitly, never through a date axis: quantstats' end-of-year chart drew its years
through pandas' date conversion and, with pandas 3 / matplotlib 3.11, put them in the
wrong place. Chart elements a test reads carry a ``gid`` (``eoy-year-2008``,
``eoy-bar-strategy-2008``) that the SVG keeps as an element id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from reports._plots import _benchmark_on_strategy_bars, _figure, plot_style
from reports._stats import wealth_and_drawdown

if TYPE_CHECKING:  # imported by _figure when a chart is drawn
    from matplotlib.figure import Figure

STRATEGY_COLOUR = "#1f5fa8"
BENCHMARK_COLOUR = "#9a9a9a"
PALETTE = ("#1f5fa8", "#d9822b", "#2e8b57", "#8e44ad", "#c0392b", "#17a2b8", "#7f6000",
           "#e377c2", "#555555", "#bcbd22")


def _styled(build: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under matplotlib's default style (quantstats restyles rcParams
    globally when imported; rcParams are read when axes are made)."""
    @functools.wraps(build)
    def wrapper(*args, **kwargs) -> Figure:
        with plot_style():
            return build(*args, **kwargs)
    return wrapper


def yearly_returns(r: np.ndarray, ts_ns: np.ndarray, benchmark=None) -> pl.DataFrame:
    """Compounded return per calendar year: ``year, strategy[, benchmark, excess]``.

    The benchmark is taken on the strategy's bars (as every other figure of the run).
    """
    frame = pl.DataFrame({"ts": pl.Series(ts_ns.view("datetime64[ns]")), "strategy": r})
    columns = ["strategy"]
    if benchmark is not None:
        frame = frame.with_columns(
            pl.Series("benchmark", _benchmark_on_strategy_bars(ts_ns, benchmark)))
        columns.append("benchmark")
    table = (frame.group_by(pl.col("ts").dt.year().alias("year"))
             .agg([((pl.col(c) + 1.0).product() - 1.0).alias(c) for c in columns])
             .sort("year"))
    if benchmark is not None:
        table = table.with_columns((pl.col("strategy") - pl.col("benchmark")).alias("excess"))
    return table


@_styled
def eoy_figure(table: pl.DataFrame, *, title: str = "Strategy",
               benchmark_label: str = "Benchmark") -> Figure:
    """Grouped bars per calendar year, years labelled under their own bars."""
    years = table["year"].to_list()
    has_bench = "benchmark" in table.columns
    fig = _figure(10.0, 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(years), dtype=float)
    width = 0.4 if has_bench else 0.7
    offset = width / 2 if has_bench else 0.0
    bars = ax.bar(x - offset, table["strategy"].to_numpy() * 100.0, width,
                  color=STRATEGY_COLOUR, label=title)
    for year, bar in zip(years, bars, strict=True):
        bar.set_gid(f"eoy-bar-strategy-{year}")
    if has_bench:
        bench = ax.bar(x + offset, table["benchmark"].to_numpy() * 100.0, width,
                       color=BENCHMARK_COLOUR, label=benchmark_label)
        for year, bar in zip(years, bench, strict=True):
            bar.set_gid(f"eoy-bar-benchmark-{year}")
    ax.set_xticks(x, [str(y) for y in years], rotation=90 if len(years) > 26 else 0,
                  fontsize=8 if len(years) > 14 else 10)
    for year, label in zip(years, ax.get_xticklabels(), strict=True):
        label.set_gid(f"eoy-year-{year}")
    ax.set_xlim(-0.6, len(years) - 0.4)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_ylabel("return in the calendar year, %")
    ax.set_title(f"{title}: end-of-year returns" + (f" vs {benchmark_label}" if has_bench
                                                   else ""))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return fig


@_styled
def overlay_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray]], *,
                   title: str, benchmark: tuple[str, np.ndarray, np.ndarray] | None = None,
                   spans: Sequence[tuple[np.datetime64, np.datetime64]] = ()) -> Figure:
    """Growth of 1 for several (label, dates, returns) curves; shaded ``spans`` (folds)."""
    fig = _figure(10.0, 4.5)
    ax = fig.add_subplot()
    for i, (start, end) in enumerate(spans):
        ax.axvspan(start, end, color="#000000", alpha=0.04 if i % 2 else 0.0, lw=0)
    for i, (label, dates, r) in enumerate(curves):
        wealth, _ = wealth_and_drawdown(np.asarray(r, dtype=np.float64))
        ax.plot(dates, wealth, color=PALETTE[i % len(PALETTE)], lw=1.3, label=label)
    if benchmark is not None:
        label, dates, r = benchmark
        wealth, _ = wealth_and_drawdown(np.asarray(r, dtype=np.float64))
        ax.plot(dates, wealth, color=BENCHMARK_COLOUR, lw=1.1, ls="--", label=label)
    ax.axhline(1.0, color="black", lw=0.6, ls=":")
    ax.set_title(title)
    ax.set_ylabel("growth of 1")
    ax.grid(alpha=0.3)
    if curves or benchmark is not None:
        ax.legend(loc="upper left", fontsize=9)
    return fig


@_styled
def fan_figure(bars: np.ndarray, bands: dict[float, np.ndarray], *, title: str,
               median_label: str = "median path",
               benchmark: np.ndarray | None = None) -> Figure:
    """Quantile bands of wealth over bars (``bands`` maps quantile -> wealth per bar)."""
    fig = _figure(10.0, 4.5)
    ax = fig.add_subplot()
    qs = sorted(bands)
    for lo, hi in zip(qs, reversed(qs), strict=False):
        if lo >= hi:
            break
        ax.fill_between(bars, bands[lo], bands[hi], color=STRATEGY_COLOUR, alpha=0.15, lw=0,
                        label=f"{lo:.0%}-{hi:.0%} of paths")
    if 0.5 in bands:
        ax.plot(bars, bands[0.5], color=STRATEGY_COLOUR, lw=1.5, label=median_label)
    if benchmark is not None:
        ax.plot(bars, benchmark, color=BENCHMARK_COLOUR, lw=1.1, ls="--",
                label="benchmark (median path)")
    ax.axhline(1.0, color="black", lw=0.6, ls=":")
    ax.set_xlabel("bar")
    ax.set_ylabel("growth of 1")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    return fig


@_styled
def heatmap_figure(grid: np.ndarray, x_values: Sequence[object], y_values: Sequence[object],
                   *, x_label: str, y_label: str, title: str, percent: bool) -> Figure:
    """A value per (y, x) cell, annotated; NaN cells stay blank."""
    fig = _figure(min(10.0, 2.5 + 0.9 * len(x_values)), min(8.0, 1.8 + 0.5 * len(y_values)))
    ax = fig.add_subplot()
    finite = grid[np.isfinite(grid)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = limit or 1.0
    image = ax.imshow(grid, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
    ax.set_yticks(range(len(y_values)), [str(v) for v in y_values])
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            text = f"{value * 100:.1f}%" if percent else f"{value:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if abs(value) > 0.6 * limit else "black")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    return fig


@_styled
def lines_figure(series: Sequence[tuple[str, np.ndarray, np.ndarray]], *, title: str,
                 x_label: str, y_label: str) -> Figure:
    """Plain lines (learning curves): (label, x, y) each."""
    fig = _figure(10.0, 4.0)
    ax = fig.add_subplot()
    for i, (label, x, y) in enumerate(series):
        ax.plot(x, y, color=PALETTE[i % len(PALETTE)], lw=1.2, label=label)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(loc="best", fontsize=9)
    return fig
