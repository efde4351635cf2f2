"""Per-regime breakdown of a run: the strategy and its benchmark in each market regime.

Three labellings of the run's bars, all from the benchmark (the market the strategy is
judged against): ``market`` (bull / bear by the 20% drawdown rule), ``volatility``
(low / mid / high trailing-volatility terciles) and ``named`` (the library's historical
windows that overlap the run). Within a regime the strategy's and the benchmark's
returns on those bars are scored as one series (Sharpe, total and annualised return,
max drawdown, share of up bars). ``episodes`` says how many separate spells of the regime
are behind a row -- a strategy that "beats the market in bear regimes" on one episode is
an anecdote -- and walk-forward reports add ``folds``, the number of folds whose test
window overlaps the regime.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from reports.regimes._label import drawdown_regimes, episodes, volatility_regimes
from reports.regimes._library import REGIMES

COLUMNS = ("labelling", "regime", "start", "end", "bars", "episodes", "strategy_return",
           "strategy_ann_return", "strategy_sharpe", "strategy_max_drawdown",
           "benchmark_return", "benchmark_ann_return", "benchmark_sharpe",
           "benchmark_max_drawdown", "beats_benchmark")


def regime_masks(ts: np.ndarray, benchmark: np.ndarray, *, threshold: float = 0.2,
                 vol_window: int = 21) -> list[tuple[str, str, np.ndarray]]:
    """``(labelling, regime, mask)`` for every regime present on the bars ``ts``.

    ``benchmark`` holds the benchmark's simple return on each bar (0 where it has none).
    """
    out: list[tuple[str, str, np.ndarray]] = []
    prices = np.cumprod(1.0 + benchmark)
    market = drawdown_regimes(np.concatenate([[1.0], prices]), threshold)[1:]
    for name in ("bull", "bear"):
        if (market == name).any():
            out.append(("market", name, market == name))
    if ts.size >= vol_window:
        vol = volatility_regimes(benchmark, vol_window)
        for name in ("low_vol", "mid_vol", "high_vol"):
            if (vol == name).any():
                out.append(("volatility", name, vol == name))
    days = ts.astype("datetime64[D]")
    for regime in REGIMES.values():
        mask = (days >= np.datetime64(regime.start)) & (days <= np.datetime64(regime.end))
        if mask.sum() >= 2:
            out.append(("named", regime.name, mask))
    return out


def _score(r: np.ndarray, ppy: float) -> dict[str, float]:
    wealth = np.cumprod(1.0 + r)
    total = float(wealth[-1] - 1.0)
    years = r.size / ppy
    ann = float(wealth[-1] ** (1.0 / years) - 1.0) if wealth[-1] > 0 else -1.0
    sd = float(r.std(ddof=1)) if r.size > 1 else float("nan")
    sharpe = float(r.mean() / sd * math.sqrt(ppy)) if sd and sd > 0 else float("nan")
    peak = np.maximum.accumulate(np.concatenate([[1.0], wealth]))
    mdd = float((np.concatenate([[1.0], wealth]) / peak - 1.0).min())
    return {"return": total, "ann_return": ann, "sharpe": sharpe, "max_drawdown": mdd}


def regime_breakdown(returns: pl.DataFrame, benchmark: pl.DataFrame, periods_per_year: float,
                     *, folds: list[tuple[str, str]] | None = None, threshold: float = 0.2,
                     vol_window: int = 21) -> pl.DataFrame:
    """One row per (labelling, regime): the strategy vs the benchmark on its bars.

    ``returns`` and ``benchmark`` are ``ts, return`` frames; the benchmark is aligned on
    the strategy's bars (0 where it has no bar). ``folds`` (test start, end dates) adds a
    ``folds`` column: how many walk-forward folds overlap each regime.
    """
    frame = returns.select("ts", "return").join(
        benchmark.select("ts", pl.col("return").alias("_bench")), on="ts", how="left"
    ).with_columns(pl.col("_bench").fill_null(0.0)).sort("ts")
    ts = frame["ts"].to_numpy()
    r, b = frame["return"].to_numpy(), frame["_bench"].to_numpy()
    rows = []
    for labelling, regime, mask in regime_masks(ts, b, threshold=threshold,
                                                vol_window=vol_window):
        strat, bench = _score(r[mask], periods_per_year), _score(b[mask], periods_per_year)
        days = ts[mask].astype("datetime64[D]")
        row = {"labelling": labelling, "regime": regime, "start": str(days[0]),
               "end": str(days[-1]), "bars": int(mask.sum()), "episodes": episodes(mask),
               **{f"strategy_{k}": v for k, v in strat.items()},
               **{f"benchmark_{k}": v for k, v in bench.items()},
               "beats_benchmark": bool(strat["return"] > bench["return"])}
        if folds is not None:
            row["folds"] = sum(1 for a, z in folds  # folds holding a bar of this regime
                               if ((days >= np.datetime64(a)) & (days <= np.datetime64(z))).any())
        rows.append(row)
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame(rows)


def regimes_markdown(table: pl.DataFrame, title: str, benchmark_label: str) -> str:
    """The breakdown as a markdown table (percentages, Sharpe to two decimals)."""
    extra = ["folds"] if "folds" in table.columns else []
    headers = ["labelling", "regime", "span", "bars", "episodes", *extra, "return",
               f"{benchmark_label} return", "Sharpe", f"{benchmark_label} Sharpe", "max DD",
               "beats"]
    lines = [f"# {title}: per-regime results", "",
             "Each row scores the strategy and the benchmark on the bars of one regime. "
             "`episodes` counts separate spells of the regime behind the row"
             + (" and `folds` the walk-forward folds overlapping it" if extra else "")
             + ". Market and volatility regimes are labelled after the fact from the "
             "benchmark (a 20% fall from a peak starts a bear market; trailing 21-bar "
             "volatility terciles); they describe the period, no decision used them.", "",
             "| " + " | ".join(headers) + " |",
             "|" + "|".join(["---"] * 3 + ["---:"] * (len(headers) - 3)) + "|"]
    pct = lambda v: "" if v is None or v != v else f"{v:.1%}"  # noqa: E731
    num = lambda v: "" if v is None or v != v else f"{v:.2f}"  # noqa: E731
    for row in table.iter_rows(named=True):
        cells = [row["labelling"], row["regime"], f"{row['start']} to {row['end']}",
                 str(row["bars"]), str(row["episodes"]), *[str(row[c]) for c in extra],
                 pct(row["strategy_return"]), pct(row["benchmark_return"]),
                 num(row["strategy_sharpe"]), num(row["benchmark_sharpe"]),
                 pct(row["strategy_max_drawdown"]), "yes" if row["beats_benchmark"] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def regimes_figure(table: pl.DataFrame, title: str, benchmark_label: str):
    """Annualised return of the strategy and the benchmark per regime, one panel per
    labelling; each bar's label carries its episode count."""
    from reports._plots import _figure

    groups = [g for g in ("market", "volatility", "named") if g in set(table["labelling"])]
    fig = _figure(11.0, 3.2 * len(groups))
    for i, group in enumerate(groups):
        part = table.filter(pl.col("labelling") == group)
        ax = fig.add_subplot(len(groups), 1, i + 1)
        x = np.arange(part.height)
        ax.bar(x - 0.2, part["strategy_ann_return"].to_numpy(), 0.4, color="#1f5fa8",
               label=title)
        ax.bar(x + 0.2, part["benchmark_ann_return"].to_numpy(), 0.4, color="#9a9a9a",
               label=benchmark_label)
        ax.set_xticks(x, [f"{n}\n({e} ep.)" for n, e in zip(part["regime"], part["episodes"],
                                                            strict=True)],
                      fontsize=8)
        ax.axhline(0.0, color="black", lw=0.6)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_title(f"{group} regimes: annualised return", fontsize=10, loc="left")
        if i == 0:
            ax.legend(fontsize=8, loc="best")
    return fig


def write_regimes(folder: Path, table: pl.DataFrame, *, title: str, benchmark_label: str,
                  plots: bool) -> None:
    """``regimes.csv``, ``regimes.md`` and (with plots) ``plots/regimes.png`` in ``folder``."""
    if table.height == 0:
        return
    _atomic(folder / "regimes.csv", table.write_csv)
    text = regimes_markdown(table, title, benchmark_label)
    _atomic(folder / "regimes.md", lambda p: Path(p).write_text(text, encoding="utf-8"))
    if plots:
        from reports._plots import plot_style, save_png

        (folder / "plots").mkdir(exist_ok=True)
        with plot_style():
            figure = regimes_figure(table, title, benchmark_label)
        save_png(figure, folder / "plots" / "regimes.png")


def _atomic(path: Path, write) -> None:
    """Write through a temporary name and move into place: no half-written file."""
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)
