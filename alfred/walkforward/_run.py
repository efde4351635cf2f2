"""``alfred walkforward``: folds fitted in parallel, traded in order, stitched, reported.

Capital is carried from fold to fold. At the end of each test window the book is
liquidated at the last close, paying the scenario's one-way costs (commission, spread and
slippage on the gross value held, plus any fixed commission per position), and the next
fold starts from that cash. Liquidating is the honest simple choice: the next fold's
analysts are new models, and carrying positions they did not choose would blend two
folds' decisions. The cost of doing so shows up as the first bar's return of each fold.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alfred.resume import digest, discard, resume_folder, scenario_identity
from alfred.scenario import Scenario, scenario_to_dict
from alfred.walkforward._fold import fold_task, load_history
from alfred.walkforward._folds import Fold, make_folds
from engine.errors import ConfigError, DataError, RunError
from engine.settings import SimulationSettings

ProgressFn = Any


@dataclass(frozen=True)
class StrategyOOS:
    label: str
    returns: pl.DataFrame  # ts, return, fold (stitched, with costs)
    equity: pl.DataFrame  # the engine's equity frames of every fold, with a fold column
    trades: pl.DataFrame
    folds: pl.DataFrame  # one row per fold
    metrics: dict[str, float]
    in_sample: dict[str, float] | None


@dataclass(frozen=True)
class WalkForwardResult:
    name: str
    run_dir: Path
    folds: tuple[Fold, ...]
    fold_dates: tuple[dict[str, str], ...]
    strategies: tuple[StrategyOOS, ...]
    benchmark: dict[str, float] | None
    benchmark_label: str | None
    analysts: pl.DataFrame  # forecast metrics per fold and analyst
    elapsed_s: float
    executor: str
    forecasts: dict[str, dict] = field(default_factory=dict)  # pooled tests per analyst


def plan_folds(scenario: Scenario) -> tuple[list[Fold], np.ndarray, int]:
    """The folds of a scenario's walk-forward, on its data's calendar, and the horizon."""
    from alfred.inputs import build_analysts
    from analysts import TrainableAnalyst

    spec = scenario.walkforward
    if spec is None:
        raise ConfigError(f"{scenario.source} has no walkforward: section; add one, e.g. "
                          "walkforward: {train: 5y, test: 1y}")
    if not scenario.analysts:
        raise ConfigError(f"{scenario.source}: a walk-forward refits analysts fold by fold; "
                          "this scenario has none (use alfred run for a plain backtest)")
    if scenario.train_until is not None:
        raise ConfigError(f"{scenario.source}: train_until is a single train/test cut; a "
                          "walk-forward sets one per fold. Drop train_until")
    horizon = max((int(getattr(a.config, "horizon", 0)) for a in build_analysts(scenario)
                   if isinstance(a, TrainableAnalyst)), default=0)
    try:
        _, history = load_history(scenario)
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{scenario.source}: data: {exc}") from None
    ts = np.unique(history["ts"].to_numpy())
    try:
        folds = make_folds(ts, spec, horizon=horizon, start=scenario.data.start,
                           end=scenario.data.end)
    except ConfigError as exc:
        raise ConfigError(f"{scenario.source}: {exc}") from None
    return folds, ts, horizon


def run_walkforward(scenario: str | os.PathLike[str] | Scenario,
                    out: str | os.PathLike[str] | None = None, *, executor: Any = None,
                    workers: int | str | None = None, overwrite: bool = False,
                    progress: bool = True) -> WalkForwardResult:
    """Run the scenario's walk-forward and write its run folder (see ``_report``)."""
    from alfred.run import _build_strategies, _located, _target_dir, as_scenario
    from alfred.walkforward._report import write_walkforward
    from engine.executor import Shared, Task, make_executor

    started = time.perf_counter()
    started_at = datetime.now(UTC)
    scenario = as_scenario(scenario)  # a path, a dict or a Scenario
    strategies = _build_strategies(scenario)
    folds, ts, horizon = plan_folds(scenario)
    spec = scenario.walkforward
    dates = [f.dates(ts) for f in folds]
    target = _target_dir(scenario, out, overwrite, started_at)

    tree = scenario_to_dict(scenario)
    base_dir = str(scenario.base_dir)
    # the bars travel with the tasks (a Ray cluster gets them once): no worker reads a path
    history = Shared(load_history(scenario)[1])
    tasks = [Task(key=f"fold_{f.index:02d}", fn=fold_task, config=d,
                  args=(tree, base_dir, d, spec.validation, history))
             for f, d in zip(folds, dates, strict=True)]
    oos_first, oos_last = dates[0]["test_start"], dates[-1]["test_end"]
    if spec.in_sample:
        whole = {"train_start": str(ts[0].astype("datetime64[D]")), "train_end": oos_last,
                 "test_start": oos_first, "test_end": oos_last}
        tasks.append(Task(key="in_sample", fn=fold_task, config=whole,
                          args=(tree, base_dir, whole, spec.validation, history)))
    ex = make_executor(executor if executor is not None else scenario.executor,
                       workers=workers)
    # a killed run resumes: finished folds wait in .<name>.resume beside the target
    identity = _identity(scenario, tasks)
    with resume_folder(target, identity, "walkforward") as journal:
        outputs: dict[str, dict] = {}
        with ex:
            for result in ex.imap(tasks, progress="walk-forward folds" if progress else None,
                                  journal=journal):
                if not result.ok:
                    bad_input = result.error_type in ("DataError", "ConfigError")
                    kind = DataError if bad_input else RunError
                    raise kind(f"{scenario.source}: walk-forward {result.key} "
                               f"({result.config}) failed: {result.error_line()}")
                outputs[result.key] = result.value

        inputs = _oos_inputs(scenario, oos_first)
        settings = scenario.simulation
        runs = []
        for i, (sspec, strategy) in enumerate(zip(scenario.strategy_list, strategies,
                                                  strict=True)):
            with _located(scenario, i, sspec):
                runs.append(_stitch(sspec.run_label, strategy, folds, dates, outputs, inputs,
                                    scenario, settings))
        analysts = _analyst_table(dates, outputs)
        bench = None
        if inputs.benchmark is not None:
            from reports import compute_metrics

            bench = compute_metrics(inputs.benchmark, inputs.panel.periods_per_year)
        result = WalkForwardResult(
            name=scenario.name, run_dir=target, folds=tuple(folds), fold_dates=tuple(dates),
            strategies=tuple(runs), benchmark=bench, benchmark_label=inputs.benchmark_label,
            analysts=analysts, elapsed_s=0.0, executor=ex.describe(),
            forecasts=_pooled_forecasts(outputs))
        write_walkforward(result, scenario, inputs, target, overwrite, started_at, horizon)
        discard(journal)  # published: nothing left to resume
    return WalkForwardResult(**{**result.__dict__, "elapsed_s": time.perf_counter() - started})


def _identity(scenario: Scenario, tasks: list) -> dict[str, Any]:
    """What the folds compute: the resolved scenario and every fold's dates."""
    identity = scenario_identity(scenario)
    folds = [[t.key, t.config] for t in tasks]
    return {**identity, "folds": folds, "sha256": digest([identity["sha256"], folds])}


def _oos_inputs(scenario: Scenario, first_day: str):
    """Bars, panel and benchmark of the out-of-sample span (no analysts run here)."""
    from alfred.inputs import load_inputs

    data = scenario.data.model_copy(update={"start": datetime.fromisoformat(first_day).date()})
    plain = scenario.model_copy(update={"data": data, "analysts": [], "train_until": None})
    return load_inputs(plain)


def _stitch(label: str, strategy, folds: list[Fold], dates: list[dict[str, str]],
            outputs: dict[str, dict], inputs, scenario: Scenario,
            settings: SimulationSettings) -> StrategyOOS:
    """Trade the folds in order, carrying capital; stitch returns; score each fold."""
    from engine.backtest import run_backtest
    from engine.data import align_bars
    from reports import compute_metrics

    ppy = inputs.panel.periods_per_year
    costs = settings.costs
    one_way = costs.one_way_rate
    capital = scenario.capital
    returns, equities, trades, rows = [], [], [], []
    previous_close = capital
    for fold, day in zip(folds, dates, strict=True):
        first, last = (datetime.fromisoformat(day["test_start"]).date(),
                       datetime.fromisoformat(day["test_end"]).date())
        bars = inputs.bars.filter(pl.col("ts").dt.date().is_between(first, last))
        if bars["ts"].n_unique() < 2:
            raise DataError(f"walk-forward fold {fold.index} ({first} to {last}) holds fewer "
                            "than two bars of the backtest period; lengthen walkforward.test")
        output = outputs[f"fold_{fold.index:02d}"]
        signals = output["signals"]
        result = run_backtest(align_bars(bars), signals, strategy=strategy, capital=capital,
                              periods_per_year=ppy, settings=settings)
        equity = result.equity["equity"].to_numpy()
        r = np.empty(equity.size)
        r[0] = equity[0] / previous_close - 1.0
        r[1:] = equity[1:] / equity[:-1] - 1.0
        held = result.positions.filter(pl.col("ts") == result.positions["ts"].max()) if (
            result.positions.height) else result.positions
        if held.height and held["ts"][0] != result.equity["ts"][-1]:
            held = held.clear()
        gross = float(held["value"].abs().sum()) if held.height else 0.0
        exit_cost = gross * one_way + costs.commission_fixed * held.height
        previous_close = float(equity[-1])
        capital = previous_close - exit_cost
        ts = result.returns["ts"]
        returns.append(pl.DataFrame({"ts": ts, "return": r, "fold": fold.index}))
        equities.append(result.equity.with_columns(pl.lit(fold.index).alias("fold")))
        trades.append(result.trades.with_columns(pl.lit(fold.index).alias("fold")))
        metrics = compute_metrics(pl.DataFrame({"ts": ts, "return": r}), ppy,
                                  trades=result.trades, equity=result.equity)
        bench = _fold_benchmark(inputs.benchmark, ts)
        bench_metrics = compute_metrics(bench, ppy) if bench is not None else {}
        rows.append({"fold": fold.index, **day, "bars": int(ts.len()),
                     "total_return": metrics["total_return"], "sharpe": metrics["sharpe"],
                     "max_drawdown": metrics["max_drawdown"],
                     "win_rate_periods": metrics["win_rate_periods"],
                     "win_rate_trades": metrics["win_rate_trades"],
                     "turnover": metrics["turnover"], "exit_cost": exit_cost,
                     "benchmark_return": bench_metrics.get("total_return"),
                     "benchmark_sharpe": bench_metrics.get("sharpe"),
                     # tuned hyperparameters saw this test window (allow_tuned_overlap)
                     "tuned_overlap": output.get("tuned_overlap", ""),
                     "start_equity": float(equity[0]), "end_equity": float(equity[-1])})
    stitched = pl.concat(returns)
    all_equity = pl.concat(equities)
    all_trades = pl.concat(trades)
    metrics = compute_metrics(stitched.select("ts", "return"), ppy, benchmark=inputs.benchmark,
                              trades=all_trades, equity=all_equity)
    in_sample = None
    if "in_sample" in outputs:
        result = run_backtest(inputs.panel, outputs["in_sample"]["signals"], strategy=strategy,
                              capital=scenario.capital, periods_per_year=ppy, settings=settings)
        in_sample = compute_metrics(result.returns, ppy, benchmark=inputs.benchmark,
                                    trades=result.trades, equity=result.equity)
    table = pl.DataFrame(rows)
    if not (table["tuned_overlap"] != "").any():  # the column only where a fold is marked
        table = table.drop("tuned_overlap")
    return StrategyOOS(label=label, returns=stitched, equity=all_equity, trades=all_trades,
                       folds=table, metrics=metrics, in_sample=in_sample)


def _fold_benchmark(benchmark: pl.DataFrame | None, ts: pl.Series) -> pl.DataFrame | None:
    if benchmark is None:
        return None
    part = benchmark.filter(pl.col("ts").is_in(ts.implode()))
    if part.height < 2:
        return None
    return part.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(0.0)
                             .otherwise(pl.col("return")).alias("return"))


def _pooled_forecasts(outputs: dict[str, dict]) -> dict[str, dict]:
    """Each analyst's forecast tests on its out-of-sample rows of every fold together
    (each row keeps the majority direction of its own fold's training labels)."""
    from analysts.evaluation import forecast_tests

    frames: dict[str, list[pl.DataFrame]] = {}
    horizons: dict[str, int] = {}
    marks: dict[str, str] = {}
    for key, output in sorted(outputs.items()):
        if key == "in_sample":
            continue
        for name, rows in output.get("forecast_rows", {}).items():
            frames.setdefault(name, []).append(rows)
            horizons[name] = int(output["analysts"][name]["horizon"])
            marks[name] = marks.get(name) or output["analysts"][name].get("tuned_overlap", "")
    return {name: {"rows": sum(p.height for p in parts), "horizon": horizons[name],
                   **({"tuned_overlap": marks[name]} if marks.get(name) else {}),
                   **forecast_tests(pl.concat(parts).sort("ts", "asset"), horizons[name],
                                    majority_up=True)}
            for name, parts in frames.items()}


def _analyst_table(dates: list[dict[str, str]], outputs: dict[str, dict]) -> pl.DataFrame:
    rows = []
    for key, output in sorted(outputs.items()):
        fold = -1 if key == "in_sample" else int(key.split("_")[1])
        for name, metrics in output["analysts"].items():
            rows.append({"fold": fold, "analyst": name, "fit_s": output["fit_s"],
                         "predict_s": output["predict_s"], **metrics})
    return pl.DataFrame(rows) if rows else pl.DataFrame()
