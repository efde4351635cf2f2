"""The whole suite at a toy size, through the CLI: checks pass, JSON is complete."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import SuiteConfig
from benchmarks._cli import main
from benchmarks._resources import cold_start, peak_memory

pytest.importorskip("vectorbt")
pytest.importorskip("backtrader")

TOY = ["--bars", "300", "--copies", "2", "--repeats", "2", "--bt-budget", "0.1",
       "--no-resources"]


def test_suite_at_toy_size_checks_then_times(tmp_path, capsys):
    # W1 with backtrader, W3 with vectorbt from_orders; vectorbt's from_signals is left out
    # because it compiles from scratch in every process (10-40 s, see SuiteConfig)
    status = main([*TOY, "--workloads", "W1", "W3", "--no-vbt-signals", "--out",
                   str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "Throughput" in printed and "Targets" in printed
    report = json.loads((tmp_path / "latest.json").read_text())
    assert len(list(tmp_path.glob("*_default+custom.json"))) == 1
    assert report["all_checks_passed"] is True
    assert report["machine"]["cores_logical"] >= 1 and report["machine"]["packages"]["numba"]
    w1, w3 = report["workloads"]
    assert (w1["id"], w1["n_bars"], w1["n_assets"]) == ("W1", 300, 20)
    assert set(w1["engines"]) == {"alfred", "backtrader"}
    bt_checks = {c["what"]: c for c in w1["checks"]}
    assert bt_checks["value per bar"]["passed"] and bt_checks["value per bar"]["tolerance"] == 1e-6
    assert bt_checks["executed orders"]["passed"]
    assert (w3["id"], w3["n_assets"]) == ("W3", 40)
    assert {c["peer"] for c in w3["checks"]} == {"vectorbt"}
    assert all(c["passed"] for c in w3["checks"]) and w3["rebalances"] >= 1
    for w in (w1, w3):
        ours = w["engines"]["alfred"]
        assert ours["repeats"] >= 2 and ours["best_s"] <= ours["median_s"]
        assert ours["asset_bars_per_s"] == pytest.approx(w["asset_bars"] / ours["best_s"])
        for peer, speedup in w["speedups"].items():
            assert speedup == pytest.approx(w["engines"][peer]["best_s"] / ours["best_s"])
        assert 0 < w["breakdown"]["kernel_s"] <= w["breakdown"]["total_s"]
    target_names = [t["what"] for t in report["targets"]]
    assert target_names == ["W1 speed-up vs backtrader", "W3 speed-up vs vectorbt"]
    assert main(["--markdown", str(tmp_path / "latest.json")]) == 0
    markdown = capsys.readouterr().out
    assert "| W1 | backtrader | 300 x 20 |" in markdown
    assert "| W3 speed-up vs vectorbt | >= 3x |" in markdown


def test_memory_and_cold_start_probes():
    # make this process big: Linux would pass its high-water mark on to a child it execs
    ballast = np.ones(600_000_000 // 8)
    cfg = SuiteConfig(n_bars=300, copies=2)
    mem = peak_memory(cfg, peer=False)["alfred"]
    del ballast
    assert (mem["n_bars"], mem["n_assets"]) == (300, 40)
    assert 0 < mem["after_imports_mb"] <= mem["baseline_mb"] <= mem["peak_mb"] < 590
    assert mem["hwm_reset"] is False or mem["run_phase_peak_mb"] <= mem["peak_mb"]
    cold = cold_start(runs=1)
    assert cold["runs"] == 1
    parts = sum(cold[k]["median"] for k in ("import_s", "inputs_s", "first_call_s"))
    assert cold["total_s"]["median"] == pytest.approx(parts)
    assert cold["process_s"]["median"] > cold["total_s"]["median"]
