"""compare_runs / write_comparison on run folders written by write_report."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import engine
from engine.errors import ConfigError, DataError
from reports import Comparison, compare_runs, write_comparison, write_report


@pytest.fixture(scope="module")
def runs(tmp_path_factory, backtest_pair):
    """Three runs: the costed run (with its gross twin), a half-size one, and a flat one."""
    result, gross, _ = backtest_pair
    root = tmp_path_factory.mktemp("runs")
    folders = {name: root / "scenario" / name for name in ("full", "half", "flat")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    write_report(folders["full"], result, gross_result=gross, tearsheet=False, plots=False)
    panel = result.panel
    half = engine.run_backtest(panel, engine.WeightPlan(_weights(result) * 0.5))
    write_report(folders["half"], half, tearsheet=False, plots=False)
    flat = engine.run_backtest(panel, engine.WeightPlan(_weights(result) * 0.0))
    write_report(folders["flat"], flat, tearsheet=False, plots=False)
    return folders


def _weights(result) -> np.ndarray:
    """The fixture's weight schedule (conftest.backtest_pair) as a bars x assets matrix."""
    n = result.panel.n_bars
    phase = (np.arange(n) // 15) % 3
    columns = {"AAPL": (0.5, -0.3, 0.0), "JNJ": (0.3, 0.3, 0.0), "CVX": (-0.2, 0.4, 0.0)}
    return np.column_stack([np.asarray(columns[a])[phase] for a in result.panel.assets])


def _sharpe(folder) -> float | None:
    return json.loads((folder / "metrics.json").read_text())["with_costs"]["sharpe"]


def test_rows_sorted_by_sharpe_with_undefined_last(runs):
    comparison = compare_runs([runs["flat"], runs["half"], runs["full"]])
    table = comparison.table
    assert table["run"].to_list()[-1] == "flat"  # zero variance: Sharpe undefined, last
    sharpes = [_sharpe(runs[name]) for name in table["run"].to_list()[:2]]
    assert sharpes == sorted(sharpes, reverse=True)
    full = table.filter(pl.col("run") == "full").row(0, named=True)
    saved = json.loads((runs["full"] / "metrics.json").read_text())
    assert full["sharpe"] == pytest.approx(saved["with_costs"]["sharpe"])
    assert full["sharpe_before_costs"] == pytest.approx(saved["without_costs"]["sharpe"])
    assert full["n_trades"] == saved["with_costs"]["n_trades"]  # closed trades
    assert full["n_open_trades"] == saved["with_costs"]["n_open_trades"]
    assert full["win_rate_trades"] == pytest.approx(saved["with_costs"]["win_rate_trades"])
    assert (full["start"], full["end"]) == ("2011-01-03", "2012-12-31")
    assert full["bars"] == saved["settings"]["n_bars"]
    assert full["strategy"] == "weights"  # a frame of weights; the others passed a plan
    assert table.filter(pl.col("run") == "half")["strategy"].item() == "plan"


def test_markdown_and_html(runs):
    markdown, html = compare_runs([runs["full"], runs["half"], runs["flat"]])
    lines = markdown.strip().splitlines()
    assert lines[0].startswith("| Run | Strategy | Start | End | Bars | Sharpe | Total return "
                               "| CAGR | Max drawdown |")
    assert len(lines) == 2 + 3  # no benchmark in these runs: no benchmark row
    assert "Sharpe before costs" in lines[0] and "| Closed trades | Open trades |" in lines[0]
    flat_line = next(line for line in lines if line.startswith("| flat "))
    assert "n/a" in flat_line  # undefined Sharpe shown, not 'nan'
    assert "nan" not in markdown.lower()
    assert html.startswith("<!DOCTYPE html>") and '<table id="comparison">' in html
    assert html.count("<tr>") == 4 and 'id="comparison-equity"' in html


def test_duplicate_folder_names_get_their_parent(tmp_path, runs):
    other = tmp_path / "other" / "full"
    other.mkdir(parents=True)
    (other / "metrics.json").write_text((runs["full"] / "metrics.json").read_text())
    names = compare_runs([runs["full"], other]).table["run"].to_list()
    assert sorted(names) == ["other/full", "scenario/full"]


def test_write_comparison_files(tmp_path, runs):
    out = tmp_path / "cmp"
    comparison = write_comparison(out, list(runs.values()))
    assert isinstance(comparison, Comparison)
    assert sorted(p.name for p in out.iterdir()) == ["comparison.csv", "comparison.html",
                                                     "comparison.md"]
    assert (out / "comparison.md").read_text() == comparison.markdown
    assert pl.read_csv(out / "comparison.csv")["run"].to_list() == \
        comparison.table["run"].to_list()
    # it prints like a frame for the CLI
    assert comparison.columns[:6] == ["run", "strategy", "start", "end", "bars",
                                      "periods_per_year"]
    assert len(list(comparison.iter_rows())) == 3


def test_runs_under_a_year_show_total_return_not_cagr(tmp_path, runs):
    saved = json.loads((runs["full"] / "metrics.json").read_text())
    saved["settings"]["n_bars"] = 100  # under a year of daily bars
    short = tmp_path / "short"
    short.mkdir()
    (short / "metrics.json").write_text(json.dumps(saved))
    markdown = compare_runs([runs["full"], short]).markdown
    head = [c.strip() for c in markdown.splitlines()[0].strip("|").split("|")]
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")]
            for r in markdown.splitlines()[2:]}
    assert rows["short"][head.index("CAGR")] == "< 1 year"
    assert rows["full"][head.index("CAGR")].endswith("%")


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(ConfigError, match="at least one"):
        compare_runs([])
    with pytest.raises(DataError, match="metrics.json is missing"):
        compare_runs([tmp_path])
