"""alfred validate without fitting (and --fit for the full dry run), progress lines for
validate and report, warnings without source lines, help without <bool>."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import analysts
from alfred.cli import app
from alfred.run import validate_scenario
from alfred.scenario import load_scenario
from analysts import AnalystConfig, ConfiguredAnalyst
from engine.errors import ConfigError

N_BARS = 40


class CountingConfig(AnalystConfig):
    level: float = 0.6


class CountingAnalyst(ConfiguredAnalyst):
    """Counts fits; emits a constant prob_up."""

    name: ClassVar[str] = "counting"
    config_class: ClassVar[type[AnalystConfig]] = CountingConfig
    fits: ClassVar[int] = 0

    def fit(self, bars, until=None):
        CountingAnalyst.fits += 1
        return self

    def predict(self, bars, start=None, end=None):
        return bars.select("ts", "asset", pl.lit(self.config.level).alias("prob_up"))


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(analysts.REGISTRY, "counting", CountingAnalyst)
    CountingAnalyst.fits = 0
    return CountingAnalyst


def scenario(folder: Path, body: str) -> Path:
    ts = [datetime(2021, 1, 4) + timedelta(days=i) for i in range(N_BARS)]
    rows = [(t, a, float(c)) for i, t in enumerate(ts)
            for a, c in (("A", 100 + i), ("B", 50 + np.sin(i)))]
    pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").write_csv(
        folder / "bars.csv")
    path = folder / "s.yaml"
    path.write_text("name: v\ndata: {source: bars.csv}\nfill: next_close\n" + body)
    return path


def test_validate_checks_without_fitting_and_fits_with_fit(tmp_path, counting):
    path = scenario(tmp_path, "analysts: [{name: counting}]\nstrategy: {name: simple}\n")
    check = validate_scenario(path)
    assert counting.fits == 0 and not check.fitted and not check.plans_checked
    assert check.n_assets == 2 and check.n_bars == N_BARS
    full = validate_scenario(path, fit=True)
    assert counting.fits == 1 and full.fitted and full.plans_checked


def test_bad_analyst_and_strategy_configs_are_caught_without_fitting(tmp_path, counting):
    bad = scenario(tmp_path, "analysts: [{name: counting, config: {level: 0.5, nope: 1}}]\n"
                             "strategy: {name: simple}\n")
    with pytest.raises(ConfigError, match="nope"):
        validate_scenario(bad)
    assert counting.fits == 0
    plan = scenario(tmp_path, "strategy: {name: topk_long_short, config: {k: 5}}\n")
    with pytest.raises(Exception, match="k"):  # no analysts: plans are checked as before
        validate_scenario(load_scenario(plan))


def test_cli_validate_says_what_it_checked_with_progress_lines(tmp_path, counting):
    path = scenario(tmp_path, "analysts: [{name: counting}]\nstrategy: {name: simple}\n")
    runner = CliRunner()
    quick = runner.invoke(app, ["validate", str(path)])
    assert quick.exit_code == 0, quick.output
    text = " ".join(quick.output.split())
    assert "ok " in text and "not fitted (--fit for a full dry run)" in text
    assert "checking strategies and analysts (0/3)" in text  # plain lines off a TTY
    assert counting.fits == 0
    full = runner.invoke(app, ["validate", str(path), "--fit", "-q"])
    assert full.exit_code == 0 and counting.fits == 1
    assert "not fitted" not in full.output and "(0/" not in full.output


def test_report_prints_progress_lines(tmp_path):
    path = scenario(tmp_path, "strategy: {name: equal_weight}\n"
                              "report: {tearsheet: false, plots: false}\n")
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(path), "-q", "-o", str(tmp_path / "r")])
    assert ran.exit_code == 0, ran.output
    result = runner.invoke(app, ["report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "metrics, tear sheet, plots (0/1)" in result.output and "done (1/1)" in result.output


def test_warnings_print_one_line_without_source():
    # a fresh interpreter: pytest replaces warnings.showwarning inside tests
    code = ("import warnings, alfred.cli\n"
            "def load():\n"
            "    warnings.warn('prices are close-only', UserWarning)\n"
            "load()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stderr == "warning: UserWarning: prices are close-only\n"


def test_help_shows_no_bool_after_flags():
    result = CliRunner(env={"COLUMNS": "120"}).invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    assert "--overwrite" in result.output and "--quiet" in result.output
    assert "<bool>" not in result.output
    assert "<str>" in result.output  # options with a value still show its type
