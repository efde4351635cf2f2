"""HTML pages of the report family for the workflows: run index, walk-forward, stress,
sweep and train-rl.

Each renderer takes plain frames and dicts (what the workflow already holds or saved) and
returns the page as text; ``reports._html.write_page`` writes it. Links to child reports
(a fold's or a variant's tear sheet) are relative hrefs the caller passes, so a folder can
be moved or zipped whole. Numbers are formatted by ``reports._definitions``, the same as
every other view; windows shorter than a year show their total return, never an
annualised one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from reports import _html as h
from reports._charts import (
    fan_figure,
    heatmap_figure,
    lines_figure,
    overlay_figure,
)
from reports._definitions import (
    format_metric,
    format_windowed,
    metric_kind,
    metric_label,
    return_metric,
)

RUN_COLUMNS = ("total_return", "cagr", "sharpe", "max_drawdown", "win_rate_trades",
               "n_trades", "n_open_trades", "benchmark_total_return")
FOLD_METRICS = ("total_return", "sharpe", "max_drawdown", "win_rate_trades", "n_trades",
                "benchmark_total_return")
_WINDOW_COLUMNS = ("train_start", "train_end", "test_start", "test_end")


def _day(value: object) -> str:
    return "" if value is None else str(value)[:10]


def _series(frame: pl.DataFrame | None) -> tuple[np.ndarray, np.ndarray] | None:
    if frame is None or frame.height == 0:
        return None
    return frame["ts"].to_numpy(), frame["return"].to_numpy().astype(np.float64)


def render_run_index(runs: Sequence[Mapping[str, Any]], *, title: str = "Runs",
                     crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """A table of runs: each mapping has ``name``, ``metrics`` (a metrics.json dict) and
    optionally ``href`` (its tear sheet or folder) and ``kind`` (run, walkforward, ...)."""
    headers = ["Run", "Kind", "Strategy", "Start", "End", "Bars",
               *[metric_label(c) for c in RUN_COLUMNS]]
    rows = []
    for run in runs:
        metrics = run["metrics"]
        flat = metrics.get("with_costs") or {}
        settings = metrics.get("settings") or {}
        name = (run["name"], run["href"]) if run.get("href") else run["name"]
        bars = settings.get("n_bars")
        rows.append([name, run.get("kind") or metrics.get("kind") or "run",
                     str(settings.get("strategy") or ""), _day(settings.get("start")),
                     _day(settings.get("end")), "" if bars is None else str(bars),
                     *[format_windowed(c, flat.get(c), bars, settings.get("periods_per_year"))
                       for c in RUN_COLUMNS]])
    note = ("CAGR is not shown for runs under a year (read the total return). Win rate "
            "counts closed trades only.")
    body = h.section("Runs", h.table(headers, rows, id="run-index", text_columns=5),
                     note=note)
    return h.page(title, body, subtitle=[f"{len(rows)} runs"], crumbs=crumbs,
                  kind="run-index")


def _metric_rows(names: Sequence[str], columns: Sequence[Mapping[str, Any] | None]
                 ) -> list[list[str]]:
    return [[metric_label(n), *[format_metric(n, (c or {}).get(n)) for c in columns]]
            for n in names]


def render_walkforward(*, title: str, returns: pl.DataFrame, folds: pl.DataFrame,
                       metrics: Mapping[str, Any], in_sample: Mapping[str, Any] | None = None,
                       benchmark: pl.DataFrame | None = None,
                       benchmark_label: str = "Benchmark", periods_per_year: float,
                       fold_links: Mapping[int, str] | None = None,
                       tearsheet_href: str | None = None,
                       crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """Stitched out-of-sample curve, per-fold table, in-sample vs out-of-sample.

    ``returns``: stitched OOS ``ts, return`` (optionally ``fold``); ``folds``: one row per
    fold with ``fold``, the window dates and metric columns; ``metrics``/``in_sample``:
    flat metric dicts of the stitched OOS run and of the in-sample run.
    """
    strat = _series(returns)
    spans = [(np.datetime64(_day(r["test_start"])), np.datetime64(_day(r["test_end"])))
             for r in folds.iter_rows(named=True)] if "test_start" in folds.columns else []
    bench = None
    if benchmark is not None and strat is not None:
        b = benchmark.join(returns.select("ts"), on="ts", how="semi").sort("ts")
        bench = (benchmark_label, *_series(b)) if b.height else None
    chart = h.svg(overlay_figure([("out-of-sample (stitched)", *strat)] if strat else [],
                                 title=f"{title}: stitched out-of-sample equity",
                                 benchmark=bench, spans=spans),
                  id="walkforward-equity", caption="Shaded bands alternate between folds.")
    ret_key = return_metric(returns.height, periods_per_year)
    names = ["total_return", *(["cagr"] if ret_key == "cagr" else []), "sharpe",
             "max_drawdown", "win_rate_trades", "n_trades", "n_open_trades"]
    compare = h.table(["Metric", "Out-of-sample (stitched)", "In-sample"],
                      _metric_rows(names, [metrics, in_sample]), id="walkforward-is-oos")
    fold_cols = [c for c in FOLD_METRICS if c in folds.columns]
    marked = "tuned_overlap" in folds.columns  # folds tuned hyperparameters saw
    headers = ["Fold", *[c.replace("_", " ") for c in _WINDOW_COLUMNS if c in folds.columns],
               *[metric_label(c) for c in fold_cols], *(["Caveat"] if marked else [])]
    rows = []
    for r in folds.iter_rows(named=True):
        fold = int(r["fold"])
        label = (str(fold), fold_links[fold]) if fold_links and fold in fold_links else \
            str(fold)
        rows.append([label, *[_day(r[c]) for c in _WINDOW_COLUMNS if c in folds.columns],
                     *[format_metric(c, r[c]) for c in fold_cols],
                     *([r["tuned_overlap"] or ""] if marked else [])])
    n_text = 1 + sum(c in folds.columns for c in _WINDOW_COLUMNS)
    body = (h.section("Out-of-sample equity", chart)
            + h.section("In-sample vs out-of-sample", compare,
                        note="In-sample: the same strategy fitted and run on the whole "
                             "span; its figures are optimistic by construction.")
            + h.section("Folds", h.table(headers, rows, id="walkforward-folds",
                                         text_columns=n_text),
                        note="Each fold's test window is shown with its total return "
                             "(not annualised)."))
    if tearsheet_href:
        body += h.section("Tear sheet", f'<p><a href="{h.esc(tearsheet_href)}">Stitched '
                                        "out-of-sample tear sheet</a></p>")
    return h.page(title, body, subtitle=[f"{folds.height} folds, {returns.height} "
                                         "out-of-sample bars"], crumbs=crumbs,
                  kind="walkforward")


def render_walkforward_index(*, title: str, strategies: Sequence[Mapping[str, Any]],
                             periods_per_year: float, n_folds: int,
                             benchmark: pl.DataFrame | None = None,
                             benchmark_label: str = "Benchmark",
                             benchmark_metrics: Mapping[str, Any] | None = None,
                             spans: Sequence[tuple[str, str]] = (),
                             crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """The top page of a multi-strategy walk-forward: one row per strategy (linking to
    its own walk-forward page) and their stitched out-of-sample curves on one chart.

    Each mapping of ``strategies`` has ``label``, ``returns`` (stitched OOS ``ts,
    return``), ``metrics`` and ``in_sample`` (flat metric dicts), and optionally ``href``
    (its report page) and ``beat`` (``{"beat", "folds"}``: folds that beat the benchmark);
    ``spans``: the folds' test windows (start, end) as dates.
    """
    n_bars = max((s["returns"].height for s in strategies), default=0)
    ret_key = return_metric(n_bars, periods_per_year)
    names = ["total_return", *(["cagr"] if ret_key == "cagr" else []), "sharpe",
             "max_drawdown", "win_rate_trades", "n_trades"]
    headers = ["Strategy", *[metric_label(n) for n in names], "In-sample Sharpe",
               "Folds beating benchmark"]
    rows: list[list[object]] = []
    for run in strategies:
        label = (run["label"], run["href"]) if run.get("href") else run["label"]
        beat = run.get("beat") or {}
        rows.append([label, *[format_metric(n, run["metrics"].get(n)) for n in names],
                     format_metric("sharpe", (run.get("in_sample") or {}).get("sharpe")),
                     f"{beat['beat']} of {beat['folds']}" if beat.get("folds") else ""])
    classes = [""] * len(rows)
    if benchmark_metrics:
        rows.append([benchmark_label, *[format_metric(n, benchmark_metrics.get(n))
                                        for n in names], "", ""])
        classes.append("benchmark")
    curves = [(run["label"], *_series(run["returns"])) for run in strategies
              if run["returns"].height]
    bench = None
    if benchmark is not None and curves:
        first = strategies[0]["returns"].select("ts")
        b = benchmark.join(first, on="ts", how="semi").sort("ts")
        bench = (benchmark_label, *_series(b)) if b.height else None
    fold_spans = [(np.datetime64(_day(a)), np.datetime64(_day(b))) for a, b in spans]
    chart = h.svg(overlay_figure(curves, title="Stitched out-of-sample growth of 1 "
                                 "(after costs)", benchmark=bench, spans=fold_spans),
                  id="walkforward-index-equity",
                  caption="Shaded bands alternate between folds." if fold_spans else "")
    body = (h.section("Strategies", h.table(headers, rows, id="walkforward-index",
                                            row_classes=classes),
                      note="Out of sample, stitched over the folds, after costs; each "
                           "strategy links to its own walk-forward report (folds, "
                           "in-sample vs out-of-sample). The in-sample Sharpe is optimistic "
                           "by construction.")
            + h.section("Out-of-sample equity", chart))
    return h.page(title, body, subtitle=[f"{len(strategies)} strategies, {n_folds} folds, "
                                         f"{n_bars} out-of-sample bars"],
                  crumbs=crumbs, kind="walkforward-index")


def _wealth_matrix(returns: pl.DataFrame, label: str) -> np.ndarray:
    own = returns.filter(pl.col("strategy") == label).sort("path", "ts")
    wide = own.pivot(on="ts", index="path", values="return").drop("path").to_numpy()
    return np.cumprod(1.0 + np.nan_to_num(wide.astype(np.float64)), axis=1)


def render_stress(*, title: str, returns: pl.DataFrame, quantiles: pl.DataFrame,
                  beats: Mapping[str, Mapping[str, Any]] | None = None,
                  info: Sequence[str] = (), crumbs: Sequence[tuple[str, str]] = (),
                  benchmark: str = "benchmark") -> str:
    """Fan chart per strategy and the quantile table.

    ``returns``: long ``strategy, path, ts, return`` (the benchmark as strategy
    ``benchmark``); ``quantiles``: ``strategy, metric, q.., mean, paths``; ``beats``:
    per strategy ``{"beat", "paths", "share"}``.
    """
    labels = [s for s in returns["strategy"].unique(maintain_order=True).to_list()
              if s != benchmark]
    bench_median = None
    if benchmark in returns["strategy"].to_list():
        bench_median = np.quantile(_wealth_matrix(returns, benchmark), 0.5, axis=0)
    charts = []
    for i, label in enumerate(labels):
        wealth = _wealth_matrix(returns, label)
        levels = (0.05, 0.25, 0.5, 0.75, 0.95)
        bands = dict(zip(levels, np.quantile(wealth, levels, axis=0), strict=True))
        bars = np.arange(wealth.shape[1])
        charts.append(h.svg(fan_figure(bars, bands, title=f"{label}: growth of 1 across "
                                       f"{wealth.shape[0]} paths",
                                       benchmark=bench_median if bench_median is not None
                                       and bench_median.size == bars.size else None),
                            id=f"stress-fan-{i}"))
    q_cols = [c for c in quantiles.columns if c not in ("strategy", "metric")]
    rows = [[r["strategy"], metric_label(r["metric"]),
             *[str(r[c]) if c == "paths" else format_metric(r["metric"], r[c])
               for c in q_cols]] for r in quantiles.iter_rows(named=True)]
    table = h.table(["Strategy", "Metric", *q_cols], rows, id="stress-quantiles",
                    text_columns=2)
    beat_rows = [[label, f"{b['beat']} of {b['paths']}", format_metric("win_rate_trades",
                                                                      b.get("share"))]
                 for label, b in (beats or {}).items()]
    body = h.section("Paths", "".join(charts),
                     note="Bands: 5-95% and 25-75% of paths; line: the median path.")
    body += h.section("Quantiles across paths", table,
                      note="q05 is the 5% quantile across paths: 95% of paths did better.")
    if beat_rows:
        body += h.section("Beat the benchmark", h.table(
            ["Strategy", "Paths", "Share"], beat_rows, id="stress-beats"),
            note="A path counts when the strategy's total return beats the benchmark's.")
    return h.page(title, body, subtitle=list(info), crumbs=crumbs, kind="stress")


def _heatmap(summary: pl.DataFrame, x: str, y: str, metric: str, descending: bool) -> str:
    xs = sorted(summary[x].unique().drop_nulls().to_list(), key=_sort_key)
    ys = sorted(summary[y].unique().drop_nulls().to_list(), key=_sort_key)
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in summary.iter_rows(named=True):
        value = r[metric]
        if value is None or r[x] is None or r[y] is None or not math.isfinite(value):
            continue
        i, j = ys.index(r[y]), xs.index(r[x])
        old = grid[i, j]  # best over the other swept keys
        better = value > old if descending else value < old
        grid[i, j] = value if math.isnan(old) or better else old
    fig = heatmap_figure(grid, xs, ys, x_label=x, y_label=y,
                         title=f"{metric_label(metric)}: best over the other keys",
                         percent=metric_kind(metric) == "percent")
    return h.svg(fig, id="sweep-heatmap")


def _sort_key(value: object) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def render_sweep(*, title: str, summary: pl.DataFrame, metric: str, params: Sequence[str],
                 descending: bool = True, run_links: Mapping[str, str] | None = None,
                 crumbs: Sequence[tuple[str, str]] = (), top: int | None = None) -> str:
    """Ranked table (with DSR), and a heat map of ``metric`` over the first two swept
    ``params`` that vary. ``summary``: one row per variant with ``variant``, the params,
    metric columns and ``dsr``; ``run_links``: variant -> href of its tear sheet."""
    ranked = summary.sort(pl.col(metric).fill_nan(None), descending=descending,
                          nulls_last=True)
    shown = ranked if top is None else ranked.head(top)
    metric_cols = [c for c in ("sharpe", "total_return", "cagr", "max_drawdown",
                               "win_rate_trades", "n_trades", "dsr") if c in summary.columns]
    if metric in summary.columns and metric not in metric_cols:
        metric_cols.insert(0, metric)
    lead = [c for c in ("variant", "strategy") if c in summary.columns]
    params = [p for p in params if p in summary.columns]
    headers = ["Rank", *lead, *params, *[metric_label(c) for c in metric_cols]]
    rows = []
    for rank, r in enumerate(shown.iter_rows(named=True), start=1):
        cells: list[object] = [str(rank)]
        for c in lead:
            link = (run_links or {}).get(str(r[c])) if c == "variant" else None
            cells.append((str(r[c]), link) if link else str(r[c]))
        cells += [str(r[p]) for p in params]
        cells += [format_metric(c, r[c]) for c in metric_cols]
        rows.append(cells)
    body = h.section("Ranked", h.table(headers, rows, id="sweep-ranked",
                                        text_columns=1 + len(lead) + len(params)),
                     note=f"Ranked by {metric_label(metric)}. Deflated Sharpe: the "
                          f"probability that the Sharpe beats the best of {summary.height} "
                          "configurations tried by luck alone.")
    varying = [p for p in params if summary[p].n_unique() > 1]
    if len(varying) >= 2 and metric in summary.columns:
        body += h.section("Parameter heat map",
                          _heatmap(summary, varying[0], varying[1], metric, descending))
    return h.page(title, body, subtitle=[f"{summary.height} configurations"],
                  crumbs=crumbs, kind="sweep")


def render_train_rl(*, title: str, curves: pl.DataFrame, seeds: pl.DataFrame,
                    test: Mapping[str, Mapping[str, Any]],
                    test_returns: Mapping[str, pl.DataFrame] | None = None,
                    test_span: tuple[str, str] | None = None,
                    crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """Learning curves per seed, a table per seed, and the test span against baselines.

    ``curves``: ``seed, step, reward``; ``seeds``: one row per seed with metric columns;
    ``test``: label (the policy and each baseline) -> flat metric dict on the test span;
    ``test_returns``: label -> ``ts, return`` on the test span (for the overlay).
    """
    lines = [(f"seed {s}", g["step"].to_numpy(), g["reward"].to_numpy())
             for (s,), g in curves.sort("seed", "step").group_by("seed", maintain_order=True)]
    body = h.section("Learning curves", h.svg(lines_figure(
        lines, title="Episode reward during training", x_label="step",
        y_label="reward"), id="train-rl-curves"))
    seed_cols = [c for c in seeds.columns if c != "seed"]
    seed_rows = [[str(r["seed"]), *[format_metric(c, r[c]) if isinstance(r[c], float)
                                    else str(r[c]) for c in seed_cols]]
                 for r in seeds.iter_rows(named=True)]
    body += h.section("Seeds", h.table(["Seed", *[metric_label(c) for c in seed_cols]],
                                       seed_rows, id="train-rl-seeds"))
    names = ["total_return", "sharpe", "max_drawdown", "turnover", "n_trades"]
    labels = list(test)
    body += h.section("Test span vs baselines", h.table(
        ["Metric", *labels], _metric_rows(names, [test[k] for k in labels]),
        id="train-rl-test"), note="The test span was not seen in training or model "
                                  "selection; returns are total, not annualised.")
    if test_returns:
        curves_ = [(k, *_series(v)) for k, v in test_returns.items() if v.height]
        body += h.section("Test span equity", h.svg(overlay_figure(
            curves_, title="Growth of 1 on the test span"), id="train-rl-test-equity"))
    subtitle = [f"test span {test_span[0]} to {test_span[1]}"] if test_span else []
    return h.page(title, body, subtitle=subtitle, crumbs=crumbs, kind="train-rl")
