"""The README as a test: its shell commands run as written, its numbers are pinned.

Every command in the README's ``bash`` blocks runs verbatim from the root of a fresh copy
of the repository (so default output folders such as ``runs/sweeps/...`` are relative
paths, as a user gets them), in the order written. Two exceptions, both stated here:

- ``pip install ... && COMMAND`` runs only ``COMMAND``: the install is what prepared the
  environment this test runs in (re-installing from the copy would repoint it).
- the command that runs this very test suite (``python -m pytest``) is not run again.

The quickstart table in the README is real output: its numbers must equal what the first
command produces, so they change only with a deliberate README update.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_IGNORE = shutil.ignore_patterns(".git", "runs", ".cache", "__pycache__", ".pytest_cache",
                                 ".hypothesis", ".ruff_cache", "*.egg-info", "build", "dist")


def readme_commands(text: str) -> list[str]:
    """The shell commands of the README's ``bash`` blocks, in order."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def runnable(command: str) -> str | None:
    """What this test runs for a README command (see the module docstring)."""
    if command.startswith("pip install"):
        _, _, rest = command.partition("&&")
        command = rest.strip()
    if not command or command.startswith("python -m pytest"):
        return None
    return command


def test_the_readme_opens_with_the_two_setup_commands():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert commands[0].startswith("pip install") and "alfred run" in commands[0]
    assert commands[1].startswith("pip install") and "python -m pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci, ".ci/run must call the README's test command"


def _quickstart_table(text: str) -> dict[str, dict[str, str]]:
    """Rows of the README's quickstart output table: strategy -> column -> cell."""
    block = re.search(r"```\n(\s*quickstart:.*?)```", text, flags=re.S)
    assert block, "the README lost its quickstart output block"
    lines = [ln for ln in block.group(1).splitlines() if ln.strip()]
    header = next(ln for ln in lines if "strategy" in ln)
    names = re.split(r"\s{2,}", header.strip())
    rows = {}
    for line in lines[lines.index(header) + 1:]:
        if set(line.strip()) <= set("-─━ "):
            continue
        cells = re.split(r"\s{2,}", line.strip())
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", cells[0]):
            break  # the caption and the notes under the table
        rows[cells[0]] = dict(zip(names, cells, strict=False))
    return rows


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """Every README command run once, in order, in a fresh copy: (copy, {command: result}).

    The tests below read the folders the tour left (the quickstart run, the regime sweep)
    instead of running the same scenarios again."""
    text = README.read_text(encoding="utf-8")
    copy = tmp_path_factory.mktemp("readme") / "alfred"
    shutil.copytree(ROOT, copy, ignore=_IGNORE)
    env = {**os.environ, "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    env.pop("ALFRED_RUNS_DIR", None)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    done = {}
    for command in filter(None, map(runnable, readme_commands(text))):
        done[command] = subprocess.run(["bash", "-c", command], cwd=copy, env=env,
                                       capture_output=True, text=True, timeout=600,
                                       check=False)
        if done[command].returncode != 0:
            break  # later commands may read what this one should have written
    written = {p.relative_to(copy).parts[0] for p in copy.rglob("*")
               if p.is_file() and before.get(p) != p.stat().st_mtime_ns
               and not p.relative_to(copy).parts[0].startswith(".")}
    return copy, done, written


@pytest.mark.slow
def test_every_readme_command_runs_verbatim_from_a_fresh_copy(tour):
    copy, done, written = tour
    text = README.read_text(encoding="utf-8")
    assert list(done) == [c for c in map(runnable, readme_commands(text)) if c]
    for command, result in done.items():
        assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n" \
                                       f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, f"`{command}`:\n{result.stderr[-3000:]}"
        if command.startswith("alfred sweep"):
            assert re.search(r"\b0 failed\b", result.stdout + result.stderr), \
                result.stdout[-2000:]
    # nothing was written outside the copy's own runs/ folder
    assert written <= {"runs"}, f"README commands wrote outside runs/: {sorted(written)}"
    _check_quickstart_numbers(text, copy / "runs" / "quickstart")


@pytest.mark.slow
def test_the_quickstart_leaves_tear_sheets_plots_and_a_comparison(tour):
    root = tour[0] / "runs" / "quickstart"
    for name in ("comparison.md", "comparison.html", "comparison.csv", "config.yaml"):
        assert (root / name).is_file(), name
    for label in ("topk", "nuanced"):
        run = root / label
        assert (run / "tearsheet.html").stat().st_size > 10_000
        assert len(list((run / "plots").glob("*.png"))) >= 3
        assert (run / "benchmark.parquet").is_file()
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["settings"]["benchmark"] == "sp500_index:SP500"
        assert -1.0 <= metrics["with_costs"]["max_drawdown"] <= 0.0
        assert metrics["without_costs"]["cagr"] >= metrics["with_costs"]["cagr"]
    comparison = pl.read_csv(root / "comparison.csv")
    runs = comparison.filter(pl.col("strategy") != "benchmark")
    assert sorted(runs["run"].to_list()) == ["nuanced", "topk"]
    assert comparison.filter(pl.col("strategy") == "benchmark")["run"].to_list() == [
        "sp500_index:SP500"]


@pytest.mark.slow
def test_the_regime_sweep_ran_every_named_regime(tour):
    from reports.regimes import REGIMES

    summaries = [p for p in (tour[0] / "runs").rglob("summary.csv")
                 if "regimes_quickstart" in str(p)]
    assert len(summaries) == 1, summaries
    summary = pl.read_csv(summaries[0])
    assert sorted(set(summary["data.regime"])) == sorted(REGIMES)


def _check_quickstart_numbers(text: str, run_dir: Path) -> None:
    table = _quickstart_table(text)
    for label, row in table.items():
        if label == "benchmark":
            continue
        metrics = json.loads((run_dir / label / "metrics.json").read_text(encoding="utf-8"))
        with_costs = metrics["with_costs"]
        expected = {"return": with_costs["total_return"], "Sharpe": with_costs["sharpe"],
                    "max DD": with_costs["max_drawdown"], "Max DD": with_costs["max_drawdown"],
                    "no costs": metrics["without_costs"]["total_return"]}
        for column, key in (("closed trades", "n_trades"), ("open", "n_open_trades")):
            if column in row:
                assert int(row[column]) == int(with_costs[key]), f"README {label} {column}"
        for column, value in expected.items():
            if column not in row:
                continue
            cell = row[column].replace("%", "").replace("+", "").replace(",", "")
            shown = float(cell) / (100.0 if "%" in row[column] else 1.0)
            digits = 3 if "%" in row[column] else 2
            assert round(shown, digits) == round(value, digits) or abs(shown - value) < 10 ** (
                -digits) * 0.51, f"README {label} {column} shows {row[column]}, the run gives {value}"


def test_readme_command_parsing_is_not_vacuous():
    sample = "x\n```bash\npip install . && alfred run a.yaml\n# note\nalfred runs list\n```\n"
    commands = readme_commands(sample)
    assert commands == ["pip install . && alfred run a.yaml", "alfred runs list"]
    assert [runnable(c) for c in commands] == ["alfred run a.yaml", "alfred runs list"]
    assert runnable("pip install -e '.[dev]' && python -m pytest -q") is None


def test_the_pinned_numbers_check_catches_a_stale_readme(tmp_path):
    text = ("```\n quickstart: 1 assets\nstrategy   return   Sharpe   closed trades\n"
            "-------\nmomo       -31.68%     0.01             610\n```\n")
    (tmp_path / "momo").mkdir()
    metrics = {"with_costs": {"total_return": -0.3168, "sharpe": 0.0104, "max_drawdown": -0.5,
                              "n_trades": 610, "n_open_trades": 0},
               "without_costs": {"total_return": -0.2}}
    (tmp_path / "momo" / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    _check_quickstart_numbers(text, tmp_path)
    with pytest.raises(AssertionError, match="return"):
        _check_quickstart_numbers(text.replace("-31.68%", "-32.00%"), tmp_path)
    with pytest.raises(AssertionError, match="closed trades"):
        _check_quickstart_numbers(text.replace("610", "616"), tmp_path)
