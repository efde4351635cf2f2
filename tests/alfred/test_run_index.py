"""The run index: synced with the folders, safe filters, best-by-metric, rebuild."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alfred.cli import app
from alfred.runs import RunIndex, parse_filter
from engine.errors import ConfigError


def _fake_run(folder: Path, name: str, label: str, sharpe: float, total: float) -> None:
    """A run folder as the runner writes it (only the two files the index reads)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(
        f"# Resolved scenario '{name}' as run at 2026-01-0{len(label) % 9 + 1}T10:00:00+00:00; "
        f"rerun with `alfred run config.yaml`.\nname: {name}\ndata: {{source: sp500_stocks}}\n"
        f"strategy: {{name: {label}, label: null, config: {{k: 3}}}}\n")
    (folder / "metrics.json").write_text(json.dumps({
        "with_costs": {"sharpe": sharpe, "total_return": total, "max_drawdown": -0.2,
                       "n_trades": 10},
        "settings": {"strategy": label, "start": "2020-01-02", "end": "2020-12-31",
                     "n_bars": 252, "benchmark": None}}))


@pytest.fixture
def root(tmp_path):
    _fake_run(tmp_path / "a" / "t1", "alpha", "topk", 1.2, 0.30)
    _fake_run(tmp_path / "a" / "t2", "alpha", "simple", -0.4, -0.10)
    _fake_run(tmp_path / "b" / "x" / "topk", "beta", "topk", 0.7, 0.12)
    (tmp_path / "b" / ".half.partial-1234").mkdir()  # a run in progress is not listed
    (tmp_path / "b" / "notes").mkdir()
    return tmp_path


def test_sync_lists_every_run_and_filters(root):
    index = RunIndex(root)
    rows = index.query()
    assert sorted(r["path"] for r in rows) == ["a/t1", "a/t2", "b/x/topk"]
    assert [r["path"] for r in index.query(["sharpe>0.5"], order_by="sharpe")] == [
        "a/t1", "b/x/topk"]
    assert [r["path"] for r in index.query(["scenario=alpha", "total_return<0"])] == ["a/t2"]
    assert [r["path"] for r in index.query(["path~x/"])] == ["b/x/topk"]
    assert index.query(["sharpe>0"], order_by="sharpe", descending=False,
                       limit=1)[0]["path"] == "b/x/topk"
    assert rows[0]["params"]["strategy"] == {"k": 3}


def test_index_follows_the_folders(root):
    index = RunIndex(root)
    assert index.sync().total == 3
    shutil.rmtree(root / "a" / "t2")
    _fake_run(root / "c", "gamma", "topk", 2.0, 0.5)
    sync = index.sync()
    assert (sync.added, sync.removed, sync.total) == (1, 1, 3)
    # a run rewritten in place (same path) is read again
    metrics = root / "c" / "metrics.json"
    data = json.loads(metrics.read_text())
    data["with_costs"]["sharpe"] = -1.0
    metrics.write_text(json.dumps(data))
    import os

    os.utime(metrics, (1e9 + 5, 2e9))
    assert index.sync().updated == 1
    assert index.show("c")["sharpe"] == -1.0


def test_rebuild_recreates_the_same_rows(root):
    index = RunIndex(root)
    before = index.query(order_by="sharpe")
    (root / "index.sqlite").write_bytes(b"garbage, not a database")
    assert index.rebuild().total == 3
    assert index.query(order_by="sharpe") == before


def test_filters_are_parameters_never_sql(root):
    index = RunIndex(root)
    assert index.query(["scenario=alpha' OR '1'='1"]) == []
    assert len(index.query()) == 3  # the table is intact
    clause, value = parse_filter("sharpe >= 1.5")
    assert clause == '"sharpe" >= ?' and value == 1.5


@pytest.mark.parametrize("term, message", [
    ("sharp>1", "did you mean 'sharpe'"),
    ("sharpe>high", "is a number"),
    ("sharpe", "KEY OP VALUE"),
    ("scenario>alpha", "text"),
    ("sharpe>0; DROP TABLE runs", "is a number"),
])
def test_bad_filters_are_config_errors(root, term, message):
    with pytest.raises(ConfigError, match=message):
        RunIndex(root).query([term])


def test_show_needs_one_match(root):
    index = RunIndex(root)
    assert index.show("a/t1")["label"] == "topk"
    with pytest.raises(ConfigError, match="did you mean|no single run"):
        index.show("zzz")
    _fake_run(root / "d" / "topk", "delta", "topk", 0.1, 0.0)
    with pytest.raises(ConfigError, match="2 runs end with it"):
        index.show("topk")  # b/x/topk and d/topk

def test_cli_best_list_show_rebuild(root):
    runner = CliRunner()
    best = runner.invoke(app, ["runs", "best", "--root", str(root), "--metric", "sharpe",
                               "--limit", "1", "--json"])
    assert best.exit_code == 0, best.output
    assert json.loads(best.output)["path"] == "a/t1"
    listed = runner.invoke(app, ["runs", "list", "--root", str(root), "-w", "scenario=beta"])
    assert listed.exit_code == 0 and "b/x/topk" in listed.output and "a/t1" not in listed.output
    bad = runner.invoke(app, ["runs", "list", "--root", str(root), "-w", "sharp>1"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["runs", "list", "--root", str(root / "nope")])
    assert missing.exit_code == 2 and "does not" in missing.output
    rebuilt = runner.invoke(app, ["runs", "rebuild", "--root", str(root)])
    assert rebuilt.exit_code == 0 and "3 run(s)" in rebuilt.output


def test_runs_list_json_writes_one_compact_object_per_line(root):
    listed = CliRunner().invoke(app, ["runs", "list", "--root", str(root), "--json"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 3  # the three fake runs, one line each, no pretty-printing
    rows = [json.loads(line) for line in lines]
    assert sorted(r["path"] for r in rows) == ["a/t1", "a/t2", "b/x/topk"]
    assert "NaN" not in listed.output
