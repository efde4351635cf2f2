"""Side-by-side comparison of finished runs, read from their ``metrics.json``.

One row per run, best Sharpe (after costs) first; "Sharpe before costs" sits next to it so
a strategy that only works without costs is visible at a glance.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.errors import ConfigError
from reports._run_report import read_metrics

# column -> (header, source section, metric key, shown as a percentage)
COLUMNS: dict[str, tuple[str, str, str, bool]] = {
    "sharpe": ("Sharpe", "with_costs", "sharpe", False),
    "sortino": ("Sortino", "with_costs", "sortino", False),
    "cagr": ("CAGR", "with_costs", "cagr", True),
    "max_drawdown": ("Max DD", "with_costs", "max_drawdown", True),
    "calmar": ("Calmar", "with_costs", "calmar", False),
    "win_rate": ("Win rate", "with_costs", "win_rate_trades", True),
    "turnover": ("Turnover", "with_costs", "turnover", False),
    "trades": ("Trades", "with_costs", "n_trades", False),
    "sharpe_before_costs": ("Sharpe before costs", "without_costs", "sharpe", False),
}


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


def comparison_table(run_dirs: Sequence[str | Path]) -> pl.DataFrame:
    """One row per run with the comparison columns, sorted by Sharpe (NaN last)."""
    folders = [Path(d) for d in run_dirs]
    if not folders:
        raise ConfigError("compare needs at least one run folder")
    rows = []
    for name, folder in zip(_names(folders), folders, strict=True):
        metrics = read_metrics(folder)
        settings = metrics["settings"]
        row: dict[str, object] = {"run": name,
                                  "strategy": str(settings.get("strategy") or "")}
        for column, (_, section, key, _) in COLUMNS.items():
            row[column] = _value(metrics, section, key)
        rows.append(row)
    schema = {"run": pl.Utf8, "strategy": pl.Utf8, **dict.fromkeys(COLUMNS, pl.Float64)}
    table = pl.DataFrame(rows, schema=schema)
    return table.sort(pl.col("sharpe").fill_nan(None), descending=True, nulls_last=True,
                      maintain_order=True)


def _cell(value: object, percent: bool, column: str) -> str:
    if isinstance(value, str):
        return value
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else ("inf" if value > 0 else "-inf")
    if percent:
        return f"{value * 100:.2f}%"
    if column == "trades":
        return f"{value:.0f}"
    return f"{value:.3f}"


def _rendered(table: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = ["Run", "Strategy"] + [spec[0] for spec in COLUMNS.values()]
    body = []
    for row in table.iter_rows(named=True):
        cells = [row["run"], row["strategy"]]
        cells += [_cell(row[c], spec[3], c) for c, spec in COLUMNS.items()]
        body.append(cells)
    return headers, body


def to_markdown(table: pl.DataFrame) -> str:
    headers, body = _rendered(table)
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(headers) - 2)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def to_html(table: pl.DataFrame, title: str = "Run comparison") -> str:
    headers, body = _rendered(table)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                   for cells in body)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>"
        "body{font:13px/1.4 sans-serif;margin:30px}table{border-collapse:collapse}"
        "td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}"
        "td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>Sorted by Sharpe after costs; metric definitions "
        "are in each run's metrics.json.</p>"
        f'<table id="comparison"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        "</body></html>\n"
    )


def compare_runs(run_dirs: Sequence[str | Path]) -> Comparison:
    """Compare finished runs; ``markdown, html = compare_runs(dirs)`` (``.table`` too)."""
    table = comparison_table(run_dirs)
    return Comparison(table=table, markdown=to_markdown(table), html=to_html(table))


def write_comparison(out_dir: str | Path, run_dirs: Sequence[str | Path]) -> Comparison:
    """Write ``comparison.md``, ``comparison.html`` and ``comparison.csv`` into ``out_dir``."""
    comparison = compare_runs(run_dirs)
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name, text in (("comparison.md", comparison.markdown),
                       ("comparison.html", comparison.html)):
        tmp = target / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target / name)
    tmp = target / ".comparison.csv.tmp"
    comparison.table.write_csv(tmp)
    tmp.replace(target / "comparison.csv")
    return comparison
