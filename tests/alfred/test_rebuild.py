"""alfred report on every folder kind: the kind is detected and report.html rebuilt from
the saved files; sweeps and train-rl folders get report.html when they are written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from alfred.cli import app
from alfred.rebuild import folder_kind, rebuild, write_train_rl_report
from alfred.scenario import parse_scenario
from engine.errors import ConfigError

DATA = ("data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM], start: 2018-01-01, "
        "end: 2020-12-31}\n"
        "analysts: [{name: momentum, config: {lookback: 21}}]\n"
        "strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, "
        "rebalance: weekly}}\n"
        "executor: {kind: inline}\n"
        "report: {tearsheet: false, plots: false}\n")


def _report(folder: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["report", str(folder)])
    return result.exit_code, result.output


def _rebuilt(folder: Path, must: tuple[str, ...]) -> str:
    page = folder / "report.html"
    first = page.read_text()
    page.unlink()
    code, output = _report(folder)
    assert code == 0, output
    again = page.read_text()
    for text in must:
        assert text in first and text in again, text
    return output


def test_sweep_folders_get_a_report_and_rebuild_it(tmp_path):
    from alfred.sweep import run_sweep

    scenario = parse_scenario("name: tiny_sweep\n" + DATA + (
        "sweep: {params: {strategy.config.k: [1, 2], costs.slippage_bps: [2, 20]}}\n"),
        source="tiny.yaml", base_dir=tmp_path)
    run_sweep(scenario, tmp_path / "sw", executor="inline", progress=False)
    assert folder_kind(tmp_path / "sw") == "sweep"
    output = _rebuilt(tmp_path / "sw", ('id="sweep-ranked"', "Parameter heat map",
                                        "Deflated Sharpe", "4 configurations"))
    assert "sweep report rebuilt" in output


def test_walkforward_folders_rebuild_their_report(tmp_path):
    from alfred.walkforward import run_walkforward

    scenario = parse_scenario("name: tiny_wf\n" + DATA + "walkforward: {train: 1y, test: 6mo}\n",
                              source="wf.yaml", base_dir=tmp_path)
    run_walkforward(scenario, tmp_path / "wf", progress=False)
    assert folder_kind(tmp_path / "wf") == "walkforward"
    output = _rebuilt(tmp_path / "wf", ("tiny_wf: topk_long_short (walk-forward OOS)",
                                        "fold"))
    assert "walkforward report rebuilt" in output


def test_stress_folders_rebuild_their_report(tmp_path):
    from alfred.stress import run_stress

    scenario = parse_scenario("name: tiny_stress\n" + DATA + (
        "stress: {generator: bootstrap, paths: 4, days: 120, calibration_start: 2018-01-01}\n"),
        source="st.yaml", base_dir=tmp_path)
    run_stress(scenario, tmp_path / "st", progress=False)
    assert folder_kind(tmp_path / "st") == "stress"
    output = _rebuilt(tmp_path / "st", ("tiny_stress: stress test", "4 paths"))
    assert "stress report rebuilt" in output


def _fake_train_rl(folder: Path) -> None:
    """The files alfred train-rl leaves: seeds' validation logs and evaluation/."""
    for seed in (0, 1):
        (folder / f"seed_{seed}").mkdir(parents=True)
        np.savez(folder / f"seed_{seed}" / "evaluations.npz",
                 timesteps=np.array([100, 200, 300]),
                 results=np.array([[0.1, 0.2], [0.3, 0.4], [0.5 + seed, 0.6]]),
                 ep_lengths=np.ones((3, 2)))
    evaluation = folder / "evaluation"
    evaluation.mkdir()
    metrics = {"sharpe": [0.5, 0.7, 0.2], "max_drawdown": [-0.1, -0.2, -0.3],
               "win_rate": [0.5, 0.6, 0.4], "win_rate_trades": [0.5, 0.5, 0.5],
               "turnover": [1.0, 2.0, 3.0], "total_return": [0.1, 0.3, 0.05],
               "cagr": [0.1, 0.3, 0.05], "volatility": [0.2, 0.2, 0.2]}
    pl.DataFrame({"strategy": ["ppo", "ppo", "equal_weight"], "seed": [0, 1, None],
                  **metrics}).write_csv(evaluation / "runs.csv")
    ts = pl.datetime_range(pl.datetime(2021, 1, 1), pl.datetime(2021, 1, 10), "1d",
                           eager=True)
    pl.concat([pl.DataFrame({"ts": ts, "equity": 100.0 + np.arange(10) * k,
                             "strategy": name, "seed": seed},
                            schema_overrides={"seed": pl.Int64})
               for name, seed, k in (("ppo", 0, 1.0), ("ppo", 1, 2.0),
                                     ("equal_weight", None, 0.5))]
              ).write_parquet(evaluation / "equity.parquet")
    (folder / "config.yaml").write_text("name: rl_tiny\n")
    (folder / ".alfred-run").write_text(json.dumps({"kind": "train-rl", "alfred": 1}))


def test_train_rl_report_from_the_saved_files(tmp_path):
    _fake_train_rl(tmp_path / "rl")
    assert folder_kind(tmp_path / "rl") == "train-rl"
    page = write_train_rl_report(tmp_path / "rl").read_text()
    for text in ('id="train-rl-curves"', 'id="train-rl-seeds"', 'id="train-rl-test"',
                 "ppo (mean of 2 seeds)", "equal_weight", "2021-01-01 to 2021-01-10",
                 "Win rate (per bar)"):
        assert text in page, text
    kind, _ = rebuild(tmp_path / "rl")
    assert kind == "train-rl"


def test_a_folder_without_reports_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no report Alfred can rebuild"):
        folder_kind(tmp_path)
    code, output = _report(tmp_path)
    assert code == 2 and "no report Alfred can rebuild" in " ".join(output.split())
