"""Running a trained policy over bars, and comparing it with classic strategies.

``rollout`` steps a :class:`PortfolioEnv` with deterministic actions and returns the
weights it sent, so the policy becomes a plain :class:`~engine.plan.WeightPlan` that
``run_backtest`` executes -- the policy's own simulation and the backtest are the same
computation, and the report's numbers come from the engine like any other strategy's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.errors import RunError
from engine.panel import Panel
from engine.plan import WeightPlan
from portfolio._env import PortfolioEnv

# metric name in reports.metrics -> column of the comparison table
REPORTED_METRICS: dict[str, str] = {
    "sharpe": "sharpe",
    "max_drawdown": "max_drawdown",
    "win_rate_periods": "win_rate",
    "win_rate_trades": "win_rate_trades",
    "turnover": "turnover",
    "total_return": "total_return",
    "cagr": "cagr",
    "volatility": "volatility",
}

Policy = Callable[[int, np.ndarray], np.ndarray]  # (bar, observation) -> action


def model_policy(model) -> Policy:
    """An SB3 agent as a deterministic policy."""

    def act(bar: int, obs: np.ndarray) -> np.ndarray:
        action, _ = model.predict(obs, deterministic=True)
        return action

    return act


def rollout(env: PortfolioEnv, policy: Policy) -> tuple[Panel, WeightPlan, np.ndarray]:
    """Run one whole episode with ``policy``; its bars, the weights sent and the equity.

    The env must be built with ``record_weights=True`` and ``episode_length=None``. An
    episode that ends early (the book went bankrupt) is padded with "no instruction".
    """
    obs, _ = env.reset()
    while True:
        obs, _, terminated, truncated, _ = env.step(policy(env.bar, obs))
        if terminated or truncated:
            break
    panel, plan = env.episode_plan()
    equity = env.equity_curve()
    if env.bar < env.last_bar:  # bankrupt: hold (nothing more to trade) to the span's end
        from portfolio._features import slice_panel

        full = slice_panel(env.panel, env.first_bar, env.last_bar)
        weights = np.full((full.n_bars, full.n_assets), np.nan)
        weights[: plan.target_weight.shape[0]] = plan.target_weight
        panel, plan = full, WeightPlan(weights)
    return panel, plan, equity


def backtest_rollout(env: PortfolioEnv, policy: Policy):
    """Roll the policy out and replay its weights through ``run_backtest``.

    Returns the BacktestResult; raises RunError if the replay's equity differs from the
    env's own (they share the step kernel, so any difference is a bug, not noise).
    """
    from engine.backtest import run_backtest

    panel, plan, equity = rollout(env, policy)
    result = run_backtest(panel, plan, **env.settings.backtest_kwargs())
    replay = result.records.equity[: equity.size]
    if not np.array_equal(replay, equity):
        worst = int(np.argmax(np.abs(replay - equity)))
        raise RunError(f"the backtest of the policy's weights drifted from the env at bar "
                       f"{worst} ({replay[worst]!r} vs {equity[worst]!r}); please report this")
    return result


@dataclass(frozen=True)
class Comparison:
    runs: pl.DataFrame  # strategy, seed (null for deterministic baselines), metrics...
    summary: pl.DataFrame  # strategy, n, <metric>_mean, <metric>_std, <metric>_min, _max

    def to_markdown(self, title: str = "RL manager vs baselines (test span)") -> str:
        cols = list(REPORTED_METRICS.values())
        lines = [f"# {title}", "", "Mean ± standard deviation across seeds (ddof=1; a single "
                 "run shows ± 0). Win rate: share of bars with a positive return "
                 "(`win_rate_trades`: of closed round trips). Turnover: traded notional / "
                 "mean equity, annualised.", "",
                 "| strategy | n | " + " | ".join(cols) + " |",
                 "|---|---|" + "---|" * len(cols)]
        for row in self.summary.iter_rows(named=True):
            cells = [_pm(row[f"{c}_mean"], row[f"{c}_std"]) for c in cols]
            lines.append(f"| {row['strategy']} | {row['n']} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None or not math.isfinite(mean):
        return "n/a"
    spread = 0.0 if std is None or not math.isfinite(std) else std
    return f"{mean:.3f} ± {spread:.3f}"


def compare(rows: Sequence[dict]) -> Comparison:
    """Per-run rows -> the runs table and the per-strategy mean / spread table."""
    runs = pl.DataFrame(list(rows), schema_overrides={"seed": pl.Int64})
    cols = list(REPORTED_METRICS.values())
    aggs = [pl.len().alias("n")]
    for c in cols:
        value = pl.col(c).fill_nan(None)
        aggs += [value.mean().alias(f"{c}_mean"),
                 pl.when(pl.len() > 1).then(value.std(ddof=1)).otherwise(0.0).alias(f"{c}_std"),
                 value.min().alias(f"{c}_min"), value.max().alias(f"{c}_max")]
    order = list(dict.fromkeys(runs["strategy"].to_list()))
    summary = (runs.group_by("strategy", maintain_order=True).agg(aggs)
               .with_columns(pl.col("strategy").replace_strict(
                   {s: i for i, s in enumerate(order)}, return_dtype=pl.Int64).alias("_o"))
               .sort("_o").drop("_o"))
    return Comparison(runs=runs, summary=summary)
