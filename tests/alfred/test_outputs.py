"""Run folders: --overwrite replaces only what Alfred wrote; validate agrees with run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alfred.cli import app
from alfred.outputs import MARKER, check_replaceable, staged_folder
from alfred.run import run_scenario
from alfred.scenario import parse_scenario
from engine.errors import ConfigError

SCENARIO = """\
name: tiny
data: {source: sp500_stocks, assets: [AAPL, MSFT], start: 2021-01-01, end: 2021-03-31}
strategy: {name: equal_weight}
report: {tearsheet: false, plots: false}
"""


def _scenario_file(folder: Path, body: str = SCENARIO) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_overwrite_refuses_a_folder_alfred_did_not_write(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("keep me", encoding="utf-8")
    path = _scenario_file(tmp_path / "scn")
    with pytest.raises(ConfigError, match="not written by Alfred"):
        run_scenario(path, out=notes, overwrite=True)
    assert (notes / "ideas.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in notes.iterdir()) == ["ideas.txt"]


def test_overwrite_replaces_an_alfred_run_folder_and_marks_it(tmp_path):
    path = _scenario_file(tmp_path / "scn")
    first = run_scenario(path, out=tmp_path / "run")
    assert (first.run_dir / MARKER).is_file()
    (first.run_dir / "stale.txt").write_text("old", encoding="utf-8")
    second = run_scenario(path, out=tmp_path / "run", overwrite=True)
    assert second.run_dir == first.run_dir
    assert not (second.run_dir / "stale.txt").exists()
    assert (second.run_dir / "metrics.json").is_file()


def test_the_scenario_folder_and_the_working_directory_are_never_targets(tmp_path,
                                                                        monkeypatch):
    folder = tmp_path / "scn"
    path = _scenario_file(folder)
    for target in (folder, tmp_path):
        with pytest.raises(ConfigError, match="never writes over it"):
            run_scenario(path, out=target, overwrite=True)
    monkeypatch.chdir(tmp_path / "scn")
    with pytest.raises(ConfigError, match="current directory"):
        check_replaceable(Path.cwd(), overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["s.yaml"]


def test_a_failed_run_leaves_the_old_run_in_place(tmp_path):
    target = tmp_path / "run"
    with staged_folder(target, overwrite=False) as staging:
        (staging / "result.txt").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), staged_folder(target, overwrite=True) as staging:
        (staging / "result.txt").write_text("new", encoding="utf-8")
        raise RuntimeError("crash half-way")
    assert (target / "result.txt").read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging left behind


def test_stale_staging_folders_of_killed_runs_are_cleaned(tmp_path):
    stale = tmp_path / ".run.partial-deadbeef"
    stale.mkdir()
    (stale / "report.job").write_bytes(b"x" * 1000)
    old = 1_000_000_000
    os.utime(stale, (old, old))
    with staged_folder(tmp_path / "run", overwrite=False):
        pass
    assert not stale.exists() and (tmp_path / "run" / MARKER).is_file()


@pytest.mark.parametrize(("extra", "fragment"), [
    ("capital: .inf\n", "capital"),
    ("costs: {slippage_bps: .nan}\n", "costs.slippage_bps"),
    ("costs: {commission_bps: -1}\n", "costs.commission_bps"),
    ("leverage: {max_net: 0}\n", "leverage.max_net"),
])
def test_validate_refuses_what_run_refuses(tmp_path, extra, fragment):
    """Engine settings are checked by the schema: `alfred validate` can no longer say ok
    for a scenario that `alfred run` rejects."""
    from typer.testing import CliRunner

    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        parse_scenario(SCENARIO + extra)
    path = _scenario_file(tmp_path, SCENARIO + extra)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and fragment in result.output
