"""The alfred CLI: exit codes (0 ok, 1 failed run, 2 bad input), messages, subcommands."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import alfred.run
import analysts
from alfred.cli import app
from alfred.components import strategy_names
from engine.errors import RunError

N_BARS = 30
TS = [datetime(2021, 1, 4) + timedelta(days=i) for i in range(N_BARS)]

runner = CliRunner(env={"COLUMNS": "200"})


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    # rich wraps long lines to the terminal width; compare on normalised whitespace
    return result, " ".join(result.output.split())


def write_scenario(folder: Path, body: str = "strategy: {name: equal_weight}\n",
                   name: str = "s.yaml") -> Path:
    t = np.arange(N_BARS)
    closes = {"A": 100 * 1.01**t, "B": 50 + np.sin(t), "C": 20 + 0.1 * t}
    rows = [(TS[i], a, float(c[i])) for i in range(N_BARS) for a, c in closes.items()]
    pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").write_csv(
        folder / "bars.csv")
    path = folder / name
    # tear sheets and plots take seconds and belong to the reports tests
    path.write_text("name: tiny\nreport: {tearsheet: false, plots: false}\ndata:\n"
                    "  source: bars.csv\n" + body)
    return path


def test_run_prints_a_summary_and_writes_the_run_folder(tmp_path):
    path = write_scenario(tmp_path, "strategy: {name: equal_weight}\nbenchmark: {asset: A}\n")
    result, text = invoke("run", str(path), "--out", str(tmp_path / "run"), "--quiet")
    assert result.exit_code == 0, result.output
    assert "equal_weight" in text and "no costs" in text and "benchmark: A;" in text
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_run_with_progress_bar_succeeds(tmp_path):
    path = write_scenario(tmp_path)
    result, _ = invoke("run", str(path), "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output


BAD_INPUTS = [
    ("malformed_yaml", "strategy: {name: equal_weight\n", ["malformed YAML at line 6"]),
    ("unknown_key", "strategy: {name: equal_weight}\ncapitl: 5\n",
     ["capitl (line 6)", "did you mean 'capital'"]),
    ("wrong_type", "strategy: {name: equal_weight}\ncapital: lots\n",
     ["capital (line 6)", "expected a number, got 'lots'"]),
    ("unknown_strategy", "strategy: {name: topk}\n",
     ["unknown strategy 'topk'", "valid strategies: " + ", ".join(strategy_names())]),
    ("unknown_analyst", "analysts: [{name: crystal_ball}]\nstrategy: {name: simple}\n",
     ["unknown analyst 'crystal_ball'", "valid analysts: " + ", ".join(analysts.available())]),
    ("k_too_large", "analysts: [{name: naive}]\n"
     "strategy: {name: topk_long_short, config: {k: 2}}\n",
     ["strategy (topk_long_short)", "k_long=2", "universe has 3"]),
    ("thresholds_out_of_order",
     "analysts: [{name: naive}]\n"
     "strategy: {name: nuanced, config: {lower: 0.8, mid: 0.5, upper: 0.7}}\n",
     ["strategy (nuanced)", "lower < mid < upper"]),
    ("same_close_without_opt_in", "strategy: {name: equal_weight}\nfill: same_close\n",
     ["unsafe_same_close: true"]),
]


@pytest.mark.parametrize(("case", "body", "fragments"), BAD_INPUTS,
                         ids=[case for case, _, _ in BAD_INPUTS])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path, command, case, body,
                                                           fragments):
    path = write_scenario(tmp_path, body)
    # validate --fit: the full dry run, which plans strategies on the analysts' signals
    args = [command, str(path), "-q"] + (["--out", str(tmp_path / "run")]
                                         if command == "run" else ["--fit"])
    result, text = invoke(*args)
    assert result.exit_code == 2, result.output
    assert text.startswith("error:")
    assert str(path) in text
    for fragment in fragments:
        assert fragment in text
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_missing_data_path_exits_2(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ndata: {source: prices/nope.csv}\nstrategy: {name: equal_weight}\n")
    result, text = invoke("run", str(path), "-q", "-o", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert "'prices/nope.csv' is not a bundled dataset" in text
    assert "alfred data import" in text


def test_missing_scenario_file_exits_2(tmp_path):
    result, text = invoke("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "not found" in text


def test_existing_output_without_overwrite_exits_2(tmp_path):
    path = write_scenario(tmp_path)
    out = str(tmp_path / "run")
    assert invoke("run", str(path), "-q", "-o", out)[0].exit_code == 0
    result, text = invoke("run", str(path), "-q", "-o", out)
    assert result.exit_code == 2
    assert "already exists" in text and "--overwrite" in text
    assert invoke("run", str(path), "-q", "-o", out, "--overwrite")[0].exit_code == 0


def test_validate_ok(tmp_path):
    path = write_scenario(tmp_path, "analysts: [{name: naive}]\nstrategy: {name: simple}\n")
    result, text = invoke("validate", str(path), "-q")
    assert result.exit_code == 0, result.output
    assert text.startswith("ok ") and "3 assets x 30 bars" in text
    assert not (tmp_path / "runs").exists()


def test_an_unexpected_error_exits_1_with_its_traceback(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(alfred.run, "run_scenario", boom)
    result, text = invoke("run", str(write_scenario(tmp_path)), "-q")
    assert result.exit_code == 1
    assert "Traceback" in result.output and "kernel exploded" in text


def test_a_run_error_exits_1_with_its_message(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RunError("worker lost")

    monkeypatch.setattr(alfred.run, "run_scenario", fail)
    result, text = invoke("run", str(write_scenario(tmp_path)), "-q")
    assert result.exit_code == 1
    assert text == "run failed: worker lost"


def test_help_has_examples():
    result, text = invoke("--help")
    assert result.exit_code == 0
    assert "Examples" in text and "alfred run scenarios/quickstart.yaml" in text
    for command in ("run", "validate", "report", "compare", "data", "analyst", "tune",
                    "train-rl"):
        assert command in text
    result, text = invoke("run", "--help")
    assert result.exit_code == 0 and "--overwrite" in text and "Examples" in text


def test_python_dash_m_alfred_works():
    done = subprocess.run([sys.executable, "-m", "alfred", "--help"], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert "Usage: alfred" in " ".join(done.stdout.split())


def test_data_list_and_show():
    result, text = invoke("data", "list")
    assert result.exit_code == 0
    assert "sp500_stocks" in text and "sp500_index" in text
    result, text = invoke("data", "show", "sp500_stocks")
    assert result.exit_code == 0
    assert "20: AAPL, AMD" in text and "bars per year" in text and "252" in text
    result, text = invoke("data", "show", "sp500_stock")
    assert result.exit_code == 2 and "Did you mean 'sp500_stocks'" in text


def test_data_import_then_use_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ALFRED_DATA_DIR", str(tmp_path / "store"))
    write_scenario(tmp_path)
    result, text = invoke("data", "import", str(tmp_path / "bars.csv"), "--name", "tiny_set")
    assert result.exit_code == 0, result.output
    assert "3 assets, 90 bars" in text
    assert (tmp_path / "store" / "tiny_set.parquet").is_file()
    result, text = invoke("data", "list")
    assert "tiny_set" in text and "imported" in text
    scenario = tmp_path / "by_name.yaml"
    scenario.write_text("name: n\ndata: {source: tiny_set}\nstrategy: {name: equal_weight}\n")
    assert invoke("validate", str(scenario))[0].exit_code == 0
    result, text = invoke("data", "import", str(tmp_path / "bars.csv"), "--name", "tiny_set")
    assert result.exit_code == 2 and "--overwrite" in text


def test_data_import_of_bad_bars_exits_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,asset,close\n2021-01-01,A,10\n2021-01-02,A,0\n")
    result, text = invoke("data", "import", str(bad), "--name", "bad", "--to",
                          str(tmp_path / "store"))
    assert result.exit_code == 2
    assert "error:" in text and "bad.csv" in text
    assert not (tmp_path / "store" / "bad.parquet").exists()


def test_report_and_compare_on_run_folders(tmp_path):
    path = write_scenario(tmp_path, "strategies: [{name: equal_weight}, {name: buy_and_hold}]\n")
    single = write_scenario(tmp_path, name="one.yaml")
    assert invoke("run", str(path), "-q", "-o", str(tmp_path / "multi"))[0].exit_code == 0
    assert invoke("run", str(single), "-q", "-o", str(tmp_path / "one"))[0].exit_code == 0
    metrics_path = tmp_path / "one" / "metrics.json"
    original = json.loads(metrics_path.read_text())
    tampered = json.loads(metrics_path.read_text())
    tampered["with_costs"]["cagr"] = 99.0
    metrics_path.write_text(json.dumps(tampered))
    result, text = invoke("report", str(tmp_path / "one"))
    assert result.exit_code == 0, result.output
    rebuilt = json.loads(metrics_path.read_text())
    assert rebuilt["with_costs"]["cagr"] == original["with_costs"]["cagr"]
    result, text = invoke("report", str(tmp_path / "multi"))
    assert result.exit_code == 0, result.output
    result, text = invoke("compare", str(tmp_path / "multi"), str(tmp_path / "one"),
                          "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 0, result.output
    assert "buy_and_hold" in text and "equal_weight" in text
    assert list((tmp_path / "cmp").iterdir())
    result, text = invoke("report", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "does not exist" in text


def test_summary_and_compare_fit_80_columns_and_agree_on_closed_trades(tmp_path):
    narrow = CliRunner(env={"COLUMNS": "80"})
    path = write_scenario(tmp_path, "strategies: [{name: equal_weight}, {name: buy_and_hold}]\n"
                          "benchmark: {asset: A}\n")
    run = narrow.invoke(app, ["run", str(path), "-q", "-o", str(tmp_path / "multi")])
    assert run.exit_code == 0, run.output
    cmp = narrow.invoke(app, ["compare", str(tmp_path / "multi")])
    assert cmp.exit_code == 0, cmp.output
    for output in (run.output, cmp.output):
        assert "…" not in output
        assert max(len(line) for line in output.splitlines()) <= 80, output
        assert "buy_and_hold" in output and "equal_weight" in output
    assert "closed trades" in " ".join(run.output.split())
    for name in ("equal_weight", "buy_and_hold"):
        metrics = json.loads((tmp_path / "multi" / name / "metrics.json").read_text())
        closed = metrics["with_costs"]["n_trades"]
        rows = [line.split() for output in (run.output, cmp.output)
                for line in output.splitlines() if line.split()[:1] == [name]]
        assert len(rows) == 2
        # the summary ends "... closed open"; the comparison ends "... closed trades"
        assert rows[0][-2] == rows[1][-1] == f"{closed:.0f}", rows


def test_no_tearsheet_flag_overrides_the_scenario(tmp_path):
    path = write_scenario(tmp_path, "strategy: {name: equal_weight}\n")
    path.write_text(path.read_text().replace("tearsheet: false", "tearsheet: true"))
    result, _ = invoke("run", str(path), "-q", "--no-tearsheet", "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert not (tmp_path / "run" / "tearsheet.html").exists()
    # the run records what it did, so `alfred report` rebuilds it the same way
    assert "tearsheet: false" in (tmp_path / "run" / "config.yaml").read_text()


def test_progress_is_plain_log_lines_with_elapsed_seconds_when_stderr_is_not_a_tty(tmp_path):
    import re

    path = write_scenario(tmp_path)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["run", str(path), "-o",
                                                            str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    steps = [line for line in result.output.splitlines()
             if re.fullmatch(r"\[ *\d+\.\ds\] .+ \(\d+/\d+\)", line)]
    assert len(steps) >= 2, result.output
    assert steps[0].split("] ")[1].startswith("loading data")
    assert "━" not in result.output  # no progress bar drawn into a log
    quiet = CliRunner().invoke(app, ["run", str(path), "-q", "-o", str(tmp_path / "q")])
    assert quiet.exit_code == 0 and not re.search(r"\[ *\d+\.\ds\]", quiet.output)
