"""HTML tear sheet: quantstats' report plus Alfred's own metrics table and equity chart.

quantstats draws the bulk of the page. Our wrapper makes it safe and honest for us:

* the benchmark is always a pandas Series already on the strategy's bars, never a ticker
  (a string would make quantstats download it from Yahoo) and never a series on another
  calendar (quantstats would re-sample it on a daily grid, wrong for intraday bars);
* ``match_dates`` is off: quantstats would otherwise drop the strategy's flat warm-up
  bars, and its table would describe a shorter period than ours and ``metrics.json``;
* the one remote URL quantstats' template carries (a favicon) is removed, so opening the
  file offline fetches nothing;
* our metrics table (with and without costs, the numbers ``metrics.json`` holds) and our
  equity chart, a PNG embedded as a data URI, go at the top: quantstats' figures follow
  its own conventions, ours are the ones the project defines (``METRIC_DEFINITIONS``);
* quantstats' chatter under pandas 3 / matplotlib 3.11 (deprecation warnings, missing
  Arial font) is silenced for the call only; the page itself renders correctly.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import re
import warnings
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from reports._definitions import HEADLINE, METRIC_DEFINITIONS
from reports._inputs import returns_with_ts, to_pandas
from reports._plots import (
    _benchmark_on_strategy_bars,
    equity_figure,
    figure_png,
    plot_style,
    resolve_periods_per_year,
)

METRICS_TABLE_ID = "alfred-metrics"
EQUITY_IMAGE_ID = "alfred-equity-chart"
_REMOTE_LINK = re.compile(r"<link[^>]*href=\"https?://[^\"]*\"[^>]*>\s*", re.IGNORECASE)


def _format(name: str, value: float | None, percent: bool) -> str:
    if value is None or math.isnan(value):
        return "&ndash;"
    if math.isinf(value):
        return "&infin;" if value > 0 else "-&infin;"
    if percent:
        return f"{value * 100:.2f}%"
    if name.startswith("n_") or name.endswith(("_days", "_bars")):
        return f"{value:.0f}"
    return f"{value:.3f}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_BENCHMARK_ROWS = ("alpha", "beta", "information_ratio")


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
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in columns)
    rows = []
    for name, (label, percent) in HEADLINE.items():
        if name in _BENCHMARK_ROWS and all(_missing(col.get(name)) for _, col in columns):
            continue  # no benchmark: leave its rows out rather than show dashes
        cells = "".join(f"<td>{_format(name, col.get(name), percent)}</td>"
                        for _, col in columns)
        tip = html.escape(METRIC_DEFINITIONS[name], quote=True)
        rows.append(f'<tr><td title="{tip}">{html.escape(label)}</td>{cells}</tr>')
    return (f'<table id="{METRICS_TABLE_ID}"><thead><tr><th>Metric</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _alfred_section(metrics: dict[str, Any], equity_png: bytes, settings_line: str) -> str:
    data = base64.b64encode(equity_png).decode("ascii")
    return (
        '<div id="alfred-summary" style="clear:both">'
        "<h3>Alfred metrics</h3>"
        f"<p>{html.escape(settings_line)}</p>"
        f"{metrics_table_html(metrics)}"
        f'<img id="{EQUITY_IMAGE_ID}" alt="equity curve" src="data:image/png;base64,{data}">'
        "<hr></div>"
    )


def _inject(page: str, section: str) -> str:
    page = _REMOTE_LINK.sub("", page)
    body = page.find("<body")
    anchor = page.find("<hr>", body) if body >= 0 else -1
    if anchor >= 0:
        cut = anchor + len("<hr>")
    elif body >= 0:
        cut = page.index(">", body) + 1
    else:
        return section + page
    return page[:cut] + section + page[cut:]


def _run_quantstats(path: Path, strategy, benchmark, *, title: str, benchmark_title: str,
                    rf: float, periods_per_year: float) -> None:
    import quantstats as qs

    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    font_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qs.reports.html(strategy, benchmark=benchmark, rf=rf, title=title,
                            output=str(path), compounded=True,
                            periods_per_year=periods_per_year, match_dates=False,
                            strategy_title=title, benchmark_title=benchmark_title)
    finally:
        font_log.setLevel(level)
        _close_pyplot_figures()


def _close_pyplot_figures() -> None:
    """quantstats draws through pyplot; drop its figures so long sessions do not leak."""
    import matplotlib.pyplot as plt

    plt.close("all")


def write_tearsheet(path: str | Path, returns_ts_frame, benchmark=None,
                    title: str = "Strategy", *, periods_per_year: float | None = None,
                    rf: float = 0.0, metrics: dict[str, Any] | None = None,
                    benchmark_label: str = "Benchmark") -> Path:
    """Write an offline HTML tear sheet for a ``ts, return`` frame; returns its path.

    ``benchmark`` is returns (a ``ts, return`` frame, or one value per bar), never a ticker.
    ``metrics`` (a flat ``compute_metrics`` dict or ``metrics_for_result``'s output) fills
    the Alfred table; without it the table is computed from the returns alone.
    """
    if isinstance(benchmark, str):
        raise ConfigError(f"benchmark {benchmark!r} is a name; pass its returns (a frame with "
                          "ts and return) -- the tear sheet never downloads data")
    r, ts_ns = returns_with_ts(returns_ts_frame)
    if ts_ns is None:
        raise ConfigError("the tear sheet needs timestamps: pass a frame with ts and return")
    if r.size < 2:
        raise ConfigError(f"the tear sheet needs at least 2 bars of returns, got {r.size}")
    ppy = resolve_periods_per_year(ts_ns, periods_per_year)
    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigError(f"folder {target.parent} does not exist; create it first")
    if metrics is None:
        from reports.metrics import compute_metrics

        metrics = compute_metrics(r, ppy, ts=ts_ns.view("datetime64[ns]"), rf=rf,
                                  benchmark=benchmark)

    strategy = to_pandas(r, ts_ns, "Strategy")
    bench_series = None
    if benchmark is not None:
        bench_series = to_pandas(_benchmark_on_strategy_bars(ts_ns, benchmark), ts_ns,
                                 "Benchmark")
    safe_title = html.escape(title)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        _run_quantstats(tmp, strategy, bench_series, title=safe_title,
                        benchmark_title=html.escape(benchmark_label), rf=rf,
                        periods_per_year=ppy)
        page = tmp.read_text(encoding="utf-8")
        with plot_style():
            equity_png = figure_png(equity_figure(r, ts_ns, benchmark, title=title,
                                                  benchmark_label=benchmark_label))
        settings = (f"{r.size} bars, {ppy:g} periods per year, risk-free rate {rf:g}"
                    + (f", benchmark: {benchmark_label}" if benchmark is not None else ""))
        tmp.write_text(_inject(page, _alfred_section(metrics, equity_png, settings)),
                       encoding="utf-8")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def count_remote_urls(page: str) -> int:
    """Resources a browser would fetch from the network (src/href to http(s))."""
    return len(re.findall(r"(?:src|href)=\"https?://", page)) - len(
        re.findall(r"<a [^>]*href=\"https?://", page))

