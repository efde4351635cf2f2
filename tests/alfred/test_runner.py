"""run_scenario: hand-checked results, run-folder layout, atomic writes, as-of training."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import pytest

import analysts
import reports
from alfred.fingerprint import frame_sha256
from alfred.run import run_scenario, validate_scenario
from alfred.scenario import load_scenario
from analysts import AnalystConfig, ConfiguredAnalyst
from engine.errors import ConfigError, DataError

N_BARS = 40
TS = [datetime(2021, 1, 4) + timedelta(days=i) for i in range(N_BARS)]
CLOSE = {
    "A": 100 * 1.01 ** np.arange(N_BARS),
    "B": 50 * (1 + 0.05 * np.sin(np.arange(N_BARS))),
    "C": 20 + 0.1 * np.arange(N_BARS),
}
ZERO_COSTS = "costs: {commission_bps: 0, slippage_bps: 0, half_spread_bps: 0, borrow_fee_bps: 0}\n"


def write_bars(folder: Path) -> Path:
    rows = [(TS[t], a, float(CLOSE[a][t])) for t in range(N_BARS) for a in CLOSE]
    path = folder / "bars.csv"
    pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").write_csv(path)
    return path


# The HTML tear sheet and PNG plots take seconds per run and are the reports package's
# business; these tests switch them off unless they are what is being tested.
NO_VIEWS = "report: {tearsheet: false, plots: false}\n"


def scenario_file(folder: Path, body: str, name: str = "s.yaml") -> Path:
    write_bars(folder)
    path = folder / name
    path.write_text("name: tiny\ndata: {source: bars.csv}\n" + body + NO_VIEWS)
    return path


class SpyConfig(AnalystConfig):
    level: float = 0.6


class SpyAnalyst(ConfiguredAnalyst):
    """Records what the runner hands it; emits a constant prob_up."""

    name: ClassVar[str] = "spy"
    config_class: ClassVar[type[AnalystConfig]] = SpyConfig
    calls: ClassVar[list[dict]] = []

    def fit(self, bars, until=None):
        SpyAnalyst.calls.append({"fit_until": until, "fit_first_ts": bars["ts"].min(),
                                 "draw": float(np.random.random())})  # noqa: NPY002
        return self

    def predict(self, bars, start=None, end=None):
        SpyAnalyst.calls.append({"predict_start": start, "predict_end": end})
        frame = bars.filter((pl.col("ts") >= start) & (pl.col("ts") <= end))
        return frame.select("ts", "asset", pl.lit(self.config.level).alias("prob_up"))


@pytest.fixture
def spy(monkeypatch):
    monkeypatch.setitem(analysts.REGISTRY, "spy", SpyAnalyst)
    SpyAnalyst.calls = []
    return SpyAnalyst


def test_buy_and_hold_matches_a_hand_computation(tmp_path):
    # Close-only data fills at the next close: qty = 500 / close[1]; 10 bps commission on
    # the 500 bought; the without-costs twin pays nothing.
    path = scenario_file(tmp_path, (
        "strategy: {name: buy_and_hold, config: {asset: A, weight: 0.5}}\n"
        "costs: {commission_bps: 10, slippage_bps: 0, half_spread_bps: 0, borrow_fee_bps: 0}\n"
        "capital: 1000\n"))
    summary = run_scenario(path, out=tmp_path / "run")
    (run,) = summary.runs
    close = CLOSE["A"]
    assert run.final_equity == pytest.approx(500 - 0.5 + 500 * close[-1] / close[1], rel=1e-12)
    assert run.total_return_without_costs == pytest.approx(
        (500 + 500 * close[-1] / close[1]) / 1000 - 1, rel=1e-12)
    assert run.n_trades == 1
    assert summary.n_bars == N_BARS and summary.n_assets == 3
    assert summary.period == (TS[0], TS[-1])


def test_single_strategy_run_folder(tmp_path):
    # (tear sheet and plots are checked on the quickstart in tests/test_scenarios_run.py)
    path = scenario_file(tmp_path, "strategy: {name: equal_weight}\nbenchmark: equal_weight\n")
    summary = run_scenario(path, out=tmp_path / "run")
    run_dir = tmp_path / "run"
    assert summary.run_dir == run_dir.resolve()
    assert summary.runs[0].run_dir == run_dir.resolve()
    for name in ("config.yaml", "fingerprint.json", "metrics.json", "equity.parquet",
                 "equity_without_costs.parquet", "benchmark.parquet"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["settings"]["title"] == "tiny"
    assert summary.runs[0].n_trades == 3  # one open position per asset
    assert summary.runs[0].metrics == metrics
    resolved = load_scenario(run_dir / "config.yaml")
    assert resolved.data.source == str((tmp_path / "bars.csv").resolve())
    assert resolved.output.directory is None
    fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
    bars = pl.read_csv(tmp_path / "bars.csv", try_parse_dates=True)
    assert fingerprint["data"]["rows"] == bars.height
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_several_strategies_get_a_folder_each_and_a_comparison(tmp_path, spy):
    path = scenario_file(tmp_path, (
        "analysts: [{name: spy}]\n"
        "strategies:\n"
        "  - {name: buy_and_hold, label: hold_a, config: {asset: A}}\n"
        "  - {name: simple, label: simple}\n" + ZERO_COSTS))
    summary = run_scenario(path, out=tmp_path / "run")
    root = tmp_path / "run"
    assert [r.label for r in summary.runs] == ["hold_a", "simple"]
    assert [r.run_dir for r in summary.runs] == [root.resolve() / "hold_a",
                                                 root.resolve() / "simple"]
    assert (root / "config.yaml").is_file() and (root / "fingerprint.json").is_file()
    assert list(root.glob("comparison*")), "no comparison written at the top"
    for run in summary.runs:
        assert (run.run_dir / "metrics.json").is_file()
        sub = load_scenario(run.run_dir / "config.yaml")
        assert sub.strategies is None and sub.strategy.run_label == run.label
    # a sub-folder's config reproduces that strategy alone, to the last digit
    again = run_scenario(summary.runs[0].run_dir / "config.yaml", out=tmp_path / "again")
    assert again.runs[0].final_equity == summary.runs[0].final_equity


def test_existing_output_needs_overwrite(tmp_path):
    path = scenario_file(tmp_path, "strategy: {name: equal_weight}\n")
    out = tmp_path / "run"
    run_scenario(path, out=out)
    (out / "marker.txt").write_text("old run")
    with pytest.raises(ConfigError, match="already exists.*--overwrite"):
        run_scenario(path, out=out)
    assert (out / "marker.txt").is_file()
    run_scenario(path, out=out, overwrite=True)
    assert not (out / "marker.txt").exists()
    assert (out / "metrics.json").is_file()


def test_a_failure_half_way_leaves_no_run_folder(tmp_path):
    # The second strategy asks for more names than the universe has: found at plan time,
    # after the first strategy's report was written into the staging folder.
    path = scenario_file(tmp_path, (
        "strategies:\n  - {name: equal_weight}\n"
        "  - {name: topk_long_short, label: big, config: {k: 5, rank_by: prob_up}}\n"
        "analysts: [{name: naive}]\n"))
    with pytest.raises(ConfigError) as info:
        run_scenario(path, out=tmp_path / "out" / "run")
    assert "strategies[1] (big)" in str(info.value)
    assert "k_long=5" in str(info.value)
    # the folders made for this run are gone too, and nothing hidden is left behind
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_crash_while_writing_keeps_the_previous_run(tmp_path, monkeypatch):
    path = scenario_file(tmp_path, "strategy: {name: equal_weight}\n")
    out = tmp_path / "run"
    run_scenario(path, out=out)
    before = sorted(p.name for p in out.iterdir())

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reports, "write_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_scenario(path, out=out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_default_output_is_timestamped_under_the_working_directory(tmp_path, monkeypatch):
    path = scenario_file(tmp_path, "strategy: {name: equal_weight}\n")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # data.source stays relative to the scenario file
    first = run_scenario(path)
    second = run_scenario(path)
    assert first.run_dir.parent == (elsewhere / "runs" / "tiny").resolve()
    assert second.run_dir != first.run_dir and second.run_dir.parent == first.run_dir.parent
    assert (first.run_dir / "metrics.json").is_file()


def test_output_directory_from_the_scenario(tmp_path, monkeypatch):
    path = scenario_file(tmp_path, "strategy: {name: equal_weight}\noutput: {directory: o/x}\n")
    monkeypatch.chdir(tmp_path)
    assert run_scenario(path).run_dir == (tmp_path / "o" / "x").resolve()


def test_train_until_fits_in_sample_and_backtests_out_of_sample(tmp_path, spy):
    path = scenario_file(tmp_path, (
        f"analysts: [{{name: spy}}]\ntrain_until: {TS[9]:%Y-%m-%d}\n"
        "strategy: {name: simple}\n" + ZERO_COSTS))
    summary = run_scenario(path, out=tmp_path / "run")
    fit, predict = spy.calls
    assert fit["fit_until"] == TS[9]
    assert predict["predict_start"] == TS[10] and predict["predict_end"] == TS[-1]
    assert summary.period == (TS[10], TS[-1])
    assert summary.n_bars == N_BARS - 10


def test_default_fit_stops_at_the_first_backtest_bar_and_history_feeds_warm_up(tmp_path, spy):
    path = scenario_file(tmp_path, "analysts: [{name: spy}]\nstrategy: {name: simple}\n")
    text = path.read_text().replace("source: bars.csv",
                                    f"source: bars.csv, start: {TS[5]:%Y-%m-%d}")
    path.write_text(text)
    summary = run_scenario(path, out=tmp_path / "run")
    fit, predict = spy.calls
    assert fit["fit_until"] == TS[5]
    assert fit["fit_first_ts"] == TS[0]  # warm-up history is visible to the analyst
    assert predict["predict_start"] == TS[5]
    assert summary.period[0] == TS[5]


def test_seed_makes_analyst_randomness_reproducible(tmp_path, spy):
    path = scenario_file(tmp_path, "analysts: [{name: spy}]\nstrategy: {name: simple}\nseed: 11\n")
    run_scenario(path, out=tmp_path / "a")
    run_scenario(path, out=tmp_path / "b")
    draws = [c["draw"] for c in spy.calls if "draw" in c]
    np.random.seed(11)  # noqa: NPY002 - the legacy global state is what the runner seeds
    assert draws == [np.random.random()] * 2  # noqa: NPY002


def test_runs_are_deterministic(tmp_path):
    path = scenario_file(tmp_path, ("analysts: [{name: momentum, config: {lookback: 3}}]\n"
                                    "strategy: {name: topk_long_short, config: {k: 1}}\n"))
    a = run_scenario(path, out=tmp_path / "a")
    b = run_scenario(path, out=tmp_path / "b")
    assert a.runs[0].final_equity == b.runs[0].final_equity
    fa = json.loads((tmp_path / "a" / "fingerprint.json").read_text())
    fb = json.loads((tmp_path / "b" / "fingerprint.json").read_text())
    assert fa["data"] == fb["data"] and fa["signals_sha256"] == fb["signals_sha256"]
    ea = pl.read_parquet(tmp_path / "a" / "equity.parquet")
    eb = pl.read_parquet(tmp_path / "b" / "equity.parquet")
    assert ea.equals(eb)


def test_report_options_switch_the_views_off(tmp_path):
    path = scenario_file(tmp_path, "strategy: {name: equal_weight}\n")
    run_scenario(path, out=tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert not (tmp_path / "run" / "tearsheet.html").exists()
    assert not (tmp_path / "run" / "plots").exists()


def test_fingerprint_hashes_the_bars_the_run_read(tmp_path):
    path = scenario_file(tmp_path, "strategy: {name: equal_weight}\n")
    run_scenario(path, out=tmp_path / "run")
    from engine.data import load_bars

    fingerprint = json.loads((tmp_path / "run" / "fingerprint.json").read_text())
    assert fingerprint["data"]["sha256"] == frame_sha256(load_bars(tmp_path / "bars.csv"))
    assert fingerprint["seed"] == 0
    assert fingerprint["signals_sha256"] is None


def test_benchmark_total_return_in_summary(tmp_path):
    path = scenario_file(tmp_path, "strategy: {name: equal_weight}\nbenchmark: {asset: C}\n")
    summary = run_scenario(path, out=tmp_path / "run")
    assert summary.benchmark == "C"
    assert summary.benchmark_return == pytest.approx(CLOSE["C"][-1] / CLOSE["C"][0] - 1)


def test_progress_reports_every_step_in_order(tmp_path):
    path = scenario_file(tmp_path, ("strategies: [{name: equal_weight}, "
                                    "{name: buy_and_hold}]\n"))
    seen = []
    run_scenario(path, out=tmp_path / "run", progress=lambda s, d, t: seen.append((s, d, t)))
    done = [d for _, d, _ in seen]
    assert done == sorted(done)
    assert seen[-1][1] == seen[-1][2] and seen[-1][0] == "done"
    assert any(s == "buy_and_hold: backtest without costs" for s, _, _ in seen)


def test_validate_finds_plan_errors_without_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok = scenario_file(tmp_path, "analysts: [{name: naive}]\nstrategy: {name: simple}\n")
    check = validate_scenario(ok)
    assert (check.n_assets, check.n_bars, check.strategies) == (3, N_BARS, ("simple",))
    bad = scenario_file(tmp_path, ("analysts: [{name: naive}]\n"
                                   "strategy: {name: topk_long_short, config: {k: 2}}\n"),
                        name="bad.yaml")
    assert not validate_scenario(bad).plans_checked  # analysts are not fit by default
    with pytest.raises(ConfigError, match=r"strategy \(topk_long_short\).*k_long=2"):
        validate_scenario(bad, fit=True)  # the full dry run plans on their signals
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("body", "error", "fragment"),
    [
        ("strategy: {name: simpel}\n", ConfigError, "did you mean 'simple'"),
        ("strategy: {name: nuanced, config: {lower: 0.6, mid: 0.5, upper: 0.7}}\n",
         ConfigError, "lower < mid < upper"),
        ("analysts: [{name: momentun}]\nstrategy: {name: simple}\n", ConfigError,
         "analysts[0] (momentun)"),
        ("analysts: [{name: momentum, config: {lookback: 5, skip: 9}}]\n"
         "strategy: {name: simple}\n", ConfigError, "skip must be smaller"),
        ("strategy: {name: equal_weight}\nbenchmark: {asset: ZZZ}\n", ConfigError,
         "benchmark asset 'ZZZ'"),
    ],
)
def test_bad_components_fail_before_anything_is_written(tmp_path, body, error, fragment):
    path = scenario_file(tmp_path, body)
    with pytest.raises(error) as info:
        run_scenario(path, out=tmp_path / "run")
    assert fragment in str(info.value)
    assert str(path) in str(info.value)
    assert not (tmp_path / "run").exists()


def test_missing_data_source_lists_known_datasets(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ndata: {source: sp500_stock}\nstrategy: {name: equal_weight}\n")
    with pytest.raises(DataError) as info:
        run_scenario(path, out=tmp_path / "run")
    message = str(info.value)
    assert "Did you mean 'sp500_stocks'" in message and "alfred data import" in message
