"""W4 as a full scenario: the same ``alfred.run`` path ``alfred run`` takes, stage by stage.

The tiled universe (:func:`benchmarks._large.large_universe_bars`) is written to a
parquet file and imported the way ``alfred data import --partitioned`` does (hive
partitions ``asset=/year=``) into a temporary ``ALFRED_DATA_DIR``; then
``benchmarks/scenarios/w4_large_universe.yaml`` (``k`` set to a tenth of the universe) runs
through :func:`alfred.run.run_scenario` into a temporary folder.

Stages are cut where the run announces its steps (its ``progress`` callback) and where it
calls a few functions, wrapped for the run only: ``engine.data.load_bars`` (reading the
partitioned folder), ``engine.data.align_bars`` (the panel), the momentum analyst's
``fit``/``predict``, the top-k strategy's ``plan``, the run's ``make_fingerprint`` (content
hashes of the bars and signals) and ``engine.sensitivity.cost_sensitivity`` (the report's
cost replays). Each stage's time is the sum of its
pieces and its peak RSS the highest of them (the high-water mark is reset at every cut,
without a garbage-collector pass -- the run's own garbage counts -- so a stage's peak
includes what earlier stages still hold, never an earlier peak). The cuts' own cost is
reported as ``probe_overhead_s``, outside every stage.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._probe import _status_mb

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "w4_large_universe.yaml"
DATASET = "w4_universe"


class Timeline:
    """Consecutive pieces of a run, each with its wall time and peak RSS, by stage name."""

    def __init__(self, reset_peak: Callable[[], bool]) -> None:
        self._reset_peak = reset_peak
        self.stages: dict[str, dict[str, Any]] = {}
        self.current: str | None = None
        self._start = 0.0
        self.overhead_s = 0.0  # the cuts' own cost (a gc pass and the peak reset each)
        self.cuts = 0

    def enter(self, name: str | None) -> None:
        """End the running piece (if any) and start one of stage ``name`` (None: stop)."""
        now = time.perf_counter()
        if self.current is not None:
            stage = self.stages.setdefault(self.current, {"stage": self.current, "seconds": 0.0,
                                                          "peak_rss_mb": 0.0})
            stage["seconds"] += now - self._start
            stage["peak_rss_mb"] = max(stage["peak_rss_mb"], _status_mb("VmHWM:") or 0.0)
            stage["rss_after_mb"] = _status_mb("VmRSS:")
        self._reset_peak()
        self.current, self._start = name, time.perf_counter()
        self.overhead_s += self._start - now
        self.cuts += 1

    def table(self) -> list[dict[str, Any]]:
        return list(self.stages.values())


# The run's own steps (run_scenario's progress descriptions) -> stage names.
_STEPS = (("loading data and running analysts",
           "inputs: filters, checks, signals merge, run folder"),
          ("backtest with costs", "backtest: with costs (strategy plan + engine)"),
          ("backtest without costs", "backtest: without costs (Costs.zero())"),
          ("writing report", "reports: metrics, files, tear sheet, plots"),
          ("report written", "finishing: publish the run folder"),
          ("finishing", "finishing: publish the run folder"))


def _step_stage(description: str) -> str | None:
    for text, stage in _STEPS:
        if text in description:
            return stage
    return None  # "done"


@contextlib.contextmanager
def _wrapped(timeline: Timeline, owner: Any, attr: str, stage: str,
             keep: list | None = None) -> Iterator[None]:
    """``owner.attr`` timed as ``stage`` for the block; its results appended to ``keep``."""
    original = getattr(owner, attr)

    def timed(*args: Any, **kwargs: Any) -> Any:
        outer = timeline.current
        timeline.enter(stage)
        try:
            out = original(*args, **kwargs)
        finally:
            timeline.enter(outer)
        if keep is not None and not keep:
            keep.append((args, out))
        return out

    setattr(owner, attr, timed)
    try:
        yield
    finally:
        setattr(owner, attr, original)


def scenario_dict(n_assets: int, lookback: int, skip: int) -> dict[str, Any]:
    """The W4 YAML as a dict, ``k`` a tenth of ``n_assets`` and the momentum window set."""
    import yaml

    tree = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    tree["strategy"]["config"]["k"] = max(1, n_assets // 10)
    tree["analysts"][0]["config"].update(lookback=lookback, skip=skip)
    return tree


def import_universe(bars: Any, data_dir: Path) -> Path:
    """``bars`` imported as the partitioned dataset ``w4_universe`` (``alfred data import``)."""
    from alfred.inputs import import_dataset

    raw = data_dir / "w4_bars.parquet"
    bars.write_parquet(raw)
    target, _ = import_dataset(raw, DATASET, to=data_dir, partitioned=True)
    raw.unlink()
    return target


def run_scenario_stages(tree: dict[str, Any], out: Path, reset_peak: Callable[[], bool]
                        ) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Run ``tree`` through ``alfred.run.run_scenario``; (summary, stages, captured) where
    captured holds the panel and plan the strategy planned on (first call)."""
    import alfred.run
    import engine.data
    import engine.sensitivity
    from alfred.run import run_scenario
    from analysts import MomentumAnalyst
    from strategies import get_strategy

    timeline = Timeline(reset_peak)
    plans: list = []
    strategy_class = type(get_strategy("topk_long_short", k=1))
    with contextlib.ExitStack() as stack:
        for owner, attr, stage, keep in (
                (engine.data, "load_bars", "load: partitioned parquet -> validated bars", None),
                (engine.data, "align_bars", "panel: align bars", None),
                (MomentumAnalyst, "fit", "analyst: momentum fit + predict", None),
                (MomentumAnalyst, "predict", "analyst: momentum fit + predict", None),
                (strategy_class, "plan", "strategy: top-k plan", plans),
                (alfred.run, "make_fingerprint", "fingerprint: content hash of bars + signals",
                 None),
                (engine.sensitivity, "cost_sensitivity", "reports: cost-sensitivity replays",
                 None)):
            stack.enter_context(_wrapped(timeline, owner, attr, stage, keep))
        timeline.enter("setup: scenario checks, run folder")
        summary = run_scenario(tree, out=out,
                               progress=lambda step, done, total: timeline.enter(
                                   _step_stage(step)))
        timeline.enter(None)
    args, plan = plans[0]  # plan(self, panel, signals)
    return summary, timeline.table(), {"panel": args[1], "plan": plan,
                                       "signal_rows": args[2].height,
                                       "probe_overhead_s": timeline.overhead_s,
                                       "cuts": timeline.cuts}


def run_w4_scenario(settings: dict[str, Any], stage: Callable, reset_peak: Callable[[], bool]
                    ) -> dict[str, Any]:
    """The W4 workload (see the module doc); ``stage`` times the setup and the peer.

    Checks: the run's equity equals ``run_backtest`` on the panel and plan it planned
    (bit for bit) and vectorbt's ``from_orders`` on that plan (1e-8), fills included."""
    import polars as pl

    from benchmarks import _ours
    from benchmarks._large import large_universe_bars, vbt_check

    s = settings
    stages: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="alfred-w4-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        bars = stage(stages, "data (setup, not alfred run): tiled universe as a long frame",
                     lambda: large_universe_bars(s["copies"], s["n_bars"], seed=s["seed"],
                                                 noise_sigma=s["noise_sigma"]))
        n_bar_rows, n_assets = bars.height, bars["asset"].n_unique()
        held = [bars]  # dropped once imported: the run reads the partitioned folder
        del bars
        stage(stages, "data (setup): alfred data import --partitioned",
              lambda: import_universe(held.pop(), data_dir))
        tree = scenario_dict(n_assets, s["lookback"], s["skip"])
        tree["capital"] = s["capital"]
        before = os.environ.get("ALFRED_DATA_DIR")
        os.environ["ALFRED_DATA_DIR"] = str(data_dir)
        try:
            started = time.perf_counter()
            summary, run_stages, captured = run_scenario_stages(tree, Path(tmp) / "run",
                                                                reset_peak)
            run_wall = time.perf_counter() - started
        finally:
            if before is None:
                os.environ.pop("ALFRED_DATA_DIR", None)
            else:
                os.environ["ALFRED_DATA_DIR"] = before
        stages += run_stages
        run = summary.runs[0]
        folder = run.run_dir
        equity = pl.read_parquet(folder / "equity.parquet")["equity"].to_numpy()
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        files = sorted(p.name for p in folder.iterdir())
        signal_rows, overhead = captured["signal_rows"], captured["probe_overhead_s"]
        pipeline_s = sum(st["seconds"] for st in run_stages)
        panel, plan = captured["panel"], captured["plan"]
        del captured
        again = stage(stages, "backtest again: run_backtest(panel, plan) + equity",
                      lambda: _ours.run_target_weights(panel, plan.target_weight, s["capital"]))
        n_fills = pl.read_parquet(folder / "fills.parquet").height
        checks = vbt_check(stages, panel, plan.target_weight, equity, s["capital"], n_fills)
    checks.append({"peer": "alfred (panel+plan)", "what": "equity per bar vs the run's",
                   "passed": bool(np.array_equal(_ours.equity_curve(again), equity)),
                   "max_rel_diff": 0.0, "tolerance": 0.0, "first_bad_bar": None, "note": ""})
    return {"id": "W4", "n_bars": panel.n_bars, "n_assets": panel.n_assets,
            "bar_rows": n_bar_rows, "signal_rows": signal_rows, "stages": stages,
            "checks": checks, "final_equity": run.final_equity, "run_wall_s": run_wall,
            "pipeline_s": pipeline_s, "probe_overhead_s": overhead,
            "n_fills": n_fills, "n_trades": run.n_trades, "files": files,
            "sharpe": metrics["with_costs"].get("sharpe"), "n_assets_in_data": n_assets}
