"""Scenario inputs: benchmarks by hand, signal merging, data sources, fingerprints."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alfred.fingerprint import frame_sha256, git_state, make_fingerprint
from alfred.inputs import (
    import_dataset,
    load_inputs,
    merge_signals,
    resolve_source,
)
from alfred.scenario import parse_scenario
from engine.errors import ConfigError, DataError

TS = [datetime(2022, 3, 1) + timedelta(days=i) for i in range(6)]
# B has no bar on day 2 (index 2): equal weight averages over the assets with a return.
PRICES = {
    "A": [10.0, 11.0, 12.1, 12.1, 11.0, 13.2],
    "B": [20.0, 19.0, None, 19.0, 20.9, 22.0],
}


def bars_csv(folder: Path) -> Path:
    rows = [(TS[t], a, p[t]) for t in range(6) for a, p in PRICES.items() if p[t] is not None]
    path = folder / "bars.csv"
    pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").write_csv(path)
    return path


def inputs_for(folder: Path, extra: str = ""):
    bars_csv(folder)
    sc = parse_scenario("name: t\ndata: {source: bars.csv}\nstrategy: {name: equal_weight}\n"
                        + extra, base_dir=folder)
    return load_inputs(sc)


def test_equal_weight_benchmark_by_hand(tmp_path):
    bench = inputs_for(tmp_path, "benchmark: equal_weight\n").benchmark
    a, b = PRICES["A"], PRICES["B"]
    expected = [
        0.0,
        (a[1] / a[0] - 1 + b[1] / b[0] - 1) / 2,
        a[2] / a[1] - 1,  # B has no bar
        # B's return on day 3 runs from its last bar (day 1): what a holder of B earned.
        (a[3] / a[2] - 1 + b[3] / b[1] - 1) / 2,
        (a[4] / a[3] - 1 + b[4] / b[3] - 1) / 2,
        (a[5] / a[4] - 1 + b[5] / b[4] - 1) / 2,
    ]
    assert bench["return"].to_list() == pytest.approx(expected, rel=1e-12)
    assert bench["ts"].to_list() == TS


def test_asset_benchmark_is_that_assets_close_to_close_return(tmp_path):
    inputs = inputs_for(tmp_path, "benchmark: {asset: A}\n")
    a = np.array(PRICES["A"])
    assert inputs.benchmark_label == "A"
    assert inputs.benchmark["return"].to_list() == pytest.approx(
        [0.0, *(a[1:] / a[:-1] - 1)], rel=1e-12)


def test_dataset_benchmark_on_another_calendar_uses_last_known_close(tmp_path):
    # The index has bars on days 0, 2 and 5 only; on days without one its last close holds.
    rows = [(TS[0], "IDX", 100.0), (TS[2], "IDX", 110.0), (TS[5], "IDX", 121.0)]
    pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").write_csv(
        tmp_path / "index.csv")
    inputs = inputs_for(tmp_path, "benchmark: {dataset: index.csv}\n")
    assert inputs.benchmark_label == "index.csv:IDX"
    assert inputs.benchmark["return"].to_list() == pytest.approx([0, 0, 0.1, 0, 0, 0.1])


def test_dataset_benchmark_needs_an_asset_when_it_has_several(tmp_path):
    with pytest.raises(ConfigError, match="holds 2 assets"):
        inputs_for(tmp_path, "benchmark: {dataset: bars.csv}\n")
    with pytest.raises(ConfigError, match="has no asset 'Z'"):
        inputs_for(tmp_path, "benchmark: {dataset: bars.csv, asset: Z}\n")


def test_period_and_universe_selection(tmp_path):
    inputs = inputs_for(tmp_path, "").bars
    assert inputs["asset"].unique().sort().to_list() == ["A", "B"]
    bars_csv(tmp_path)
    sc = parse_scenario(
        f"name: t\ndata: {{source: bars.csv, assets: [B], start: {TS[1]:%Y-%m-%d}, "
        f"end: {TS[4]:%Y-%m-%d}}}\nstrategy: {{name: equal_weight}}\n", base_dir=tmp_path)
    selected = load_inputs(sc)
    assert selected.bars["asset"].unique().to_list() == ["B"]
    assert selected.bars["ts"].to_list() == [TS[1], TS[3], TS[4]]
    # history keeps the bars before start for analysts' look-backs
    assert selected.history["ts"].min() == TS[0]


def test_empty_backtest_period_is_a_data_error(tmp_path):
    bars_csv(tmp_path)
    sc = parse_scenario("name: t\ndata: {source: bars.csv, start: 2030-01-01}\n"
                        "strategy: {name: equal_weight}\n", base_dir=tmp_path)
    with pytest.raises(DataError, match="no bars left to backtest"):
        load_inputs(sc)


def test_weekly_frequency_resamples_before_the_split(tmp_path):
    days = [datetime(2022, 1, 3) + timedelta(days=i) for i in range(21)]  # Mon 3 Jan ..
    rows = [(d, "A", 100.0 + i) for i, d in enumerate(days)]
    pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").write_csv(
        tmp_path / "daily.csv")
    sc = parse_scenario("name: t\ndata: {source: daily.csv, frequency: 1w}\n"
                        "strategy: {name: equal_weight}\n", base_dir=tmp_path)
    bars = load_inputs(sc).bars
    # stamped at each week's last bar (Sunday), close = that bar's close
    assert bars["ts"].to_list() == [days[6], days[13], days[20]]
    assert bars["close"].to_list() == [106.0, 113.0, 120.0]


def test_merge_signals_averages_shared_columns_and_keeps_the_rest():
    one = pl.DataFrame({"ts": TS[:2], "asset": ["A", "A"], "prob_up": [0.2, 0.4],
                        "score": [1.0, 2.0]})
    two = pl.DataFrame({"ts": TS[1:3], "asset": ["A", "A"], "prob_up": [0.8, 0.9],
                        "pred_return": [0.01, 0.02]})
    merged = merge_signals([one, two])
    assert merged.columns == ["ts", "asset", "prob_up", "score", "pred_return"]
    assert merged["ts"].to_list() == TS[:3]
    assert merged["prob_up"].to_list() == pytest.approx([0.2, 0.6, 0.9])
    assert merged["score"].to_list() == [1.0, 2.0, None]
    assert merged["pred_return"].to_list() == [None, 0.01, 0.02]
    # symmetric: the order of the analysts does not change the numbers
    swapped = merge_signals([two, one]).select(merged.columns)
    assert swapped.equals(merged)


def test_two_analysts_in_a_scenario_are_merged(tmp_path):
    bars_csv(tmp_path)
    sc = parse_scenario(
        "name: t\ndata: {source: bars.csv}\nstrategy: {name: simple}\nanalysts:\n"
        "  - {name: naive}\n  - {name: momentum, config: {lookback: 2}}\n", base_dir=tmp_path)
    signals = load_inputs(sc).signals
    from analysts import get_analyst
    from engine.data import load_bars

    bars = load_bars(tmp_path / "bars.csv")
    naive = get_analyst("naive").predict(bars)
    mom = get_analyst("momentum", lookback=2).predict(bars)
    expected = merge_signals([naive, mom])
    assert signals.equals(expected)


def test_resolve_source_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ALFRED_DATA_DIR", str(tmp_path / "store"))
    assert resolve_source("sp500_stocks", tmp_path) == "sp500_stocks"
    path = bars_csv(tmp_path)
    assert resolve_source("bars.csv", tmp_path) == path.resolve()
    target, bars = import_dataset(path, "mine")
    assert target == tmp_path / "store" / "mine.parquet"
    assert resolve_source("mine", tmp_path / "elsewhere") == target
    assert pl.read_parquet(target).equals(bars)
    with pytest.raises(DataError, match="Did you mean 'mine'"):
        resolve_source("mien", tmp_path)


def test_import_dataset_refuses_overwrites_bad_names_and_bad_data(tmp_path):
    path = bars_csv(tmp_path)
    import_dataset(path, "mine", to=tmp_path / "store")
    with pytest.raises(ConfigError, match="--overwrite"):
        import_dataset(path, "mine", to=tmp_path / "store")
    import_dataset(path, "mine", to=tmp_path / "store", overwrite=True)
    with pytest.raises(ConfigError, match="shadow"):
        import_dataset(path, "sp500_stocks", to=tmp_path / "store")
    with pytest.raises(ConfigError, match="file name"):
        import_dataset(path, "../x", to=tmp_path / "store")
    broken = tmp_path / "broken.csv"
    broken.write_text("ts,asset,close\n2022-01-01,A,-5\n")
    with pytest.raises(DataError):
        import_dataset(broken, "broken", to=tmp_path / "store")
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["mine.parquet"]


def test_frame_hash_depends_on_content_only():
    frame = pl.DataFrame({"ts": TS, "asset": ["A"] * 6, "close": [1.0, 2, 3, 4, 5, 6]})
    chunked = pl.concat([frame[:3], frame[3:]], rechunk=False)
    assert frame_sha256(chunked) == frame_sha256(frame)
    changed = frame.with_columns(pl.when(pl.col("close") == 4).then(4.0000001)
                                 .otherwise(pl.col("close")).alias("close"))
    assert frame_sha256(changed) != frame_sha256(frame)
    renamed = frame.rename({"close": "price"})
    assert frame_sha256(renamed) != frame_sha256(frame)
    zeros = pl.DataFrame({"x": [0.0, float("nan")]})
    assert frame_sha256(zeros) == frame_sha256(pl.DataFrame({"x": [-0.0, float("nan")]}))
    nulls = pl.DataFrame({"asset": ["A", None]})
    assert frame_sha256(nulls) != frame_sha256(pl.DataFrame({"asset": ["A", ""]}))


def test_git_state_matches_git():
    root = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)
    state = git_state(root)
    if head.returncode != 0:
        assert state == {"commit": None, "dirty": None}
    else:
        assert state["commit"] == head.stdout.strip()
        assert isinstance(state["dirty"], bool)
    assert git_state(Path("/")) == {"commit": None, "dirty": None}


def test_fingerprint_fields():
    frame = pl.DataFrame({"ts": TS, "asset": ["A"] * 6, "close": [1.0, 2, 3, 4, 5, 6]})
    fp = make_fingerprint(bars=frame, signals=None, seed=3, data_source="x",
                          started_at=datetime(2024, 5, 6, 7, 8, 9))
    assert fp["data"] == {"source": "x", "sha256": frame_sha256(frame), "rows": 6,
                          "columns": ["ts", "asset", "close"]}
    assert fp["seed"] == 3 and fp["timestamp"] == "2024-05-06T07:08:09"
    assert fp["packages"]["numpy"] == np.__version__
    assert fp["packages"]["polars"] == pl.__version__
    assert fp["python"].count(".") == 2
