"""allow_tuned_overlap runs are marked, row by row: the run comparison and metrics.json,
the walk-forward fold table (and its pooled forecast tests), and `alfred analyst
evaluate`'s tables carry "tuned on overlapping data" on exactly the rows whose test bars
the tuned hyperparameters saw, and on no other row."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analysts.evaluation import TUNED_OVERLAP
from reports import compare_runs

pytest.importorskip("torch")

TRAIN = ("{epochs: 1, batch_size: 256, patience: null, progress: false, seed: 3, "
         "threads: 1, device: cpu}")


def _tuned(folder: Path, name: str, last_bar: str) -> Path:
    path = folder / name
    path.write_text(json.dumps({
        "analyst": "magnitude", "symbols": {}, "tuned_on": {},
        "tuned_period": {"first_bar": "2015-01-02 00:00:00", "last_bar": last_bar}}))
    return path


def _scenario(folder: Path, name: str, tuned: Path, extra: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"""
name: {name}
data: {{source: sp500_stocks, assets: [AAPL, MSFT], start: 2019-01-01, end: 2020-12-31}}
benchmark: {{dataset: sp500_index, asset: SP500}}
analysts:
  - name: magnitude
    config:
      horizon: 5
      depth: 1
      width: 8
      features: {{groups: [returns], ma_windows: [5]}}
      tuned_configs: {tuned}
      allow_tuned_overlap: true
      train: {TRAIN}
strategy: {{name: topk_long_short, config: {{k: 1, rank_by: pred_return, rebalance: weekly}}}}
report: {{tearsheet: false, plots: false}}
{extra}""")
    return path


def test_walkforward_marks_exactly_the_folds_the_tuning_saw(tmp_path):
    from alfred.walkforward import run_walkforward

    tuned = _tuned(tmp_path, "tuned.json", "2019-09-30 00:00:00")
    path = _scenario(tmp_path, "wf", tuned, "walkforward: {train: 1y, test: 6mo}\n"
                                            "executor: {kind: inline}\n")
    with pytest.warns(UserWarning, match="in sample for the hyperparameters"):
        result = run_walkforward(path, tmp_path / "run", progress=False)
    folds = result.strategies[0].folds
    marks = dict(zip(folds["test_start"], folds["tuned_overlap"], strict=True))
    # 2019H1 lies inside the tuning period, 2019H2 starts before its end; 2020 is clean
    assert [marks[k] for k in sorted(marks)] == [TUNED_OVERLAP, TUNED_OVERLAP, "", ""]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["tuned_overlap_folds"] == [0, 1]
    table = pl.read_csv(tmp_path / "run" / "folds.csv")
    assert table["tuned_overlap"].fill_null("").to_list() == [TUNED_OVERLAP] * 2 + [""] * 2
    md = (tmp_path / "run" / "folds.md").read_text().splitlines()
    fold_rows = {line.split("|")[1].strip(): line for line in md
                 if line.split("|")[1:2] and line.split("|")[1].strip() in ("0", "1", "2",
                                                                           "3")}
    assert {k for k, line in fold_rows.items() if TUNED_OVERLAP in line} == {"0", "1"}
    assert len(fold_rows) == 4
    assert any(line.startswith("### ") and TUNED_OVERLAP in line for line in md)  # pooled
    assert "Caveat" in (tmp_path / "run" / "report.html").read_text()


def test_runs_and_their_comparison_mark_only_the_overlapping_run(tmp_path):
    from alfred.run import run_scenario

    inside = _tuned(tmp_path, "inside.json", "2020-03-31 00:00:00")
    before = _tuned(tmp_path, "before.json", "2019-06-28 00:00:00")
    cut = "train_until: 2019-12-31\n"
    marked = run_scenario(_scenario(tmp_path, "inside", inside, cut), tmp_path / "a")
    assert any("in sample for the hyperparameters" in w for w in marked.warnings)
    clean = run_scenario(_scenario(tmp_path, "before", before, cut), tmp_path / "b")
    notes = json.loads((marked.run_dir / "metrics.json").read_text())["notes"]
    assert any(n.startswith(f"analyst 'magnitude': {TUNED_OVERLAP}: ") for n in notes)
    clean_notes = json.loads((clean.run_dir / "metrics.json").read_text())["notes"]
    assert not any(TUNED_OVERLAP in n for n in clean_notes)
    table = compare_runs([marked.run_dir, clean.run_dir]).table
    runs = table.filter(pl.col("strategy") != "benchmark")
    by_run = dict(zip(runs["run"], runs["tuned_overlap"], strict=True))
    assert by_run == {"a": TUNED_OVERLAP, "b": ""}
    assert set(table.filter(pl.col("strategy") == "benchmark")["tuned_overlap"]) == {""}
    comparison = compare_runs([marked.run_dir, clean.run_dir])
    assert "Caveat" in comparison.markdown and TUNED_OVERLAP in comparison.html
    assert "tuned_overlap" not in compare_runs([clean.run_dir]).table.columns


def test_evaluate_marks_the_model_rows_not_the_baselines(tmp_path):
    import typer

    from alfred.cli.analyst import analyst_app

    cli = typer.Typer()
    cli.add_typer(analyst_app, name="analyst")
    tuned = _tuned(tmp_path, "tuned.json", "2020-12-30 00:00:00")
    path = _scenario(tmp_path, "ev", tuned, "train_until: 2019-12-31\n")
    args = ["analyst", "evaluate", str(path), "--allow-tuned-overlap", "-q"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "e")],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "caveat" in result.output and TUNED_OVERLAP in result.output
    saved = json.loads((tmp_path / "e" / "magnitude" / "evaluation.json").read_text())
    assert saved["tuned_overlap"] == TUNED_OVERLAP
    md = (tmp_path / "e" / "magnitude" / "evaluation.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| overall |")]
    marked = {line.split("|")[2].strip() for line in rows if TUNED_OVERLAP in line}
    assert marked == {"model"} and len(rows) > 1  # baselines' rows are not marked
    rolling = CliRunner().invoke(cli, [*args, "--rolling", "4", "--out",
                                       str(tmp_path / "r")], terminal_width=200)
    assert rolling.exit_code == 0, rolling.output
    table = pl.read_csv(tmp_path / "r" / "magnitude" / "rolling_origin.csv")
    assert set(table["tuned_overlap"]) == {TUNED_OVERLAP}
    # a tuning period before the test window marks nothing
    clean = _scenario(tmp_path, "ev2", _tuned(tmp_path, "old.json", "2019-06-28 00:00:00"),
                      "train_until: 2019-12-31\n")
    plain = CliRunner().invoke(cli, ["analyst", "evaluate", str(clean), "-q", "--out",
                                     str(tmp_path / "p")], terminal_width=200)
    assert plain.exit_code == 0, plain.output
    assert TUNED_OVERLAP not in plain.output
    again = json.loads((tmp_path / "p" / "magnitude" / "evaluation.json").read_text())
    assert again["tuned_overlap"] == ""
