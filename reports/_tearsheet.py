"""HTML tear sheet: Alfred's page (metrics, charts, end-of-year table) plus quantstats'
metrics table as a cross-check.

The page is one of the report family (``reports._html``): inline SVG charts we draw
ourselves, one stylesheet, offline. quantstats' own HTML report is no longer used: with
pandas 3 / matplotlib 3.11 its "EOY Returns vs Benchmark" chart put the year labels in the
wrong place (crammed to the left on long runs, shifted by a year on short ones), its
"CAGR\ufe6a" label needs a glyph common fonts lack, and its end-of-year table ran off the
page. What quantstats still contributes is its "Key Performance Metrics" table, computed
on the same returns, so a reader can check our figures against a library they know.

The benchmark is always a series already on the strategy's bars, never a ticker (a string
would make quantstats download it) and never a series on another calendar.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from reports import _html as h
from reports._charts import eoy_figure, yearly_returns
from reports._definitions import (
    HEADLINE,
    METRIC_DEFINITIONS,
    format_metric,
    metric_label,
    return_metric,
)
from reports._inputs import returns_with_ts, to_pandas
from reports._plots import RunFigures, _benchmark_on_strategy_bars, resolve_periods_per_year

METRICS_TABLE_ID = "alfred-metrics"
EQUITY_CHART_ID = "alfred-equity-chart"
EOY_CHART_ID = "alfred-eoy-chart"
EOY_TABLE_ID = "alfred-eoy-table"
QUANTSTATS_TABLE_ID = "quantstats-metrics"
_BENCHMARK_ROWS = ("alpha", "beta", "information_ratio")
# quantstats labels that need a glyph few fonts have (U+FE6A SMALL PERCENT SIGN).
_LABEL_FIXES = {"\ufe6a": ""}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _metric_columns(metrics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if "with_costs" in metrics:
        columns = [("With costs", metrics["with_costs"])]
        if metrics.get("without_costs"):
            columns.append(("Without costs", metrics["without_costs"]))
        return columns
    return [("Strategy", metrics)]


def metrics_table_html(metrics: dict[str, Any]) -> str:
    """The headline metrics as an HTML table (one column per cost setting)."""
    columns = _metric_columns(metrics)
    names = [n for n in HEADLINE
             if not (n in _BENCHMARK_ROWS and all(_missing(c.get(n)) for _, c in columns))]
    return h.metrics_table(columns, names, id=METRICS_TABLE_ID,
                           definitions=METRIC_DEFINITIONS)


def eoy_table_html(table) -> str:
    has_bench = "benchmark" in table.columns
    headers = ["Year", "Strategy"] + (["Benchmark", "Excess"] if has_bench else [])
    rows = []
    for row in table.iter_rows(named=True):
        cells = [str(row["year"]), format_metric("total_return", row["strategy"])]
        if has_bench:
            cells += [format_metric("total_return", row["benchmark"]),
                      format_metric("total_return", row["excess"])]
        rows.append(cells)
    return h.table(headers, rows, id=EOY_TABLE_ID)


def quantstats_table_html(frame) -> str:
    """quantstats' metrics frame as a table (separator rows dropped, labels fixed)."""
    headers = ["Metric", *[str(c) for c in frame.columns]]
    rows = []
    for label, values in zip(frame.index, frame.itertuples(index=False), strict=True):
        text = str(label)
        for bad, good in _LABEL_FIXES.items():
            text = text.replace(bad, good)
        if not text.strip():
            continue
        rows.append([text, *[str(v) for v in values]])
    return h.table(headers, rows, id=QUANTSTATS_TABLE_ID)


def _quantstats_metrics(strategy, benchmark, *, rf: float, periods_per_year: float,
                        title: str, benchmark_title: str):
    import quantstats as qs

    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 3 deprecations inside quantstats
            return qs.reports.metrics(strategy, benchmark=benchmark, rf=rf, display=False,
                                      mode="full", compounded=True, sep=True,
                                      periods_per_year=periods_per_year, match_dates=False,
                                      prepare_returns=False, internal="True",
                                      strategy_title=title, benchmark_title=benchmark_title)
    finally:
        font_log.setLevel(level)


def tearsheet_html(figures: RunFigures, metrics: dict[str, Any], *, rf: float,
                   quantstats_frame=None, crumbs=()) -> str:
    """The tear sheet page as text (see :func:`write_tearsheet`)."""
    r, ts_ns, benchmark = figures.r, figures.ts_ns, figures.benchmark
    title, benchmark_label = figures.title, figures.benchmark_label
    periods_per_year = figures.periods_per_year
    dates = ts_ns.view("datetime64[ns]")
    first, last = str(dates[0])[:10], str(dates[-1])[:10]
    flat = metrics.get("with_costs", metrics)
    ret_key = return_metric(r.size, periods_per_year)
    subtitle = [f"{first} to {last}: {r.size} bars, {periods_per_year:g} bars per year, "
                f"risk-free rate {rf:g}"
                + (f", benchmark {benchmark_label}" if benchmark is not None else ""),
                f"{metric_label(ret_key)}: "
                f"{format_metric(ret_key, flat.get(ret_key))}, Sharpe "
                f"{format_metric('sharpe', flat.get('sharpe'))}, max drawdown "
                f"{format_metric('max_drawdown', flat.get('max_drawdown'))}"]
    subtitle += [f"Note: {note}" for note in metrics.get("notes") or ()]
    eoy = yearly_returns(r, ts_ns, benchmark)
    body = [
        h.section("Metrics", metrics_table_html(metrics),
                  note="Definitions: hover a metric's name, or see metrics.json."),
        h.section("Equity", h.svg(figures["equity"], id=EQUITY_CHART_ID)
                  + h.svg(figures["drawdown"], id="alfred-drawdown-chart")),
        h.section("End-of-year returns",
                  h.svg(eoy_figure(eoy, title=title, benchmark_label=benchmark_label),
                        id=EOY_CHART_ID) + eoy_table_html(eoy),
                  note="Compounded return within each calendar year (a partial first or "
                       "last year counts only its own bars)."),
        h.section("Monthly returns", h.svg(figures["monthly_returns"],
                                           id="alfred-monthly-chart")),
        h.section("Rolling Sharpe", h.svg(figures["rolling_sharpe"],
                                          id="alfred-rolling-sharpe-chart")),
    ]
    if quantstats_frame is not None:
        body.append(h.section("quantstats cross-check", quantstats_table_html(quantstats_frame),
                              note="quantstats' Key Performance Metrics on the same returns "
                                   "(its own conventions; ours are defined in metrics.json)."))
    return h.page(title, "".join(body), subtitle=subtitle, crumbs=crumbs, kind="tearsheet")


def write_tearsheet(path: str | Path, returns_ts_frame, benchmark=None,
                    title: str = "Strategy", *, periods_per_year: float | None = None,
                    rf: float = 0.0, metrics: dict[str, Any] | None = None,
                    benchmark_label: str = "Benchmark", crumbs=()) -> Path:
    """Write an offline HTML tear sheet for a ``ts, return`` frame; returns its path.

    ``benchmark`` is returns (a ``ts, return`` frame, or one value per bar), never a ticker.
    ``metrics`` (a flat ``compute_metrics`` dict or ``metrics_for_result``'s output) fills
    the Alfred table; without it the table is computed from the returns alone.
    ``crumbs`` are (href, text) links shown above the title (to the parent report).
    """
    if isinstance(benchmark, str):
        raise ConfigError(f"benchmark {benchmark!r} is a name; pass its returns (a frame with "
                          "ts and return) -- the tear sheet never downloads data")
    r, ts_ns = returns_with_ts(returns_ts_frame)
    if ts_ns is None:
        raise ConfigError("the tear sheet needs timestamps: pass a frame with ts and return")
    figures = RunFigures(r, ts_ns, benchmark, title=title, benchmark_label=benchmark_label,
                         periods_per_year=resolve_periods_per_year(ts_ns, periods_per_year))
    return save_tearsheet(path, figures, metrics=metrics, rf=rf, crumbs=crumbs)


def save_tearsheet(path: str | Path, figures: RunFigures, *,
                   metrics: dict[str, Any] | None = None, rf: float = 0.0, crumbs=()) -> Path:
    """The tear sheet of :func:`write_tearsheet` from a run's figures (built here on first
    use, or already drawn for its PNG plots)."""
    r, ts_ns = figures.r, figures.ts_ns
    if r.size < 2:
        raise ConfigError(f"the tear sheet needs at least 2 bars of returns, got {r.size}")
    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigError(f"folder {target.parent} does not exist; create it first")
    if metrics is None:
        from reports.metrics import compute_metrics

        metrics = compute_metrics(r, figures.periods_per_year,
                                  ts=ts_ns.view("datetime64[ns]"), rf=rf,
                                  benchmark=figures.benchmark)
    bench_series = None
    if figures.benchmark is not None:
        bench_series = to_pandas(_benchmark_on_strategy_bars(ts_ns, figures.benchmark), ts_ns,
                                 figures.benchmark_label)
    qs_frame = _quantstats_metrics(to_pandas(r, ts_ns, figures.title), bench_series, rf=rf,
                                   periods_per_year=figures.periods_per_year,
                                   title=figures.title, benchmark_title=figures.benchmark_label)
    text = tearsheet_html(figures, metrics, rf=rf, quantstats_frame=qs_frame, crumbs=crumbs)
    return h.write_page(target, text)


def count_remote_urls(page: str) -> int:
    """Resources a browser would fetch from the network (src/href to http(s))."""
    return len(re.findall(r"(?:src|href)=\"https?://", page)) - len(
        re.findall(r"<a [^>]*href=\"https?://", page))

