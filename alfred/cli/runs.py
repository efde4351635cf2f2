"""``alfred runs list|show|best|rebuild``: query the index of run folders."""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer
from rich.table import Table

from alfred.cli.common import exit_codes, out_console

runs_app = typer.Typer(
    help="The index of run folders (kept in ROOT/index.sqlite, synced on every query).",
    epilog="Examples:  alfred runs list  |  alfred runs best --metric sharpe --where "
    "scenario=sweep_topk  |  alfred runs show runs/quickstart/topk  |  alfred runs rebuild",
    no_args_is_help=True,
)

Root = Annotated[str, typer.Option("--root", help="Folder holding the runs.")]
Where = Annotated[list[str] | None, typer.Option(
    "--where", "-w", help="KEY OP VALUE with =, !=, >, >=, <, <= or ~ (contains); repeat "
    "to AND them, e.g. -w 'sharpe>0.5' -w scenario=quickstart")]
# (column, header) of the table; an 80-column terminal fits them
_SHOWN = (("path", "path"), ("label", "strategy"), ("sharpe", "sharpe"),
          ("total_return", "return"), ("max_drawdown", "max dd"),
          ("win_rate_periods", "win %"), ("created_at", "created (UTC)"))
_PERCENT = {"total_return", "max_drawdown", "win_rate_periods", "cagr", "volatility",
            "win_rate_trades", "exposure", "benchmark_total_return"}


@runs_app.command("list")
def list_runs(root: Root = "runs", where: Where = None,
              limit: Annotated[int, typer.Option(min=1)] = 50,
              as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
              ) -> None:
    """Runs under ROOT, newest first."""
    from alfred.runs import RunIndex

    with exit_codes():
        rows = RunIndex(root).query(where or [], limit=limit)
        _emit(rows, f"{len(rows)} run(s) under {root}", as_json)


@runs_app.command("best")
def best_runs(root: Root = "runs", metric: Annotated[str, typer.Option()] = "sharpe",
              where: Where = None, limit: Annotated[int, typer.Option(min=1)] = 10,
              ascending: Annotated[bool, typer.Option(help="Lowest first.")] = False,
              as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
              ) -> None:
    """The best runs by a metric (highest first unless --ascending)."""
    from alfred.runs import RunIndex

    with exit_codes():
        rows = RunIndex(root).query(where or [], order_by=metric, descending=not ascending,
                                    limit=limit)
        _emit(rows, f"best {len(rows)} by {metric} under {root}", as_json, metric)


@runs_app.command("show")
def show_run(path: Annotated[str, typer.Argument(help="Run folder (or a unique end of "
                                                 "its path).")],
             root: Root = "runs") -> None:
    """Every indexed field of one run."""
    from alfred.runs import RunIndex

    with exit_codes():
        row = RunIndex(root).show(path)
        table = Table(show_header=False, title=row["path"])
        for key, value in row.items():
            table.add_row(key, json.dumps(value) if isinstance(value, dict) else _cell(value))
        out_console().print(table)


@runs_app.command("rebuild")
def rebuild_index(root: Root = "runs") -> None:
    """Recreate ROOT/index.sqlite from the run folders."""
    from alfred.runs import RunIndex

    with exit_codes():
        sync = RunIndex(root).rebuild()
        out_console().print(f"indexed {sync.total} run(s) under {root}")


def _emit(rows: list[dict], title: str, as_json: bool, metric: str | None = None) -> None:
    if as_json:
        # JSON lines: one compact object per line (NaN/inf as null, so every line parses)
        for row in rows:
            clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                     for k, v in row.items()}
            typer.echo(json.dumps(clean, default=str, allow_nan=False))
        return
    shown = list(_SHOWN)
    if metric and metric not in dict(shown):
        shown.insert(2, (metric, metric))
    table = Table(title=title)
    for column, header in shown:
        table.add_column(header, justify="left" if column in ("path", "label", "created_at")
                         else "right", overflow="fold")
    for row in rows:
        table.add_row(*[_cell(row.get(c), c) for c, _ in shown])
    out_console().print(table)


def _cell(value, column: str = "") -> str:
    if value is None:
        return ""
    if column == "created_at":
        return str(value)[:16].replace("T", " ")
    if isinstance(value, float):
        return f"{value:+.1%}" if column in _PERCENT else f"{value:.3f}"
    return str(value)
