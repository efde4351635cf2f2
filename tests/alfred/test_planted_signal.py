"""The planted-signal power test (scenarios/planted_signal.yaml): with nothing planted
the walk-forward verdict finds no skill; with a clear planted signal the magnitude
regressor recovers most of the oracle's Sharpe ratio."""

from __future__ import annotations

import runpy
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("torch")

from alfred.scenario import parse_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "planted_signal.yaml"


def _run(tmp_path: Path, strength: float):
    from alfred.walkforward import run_walkforward
    from engine.synthetic import planted_signal_market

    bars, oracle = planted_signal_market(strength, n_assets=10, n_days=1500, seed=7)
    bars.write_parquet(tmp_path / "bars.parquet")
    oracle.write_parquet(tmp_path / "oracle.parquet")
    text = (SCENARIO.read_text()
            .replace("data/planted_signal.parquet", str(tmp_path / "bars.parquet"))
            .replace("data/planted_signal_oracle.parquet", str(tmp_path / "oracle.parquet")))
    scenario = parse_scenario(text, source=f"planted_{strength}.yaml", base_dir=tmp_path)
    result = run_walkforward(scenario, tmp_path / "run", executor="inline", progress=False)
    sharpe = {run.label: run.metrics["sharpe"] for run in result.strategies}
    [tests] = result.forecasts.values()
    return sharpe, tests


@pytest.mark.slow
def test_nothing_planted_means_no_skill(tmp_path):
    sharpe, tests = _run(tmp_path, 0.0)
    assert tests["verdict"] == "no evidence of skill at 5%"
    assert abs(tests["ic"]["rank_ic_t"]) < 2.5


@pytest.mark.slow
def test_a_clear_planted_signal_is_mostly_recovered(tmp_path):
    sharpe, tests = _run(tmp_path, 0.05)
    assert sharpe["oracle"] > 2.0
    assert sharpe["magnitude"] > 0.5 * sharpe["oracle"]  # most of the oracle's Sharpe
    assert tests["verdict"].startswith("skill at 5%") and "ranks assets" in tests["verdict"]
    assert tests["ic"]["rank_ic"] > 0.03


def test_the_shipped_data_matches_its_script():
    module = runpy.run_path(str(ROOT / "scenarios" / "data" / "make_planted_signal.py"))
    bars, oracle = module["build"]()
    folder = ROOT / "scenarios" / "data"
    assert pl.read_parquet(folder / "planted_signal.parquet").equals(bars)
    assert pl.read_parquet(folder / "planted_signal_oracle.parquet").equals(oracle)
