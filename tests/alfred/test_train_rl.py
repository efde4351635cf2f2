"""``alfred train-rl``: a scenario trained over seeds, evaluated against baselines, resumed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
import yaml
from typer.testing import CliRunner

from alfred.cli.rl import train_rl
from alfred.train_rl import load_rl_scenario, parse_rl_scenario, train_rl_scenario
from engine.errors import ConfigError
from portfolio import RLStrategy
from reports.metrics import compute_metrics

ROOT = Path(__file__).resolve().parents[2]
TINY = """
name: tiny_rl
data: {source: sp500_stocks, assets: [AAPL, MSFT, XOM, JPM], start: 2017-01-01,
       end: 2019-12-31}
analysts: [{name: momentum, config: {lookback: 20}}]
strategies:
  - {label: topk, name: topk_long_short, config: {k: 1, rebalance: monthly}}
  - {name: equal_weight}
costs: {commission_bps: 1, slippage_bps: 1}
rl:
  env: {signals: [pred_return, prob_up], episode_length: 60}
  agent:
    algorithm: ppo
    total_timesteps: 64
    hyperparameters: {n_steps: 32, batch_size: 16, n_epochs: 1}
    policy_kwargs: {net_arch: [16]}
    device: cpu
    torch_threads: 1
  seeds: [0, 1]
  train: {start: 2017-01-01, end: 2018-06-30}
  validation: {start: 2018-07-01, end: 2018-12-31}
  test: {start: 2019-01-01, end: 2019-12-31}
  eval_freq: 32
  checkpoint_freq: 32
"""


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("train-rl")(train_rl)

    @app.callback()
    def main() -> None:
        """alfred (test mount)."""

    return app


def _write(folder: Path, text: str = TINY) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path


def test_train_rl_end_to_end_and_resume(tmp_path):
    scenario = _write(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(_app(), ["train-rl", str(scenario), "--out", str(out), "-q"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "topk" in result.output and "equal_weight" in result.output

    assert load_rl_scenario(out / "config.yaml").rl.seeds == [0, 1]
    for seed in (0, 1):
        assert (out / f"seed_{seed}" / "policy.json").is_file()
        assert (out / f"seed_{seed}" / "best_model.zip").is_file()
    runs = pl.read_csv(out / "evaluation" / "runs.csv")
    assert runs["strategy"].to_list() == ["rl", "rl", "topk", "equal_weight"]
    summary = pl.read_csv(out / "evaluation" / "summary.csv")
    rl = summary.filter(pl.col("strategy") == "rl").row(0, named=True)
    sharpes = runs.filter(pl.col("strategy") == "rl")["sharpe"].to_numpy()
    assert rl["n"] == 2 and rl["sharpe_mean"] == pytest.approx(sharpes.mean())
    assert rl["sharpe_std"] == pytest.approx(np.std(sharpes, ddof=1))
    assert summary.filter(pl.col("strategy") == "topk")["sharpe_std"][0] == 0.0
    assert "| rl | 2 |" in (out / "evaluation" / "report.md").read_text()

    # the table's figures are the engine's equity curves run through reports.metrics
    curves = pl.read_parquet(out / "evaluation" / "equity.parquet")
    for strategy, seed in (("rl", 1), ("equal_weight", None)):
        eq = curves.filter((pl.col("strategy") == strategy) & (
            pl.col("seed").is_null() if seed is None else pl.col("seed") == seed))["equity"]
        eq = eq.to_numpy()
        returns = np.concatenate(([eq[0] / 1_000_000.0 - 1], eq[1:] / eq[:-1] - 1))
        expected = compute_metrics(returns, 252.0)["sharpe"]
        got = runs.filter((pl.col("strategy") == strategy) & (
            pl.col("seed").is_null() if seed is None else pl.col("seed") == seed))["sharpe"][0]
        assert math.isclose(got, expected, rel_tol=1e-9)
    assert curves["ts"].min().year == 2019 and curves["ts"].max().year == 2019

    summary2 = train_rl_scenario(scenario, out=out, resume=True, total_timesteps=128)
    assert [s.num_timesteps for s in summary2.seeds] == [128, 128]

    again = CliRunner().invoke(_app(), ["train-rl", str(scenario), "--out", str(out), "-q"])
    assert again.exit_code == 2 and "already exists" in " ".join(again.output.split())


@pytest.mark.parametrize(("edit", "message"), [
    (("algorithm: ppo", "algorithm: ppo2"), r"rl\.agent\.algorithm \(line \d+\).*did you mean"),
    (("end: 2018-06-30}", "end: 2018-08-30}"), "must not overlap"),
    (("rl:\n", "fill: same_close\nunsafe_same_close: true\nrl:\n"), "same_close"),
    (("n_steps: 32", "n_step: 32"), "did you mean 'n_steps'"),
    (("test: {start: 2019-01-01, end: 2019-12-31}", "test: {start: 2019-01-01, end: 2020-12-31}"),
     r"rl\.test \(2019-01-01\.\.2020-12-31\) reaches outside"),
    (("rl:\n", "train_until: 2017-03-31\nrl:\n"), r"after train_until 2017-03-31"),
    (("episode_length: 60", "episode_length: 600"), "episode_length 600 is longer"),
    (("signals: [pred_return, prob_up]", "signals: [pred_returns]"), "pred_returns"),
    (("seeds: [0, 1]", "seeds: [0, 0]"), "more than once"),
])
def test_bad_scenarios_fail_before_anything_is_written(tmp_path, edit, message):
    scenario = _write(tmp_path, TINY.replace(*edit))
    out = tmp_path / "run"
    result = CliRunner().invoke(_app(), ["train-rl", str(scenario), "--out", str(out)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    import re

    assert re.search(message, " ".join(result.output.split())), result.output
    assert not out.exists()


def test_scenario_without_rl_section_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no 'rl:' section"):
        parse_rl_scenario(TINY.split("rl:\n")[0], source="x.yaml")
    result = CliRunner().invoke(_app(), ["train-rl", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "not found" in " ".join(result.output.split())


def test_the_bundled_rl_scenario_is_valid():
    sc = load_rl_scenario(ROOT / "scenarios" / "rl_portfolio.yaml")
    assert sc.rl.agent.algorithm == "ppo" and len(sc.rl.seeds) == 3
    names = [s.name for s in sc.strategy_list]
    assert names == ["rl", "topk_long_short", "equal_weight", "buy_and_hold"]
    strategy = RLStrategy(**sc.strategy_list[0].config)
    assert strategy.config.env == sc.rl.env  # one env definition (a YAML anchor) for both
    raw = yaml.safe_load((ROOT / "scenarios" / "rl_portfolio.yaml").read_text())
    assert raw["rl"]["agent"]["total_timesteps"] >= 10_000


@pytest.mark.slow  # trains the magnitude analyst first
def test_the_bundled_rl_scenario_runs_with_a_tiny_budget(tmp_path):
    summary = train_rl_scenario(ROOT / "scenarios" / "rl_portfolio.yaml",
                                out=tmp_path / "run", seeds=[0], total_timesteps=512)
    labels = summary.comparison.summary["strategy"].to_list()
    assert labels == ["rl", "topk", "equal_weight", "buy_and_hold"]
    assert summary.comparison.runs["sharpe"].is_finite().all()


@pytest.mark.slow
def test_seeds_trained_in_worker_processes_match_inline(tmp_path):
    scenario = _write(tmp_path)
    inline = train_rl_scenario(scenario, out=tmp_path / "inline")
    local = train_rl_scenario(scenario, out=tmp_path / "local", executor="local", workers=2)
    a = pl.read_csv(tmp_path / "inline" / "evaluation" / "runs.csv")
    b = pl.read_csv(tmp_path / "local" / "evaluation" / "runs.csv")
    assert a.equals(b)  # seeds are independent: same policies whichever process trained them
    assert [r.seed for r in local.seeds] == [0, 1]
    assert [r.seed for r in inline.seeds] == [0, 1]
    assert all(r.model_path is not None and r.model_path.is_file() for r in local.seeds)
