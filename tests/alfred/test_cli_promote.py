"""alfred analyst promote prints a tuned_configs path that works where the scenario lives."""

from __future__ import annotations

from pathlib import Path

from alfred.cli.analyst import snippet_path
from alfred.scenario import parse_scenario


def test_snippet_path_resolves_from_the_scenario_folder(tmp_path, monkeypatch):
    promoted = tmp_path / "runs" / "tune" / "promoted" / "magnitude.json"
    promoted.parent.mkdir(parents=True)
    promoted.write_text("{}")
    (tmp_path / "scenarios").mkdir()
    scenario_file = tmp_path / "scenarios" / "mine.yaml"
    monkeypatch.chdir(tmp_path)  # promote ran from the repository root, as in the README
    shown = snippet_path(Path("runs/tune/promoted/magnitude.json"), "scenarios/mine.yaml")
    assert shown == "../runs/tune/promoted/magnitude.json"
    scenario = parse_scenario("name: x\ndata: {source: sp500_stocks}\n"
                              "strategy: {name: equal_weight}\n",
                              base_dir=scenario_file.parent)
    assert scenario.resolve_path(shown).resolve() == promoted.resolve()


def test_snippet_path_is_absolute_without_a_scenario(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shown = snippet_path(Path("promoted/magnitude.json"), None)
    assert Path(shown).is_absolute() and shown == (tmp_path / "promoted/magnitude.json").as_posix()
