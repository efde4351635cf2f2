"""alfred stress: strategies on synthetic paths, the quantile table, bad input, the folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from alfred.cli.stress import stress_command
from alfred.scenario import parse_scenario
from alfred.stress import run_stress
from engine.errors import ConfigError

_BASE = """
name: stress_small
data: {{source: sp500_stocks, assets: [AAPL, MSFT, JPM, XOM], start: 2010-01-01,
        end: 2020-12-31}}
analysts: [{{name: momentum, config: {{lookback: 63, skip: 5}}}}]
strategies:
  - {{label: topk, name: topk_long_short, config: {{k: 1, rank_by: pred_return,
      rebalance: monthly}}}}
  - {{label: ew, name: equal_weight, config: {{rebalance: monthly}}}}
costs: {{commission_bps: 1, slippage_bps: 2, half_spread_bps: 1}}
seed: 3
executor: {{kind: inline}}
report: {{plots: {plots}}}
{stress}
"""
_STRESS = ("stress: {{generator: {generator}, paths: 6, days: 300, calibration_start: "
           "2010-01-01{extra}}}")
_CRASH = ", shocks: [{kind: crash, at: 150, days: 5, drop: 0.3}]"


def _text(*, seed: int | None = None, shocks: str = "", plots: bool = False,
          generator: str = "regimes", stress: bool = True) -> str:
    extra = shocks + (f", seed: {seed}" if seed is not None else "")
    section = _STRESS.format(generator=generator, extra=extra) if stress else ""
    return _BASE.format(plots=str(plots).lower(), stress=section)


def _scenario(**kwargs):
    return parse_scenario(_text(**kwargs), source="x.yaml")


def _run(tmp_path: Path, name: str, **kwargs):
    options = {k: kwargs.pop(k) for k in ("executor", "workers", "paths") if k in kwargs}
    return run_stress(_scenario(**kwargs), tmp_path / name, progress=False, **options)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("stress"), "base", plots=True)


def _cli(args: list[str]):
    app = typer.Typer()
    app.command()(stress_command)
    return CliRunner().invoke(app, args, env={"COLUMNS": "80"})


def test_one_row_per_path_and_strategy(base):
    table = base.paths
    assert table.height == 6 * 2
    assert table.select("path", "strategy").unique().height == table.height
    assert sorted(table["path"].unique().to_list()) == list(range(6))
    assert set(table["strategy"]) == {"topk", "ew"}
    for column in ("sharpe", "max_drawdown", "cagr", "benchmark_sharpe",
                   "benchmark_max_drawdown", "benchmark_cagr", "beats_benchmark"):
        assert column in table.columns
    assert table["beats_benchmark"].to_list() == (
        table["total_return"] > table["benchmark_total_return"]).to_list()
    # the benchmark is one book per path, the same whichever strategy row carries it
    per_path = table.group_by("path").agg(pl.col("benchmark_sharpe").n_unique())
    assert per_path["benchmark_sharpe"].max() == 1


def test_quantile_median_is_numpys_median_of_the_paths(base):
    for label in ("topk", "ew"):
        sharpe = base.paths.filter(pl.col("strategy") == label)["sharpe"].to_numpy()
        row = base.quantiles.filter((pl.col("strategy") == label)
                                    & (pl.col("metric") == "sharpe"))
        assert row["q50"][0] == pytest.approx(float(np.median(sharpe)), abs=1e-12)
        assert row["q05"][0] <= row["q50"][0] <= row["q95"][0]
    bench = base.quantiles.filter((pl.col("strategy") == "benchmark")
                                  & (pl.col("metric") == "max_drawdown"))
    first = base.paths.filter(pl.col("strategy") == "topk")["benchmark_max_drawdown"]
    assert bench["q50"][0] == pytest.approx(float(np.median(first.to_numpy())), abs=1e-12)


def test_regime_breakdown_covers_the_four_regimes(base):
    regimes = base.regimes
    assert set(regimes["regime"]) == {"bull", "bear", "sideways", "high_vol"}
    assert set(regimes["strategy"]) == {"topk", "ew", "benchmark"}
    assert regimes["paths"].max() <= 6
    # every traded bar lies in exactly one regime
    traded = base.returns.filter(pl.col("strategy") == "topk").height
    assert regimes.filter(pl.col("strategy") == "topk")["bars"].sum() == traded


def test_same_seed_same_paths_other_seed_other_paths(base, tmp_path):
    again = _run(tmp_path, "again")
    assert again.paths.equals(base.paths)
    other = _run(tmp_path, "other", seed=4)
    assert other.seed == 4 and base.seed == 3  # default: the scenario's seed
    assert not other.paths.equals(base.paths)


def test_local_executor_gives_the_inline_numbers(base, tmp_path):
    local = _run(tmp_path, "local", executor="local", workers=2)
    assert local.executor.startswith("local (2 workers")
    assert local.paths.equals(base.paths)
    assert local.quantiles.equals(base.quantiles)


def test_a_crash_lowers_the_median_return_and_leaves_earlier_bars_alone(base, tmp_path):
    crashed = _run(tmp_path, "crash", shocks=_CRASH)
    before = base.returns["ts"].unique().sort()[150]
    same = base.returns.filter(pl.col("ts") < before)
    assert crashed.returns.filter(pl.col("ts") < before).equals(same)
    # long-only books fall with the market; the long/short top-k is about market-neutral
    # (a crash of every asset by the same 30% mostly cancels between its legs)
    assert not crashed.paths.equals(base.paths)
    for label in ("ew", "benchmark"):
        plain = _median(base, label, "total_return")
        hit = _median(crashed, label, "total_return")
        assert hit < plain, label


def _median(result, label: str, metric: str) -> float:
    return result.quantiles.filter((pl.col("strategy") == label)
                                   & (pl.col("metric") == metric))["q50"][0]


def test_bootstrap_generator_has_no_regime_table(tmp_path):
    result = _run(tmp_path, "boot", generator="bootstrap", paths=2)
    assert result.paths.height == 4 and result.regimes is None
    assert not (result.run_dir / "regimes.csv").exists()


def test_no_stress_section_is_a_config_error_with_an_example(tmp_path):
    with pytest.raises(ConfigError, match=r"(?s)x\.yaml has no stress: section.*generator"):
        run_stress(_scenario(stress=False), tmp_path / "none", progress=False)
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("paths", ["0", "-3"])
def test_paths_below_one_exit_2_and_leave_no_folder(tmp_path, paths):
    file = tmp_path / "s.yaml"
    file.write_text(_text(), encoding="utf-8")
    out = tmp_path / "out"
    result = _cli([str(file), "--out", str(out), "--paths", paths, "-q"])
    assert result.exit_code == 2
    assert f"--paths must be at least 1, got {paths}" in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [file]


def test_a_crash_of_150_percent_exits_2_naming_100_percent(tmp_path):
    file = tmp_path / "s.yaml"
    file.write_text(_text(shocks=", shocks: [{kind: crash, at: 10, days: 5, drop: 1.5}]"),
                    encoding="utf-8")
    out = tmp_path / "out"
    result = _cli([str(file), "--out", str(out), "-q"])
    assert result.exit_code == 2
    assert "100%" in " ".join(result.output.split())
    assert not out.exists()


def test_cli_prints_the_quantile_table_within_80_columns(tmp_path):
    file = tmp_path / "s.yaml"
    file.write_text(_text(), encoding="utf-8")
    out = tmp_path / "out"
    result = _cli([str(file), "--out", str(out), "--paths", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert "q50" in result.output and "max dd" in result.output
    assert "beat the benchmark" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert json.loads((out / "metrics.json").read_text())["n_paths"] == 2


def test_run_folder_contents(base):
    folder = base.run_dir
    for name in ("config.yaml", "paths.csv", "paths.parquet", "quantiles.csv",
                 "quantiles.md", "regimes.csv", "metrics.json", "returns.parquet",
                 "plots/stress_hist.png", "plots/stress_paths.png"):
        assert (folder / name).is_file(), name
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["kind"] == "stress"
    assert metrics["n_paths"] == 6 and metrics["generator"] == "regimes"
    assert metrics["seed"] == 3
    beats = metrics["beats_benchmark"]["topk"]
    assert beats["paths"] == 6
    assert beats["beat"] == int(base.paths.filter(pl.col("strategy") == "topk")
                                ["beats_benchmark"].sum())
    assert metrics["quantiles"]["topk"]["sharpe"]["q50"] == pytest.approx(
        _median(base, "topk", "sharpe"))
    assert "| topk | sharpe |" in (folder / "quantiles.md").read_text()
    assert pl.read_csv(folder / "paths.csv").height == 12
    rerun = parse_scenario((folder / "config.yaml").read_text(), source="config.yaml")
    assert rerun.stress.paths == 6 and rerun.stress.seed == 3


def test_no_plots_when_report_plots_is_off(tmp_path):
    result = _run(tmp_path, "noplots", paths=1)
    assert (result.run_dir / "metrics.json").is_file()
    assert not (result.run_dir / "plots").exists()


def test_trainable_analysts_are_fit_on_the_first_third_and_trade_the_rest(tmp_path):
    text = _text().replace(
        "{name: momentum, config: {lookback: 63, skip: 5}}",
        "{name: magnitude, config: {horizon: 5, depth: 1, width: 4, "
        "train: {epochs: 1, progress: false}}}").replace("days: 300", "days: 600")
    result = run_stress(parse_scenario(text, source="x.yaml"), tmp_path / "t", paths=1,
                        progress=False)
    ts = result.returns.filter(pl.col("strategy") == "topk")["ts"]
    # 600 bars: fit up to bar 200 (600 // 3), trade bars 201..599
    assert ts.len() == 399
    assert result.returns.filter(pl.col("strategy") == "benchmark")["ts"].equals(ts)


def test_stress_folder_has_an_html_report_with_fans_and_the_quantile_table(base):
    page = (base.run_dir / "report.html").read_text()
    assert 'id="stress-quantiles"' in page and 'id="stress-beats"' in page
    assert 'id="stress-fan-0"' in page and 'id="stress-fan-1"' in page
    median = base.quantiles.filter((pl.col("strategy") == "topk")
                                   & (pl.col("metric") == "sharpe"))["q50"][0]
    assert f"{median:.2f}" in page  # Sharpe in the house format (2 decimals)
