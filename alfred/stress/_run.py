"""``alfred stress``: a scenario's analysts and strategies on N synthetic markets.

How a run goes:

1. The generator learns from the scenario's own data: every bar of ``data.assets`` up to
   ``data.end`` (history before ``data.start`` included), cut to
   ``stress.calibration_start`` .. ``stress.calibration_end`` when given. ``regimes``
   calibrates a regime-switching model (:func:`alfred.stress.calibrate`) and simulates it;
   ``bootstrap`` resamples blocks of the historical daily returns. All paths are made
   once, in this process, from ``stress.seed`` (default: the scenario's ``seed``); path
   ``i`` depends only on (seed, i). Every shock of ``stress.shocks`` is then applied to
   every path, so with the same seed the bars before a shock are those of the unshocked
   run.
2. Each path is one executor task: the analysts and strategies run on its bars.

   * With a trainable analyst (one that learns, :class:`analysts.TrainableAnalyst`),
     every analyst is fit on the first third of the path (``until`` = the bar at index
     ``days // 3``) and the strategies trade the remaining two thirds (the bars after
     it), so no decision uses an in-sample forecast.
   * With only price analysts (momentum, ...), which learn nothing, or no analysts at
     all, the strategies trade the whole path; signals start once an analyst's look-back
     is filled, so the first bars may be spent in cash.

   Costs, fills, leverage and capital are the scenario's.
3. The benchmark is an equal-weight book of the path's assets **rebalanced every bar**
   (each bar's return is the mean of the assets' close-to-close returns; no costs),
   over the same bars the strategies trade, flat on the first bar as they are.
4. Per (path, strategy) the report keeps Sharpe, max drawdown, CAGR, total return,
   volatility and the share of winning bars, with the benchmark's figures alongside;
   a strategy *beats the benchmark* on a path when its total return is higher. The
   quantiles of each metric across paths (``stress.quantiles``, linear interpolation as
   :func:`numpy.quantile`, NaN ignored) and the mean make the quantile table.
5. With the ``regimes`` generator, a per-regime breakdown: each strategy's (and the
   benchmark's) per-bar returns on the bars labelled with a regime, pooled over all
   paths; the Sharpe and the mean annualised return (mean per-bar return x bars per
   year) of that pool, and in how many paths the regime occurs on a traded bar.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from alfred.resume import digest, discard, resume_folder, scenario_identity
from alfred.scenario import Scenario, scenario_to_dict
from engine.errors import ConfigError, DataError, RunError

METRICS = ("sharpe", "max_drawdown", "cagr", "total_return", "volatility", "win_rate_periods")
"""Per-path metrics, for each strategy and for the benchmark (``benchmark_<metric>``)."""

BENCHMARK = "benchmark"
"""The label of the equal-weight benchmark in the quantile and regime tables."""

_EXAMPLE = ("stress:\n  generator: regimes     # or bootstrap\n  paths: 200\n  days: 756\n"
            "  shocks:\n    - {kind: crash, at: 300, days: 10, drop: 0.3}")


@dataclass(frozen=True)
class StressResult:
    """A finished stress run.

    ``paths``: one row per (path, strategy): ``path, strategy``, the metrics of
    :data:`METRICS`, the same for the benchmark as ``benchmark_<metric>``, and
    ``beats_benchmark`` (strategy total return above the benchmark's).
    ``quantiles``: one row per (strategy or ``benchmark``, metric): ``q05 .. q95`` (the
    spec's quantiles) and ``mean``. ``regimes``: the per-regime breakdown (regimes
    generator only, else None). ``returns``: per-bar returns, ``path, strategy, ts,
    return`` (the benchmark under ``strategy = "benchmark"``).
    """

    name: str
    run_dir: Path
    paths: pl.DataFrame
    quantiles: pl.DataFrame
    regimes: pl.DataFrame | None
    returns: pl.DataFrame
    generator: str
    seed: int
    n_paths: int
    days: int
    shocks: tuple[dict[str, Any], ...]
    elapsed_s: float
    executor: str

    def beats(self) -> dict[str, dict[str, Any]]:
        """Per strategy: paths where it beat the benchmark, of how many, and the share."""
        out = {}
        for label in self.paths["strategy"].unique(maintain_order=True).to_list():
            rows = self.paths.filter(pl.col("strategy") == label)
            beat = int(rows["beats_benchmark"].sum())
            out[label] = {"beat": beat, "paths": rows.height,
                          "share": beat / rows.height if rows.height else None}
        return out


def quantile_column(q: float) -> str:
    """``0.05 -> "q05"``, ``0.5 -> "q50"``, ``0.025 -> "q02.5"``."""
    pct = q * 100.0
    return f"q{round(pct):02d}" if abs(pct - round(pct)) < 1e-9 else f"q{pct:04.1f}"


def run_stress(scenario: str | os.PathLike[str] | Scenario,
               out: str | os.PathLike[str] | None = None, *, paths: int | None = None,
               executor: Any = None, workers: int | str | None = None,
               overwrite: bool = False, progress: bool = True) -> StressResult:
    """Run the scenario's strategies on synthetic paths and write the run folder.

    ``paths`` overrides ``stress.paths`` (the CLI's ``--paths``); ``executor`` and
    ``workers`` override the scenario's ``executor:`` section. See the module docstring
    for what is run and ``alfred.stress._report`` for the folder.
    """
    from alfred.run import _build_strategies, _target_dir, as_scenario
    from alfred.stress._report import write_stress
    from engine.executor import Task, make_executor

    started = time.perf_counter()
    started_at = datetime.now(UTC)
    scenario = as_scenario(scenario)  # a path, a dict or a Scenario
    spec = _check(scenario, paths)
    n_paths = spec.paths if paths is None else int(paths)
    seed = spec.seed if spec.seed is not None else scenario.seed
    _build_strategies(scenario)  # a bad strategy config fails here, not in every task
    _check_analysts(scenario)
    target = _target_dir(scenario, out, overwrite, started_at)
    synthetic = generate_paths(scenario, n_paths, seed)

    tree = scenario_to_dict(scenario)
    base_dir = str(scenario.base_dir)
    tasks = [Task(key=f"path_{p.path:04d}", fn=path_task, config={"path": p.path, "seed": seed},
                  args=(tree, base_dir, p.bars, p.regimes, p.path)) for p in synthetic]
    ex = make_executor(executor if executor is not None else scenario.executor,
                       workers=workers)
    # a killed run resumes: finished paths wait in .<name>.resume beside the target
    identity = scenario_identity(scenario)
    identity = {**identity, "paths": n_paths, "seed": seed,
                "sha256": digest([identity["sha256"], n_paths, seed])}
    with resume_folder(target, identity, "stress") as journal:
        outputs = []
        with ex:
            for result in ex.run(tasks, progress="stress paths" if progress else None,
                                 journal=journal):
                if not result.ok:
                    bad_input = result.error_type in ("DataError", "ConfigError")
                    hint = (" (a path holds stress.days bars, and a trainable analyst is fit "
                            "on its first third only: lengthen stress.days if that is too "
                            "short)" if bad_input else "")
                    raise (DataError if bad_input else RunError)(
                        f"{scenario.source}: stress {result.key} (seed {seed}) failed: "
                        f"{result.error_line()}{hint}")
                outputs.append(result.value)

        table = _paths_table(outputs)
        returns = pl.concat([o["returns"] for o in outputs])
        labels = [s.run_label for s in scenario.strategy_list]
        quantiles = quantile_table(table, labels, spec.quantiles)
        regimes = (regime_table(outputs, labels, outputs[0]["ppy"])
                   if spec.generator == "regimes" else None)
        result = StressResult(name=scenario.name, run_dir=target, paths=table,
                              quantiles=quantiles, regimes=regimes, returns=returns,
                              generator=spec.generator, seed=seed, n_paths=n_paths,
                              days=spec.days, shocks=tuple(s.arguments() for s in spec.shocks),
                              elapsed_s=0.0, executor=ex.describe())
        write_stress(result, scenario, target, overwrite, started_at)
        discard(journal)  # published: nothing left to resume
    return StressResult(**{**result.__dict__, "elapsed_s": time.perf_counter() - started})


def _check(scenario: Scenario, paths: int | None):
    spec = scenario.stress
    if spec is None:
        raise ConfigError(f"{scenario.source} has no stress: section; add one, e.g.\n"
                          f"{_EXAMPLE}")
    if paths is not None and (isinstance(paths, bool) or not isinstance(paths, int)
                              or paths < 1):
        raise ConfigError(f"--paths must be at least 1, got {paths}")
    return spec


def _check_analysts(scenario: Scenario) -> None:
    from alfred.inputs import build_analysts

    build_analysts(scenario)  # errors name the scenario key


def _calibration_bars(scenario: Scenario) -> tuple[pl.DataFrame, list[str]]:
    """The history the generator learns from, and its assets."""
    from alfred.walkforward import load_history

    spec = scenario.stress
    try:
        _, history = load_history(scenario)
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{scenario.source}: data: {exc}") from None
    day = pl.col("ts").dt.date()
    window = history
    if spec.calibration_start is not None:
        window = window.filter(day >= spec.calibration_start)
    if spec.calibration_end is not None:
        window = window.filter(day <= spec.calibration_end)
    if window["ts"].n_unique() < 3:
        raise DataError(
            f"{scenario.source}: stress: the calibration window ({spec.calibration_start or 'start'}"
            f" to {spec.calibration_end or scenario.data.end or 'end'}) holds "
            f"{window['ts'].n_unique()} bars of the data ({history['ts'].min()} to "
            f"{history['ts'].max()}); move stress.calibration_start/calibration_end inside it")
    assets = sorted(window["asset"].unique().to_list())
    return window, assets


def generate_paths(scenario: Scenario, n_paths: int, seed: int) -> list:
    """The scenario's synthetic paths, shocks applied (see the module docstring)."""
    from engine.synthetic import apply_shocks, block_bootstrap, calibrate, simulate_regimes

    spec = scenario.stress
    bars, assets = _calibration_bars(scenario)
    try:
        if spec.generator == "regimes":
            model = calibrate(bars, assets=assets)
            made = simulate_regimes(model, spec.days, n_paths, seed=seed, start=spec.start)
        else:
            made = block_bootstrap(bars, spec.days, n_paths, seed=seed,
                                   mean_block=spec.mean_block, assets=assets, start=spec.start)
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{scenario.source}: stress ({spec.generator}): {exc}") from None
    if not spec.shocks:
        return made
    shocks = [s.arguments() for s in spec.shocks]
    try:
        return [apply_shocks(p, shocks) for p in made]
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"{scenario.source}: stress.shocks: {exc}") from None


# --------------------------------------------------------------------------- one path


def path_task(tree: dict[str, Any], base_dir: str, bars: pl.DataFrame,
              regimes: pl.DataFrame, index: int) -> dict[str, Any]:
    """Executor task: every strategy of the scenario on one synthetic path."""
    from engine.executor import apply_worker_threads

    apply_worker_threads()
    scenario = Scenario.model_validate(tree).located(Path(base_dir), "stress path")
    return run_path(scenario, bars, regimes, index)


def run_path(scenario: Scenario, bars: pl.DataFrame, regimes: pl.DataFrame,
             index: int) -> dict[str, Any]:
    """Metrics and per-bar returns of each strategy and the benchmark on one path."""
    from alfred.inputs import build_analysts, merge_signals
    from alfred.run import _build_strategies
    from analysts import TrainableAnalyst
    from engine.backtest import run_backtest
    from engine.data import align_bars
    from reports import compute_metrics

    bars = bars.sort("ts", "asset")
    stamps = bars["ts"].unique().sort()
    analysts = build_analysts(scenario)
    trained = any(isinstance(a, TrainableAnalyst) for a in analysts)
    if trained:
        until = stamps[len(stamps) // 3]
        traded = bars.filter(pl.col("ts") > until)
    else:
        until, traded = stamps[0], bars
    first, last = traded["ts"].min(), traded["ts"].max()
    signals = None
    if analysts:
        frames = []
        for analyst in analysts:
            analyst.fit(bars.filter(pl.col("ts") <= until), until=until)
            frame = analyst.predict(bars, start=first, end=last)
            if frame.height == 0:
                raise DataError(f"analyst {analyst.name!r} produced no signal on a synthetic "
                                f"path of {len(stamps)} bars; lengthen stress.days past its "
                                "look-back")
            frames.append(frame)
        signals = merge_signals(frames)
    panel = align_bars(traded)
    ppy = panel.periods_per_year
    settings = scenario.simulation
    rows, returns = [], []
    bench = benchmark_returns(traded)
    bench_metrics = compute_metrics(bench, ppy)
    for spec, strategy in zip(scenario.strategy_list, _build_strategies(scenario), strict=True):
        result = run_backtest(panel, signals, strategy=strategy, capital=scenario.capital,
                              periods_per_year=ppy, settings=settings)
        metrics = compute_metrics(result.returns, ppy, trades=result.trades,
                                  equity=result.equity)
        row = {"path": index, "strategy": spec.run_label}
        row.update({m: float(metrics[m]) for m in METRICS})
        row.update({f"benchmark_{m}": float(bench_metrics[m]) for m in METRICS})
        row["beats_benchmark"] = bool(metrics["total_return"] > bench_metrics["total_return"])
        rows.append(row)
        returns.append(result.returns.select("ts", "return").with_columns(
            pl.lit(index, pl.Int64).alias("path"), pl.lit(spec.run_label).alias("strategy")))
    returns.append(bench.with_columns(pl.lit(index, pl.Int64).alias("path"),
                                      pl.lit(BENCHMARK).alias("strategy")))
    frame = pl.concat([r.select("path", "strategy", pl.col("ts").cast(pl.Datetime("ns")),
                                pl.col("return").cast(pl.Float64)) for r in returns])
    return {"rows": rows, "returns": frame, "regimes": regimes, "ppy": ppy}


def benchmark_returns(bars: pl.DataFrame) -> pl.DataFrame:
    """Equal weight over the assets, rebalanced every bar, no costs; 0 on the first bar."""
    per_asset = bars.sort("ts").select(
        "ts", (pl.col("close") / pl.col("close").shift(1).over("asset") - 1.0).alias("r"))
    mean = per_asset.group_by("ts").agg(pl.col("r").mean()).sort("ts")
    r = mean["r"].fill_null(0.0).to_numpy().copy()
    r[0] = 0.0
    return pl.DataFrame({"ts": mean["ts"], "return": r})


# --------------------------------------------------------------------------- tables


def _paths_table(outputs: list[dict[str, Any]]) -> pl.DataFrame:
    rows = [row for output in outputs for row in output["rows"]]
    return pl.DataFrame(rows).sort("path", maintain_order=True)


def quantile_table(paths: pl.DataFrame, labels: list[str],
                   quantiles: list[float]) -> pl.DataFrame:
    """Quantiles (NaN ignored) and mean of each metric across paths, per strategy and for
    the benchmark (one value per path)."""
    series: list[tuple[str, str, np.ndarray]] = []
    for label in labels:
        rows = paths.filter(pl.col("strategy") == label)
        series += [(label, m, rows[m].to_numpy().astype(float)) for m in METRICS]
    first = paths.filter(pl.col("strategy") == labels[0])
    series += [(BENCHMARK, m, first[f"benchmark_{m}"].to_numpy().astype(float))
               for m in METRICS]
    out = []
    for label, metric, values in series:
        finite = values[np.isfinite(values)]
        row: dict[str, Any] = {"strategy": label, "metric": metric}
        for q in quantiles:
            row[quantile_column(q)] = float(np.quantile(finite, q)) if finite.size else math.nan
        row["mean"] = float(finite.mean()) if finite.size else math.nan
        row["paths"] = int(finite.size)
        out.append(row)
    return pl.DataFrame(out)


def regime_table(outputs: list[dict[str, Any]], labels: list[str], ppy: float) -> pl.DataFrame:
    """Per regime and strategy (and benchmark): returns pooled over paths on that regime's
    bars; Sharpe and mean annualised return of the pool, paths where it occurs."""
    from engine.synthetic import REGIME_NAMES

    pooled = []
    for output in outputs:
        pooled.append(output["returns"].join(
            output["regimes"].select(pl.col("ts").cast(pl.Datetime("ns")), "regime"),
            on="ts", how="left"))
    frame = pl.concat(pooled)
    rows = []
    for regime in REGIME_NAMES:
        part = frame.filter(pl.col("regime") == regime)
        for label in [*labels, BENCHMARK]:
            own = part.filter(pl.col("strategy") == label)
            r = own["return"].to_numpy().astype(float)
            sd = float(r.std(ddof=1)) if r.size > 1 else math.nan
            rows.append({
                "regime": regime, "strategy": label, "paths": int(own["path"].n_unique()),
                "bars": int(r.size),
                "sharpe": float(r.mean() / sd * math.sqrt(ppy)) if sd and sd > 0 else math.nan,
                "mean_return_ann": float(r.mean() * ppy) if r.size else math.nan,
            })
    return pl.DataFrame(rows)
