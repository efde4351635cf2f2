"""The ``alfred`` command line: run, validate, report, compare, data.

Exit codes are part of the interface, so scripts and CI can tell a broken scenario from a
broken run: 0 success, 1 the run failed (a bug or an environment problem: the traceback
is shown), 2 bad input (scenario, data, paths: a one-paragraph message that names the
file and key and says how to fix it, no traceback).
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from alfred.cli.common import (
    TrustOpt,
    err_console,
    exit_codes,
    out_console,
)
from engine.errors import ConfigError

app = typer.Typer(
    name="alfred",
    help="Alfred: event-driven backtests of ML trading signals, configured by YAML scenarios.",
    epilog=(
        "Examples:  alfred run scenarios/quickstart.yaml  |  alfred validate my.yaml  |  "
        "alfred report runs/quickstart/20240101-120000  |  alfred compare RUN_A RUN_B  |  "
        "alfred data list.  Exit codes: 0 ok, 1 run failed, 2 bad input."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Bundled and imported datasets.",
    epilog="Examples:  alfred data list  |  alfred data show sp500_stocks  |  "
    "alfred data import prices/ --name my_stocks  |  alfred data import --from backtesting goog",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@app.callback()
def _every_command(ctx: typer.Context) -> None:
    """Alfred: event-driven backtests of ML trading signals, configured by YAML scenarios."""
    from alfred.cli._signals import sigterm_as_interrupt

    ctx.call_on_close(sigterm_as_interrupt())  # SIGTERM cleans up like Ctrl-C


def _mount_package_commands() -> None:
    """Commands owned by the packages they drive (training lives with its models)."""
    from alfred.cli.analyst import analyst_app, tune_command
    from alfred.cli.rl import train_rl

    app.add_typer(analyst_app, name="analyst")
    app.command("tune", epilog="Example:  alfred tune scenarios/magnitude_topk.yaml")(
        tune_command)
    app.command("train-rl")(train_rl)
    from alfred.cli.runs import runs_app
    from alfred.cli.sweep import sweep_command

    app.command("sweep", epilog="Examples:  alfred sweep scenarios/sweep_topk.yaml  |  "
                "alfred sweep my.yaml --executor ray --address ray://head:10001")(sweep_command)
    app.add_typer(runs_app, name="runs")
    from alfred.cli.walkforward import walkforward_command

    app.command("walkforward", epilog="Example:  alfred walkforward "
                "scenarios/walkforward_magnitude_topk.yaml --workers 2")(walkforward_command)
    from alfred.cli.regimes import regimes_command
    from alfred.cli.stress import stress_command

    app.command("stress", epilog="Example:  alfred stress scenarios/stress_topk.yaml "
                "--paths 200")(stress_command)

    app.command("regimes", epilog="Examples:  alfred regimes  |  alfred regimes --dataset "
                "sp500_index")(regimes_command)



_out = out_console
_err = err_console
_exit_codes = exit_codes


ScenarioArg = Annotated[str, typer.Argument(help="Path of a scenario YAML file.",
                                            show_default=False)]


@app.command(epilog="Examples:  alfred run scenarios/quickstart.yaml  |  "
             "alfred run my.yaml --out runs/try1 --overwrite")
def run(
    scenario: ScenarioArg,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Run folder (default: "
                                            "output.directory, else runs/<name>/<time>).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    tearsheet: Annotated[bool | None, typer.Option(
        "--tearsheet/--no-tearsheet", help="Write (or skip) the HTML tear sheets; overrides "
        "the scenario's report.tearsheet.", show_default=False)] = None,
    trust_scenario: TrustOpt = False,
) -> None:
    """Run a scenario: data, analysts, every strategy (with and without costs), reports."""
    from alfred import report_jobs

    # the report server imports its stack while this process imports the run's modules
    # and loads the data; stopped again if the scenario draws nothing
    with _exit_codes(), report_jobs.early_report_server(tearsheet=tearsheet is not False):
        from alfred.scenario import load_scenario

        loaded = load_scenario(scenario, trust=trust_scenario)
        chosen: Any = loaded
        if tearsheet is not None:
            chosen = loaded.model_copy(update={"report": loaded.report.model_copy(
                update={"tearsheet": tearsheet})})
        if not (chosen.report.tearsheet or chosen.report.plots):
            report_jobs.drop_early_server()
        elif not chosen.report.tearsheet:
            report_jobs.early_server_without_tearsheet()
        from alfred.run import run_scenario

        with _progress(quiet) as progress:
            summary = run_scenario(chosen, out=out, overwrite=overwrite, progress=progress)
        _print_summary(summary)


@app.command(epilog="Examples:  alfred validate scenarios/quickstart.yaml  |  "
             "alfred validate scenarios/magnitude_topk.yaml --fit")
def validate(
    scenario: ScenarioArg,
    trust_scenario: TrustOpt = False,
    fit: Annotated[bool, typer.Option(
        "--fit", help="Also fit and run the analysts and plan every strategy on their "
        "signals (a full dry run; as slow as the run's analyst stage).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
) -> None:
    """Check a scenario without running it: schema, strategies' and analysts' configs,
    data, benchmark (and, with --fit, the analysts' signals and strategy plans)."""
    from alfred.run import validate_scenario
    from alfred.scenario import load_scenario

    with _exit_codes():
        with _progress(quiet) as progress:
            check = validate_scenario(load_scenario(scenario, trust=trust_scenario), fit=fit,
                                      progress=progress)
        start, end = check.period
        scope = ("" if check.plans_checked else
                 "; analysts' configs checked, not fitted (--fit for a full dry run)")
        _out().print(Text.assemble(
            ("ok ", "bold green"),
            f"{scenario}: scenario {check.scenario.name!r}, {check.n_assets} assets x "
            f"{check.n_bars} bars from {check.source} ({start:%Y-%m-%d} to {end:%Y-%m-%d}); "
            f"strategies: {', '.join(check.strategies)}; benchmark: "
            f"{check.benchmark or 'none'}{scope}",
        ))
        _print_warnings(check.warnings)


@app.command(epilog="Examples:  alfred report runs/quickstart/20240101-120000  |  "
             "alfred report runs/sweeps/sweep_topk/20240101-120000")
def report(
    run_dir: Annotated[str, typer.Argument(
        help="A folder written by alfred run, walkforward, stress, sweep or train-rl.",
        show_default=False)],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
) -> None:
    """Rebuild the report files of a run folder from its saved results (no rerun)."""
    from alfred.rebuild import rebuild

    with _exit_codes():
        root = _run_folder(run_dir)
        with _progress(quiet) as progress:
            kind, _ = rebuild(root, progress=progress)
        _out().print(Text(f"{kind} report rebuilt in {root}"))


@app.command(epilog="Example:  alfred compare runs/a/20240101-120000 runs/b/20240102-090000 "
             "--out comparisons/a_vs_b")
def compare(
    run_dirs: Annotated[list[str], typer.Argument(help="Run folders (a folder holding "
                                                  "several strategies counts as each of them).",
                                                  show_default=False)],
    out: Annotated[str | None, typer.Option("--out", "-o", help="Also write comparison "
                                            "files into this folder.")] = None,
) -> None:
    """Compare the metrics of several runs side by side."""
    with _exit_codes():
        import reports

        folders: list[Path] = []
        for name in run_dirs:
            root = _run_folder(name)
            folders.extend(_sub_runs(root) or [root])
        comparison = reports.compare_runs(folders)
        _print_comparison(comparison.table, title="comparison")
        if out is not None:
            target = Path(out)
            target.mkdir(parents=True, exist_ok=True)
            reports.write_comparison(target, folders)
            _out().print(Text(f"comparison written to {target}"))


@data_app.command("list")
def data_list() -> None:
    """List the bundled datasets and those imported into the user data folder."""
    with _exit_codes():
        from alfred.inputs import imported_datasets, user_data_dir
        from engine.data import list_datasets

        bundled = list_datasets()
        table = Table(title="datasets")
        for column, width in (("name", 12), ("kind", 8), ("freq", 4), ("start", 10),
                              ("end", 10), ("assets", 6)):
            table.add_column(column, no_wrap=True, min_width=width)
        # descriptions only where they fit; `alfred data show NAME` always has them
        wide = _out().width >= 110
        if wide:
            table.add_column("description", overflow="fold", ratio=1)
        for row in bundled.iter_rows(named=True):
            table.add_row(row["name"], "bundled", row["frequency"], f"{row['start']:%Y-%m-%d}",
                          f"{row['end']:%Y-%m-%d}", str(len(row["assets"])),
                          *([row["description"]] if wide else []))
        for name, path in imported_datasets().items():
            table.add_row(name, "imported", "", "", "", "", *([str(path)] if wide else []))
        _out().print(table)
        _out().print(Text(f"imported datasets live in {user_data_dir()} "
                               "(set ALFRED_DATA_DIR to move them)"))


@data_app.command("show")
def data_show(name: Annotated[str, typer.Argument(help="Bundled or imported dataset name, "
                                                  "or a path.", show_default=False)]) -> None:
    """Describe one dataset: assets, period, bar size, columns."""
    with _exit_codes():
        from alfred.inputs import resolve_source
        from engine.data import dataset_info, infer_periods_per_year, load_bars

        source = resolve_source(name, Path.cwd())
        bars = load_bars(source)
        assets = bars["asset"].unique().sort().to_list()
        table = Table(title=f"dataset {name}", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        if isinstance(source, str):
            info = dataset_info(source)
            table.add_row("description", str(info.get("description", "")))
            if info.get("caveat"):
                table.add_row("caveat", str(info["caveat"]))
            if info.get("benchmark"):
                bench = info["benchmark"]
                table.add_row("benchmark", f"{bench['dataset']}:{bench['asset']}")
        else:
            table.add_row("file", str(source))
        table.add_row("assets", f"{len(assets)}: {', '.join(assets[:30])}"
                      + (" ..." if len(assets) > 30 else ""))
        table.add_row("period", f"{bars['ts'].min()} to {bars['ts'].max()}")
        table.add_row("bars", f"{bars.height} rows, {bars['ts'].n_unique()} timestamps")
        table.add_row("bars per year", f"{infer_periods_per_year(bars['ts']):g}")
        table.add_row("columns", ", ".join(bars.columns))
        _out().print(table)


@data_app.command("import")
def data_import(
    path: Annotated[str, typer.Argument(help="A CSV/parquet file or a folder of per-asset "
                                        "files; with --from, the dataset to build.",
                                        show_default=False)],
    name: Annotated[str | None, typer.Option("--name", help="Dataset name to use in "
                                             "scenarios (not with --from).",
                                             show_default=False)] = None,
    source: Annotated[str | None, typer.Option(
        "--from", help="Build a dataset from an installed package instead of a path: "
        "'backtesting' (goog, eurusd_1h; AGPL-3.0 data, built on this machine).",
        show_default=False)] = None,
    to: Annotated[str | None, typer.Option("--to", help="Target folder (default: "
                                           "$ALFRED_DATA_DIR or ~/.alfred/data).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset of that name.")] = False,
    partitioned: Annotated[bool | None, typer.Option(
        "--partitioned/--single-file", help="Write hive partitions (asset=, year=) that a "
        "scenario reads only its assets and years of (default: when over 5M rows).",
        show_default=False)] = None,
) -> None:
    """Validate bars and store them as a normalised parquet dataset usable by name.

    `alfred data import --from backtesting goog` (or eurusd_1h) builds backtesting.py's
    sample data from the installed `backtesting` package instead.
    """
    with _exit_codes():
        from alfred.inputs import import_dataset, user_data_dir

        folder = None if to is None else Path(to)
        if source is not None:
            _import_from_package(source, path, name, folder or user_data_dir(), overwrite)
            return
        if name is None:
            raise ConfigError(f"alfred data import {path}: pass --name NAME, the name "
                              f"scenarios will use for these bars (data: {{source: NAME}})")
        target, bars = import_dataset(path, name, to=folder, overwrite=overwrite,
                                      partitioned=partitioned)
        _out().print(Text.assemble(
            ("imported ", "bold green"),
            f"{name}: {bars['asset'].n_unique()} assets, {bars.height} bars, "
            f"{bars['ts'].min()} to {bars['ts'].max()} -> {target}. Use it as "
            f"data: {{source: {name}}}" + ("" if to is None else
                                          f" (with ALFRED_DATA_DIR={Path(to).expanduser()})"),
        ))


def _import_from_package(source: str, dataset: str, name: str | None, folder: Path,
                         overwrite: bool) -> None:
    from alfred.inputs import user_data_dir
    from alfred_data.backtesting_import import PACKAGE, import_from_backtesting

    if source != PACKAGE:
        raise ConfigError(f"--from {source!r}: datasets can be built from {PACKAGE!r} only "
                          f"(alfred data import --from backtesting goog)")
    if name is not None and name != dataset:
        raise ConfigError(f"--name {name!r}: a dataset built --from {source} keeps its name "
                          f"({dataset!r}); leave out --name")
    built = import_from_backtesting(dataset, folder, overwrite=overwrite)
    record, bars = built.provenance, built.bars
    _out().print(Text.assemble(
        ("built ", "bold green"),
        f"{built.name} from {record['source']['function']} ({PACKAGE} "
        f"{record['source']['version']}): {bars['asset'].n_unique()} assets, {bars.height} "
        f"bars, {record['start']} to {record['end']} -> {built.path}\n",
        ("licence: ", "bold"), f"{record['licence']}\n{record['licence_note']}\n",
        f"provenance -> {built.provenance_path}\nUse it as data: {{source: {built.name}}}"
        + ("" if folder == user_data_dir() else f" (with ALFRED_DATA_DIR={folder})")))


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if quiet:
        yield None
        return
    console = _err()
    if not console.is_terminal:
        yield _log_lines(console)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"
                  "/{task.total}"), TimeElapsedColumn(), console=_err(),
                  transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        yield update


def _log_lines(console: Any) -> Callable[[str, int, int], None]:
    """Progress for logs and CI (stderr not a terminal): one plain line per step with the
    seconds elapsed, e.g. ``[   4.2s] running equal_weight (2/5)``."""
    started = time.perf_counter()
    last: list[tuple[str, int]] = []

    def update(step: str, done: int, total: int) -> None:
        if last and last[-1] == (step, done):
            return
        last[:] = [(step, done)]
        counter = f" ({done}/{total})" if total else ""
        console.print(f"[{time.perf_counter() - started:7.1f}s] {step}{counter}",
                      markup=False, highlight=False, soft_wrap=True)

    return update


def _print_summary(summary: Any) -> None:
    """One row per strategy, in the house vocabulary: closed trades counted as the
    comparison counts them (open positions apart), numbers formatted by reports."""
    from reports import format_metric

    start, end = summary.period
    table = _compact_table(f"{summary.name}: {summary.n_assets} assets, {summary.n_bars} "
                           f"bars, {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    table.add_column("strategy", no_wrap=True)
    for column in ("return", "no costs", "Sharpe", "max DD", "closed trades", "open"):
        table.add_column(column, justify="right", no_wrap=column != "closed trades")
    for run in summary.runs:
        net = _section(run.metrics, "with_costs")
        gross = _section(run.metrics, "without_costs")
        closed = net.get("n_trades", run.n_closed_trades)
        table.add_row(
            run.label,
            format_metric("total_return", net.get("total_return", run.total_return)),
            format_metric("total_return", gross.get("total_return",
                                                    run.total_return_without_costs)),
            format_metric("sharpe", net.get("sharpe")),
            format_metric("max_drawdown", net.get("max_drawdown")),
            format_metric("n_trades", closed),
            format_metric("n_open_trades", net.get("n_open_trades", run.n_open_trades)))
    if summary.benchmark_return is not None:
        table.add_row("benchmark", format_metric("total_return", summary.benchmark_return),
                      "", "", "", "", "")
        table.caption = f"benchmark: {summary.benchmark}; returns after costs unless noted"
    _out().print(table)
    for run in summary.runs:
        _print_order_outcomes(run.label, run.metrics.get("order_outcomes"))
    for note in summary.notes:
        _out().print(Text("note: ", style="cyan") + Text(note))
    _print_warnings(summary.warnings)
    _out().print(Text(f"run folder: {summary.run_dir}  ({summary.elapsed_s:.1f} s)"))


def _print_order_outcomes(label: str, outcomes: Any) -> None:
    """One line per strategy whose orders were not all filled: counts by reason."""
    if not isinstance(outcomes, dict) or not (outcomes.get("by_reason")
                                              or outcomes.get("triggered_fills")):
        return
    parts = [f"{status} {outcomes.get(status, 0)} ("
             + ", ".join(f"{reason} {n}" for reason, n in reasons.items()) + ")"
             for status, reasons in outcomes["by_reason"].items()]
    ratio = outcomes.get("scaled_fill_ratio_min")
    if isinstance(ratio, int | float):
        parts.append(f"whole-book scaling kept >= {ratio:.4%} of each scaled order")
    if outcomes.get("triggered_fills"):
        parts.append("triggered fills " + ", ".join(
            f"{k} {n}" for k, n in outcomes["triggered_fills"].items())
            + f"; ambiguous intrabar fills {outcomes.get('ambiguous_intrabar_fills', 0)}")
    _out().print(Text(f"{label}: {outcomes.get('orders', 0)} orders, " + "; ".join(parts)))


def _section(metrics: dict, name: str) -> dict:
    """A metrics.json section ("with_costs", "without_costs"), flat files as with_costs."""
    block = metrics.get(name)
    if isinstance(block, dict):
        return block
    return metrics if name == "with_costs" and "sharpe" in metrics else {}


def _compact_table(title: str) -> Table:
    """A borderless table that fits 80 columns: one space between columns, no edges."""
    from rich import box

    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 padding=(0, 1))


def _print_warnings(messages: tuple[str, ...]) -> None:
    for message in messages:
        _err().print(Text("warning: ", style="yellow") + Text(message))


def _print_comparison(frame: Any, title: str) -> None:
    """The comparison's headline columns, sized for an 80-column terminal: run names are
    never cut (the period wraps first); the full table is in comparison.md/.csv/.html."""
    from reports import format_metric

    table = _compact_table(title)
    table.add_column("run", no_wrap=True)
    table.add_column("period")
    for column in ("return", "Sharpe", "max DD"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("closed trades", justify="right")
    for row in frame.iter_rows(named=True):
        label = (f"benchmark {row['run']}" if row.get("strategy") == "benchmark"
                 else row["run"])
        trades = row.get("n_trades")
        table.add_row(label, f"{row['start']} to {row['end']}",
                      format_metric("total_return", row.get("total_return")),
                      format_metric("sharpe", row.get("sharpe")),
                      format_metric("max_drawdown", row.get("max_drawdown")),
                      "" if trades is None or trades != trades else
                      format_metric("n_trades", trades))
    _out().print(table)


def _run_folder(name: str) -> Path:
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"run folder {folder} does not exist; pass a folder written by "
                          "`alfred run` (e.g. runs/<name>/<timestamp>)")
    return folder


def _report_options(folder: Path) -> tuple[bool, bool]:
    """The run's own report options (its config.yaml); both on when it has none."""
    config = folder / "config.yaml"
    if not config.is_file():
        return True, True
    from alfred.scenario import load_scenario

    options = load_scenario(config, trust=True).report  # Alfred's own file; only read
    return options.tearsheet, options.plots


def _sub_runs(root: Path) -> list[Path]:
    """Per-strategy folders of a multi-strategy run (they each hold a config.yaml)."""
    return sorted(p.parent for p in root.glob("*/config.yaml"))


def _plain_warnings() -> None:
    """Warnings printed as ``warning: Category: message`` on stderr, without the source
    line Python's default adds (Alfred's internals, not the user's input)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        stream = file if file is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):  # a closed stream, as Python's own
            stream.write(f"warning: {category.__name__}: {message}\n")

    warnings.showwarning = show


def _flags_without_type_in_help() -> None:
    """typer 0.29's help prints ``<bool>`` after every flag (--overwrite, --quiet, --help),
    although a flag takes no value; flags show no type column."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_alfred", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._alfred = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich


_mount_package_commands()
_plain_warnings()
_flags_without_type_in_help()


def main() -> None:  # pragma: no cover - thin wrapper for console scripts
    app(prog_name="alfred")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
