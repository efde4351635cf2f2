"""PNG charts of a run: equity vs benchmark, drawdown, monthly returns, rolling Sharpe.

Figures are built on matplotlib's object API with the Agg canvas attached explicitly, never
through pyplot: that leaves the user's backend alone (a notebook keeps its inline
backend), holds no global figure registry, and works on a headless machine. They are drawn
under matplotlib's default style: quantstats restyles the global rcParams when imported,
and our charts should not change look depending on what was imported first. matplotlib
itself is imported when the first figure is made: ``import reports`` (metrics,
comparisons) does not pay for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from engine.errors import ConfigError
from reports._inputs import align_benchmark, returns_with_ts
from reports._stats import wealth_and_drawdown

if TYPE_CHECKING:  # matplotlib is imported when a figure is made, not with ``reports``
    from matplotlib.figure import Figure

PLOT_NAMES = ("equity", "drawdown", "monthly_returns", "rolling_sharpe")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def plot_style():
    """Context in which our figures are built and saved (rcParams are read at both)."""
    from matplotlib import style

    return style.context("default")


def _figure(width: float = 10.0, height: float = 4.5) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _dates(ts_ns: np.ndarray) -> np.ndarray:
    return ts_ns.view("datetime64[ns]")


def _date_axis(ax, ts_ns: np.ndarray) -> np.ndarray:
    """x positions of the bars as matplotlib date numbers, the axis given the locator and
    formatter a datetime axis gets (the same ticks and labels). Drawn from datetimes, the
    axis keeps a unit converter that matplotlib runs on every clip-path lookup of every
    draw, ~0.04 s of CPU per chart."""
    from matplotlib import dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.AutoDateFormatter(locator))
    return mdates.date2num(_dates(ts_ns))


def _benchmark_on_strategy_bars(ts_ns: np.ndarray, benchmark) -> np.ndarray:
    """Benchmark return per strategy bar; 0 on bars the benchmark lacks (it held still)."""
    b_full = np.zeros(ts_ns.size)
    r_idx = np.arange(ts_ns.size, dtype=np.float64)
    paired_idx, paired_b = align_benchmark(r_idx, ts_ns, benchmark)
    b_full[paired_idx.astype(np.int64)] = paired_b
    return b_full


def equity_figure(r: np.ndarray, ts_ns: np.ndarray, benchmark=None, *,
                  title: str = "Strategy", benchmark_label: str = "Benchmark") -> Figure:
    fig = _figure()
    ax = fig.add_subplot()
    dates = _date_axis(ax, ts_ns)
    wealth, _ = wealth_and_drawdown(r)
    ax.plot(dates, wealth, color="#1f5fa8", lw=1.4, label=title)
    if benchmark is not None:
        bench_wealth, _ = wealth_and_drawdown(_benchmark_on_strategy_bars(ts_ns, benchmark))
        ax.plot(dates, bench_wealth, color="#888888", lw=1.1, label=benchmark_label)
    ax.axhline(1.0, color="black", lw=0.6, ls=":")
    ax.set_title(f"{title}: growth of 1 (after costs)")
    ax.set_ylabel("wealth")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return fig


def plot_equity(returns, benchmark=None, *, title: str = "Strategy",
                benchmark_label: str = "Benchmark") -> Figure:
    """Growth of 1 for a ``ts, return`` frame, with the benchmark (a ``ts, return`` frame)
    on the strategy's bars: a matplotlib Figure (Agg canvas, no pyplot), as drawn in
    ``plots/equity.png``. A notebook shows it as the cell's value."""
    r, ts_ns = returns_with_ts(returns)
    if ts_ns is None:
        raise ConfigError("the equity chart needs timestamps: pass a frame with ts and return")
    if r.size == 0:
        raise ConfigError("no returns to plot")
    with plot_style():
        return equity_figure(r, ts_ns, benchmark, title=title, benchmark_label=benchmark_label)


def drawdown_figure(r: np.ndarray, ts_ns: np.ndarray, *, title: str = "Strategy") -> Figure:
    fig = _figure(10.0, 3.5)
    ax = fig.add_subplot()
    _, dd = wealth_and_drawdown(r)
    dates = _date_axis(ax, ts_ns)
    ax.fill_between(dates, dd * 100.0, 0.0, color="#c0392b", alpha=0.35, lw=0)
    ax.plot(dates, dd * 100.0, color="#c0392b", lw=0.8)
    ax.set_title(f"{title}: drawdown (max {dd.min():.1%})")
    ax.set_ylabel("% below peak")
    ax.grid(alpha=0.3)
    return fig


def monthly_returns_table(r: np.ndarray, ts_ns: np.ndarray) -> pl.DataFrame:
    """Compounded return per calendar month: columns year, month, return."""
    frame = pl.DataFrame({"ts": pl.Series(_dates(ts_ns)), "r": r})
    return (frame.group_by(pl.col("ts").dt.year().alias("year"),
                           pl.col("ts").dt.month().alias("month"))
            .agg(((pl.col("r") + 1.0).product() - 1.0).alias("return"))
            .sort("year", "month"))


def monthly_heatmap_figure(r: np.ndarray, ts_ns: np.ndarray, *,
                           title: str = "Strategy") -> Figure:
    table = monthly_returns_table(r, ts_ns)
    year_of = table["year"].to_numpy()
    years = np.unique(year_of)
    grid = np.full((years.size, 12), np.nan)
    grid[np.searchsorted(years, year_of), table["month"].to_numpy() - 1] = \
        table["return"].to_numpy()
    fig = _figure(10.0, max(2.5, 0.38 * years.size + 1.4))
    ax = fig.add_subplot()
    limit = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.0
    limit = limit if limit > 0 else 0.01
    image = ax.imshow(grid * 100.0, cmap="RdYlGn", vmin=-limit * 100.0, vmax=limit * 100.0,
                      aspect="auto")
    ax.set_xticks(range(12), _MONTHS)
    ax.set_yticks(range(years.size), [str(y) for y in years])
    if years.size <= 40:  # labels stay legible up to a few decades
        from reports._cell_labels import CellLabels

        rows, cols = np.nonzero(np.isfinite(grid))
        values = grid[rows, cols]
        # a 7 pt label sits inside its cell (~0.65 x 0.38 in); white where the colour
        # map's ends are dark
        ax.add_artist(CellLabels(cols, rows, [f"{v * 100:.1f}" for v in values],
                                 np.where(np.abs(values) > 0.6 * limit, "white", "black"),
                                 fontsize=7))
    fig.colorbar(image, ax=ax, label="monthly return, %")
    ax.set_title(f"{title}: monthly returns (%)")
    return fig


def rolling_window(n_bars: int, periods_per_year: float) -> int:
    """Half a year of bars, shortened for short runs so the chart is never empty."""
    window = max(2, round(periods_per_year / 2.0))
    if n_bars < 2 * window:
        window = max(2, n_bars // 3)
    return window


def rolling_sharpe(r: np.ndarray, window: int, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe (ddof=1) of each trailing window; NaN before the first full one."""
    out = np.full(r.size, np.nan)
    if r.size < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(r, window)
    mean, std = windows.mean(axis=1), windows.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[window - 1:] = np.where(std > 0, mean / std, np.nan) * math.sqrt(periods_per_year)
    return out


def rolling_sharpe_figure(r: np.ndarray, ts_ns: np.ndarray, periods_per_year: float, *,
                          title: str = "Strategy") -> Figure:
    window = rolling_window(r.size, periods_per_year)
    fig = _figure(10.0, 3.5)
    ax = fig.add_subplot()
    ax.plot(_date_axis(ax, ts_ns), rolling_sharpe(r, window, periods_per_year),
            color="#1f5fa8", lw=1)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_title(f"{title}: rolling Sharpe ({window} bars, annualised)")
    ax.grid(alpha=0.3)
    return fig


def freeze_layout(fig: Figure) -> Figure:
    """Lay the figure out once (constrained layout, Agg text metrics) and keep it.

    ``savefig`` otherwise lays a figure out again on every save, with a full draw pass
    just to measure it: rendered to both PNG and SVG, a figure would pay that twice. The
    positions are the ones a first PNG save computes, so the PNG is pixel for pixel the
    same; the SVG shares them (laid out with the SVG renderer's own text metrics, its
    axes sat up to about a point elsewhere).
    """
    if fig.get_layout_engine() is not None:
        with plot_style():  # under the default style, set_layout_engine(None) means none
            if fig.axes:
                fig.get_layout_engine().execute(fig)
            fig.set_layout_engine(None)
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` through a temporary name (no half-written file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with plot_style():
            freeze_layout(fig).savefig(tmp, format="png")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class RunFigures:
    """A run's four charts (``PLOT_NAMES``), each built on first use and kept.

    The tear sheet renders them as inline SVG and the plots folder as PNG: one object
    serves both, so a figure is built and laid out once (see :func:`freeze_layout`).
    """

    def __init__(self, r: np.ndarray, ts_ns: np.ndarray, benchmark=None, *,
                 periods_per_year: float, title: str = "Strategy",
                 benchmark_label: str = "Benchmark") -> None:
        self.r, self.ts_ns, self.benchmark = r, ts_ns, benchmark
        self.periods_per_year, self.title = periods_per_year, title
        self.benchmark_label = benchmark_label
        self._built: dict[str, Figure] = {}

    def _build(self, name: str) -> Figure:
        r, ts_ns, title = self.r, self.ts_ns, self.title
        if name == "equity":
            return equity_figure(r, ts_ns, self.benchmark, title=title,
                                 benchmark_label=self.benchmark_label)
        if name == "drawdown":
            return drawdown_figure(r, ts_ns, title=title)
        if name == "monthly_returns":
            return monthly_heatmap_figure(r, ts_ns, title=title)
        if name == "rolling_sharpe":
            return rolling_sharpe_figure(r, ts_ns, self.periods_per_year, title=title)
        raise KeyError(f"no chart named {name!r}; the charts are {PLOT_NAMES}")

    def __getitem__(self, name: str) -> Figure:
        if name not in self._built:
            with plot_style():
                self._built[name] = self._build(name)
        return self._built[name]


def resolve_periods_per_year(ts_ns: np.ndarray, periods_per_year: float | None) -> float:
    if periods_per_year is not None:
        if not (math.isfinite(periods_per_year) and periods_per_year > 0):
            raise ConfigError(f"periods_per_year must be > 0, got {periods_per_year!r}")
        return float(periods_per_year)
    from engine.data import infer_periods_per_year

    return float(infer_periods_per_year(_dates(ts_ns)))


def checked_returns(returns, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns and their int64 ns timestamps, refused without timestamps or bars."""
    r, ts_ns = returns_with_ts(returns)
    if ts_ns is None:
        raise ConfigError(f"{what} need timestamps: pass a frame with ts and return columns")
    if r.size == 0:
        raise ConfigError("no returns to plot")
    return r, ts_ns


def write_plots(directory: str | Path, returns, *, benchmark=None,
                periods_per_year: float | None = None, title: str = "Strategy",
                benchmark_label: str = "Benchmark") -> list[Path]:
    """Write ``equity.png``, ``drawdown.png``, ``monthly_returns.png`` and
    ``rolling_sharpe.png`` into ``directory`` (created if missing); returns their paths.

    ``returns`` is a frame with ``ts`` and ``return`` (``BacktestResult.returns``);
    ``periods_per_year`` defaults to the one inferred from the timestamps.
    """
    r, ts_ns = checked_returns(returns, "plots")
    figures = RunFigures(r, ts_ns, benchmark, title=title, benchmark_label=benchmark_label,
                         periods_per_year=resolve_periods_per_year(ts_ns, periods_per_year))
    return save_plots(directory, figures)


def save_plots(directory: str | Path, figures: RunFigures) -> list[Path]:
    """The PNG files of :func:`write_plots` from figures already at hand."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    return [save_png(figures[name], target / f"{name}.png") for name in PLOT_NAMES]
