"""Caveats travel with the numbers: data survivorship, a price-only benchmark, random
weights. Each view of a run (console summary, metrics.json, tear sheet, comparison)
carries the same one-line notes."""

from __future__ import annotations

import json

import pytest

from alfred.inputs import analyst_notes, dataset_caveats
from alfred.run import run_scenario
from alfred.scenario import parse_scenario
from engine.data import dataset_info

TWO = """\
name: notes
data: {source: sp500_stocks, assets: [AAPL, MSFT], start: 2021-01-01, end: 2021-04-30}
benchmark: {dataset: sp500_index, asset: SP500}
strategies: [{name: equal_weight}, {name: buy_and_hold}]
report: {tearsheet: true, plots: false}
"""


def test_bundled_caveats_are_in_the_manifest():
    assert "survivorship" in dataset_info("sp500_stocks")["caveat"]
    assert "without dividends" in dataset_info("sp500_index")["caveat"]
    assert dataset_caveats("vix") == []  # no caveat, no note
    assert dataset_caveats("not-a-bundled-name") == []


def test_every_view_of_a_run_on_survivor_data_carries_the_notes(tmp_path):
    summary = run_scenario(parse_scenario(TWO), out=tmp_path / "run")
    assert len(summary.notes) == 2
    assert "survivorship" in summary.notes[0] and "dividends" in summary.notes[1]
    comparison = (summary.run_dir / "comparison.md").read_text(encoding="utf-8")
    page = (summary.run_dir / "comparison.html").read_text(encoding="utf-8")
    for run in summary.runs:
        metrics = json.loads((run.run_dir / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["notes"] == list(summary.notes)
        sheet = (run.run_dir / "tearsheet.html").read_text(encoding="utf-8")
        assert "survivorship bias" in sheet and "without dividends" in sheet
    assert comparison.count("Note: ") == 2 and "survivorship bias" in page


def test_a_model_on_random_weights_is_named_in_the_notes():
    pytest.importorskip("torch")
    from analysts import get_analyst

    toto = get_analyst("toto", context=64, num_samples=None, stride=30, device="cpu")
    momentum = get_analyst("momentum")
    from datetime import datetime

    notes = analyst_notes(toto, datetime(2021, 1, 4))
    assert notes == ["analyst 'toto': the model runs on random weights: its forecasts carry "
                     "no skill"]
    assert analyst_notes(momentum, datetime(2021, 1, 4)) == []
