"""The CI rule of tests/conftest.py: a skip is a failure when CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    test = tmp_path / "test_sample.py"
    test.write_text("import pytest\n\ndef test_skips():\n    pytest.skip('no chromium')\n\n"
                    "def test_passes():\n    assert 1 + 1 == 2\n", encoding="utf-8")
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest",
                           "-p", "no:cacheprovider", str(test)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_skip_fails_in_ci_and_stays_a_skip_elsewhere(tmp_path):
    in_ci = _run(tmp_path, "true")
    assert in_ci.returncode == 1, in_ci.stdout
    assert "1 failed, 1 passed" in in_ci.stdout and "skipped in CI" in in_ci.stdout
    local = _run(tmp_path, "")
    assert local.returncode == 0 and "1 passed, 1 skipped" in local.stdout, local.stdout


def test_every_test_file_that_starts_ray_runs_in_the_ray_unit():
    from tests.conftest import RAY_TEST_FILES, xdist_unit

    # every file naming a Ray executor or importing ray (this one only names them)
    starts_ray = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                  if p.name != "test_ci_rules.py" and any(s in p.read_text(encoding="utf-8")
                         for s in ('"kind": "ray"', "kind: ray", '"ray", "start"',
                                   'executor="ray"', "import ray"))}
    assert starts_ray and starts_ray <= RAY_TEST_FILES, sorted(starts_ray - RAY_TEST_FILES)
    assert all((ROOT / f).is_file() for f in RAY_TEST_FILES)
    assert xdist_unit("tests/alfred/test_sweep.py::test_x") == "ray"
    assert xdist_unit("tests/alfred/test_api.py::test_x") == "tests/alfred/test_api.py"
