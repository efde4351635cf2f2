"""``alfred analyst train|evaluate|promote`` and ``alfred tune``.

``analyst_app`` is a typer sub-app and :func:`tune_command` a command function; the main
CLI mounts them (``app.add_typer(analyst_app, name="analyst")``,
``app.command("tune")(tune_command)``). Exit codes match the main CLI: 0 ok, 1 the run
failed (traceback shown), 2 bad input (a message naming the file/key and the fix).

Every command reads the scenario for its data (source, assets, end, frequency), its
analysts and their configs, and ``train_until``. Without ``train_until`` the data is cut
60/20/20 by time: ``train`` fits on the first 80 % (its own validation is the last
quarter of that), ``evaluate`` tests on the last 20 %, ``tune`` searches on the first
80 % -- the test period is never used to choose anything.
"""

from __future__ import annotations

import json
import math
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from alfred.cli.common import TrustOpt, exit_codes
from engine.errors import ConfigError, DataError

DEFAULT_SPLIT = (0.6, 0.2, 0.2)

analyst_app = typer.Typer(
    help="Train, evaluate and promote trainable analysts (lstm, magnitude).",
    epilog="Examples:  alfred analyst train scenarios/magnitude_topk.yaml  |  "
    "alfred analyst evaluate scenarios/magnitude_topk.yaml  |  "
    "alfred analyst promote runs/tune/magnitude_topk",
    no_args_is_help=True,
)
out_console = Console()

ScenarioArg = Annotated[str, typer.Argument(help="Path of a scenario YAML file.",
                                            show_default=False)]
DeviceOpt = Annotated[str | None, typer.Option(help="Training device: auto, cpu, cuda, "
                                               "cuda:N, mps (overrides train.device).")]
EpochsOpt = Annotated[int | None, typer.Option(help="Override train.epochs.", min=1)]


def _exit_codes() -> AbstractContextManager[None]:
    return exit_codes("interrupted; a training with checkpoint_dir resumes where it stopped "
                      "when run again")


def _scenario_bars(path: str, trust: bool = False) -> tuple[Any, pl.DataFrame]:
    """The scenario and its bars up to data.end (with history before data.start)."""
    from alfred.inputs import resolve_source
    from alfred.scenario import load_scenario
    from engine.data import load_bars, resample_bars

    scenario = load_scenario(path, trust=trust)
    source = resolve_source(scenario.data.source, scenario.base_dir)
    bars = load_bars(source, assets=scenario.data.assets, end=scenario.data.end)
    if scenario.data.frequency is not None:
        bars = resample_bars(bars, scenario.data.frequency)
    return scenario, bars


def _analyst_specs(scenario: Any, only: str | None,
                   trainable: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, registry name, config) of the scenario's analysts, paths resolved and the
    scenario's train_start inherited."""
    from alfred.inputs import resolve_analyst_paths
    from alfred.scenario import inherit_train_start
    from analysts import REGISTRY, ForecastAnalyst, TrainableAnalyst

    specs = []
    for i, spec in enumerate(scenario.analysts):
        cls = REGISTRY.get(spec.name)
        if trainable and not (cls is not None and issubclass(
                cls, TrainableAnalyst | ForecastAnalyst)):
            continue
        if only is not None and spec.name != only:
            continue
        config = inherit_train_start(spec.name, resolve_analyst_paths(spec, scenario),
                                     scenario.train_start)
        names = [s.name for s in scenario.analysts]
        label = spec.name if names.count(spec.name) == 1 else f"{spec.name}-{i}"
        specs.append((label, spec.name, config))
    if not specs:
        kind = ("trainable or tunable analyst (lstm, magnitude, toto, kronos, "
                "kronos_ensemble)") if trainable else "analyst"
        which = f" named {only!r}" if only else ""
        raise ConfigError(f"{scenario.source} has no {kind}{which} under 'analysts'; add one, "
                          f"e.g. - name: magnitude")
    return specs


def _override(config: dict[str, Any], device: str | None, epochs: int | None,
              quiet: bool) -> dict[str, Any]:
    train = dict(config.get("train") or {})
    if device is not None:
        train["device"] = device
    if epochs is not None:
        train["epochs"] = epochs
    if quiet:
        train["progress"] = False
    return {**config, "train": train} if train else config


def _fit_end(scenario: Any, bars: pl.DataFrame) -> tuple[Any, str]:
    from analysts.training import chronological_split

    if scenario.train_until is not None:
        until = bars.filter(pl.col("ts").dt.date() <= scenario.train_until)["ts"].max()
        if until is None:
            raise DataError(f"{scenario.source}: train_until {scenario.train_until} is before "
                            f"the first bar {bars['ts'].min()}")
        return until, f"train_until {scenario.train_until}"
    cut = chronological_split(bars["ts"], DEFAULT_SPLIT)
    return cut.val_end, "the first 80% of the data (60/20/20 split; the last 20% is the test)"


def _default_out(scenario: Any, kind: str) -> Path:
    return Path("runs") / kind / scenario.name


@analyst_app.command("train", epilog="Example:  alfred analyst train "
                     "scenarios/magnitude_topk.yaml --out models/mag --device auto")
def train_command(
    scenario: ScenarioArg,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Folder for the saved "
                                            "analysts (default runs/models/<name>).")] = None,
    analyst: Annotated[str | None, typer.Option(help="Only this analyst.")] = None,
    device: DeviceOpt = None,
    epochs: EpochsOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    trust_scenario: TrustOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace analysts saved earlier in --out "
                                            "(only folders a saved analyst wrote).")] = False,
) -> None:
    """Fit the scenario's trainable analysts and save them (safetensors + config.json)."""
    from analysts import get_analyst

    with _exit_codes():
        loaded, bars = _scenario_bars(scenario, trust_scenario)
        specs = _analyst_specs(loaded, analyst, trainable=True)
        until, why = _fit_end(loaded, bars)
        target = Path(out) if out is not None else _default_out(loaded, "models")
        table = Table(title=f"{loaded.name}: trained up to {until} ({why})")
        for column in ("analyst", "units", "best epoch", "val loss", "seconds", "saved to"):
            table.add_column(column)
        taken = [str(target / label) for label, _, _ in specs if (target / label).exists()]
        if taken and not overwrite:
            raise ConfigError(f"{', '.join(taken)} already exist(s); pass --overwrite to "
                              "replace saved analysts, or another --out")
        for label, name, config in specs:
            model = get_analyst(name, **_override(config, device, epochs, quiet))
            model.fit(bars, until=until)
            saved = model.save(target / label)
            units = list(model.units.values())
            val = [h.get("val_loss") for u in units for h in u.history[u.best_epoch - 1:
                                                                      u.best_epoch]]
            table.add_row(label, str(len(units)),
                          ", ".join(str(u.best_epoch) for u in units[:5]),
                          ", ".join(f"{v:.4g}" for v in val[:5] if v is not None),
                          f"{sum(u.seconds for u in units):.1f}", str(saved))
        out_console.print(table)


@analyst_app.command("evaluate", epilog="Example:  alfred analyst evaluate "
                     "scenarios/magnitude_topk.yaml --split 0.6,0.2,0.2")
def evaluate_command(
    scenario: ScenarioArg,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Folder for evaluation.json"
                                            "/.md per analyst (default runs/evaluations/"
                                            "<name>).")] = None,
    split: Annotated[str, typer.Option(help="train,validation,test fractions (ignored when "
                                       "the scenario sets train_until).")] = "0.6,0.2,0.2",
    analyst: Annotated[str | None, typer.Option(help="Only this analyst.")] = None,
    device: DeviceOpt = None,
    epochs: EpochsOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    rolling: Annotated[int | None, typer.Option(help="Rolling-origin evaluation instead: "
                                                "the last N origins, one horizon apart, "
                                                "with latency per call.", min=1)] = None,
    allow_tuned_overlap: Annotated[bool, typer.Option(
        help="Evaluate tuned_configs on a test window inside or before their tuning period "
             "(every table then says so).")] = False,
    trust_scenario: TrustOpt = False,
) -> None:
    """Out-of-sample metrics of the scenario's analysts next to the baselines (zero, drift,
    last, always_up, majority), with Diebold-Mariano and direction tests, IC and a verdict."""
    from analysts import get_analyst
    from analysts.evaluation import evaluate_analyst, test_window

    with _exit_codes():
        fractions = parse_split(split)
        loaded, bars = _scenario_bars(scenario, trust_scenario)
        target = Path(out) if out is not None else _default_out(loaded, "evaluations")
        for label, name, config in _analyst_specs(loaded, analyst, trainable=False):
            if name in ("lstm", "magnitude"):
                config = _override(config, device, epochs, quiet)
            if allow_tuned_overlap and config.get("tuned_configs"):
                config = {**config, "allow_tuned_overlap": True}
            model = get_analyst(name, **config)
            if rolling is not None:
                _rolling(label, model, bars, rolling, target / label)
                continue
            until = None
            if loaded.train_until is not None:
                until, _ = _fit_end(loaded, bars)
            _tuned_overlap(config, label, test_window(bars, split=fractions, until=until),
                           bool(config.get("allow_tuned_overlap")))
            result = evaluate_analyst(model, bars, split=fractions, until=until,
                                      out=target / label)
            _print_evaluation(label, result)
        out_console.print(Text(f"written to {target}"))


def _tuned_overlap(config: dict[str, Any], label: str, window: tuple[Any, Any],
                   allow: bool) -> None:
    """Refuse (exit 2) tuned configs used on a test window inside or before their tuning
    period, before anything is fit; with ``allow`` the evaluation marks the model's rows
    and carries the note (analysts.evaluation.tuned_overlap_notes)."""
    from analysts.tuning import check_tuned_overlap, tuned_meta

    path = config.get("tuned_configs")
    if path and not allow:
        check_tuned_overlap(tuned_meta(path), *window, where=f"analyst {label!r}: the test "
                            "window")


def _rolling(label: str, model: Any, bars: Any, windows: int, folder: Path) -> None:
    """Fit on the bars before the first origin, then the rolling-origin table."""
    from analysts.evaluation import rolling_origin

    horizon = int(getattr(model.config, "horizon", 1) or 1)
    stamps = bars["ts"].unique().sort()
    first = stamps.len() - 1 - horizon - (windows - 1) * horizon
    if first < 1:
        raise ConfigError(f"--rolling {windows} needs {windows * horizon + 2} bars; the data "
                          f"has {stamps.len()}")
    model.fit(bars, until=stamps[first - 1])
    table = rolling_origin(model, bars, windows=windows, horizon=horizon)
    folder.mkdir(parents=True, exist_ok=True)
    table.write_csv(folder / "rolling_origin.csv")
    view = Table(title=f"{label}: rolling origin, last {windows} origins, horizon {horizon}")
    columns = ("pct_return_mae", "zero_pct_return_mae", "drift_pct_return_mae",
               "last_pct_return_mae", "zero_dm_p", "drift_dm_p", "last_dm_p")
    view.add_column("asset")
    view.add_column("n", justify="right")
    for column in columns:
        view.add_column(column.replace("_pct_return_mae", " %mae").replace(
            "pct_return_mae", "%mae").replace("_dm_p", " DM p"), justify="right")
    view.add_column("ms/call", justify="right")
    marked = "tuned_overlap" in table.columns
    if marked:
        view.add_column("caveat")
    for row in table.iter_rows(named=True):
        view.add_row(row["asset"], str(row["n"]), *[_num(row[c]) for c in columns],
                     f"{row['ms_per_call']:.4g}", *([row["tuned_overlap"]] if marked else []))
    out_console.print(view)
    overall = table.filter(table["asset"] == "ALL").row(0, named=True)
    out_console.print(Text(f"{label} verdict: {overall['verdict']} (DM p: one-sided, model "
                           f"better; origins {horizon} bars apart)"))


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def parse_split(text: str) -> tuple[float, float, float]:
    from analysts.training import check_fractions

    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--split {text!r} is not three comma-separated numbers such as "
                          f"0.6,0.2,0.2") from None
    return check_fractions(values)


def _print_evaluation(label: str, result: Any) -> None:
    """Verdict and notes first, then the overall metrics (one column per predictor) and
    the tests against each baseline (fits 80 columns)."""
    out_console.print(Text(f"{label} verdict: {result.verdict}", style="bold"))
    for note in result.notes:
        out_console.print(Text(f"note: {note}", style="yellow"))
    frame = result.table("overall")
    shown = ("n", "n_flat", "mae", "pct_return_mae", "r2", "pearson", "accuracy", "f1")
    rows = {row["predictor"]: row for row in frame.iter_rows(named=True)}
    table = Table(title=f"{label}: test {result.periods['test_start'][:10]} .. "
                  f"{result.periods['test_end'][:10]}, {result.n_rows} rows, overall")
    table.add_column("metric")
    for predictor in rows:
        table.add_column(predictor, justify="right")
    for metric in shown:
        table.add_row(metric, *[_num(row.get(metric)) for row in rows.values()])
    if result.tuned_overlap:  # the model's column only: the baselines have no hyperparameters
        table.add_row("caveat", *[row.get("tuned_overlap") or "" for row in rows.values()])
    out_console.print(table)
    tests = result.tests["overall"]
    view = Table(title=f"{label}: model vs each baseline (one-sided p: model better)")
    for column in ("baseline", "test", "model", "baseline value", "stat", "p"):
        view.add_column(column, justify="left" if column in ("baseline", "test") else "right")
    for base, dm in tests["dm"].items():
        view.add_row(base, "DM |error|", "", "", _num(dm["stat"]), _num(dm["p_better"]))
    for base, d in tests["direction"].items():
        view.add_row(base, "direction", _num(d["accuracy"]), _num(d["baseline_accuracy"]),
                     _num(d["hac_stat"]), _num(d["hac_p"]))
    out_console.print(view)
    ic = tests["ic"]
    out_console.print(Text(f"rank IC {_num(ic['rank_ic'])} (t {_num(ic['rank_ic_t'])}, "
                           f"{ic['dates']} dates), IC {_num(ic['ic'])}, AUC "
                           f"{_num(tests['auc'])}, top-bottom quintile spread "
                           f"{_num(tests['spread']['spread'])} (t "
                           f"{_num(tests['spread']['spread_t'])})"))


@analyst_app.command("promote", epilog="Example:  alfred analyst promote runs/tune/"
                     "magnitude_topk --to configs/tuned")
def promote_command(
    tune_dir: Annotated[str, typer.Argument(help="Output folder of `alfred tune`.",
                                            show_default=False)],
    to: Annotated[str | None, typer.Option("--to", help="Destination folder (default "
                                           "TUNE_DIR/promoted).")] = None,
    analyst: Annotated[str | None, typer.Option(help="Only this analyst.")] = None,
    scenario: Annotated[str | None, typer.Option(
        "--scenario", help="The scenario file that will use the configs: the snippet's path "
        "is then relative to its folder (default: an absolute path).",
        show_default=False)] = None,
) -> None:
    """Gather the best per-symbol configs into one file a scenario can use."""
    from analysts.tuning import promote

    with _exit_codes():
        for path in promote(tune_dir, to, analyst):
            data = json.loads(path.read_text())
            shown = snippet_path(path, scenario)
            out_console.print(Text.assemble(
                ("promoted ", "bold green"),
                f"{data['analyst']}: {len(data['symbols'])} symbol(s) -> {path}. Use it in a "
                f"scenario as\n  analysts:\n    - name: {data['analyst']}\n      config: "
                f"{{tuned_configs: {shown}}}"), soft_wrap=True)


def snippet_path(path: Path, scenario: str | None) -> str:
    """The promoted file as a scenario would name it: scenario paths resolve against the
    scenario file's folder, so relative to that folder when it is known, else absolute."""
    target = Path(path).resolve()
    if scenario is None:
        return target.as_posix()
    import os

    return Path(os.path.relpath(target, Path(scenario).resolve().parent)).as_posix()


def tune_command(
    scenario: ScenarioArg,
    trials: Annotated[int, typer.Option("--trials", "-n", help="Trials per symbol.",
                                        min=1)] = 20,
    space: Annotated[str | None, typer.Option(help="Search space YAML (default: "
                                              "tuning/<analyst>.yaml next to the "
                                              "scenario).")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Results folder (default "
                                            "runs/tune/<name>).")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna RDB URL (default SQLite in "
                                                "the results folder).")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols (default: "
                                                "the scenario's universe).")] = None,
    pooled: Annotated[bool, typer.Option(help="One study over all symbols (ALL.json) "
                                         "instead of one per symbol.")] = False,
    analyst: Annotated[str | None, typer.Option(help="Which trainable analyst of the "
                                                "scenario (default: the first).")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampler seed (default: the scenario's "
                                             "seed).")] = None,
    device: DeviceOpt = None,
    executor: Annotated[str | None, typer.Option(help="Fan trials out: inline (default "
                                                 "unless the scenario has an executor: "
                                                 "section), local or ray.")] = None,
    workers: Annotated[str | None, typer.Option(help="Workers for local/ray: auto or N; "
                                                "trials split over them, one shared "
                                                "study.")] = None,
    trust_scenario: TrustOpt = False,
) -> None:
    """Search hyperparameters with Optuna; best config per analyst and symbol as JSON."""
    from analysts.tuning import tune

    with _exit_codes():
        loaded, bars = _scenario_bars(scenario, trust_scenario)
        label, name, config = _analyst_specs(loaded, analyst, trainable=True)[0]
        space_path = Path(space) if space is not None else (
            loaded.base_dir / "tuning" / f"{name}.yaml")
        if space is None and not space_path.is_file():
            raise ConfigError(f"no search space given and {space_path} does not exist; pass "
                              f"--space PATH (see scenarios/tuning/{name}.yaml)")
        search = read_search_space(space_path)
        if search.analyst != name:
            raise ConfigError(f"search space {space_path} is for analyst {search.analyst!r} "
                              f"but the scenario's analyst is {name!r}; pass --analyst or "
                              f"another --space")
        until, why = _fit_end(loaded, bars)
        target = Path(out) if out is not None else _default_out(loaded, "tune")
        chosen = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
        records = tune(search, bars, n_trials=trials, out=target,
                       base_config=(_override(config, device, None, True)
                                    if name in ("lstm", "magnitude") else config),
                       symbols=chosen,
                       pooled=pooled, storage=storage,
                       seed=loaded.seed if seed is None else seed, until=until,
                       executor=_tune_executor(loaded, executor, workers), workers=workers)
        table = Table(title=f"{loaded.name}: tuned {name} on data up to {until} ({why}); "
                      f"{search.objective} ({search.study_direction})")
        for column in ("symbol", search.objective, "trial", "params", "ms/row"):
            table.add_column(column)
        for symbol, record in records.items():
            table.add_row(symbol, f"{record['value']:.5g}", str(record["trial"]),
                          json.dumps(record["params"]),
                          f"{record['latency']['ms_per_row']:.3f}")
        out_console.print(table)
        out_console.print(Text(f"results in {target / name}; promote them with `alfred "
                               f"analyst promote {target}`"))


def read_search_space(path: Path) -> Any:
    """A search space file, read within the scenario loader's bounds (aliases, nesting)."""
    from alfred._yaml import load_yaml
    from analysts.tuning import load_search_space, parse_search_space

    if not path.is_file():
        return load_search_space(path)  # its own "not found" message, with examples
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read search space file {path}: {exc}") from None
    raw, _ = load_yaml(text, str(path))
    return parse_search_space(raw, source=str(path))


def _tune_executor(scenario, kind: str | None, workers: str | None):
    """Trials run in sequence (reproducible from the seed) unless asked to fan out."""
    if kind is None and workers is not None:
        kind = "local"
    if kind is not None:
        return {**scenario.executor.model_dump(), "kind": kind}
    return scenario.executor if "executor" in scenario.model_fields_set else "inline"
