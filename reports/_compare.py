"""Side-by-side comparison of finished runs, read from their ``metrics.json``.

One row per run, best Sharpe (after costs) first; "Sharpe before costs" sits next to it so
a strategy that only works without costs is visible at a glance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.errors import ConfigError
from reports import _html as h
from reports._definitions import format_metric, format_windowed, metric_label
from reports._run_report import BENCHMARK_FILE, EQUITY_FILE, TEARSHEET_FILE, read_metrics

# column -> (source section, metric key); headers and number formats come from
# reports._definitions, the same as every other view.
COLUMNS: dict[str, tuple[str, str]] = {
    "sharpe": ("with_costs", "sharpe"),
    "total_return": ("with_costs", "total_return"),
    "cagr": ("with_costs", "cagr"),
    "max_drawdown": ("with_costs", "max_drawdown"),
    "sortino": ("with_costs", "sortino"),
    "calmar": ("with_costs", "calmar"),
    "win_rate_trades": ("with_costs", "win_rate_trades"),
    "n_trades": ("with_costs", "n_trades"),
    "n_open_trades": ("with_costs", "n_open_trades"),
    "turnover": ("with_costs", "turnover"),
    "sharpe_before_costs": ("without_costs", "sharpe"),
    "benchmark_total_return": ("with_costs", "benchmark_total_return"),
}
TEXT_COLUMNS = ("run", "strategy", "start", "end", "tuned_overlap")
BENCHMARK_STRATEGY = "benchmark"
# A run whose metrics.json notes carry this (analysts.evaluation.TUNED_OVERLAP: tuned
# hyperparameters saw its test bars, run with allow_tuned_overlap) is marked in its row;
# the column is there only when some run is marked.
TUNED_OVERLAP = "tuned on overlapping data"


def column_label(column: str) -> str:
    if column == "sharpe_before_costs":
        return "Sharpe before costs"
    if column in ("run", "strategy", "start", "end", "bars"):
        return column.capitalize()
    if column == "tuned_overlap":
        return "Caveat"
    return metric_label(column)


def column_value(column: str, value: object) -> str:
    """A comparison cell in the house format (the metric's own kind)."""
    if column in TEXT_COLUMNS or column == "bars":
        return "" if value is None else (f"{value:.0f}" if isinstance(value, float) else
                                         str(value))
    return format_metric("sharpe" if column == "sharpe_before_costs" else column, value)


@dataclass(frozen=True)
class Comparison:
    """The comparison as a polars table and as Markdown and HTML text.

    Unpacks as ``markdown, html = compare_runs(...)``; ``columns`` and ``iter_rows`` read
    the table, so it prints like a frame.
    """

    table: pl.DataFrame
    markdown: str
    html: str

    def __iter__(self) -> Iterator[str]:
        return iter((self.markdown, self.html))

    @property
    def columns(self) -> list[str]:
        return self.table.columns

    def iter_rows(self, *, named: bool = False):
        return self.table.iter_rows(named=named)


def _names(folders: Sequence[Path]) -> list[str]:
    """Shortest trailing path that tells the runs apart (a folder name when unique)."""
    parts = [f.resolve().parts for f in folders]
    depth = 1
    while depth < max(len(p) for p in parts):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
        depth += 1
    return [str(f) for f in folders]


def _value(metrics: dict, section: str, key: str) -> float:
    block = metrics.get(section) or {}
    value = block.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def _day(value: object) -> str:
    return str(value)[:10] if value else ""


def _benchmark_row(folder: Path, settings: dict) -> dict[str, object] | None:
    """The benchmark over one run's bars, as a comparison row (None without one)."""
    path = folder / BENCHMARK_FILE
    if not path.is_file():
        return None
    from reports.metrics import compute_metrics

    bench = pl.read_parquet(path)
    equity = pl.read_parquet(folder / EQUITY_FILE, columns=["ts"])
    bench = bench.join(equity, on="ts", how="semi").sort("ts")
    if bench.height < 2:
        return None
    ppy = float(settings["periods_per_year"])
    m = compute_metrics(bench.select("ts", "return"), ppy, rf=float(settings.get("rf") or 0))
    row: dict[str, object] = {"run": str(settings.get("benchmark") or "Benchmark"),
                              "strategy": BENCHMARK_STRATEGY,
                              "start": _day(bench["ts"][0]), "end": _day(bench["ts"][-1]),
                              "bars": float(bench.height), "periods_per_year": ppy}
    row.update({c: float(m[key]) if c != "sharpe_before_costs" else math.nan
                for c, (_, key) in COLUMNS.items() if key in m})
    row["benchmark_total_return"] = math.nan
    for c in ("win_rate_trades", "n_trades", "n_open_trades", "turnover"):
        row[c] = math.nan  # a benchmark holds no trades of ours
    return row


def comparison_table(run_dirs: Sequence[str | Path], *, benchmark: bool = True
                     ) -> pl.DataFrame:
    """One row per run (period, bars and the comparison columns), best Sharpe first (NaN
    last); then one row per distinct benchmark and period (``strategy == "benchmark"``)."""
    folders = [Path(d) for d in run_dirs]
    if not folders:
        raise ConfigError("compare needs at least one run folder")
    rows, bench_rows = [], {}
    for name, folder in zip(_names(folders), folders, strict=True):
        metrics = read_metrics(folder)
        settings = metrics["settings"]
        row: dict[str, object] = {"run": name,
                                  "strategy": str(settings.get("strategy") or ""),
                                  "start": _day(settings.get("start")),
                                  "end": _day(settings.get("end")),
                                  "tuned_overlap": TUNED_OVERLAP if any(
                                      TUNED_OVERLAP in str(n) for n in
                                      metrics.get("notes") or ()) else "",
                                  "bars": float(settings.get("n_bars") or math.nan),
                                  "periods_per_year": float(settings["periods_per_year"])}
        for column, (section, key) in COLUMNS.items():
            row[column] = _value(metrics, section, key)
        rows.append(row)
        if benchmark:
            key = (settings.get("benchmark"), row["start"], row["end"])
            if key not in bench_rows:
                bench_rows[key] = _benchmark_row(folder, settings)
    schema = {"run": pl.Utf8, "strategy": pl.Utf8, "start": pl.Utf8, "end": pl.Utf8,
              "tuned_overlap": pl.Utf8, "bars": pl.Float64, "periods_per_year": pl.Float64,
              **dict.fromkeys(COLUMNS, pl.Float64)}
    table = pl.DataFrame(rows, schema=schema).sort(
        pl.col("sharpe").fill_nan(None), descending=True, nulls_last=True,
        maintain_order=True)
    extra = [{**r, "tuned_overlap": ""} for r in bench_rows.values() if r is not None]
    if extra:
        table = pl.concat([table, pl.DataFrame(extra, schema=schema)])
    if not (table["tuned_overlap"] != "").any():
        table = table.drop("tuned_overlap")
    return table


def _rendered(table: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    columns = table.columns
    body = [[column_value(c, row[c]) if c != "cagr" else
             format_windowed(c, row[c], row["bars"], row["periods_per_year"])
             for c in columns if c != "periods_per_year"]
            for row in table.iter_rows(named=True)]
    headers = [column_label(c) for c in columns if c != "periods_per_year"]
    return headers, body


def to_markdown(table: pl.DataFrame) -> str:
    headers, body = _rendered(table)
    n_text = sum(c in TEXT_COLUMNS for c in table.columns)
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(["---"] * n_text + ["---:"] * (len(headers) - n_text)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def _overlay(folders: Sequence[Path], names: Sequence[str]) -> str:
    """Growth-of-1 curves of the runs (and the first benchmark) as one chart."""
    from reports._charts import overlay_figure

    curves, bench = [], None
    for name, folder in zip(names, folders, strict=True):
        path = folder / EQUITY_FILE
        if not path.is_file():
            continue
        equity = pl.read_parquet(path, columns=["ts", "return"])
        curves.append((name, equity["ts"].to_numpy(), equity["return"].to_numpy()))
        bench_path = folder / BENCHMARK_FILE
        if bench is None and bench_path.is_file():
            b = pl.read_parquet(bench_path).join(equity.select("ts"), on="ts", how="semi")
            label = str(read_metrics(folder)["settings"].get("benchmark") or "Benchmark")
            bench = (label, b["ts"].to_numpy(), b["return"].to_numpy())
    if not curves:
        return ""
    fig = overlay_figure(curves, title="Growth of 1 after costs", benchmark=bench)
    return h.svg(fig, id="comparison-equity")


def to_html(table: pl.DataFrame, title: str = "Run comparison", *,
            folders: Sequence[Path] = (), out_dir: Path | None = None,
            notes: Sequence[str] = ()) -> str:
    """The comparison page: table (runs link to their tear sheets) and equity overlay."""
    headers, body = _rendered(table)
    names = table["run"].to_list()
    links = {}
    for name, folder in zip(_names(folders), folders, strict=True) if folders else ():
        sheet = folder / TEARSHEET_FILE
        if sheet.is_file():
            links[name] = h.relative_link(sheet, out_dir or Path.cwd())
    for cells, name in zip(body, names, strict=True):
        if name in links:
            cells[0] = (cells[0], links[name])
    classes = ["benchmark" if s == BENCHMARK_STRATEGY else ""
               for s in table["strategy"].to_list()]
    n_text = sum(c in TEXT_COLUMNS for c in table.columns)
    periods = {(s, e) for s, e, k in zip(table["start"], table["end"], table["strategy"],
                                          strict=True) if k != BENCHMARK_STRATEGY}
    note = ("Sorted by Sharpe after costs; benchmark rows (italic) cover the same bars. "
            "Metric definitions are in each run's metrics.json.")
    if len(periods) > 1:
        note += " The runs cover different periods: compare like with like."
    content = h.table(headers, body, id="comparison", text_columns=n_text,
                      row_classes=classes)
    chart = _overlay(list(folders), _names(folders)) if folders else ""
    sections = h.section("Runs", content, note=note)
    if chart:
        sections += h.section("Equity", chart)
    return h.page(title, sections, subtitle=[f"{len(names) - classes.count('benchmark')} "
                                             "runs", *[f"Note: {n}" for n in notes]],
                  kind="comparison")


def compare_runs(run_dirs: Sequence[str | Path], *, out_dir: str | Path | None = None
                 ) -> Comparison:
    """Compare finished runs; ``markdown, html = compare_runs(dirs)`` (``.table`` too).

    ``out_dir`` is where the HTML will be saved (its links to the tear sheets are relative
    to it); the current directory when not given.
    """
    folders = [Path(d) for d in run_dirs]
    table = comparison_table(folders)
    notes = run_notes(folders)
    markdown = to_markdown(table) + "".join(f"\nNote: {n}\n" for n in notes)
    return Comparison(table=table, markdown=markdown,
                      html=to_html(table, folders=folders,
                                   out_dir=Path(out_dir) if out_dir else None, notes=notes))


def run_notes(folders: Sequence[Path]) -> list[str]:
    """The runs' one-line caveats (metrics.json ``notes``), each once, in order."""
    notes: dict[str, None] = {}
    for folder in folders:
        path = folder / "metrics.json"
        if path.is_file():
            for note in json.loads(path.read_text(encoding="utf-8")).get("notes") or ():
                notes[str(note)] = None
    return list(notes)


def write_comparison(out_dir: str | Path, run_dirs: Sequence[str | Path]) -> Comparison:
    """Write ``comparison.md``, ``comparison.html`` and ``comparison.csv`` into ``out_dir``."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    comparison = compare_runs(run_dirs, out_dir=target)
    for name, text in (("comparison.md", comparison.markdown),
                       ("comparison.html", comparison.html)):
        h.write_page(target / name, text)
    tmp = target / ".comparison.csv.tmp"
    comparison.table.write_csv(tmp)
    tmp.replace(target / "comparison.csv")
    return comparison
