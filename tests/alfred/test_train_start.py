"""The scenario's train_start: inherited by every analyst that trains (an analyst's own
train_start wins), refused where nothing trains or where it is not before the cut-off,
and a bar changed before it (beyond the features' look-back) moves no fit."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from alfred.cli import app
from alfred.inputs import build_analysts, load_inputs
from alfred.scenario import load_scenario, parse_scenario
from engine.errors import ConfigError
from tests.analysts._ml_helpers import close_only, ohlcv_bars

TRAIN = ("{epochs: 2, batch_size: 64, patience: null, progress: false, seed: 3, threads: 1, "
         "device: cpu}")
MAGNITUDE = ("  - name: magnitude\n    config: {depth: 1, width: 8, horizon: 2, "
             "features: {groups: [returns]}, train: " + TRAIN + "}\n")


def _file(folder: Path, body: str, bars: pl.DataFrame | None = None) -> Path:
    bars = close_only(ohlcv_bars(300, 3, seed=6)) if bars is None else bars
    bars.write_csv(folder / "bars.csv")
    path = folder / "s.yaml"
    path.write_text("name: ts\ndata: {source: bars.csv, start: 2020-09-01}\n"
                    "fill: next_close\nstrategy: {name: topk_long_short, config: {k: 1, "
                    "rank_by: pred_return}}\n" + body)
    return path


def test_analysts_that_train_inherit_it_and_their_own_wins(tmp_path):
    body = ("train_start: 2020-03-01\nanalysts:\n" + MAGNITUDE +
            "  - name: lstm\n    config: {train_start: 2020-05-01}\n"
            "  - name: momentum\n    config: {lookback: 5}\n"
            "  - name: ensemble\n    config:\n      members:\n"
            "        - {name: magnitude}\n        - {name: momentum}\n")
    built = build_analysts(load_scenario(_file(tmp_path, body)))
    magnitude, lstm, momentum, ensemble = built
    assert str(magnitude.config.train_start)[:10] == "2020-03-01"
    assert str(lstm.config.train_start)[:10] == "2020-05-01"  # its own wins
    assert "train_start" not in type(momentum.config).model_fields  # learns nothing
    assert str(ensemble.members[0].config.train_start)[:10] == "2020-03-01"
    # without the scenario key nothing is set
    plain = build_analysts(load_scenario(_file(tmp_path, "analysts:\n" + MAGNITUDE)))
    assert plain[0].config.train_start is None


def test_a_foundation_model_takes_it_only_when_it_fine_tunes(tmp_path):
    pytest.importorskip("torch")
    tune = "fine_tune: {window: 32, step: 8, train: {epochs: 1}}"
    body = ("train_start: 2020-03-01\nanalysts:\n" + MAGNITUDE +
            "  - {name: toto, config: {architecture: tiny, context: 48}}\n"
            f"  - {{name: toto, config: {{architecture: tiny, context: 48, {tune}}}}}\n")
    _, plain, tuned = build_analysts(load_scenario(_file(tmp_path, body)))
    assert plain.config.train_start is None
    assert str(tuned.config.train_start)[:10] == "2020-03-01"
    with pytest.raises(ConfigError, match="train_start applies to fine-tuning only"):
        from analysts import get_analyst

        get_analyst("toto", architecture="tiny", train_start=date(2020, 3, 1))


@pytest.mark.parametrize(("body", "message"), [
    ("train_start: 2020-03-01\nanalysts:\n  - {name: momentum}\n",
     r"train_start \(line 5\): train_start is set but no analyst here trains"),
    ("train_start: 2020-09-01\nanalysts:\n" + MAGNITUDE,
     r"train_start \(line 5\): train_start 2020-09-01 is not before data.start 2020-09-01"),
    ("train_until: 2020-06-30\ntrain_start: 2020-07-01\nanalysts:\n" + MAGNITUDE,
     r"train_start \(line 6\): train_start 2020-07-01 is not before train_until 2020-06-30"),
])
def test_refused_where_nothing_trains_or_not_before_the_cut_off(tmp_path, body, message):
    path = _file(tmp_path, body)
    with pytest.raises(ConfigError, match=message):
        parse_scenario(path.read_text(), source=str(path))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "train_start (line" in result.output


def _signals(folder: Path, body: str, bars: pl.DataFrame) -> pl.DataFrame:
    return load_inputs(load_scenario(_file(folder, body, bars))).signals


def test_a_bar_changed_before_it_moves_no_fit(tmp_path):
    pytest.importorskip("torch")
    bars = close_only(ohlcv_bars(300, 3, seed=6))
    stamps = bars["ts"].unique().sort()
    early = bars.with_columns(pl.when(pl.col("ts") < stamps[40]).then(pl.col("close") * 1.2)
                              .otherwise(pl.col("close")).alias("close"))
    body = "analysts:\n" + MAGNITUDE
    start = f"train_start: {stamps[100].date()}\n"
    a, b = _signals(tmp_path, start + body, bars), _signals(tmp_path, start + body, early)
    assert a.height > 0 and a.equals(b)  # the fit did not move: nor did any forecast
    c, d = _signals(tmp_path, body, bars), _signals(tmp_path, body, early)
    assert not c.equals(d)  # without train_start the early bars are learnt from


def test_a_fine_tune_ignores_bars_before_it():
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from analysts import get_analyst

    bars = close_only(ohlcv_bars(160, 2, seed=5))
    stamps = bars["ts"].unique().sort()
    early = bars.with_columns(pl.when(pl.col("ts") < stamps[30]).then(pl.col("close") * 1.2)
                              .otherwise(pl.col("close")).alias("close"))
    config = {"architecture": "tiny", "context": 48, "device": "cpu", "num_samples": 2,
              "fine_tune": {"method": "lora", "rank": 2, "alpha": 4, "window": 32, "step": 8,
                            "train": {"epochs": 1, "batch_size": 16, "progress": False,
                                      "threads": 1, "device": "cpu", "seed": 3}}}

    def weights(frame, **extra):
        analyst = get_analyst("toto", **config, **extra).fit(frame, until=stamps[-1])
        return analyst.toto.state_dict()

    a = weights(bars, train_start=stamps[40])
    b = weights(early, train_start=stamps[40])
    assert all(torch.equal(a[k], b[k]) for k in a)
    c, d = weights(bars), weights(early)
    assert not all(torch.equal(c[k], d[k]) for k in c)
    with pytest.raises(Exception, match="train_start .* is not before the fit's cut-off"):
        get_analyst("toto", **config, train_start=stamps[-1]).fit(bars, until=stamps[-1])
