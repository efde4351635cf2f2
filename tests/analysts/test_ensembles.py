"""Ensembles: inverse-MAE weights from held-out bars, and the volatility regime switch."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from analysts import get_analyst
from engine.errors import ConfigError, DataError
from tests.analysts._ml_helpers import close_only, ohlcv_bars

MEMBERS = [{"name": "momentum", "config": {"lookback": 20}},
           {"name": "naive", "config": {"horizon": 5}},
           {"name": "momentum", "config": {"lookback": 60, "skip": 5}, "label": "slow"}]


@pytest.fixture(scope="module")
def bars():
    return close_only(ohlcv_bars(400, 4, seed=2))


def test_weights_are_inverse_validation_mae_from_held_out_bars(bars):
    ensemble = get_analyst("ensemble", members=MEMBERS, horizon=5, validation_fraction=0.25)
    ensemble.fit(bars, until="2020-12-31")
    # recompute one member's validation MAE by hand
    stamps = bars.filter(pl.col("ts") <= pl.datetime(2020, 12, 31))["ts"].unique().sort()
    n_val = int(stamps.len() * 0.25)
    val_start, label_end = stamps[-n_val], stamps[-6]
    seen = bars.filter(pl.col("ts") <= stamps[-1])
    forecast = get_analyst("naive", horizon=5).predict(seen, start=val_start, end=label_end)
    realised = seen.sort("asset", "ts").with_columns(
        (pl.col("close").shift(-5).over("asset") / pl.col("close") - 1).alias("real"))
    joined = forecast.join(realised, on=["ts", "asset"]).drop_nulls("real")
    mae = float((joined["pred_return"] - joined["real"]).abs().mean())
    assert ensemble.validation["1:naive"] == pytest.approx(mae, rel=1e-12)
    inverse = {k: 1 / v for k, v in ensemble.validation.items()}
    for label, weight in ensemble.weights.items():
        assert weight == pytest.approx(inverse[label] / sum(inverse.values()))


def test_predictions_are_the_weighted_average_of_the_members(bars):
    ensemble = get_analyst("ensemble", members=MEMBERS, horizon=5).fit(bars, until="2020-10-31")
    out = ensemble.predict(bars, start="2020-11-01")
    parts = {label: member.predict(bars, start="2020-11-01")
             for label, member in zip(ensemble.labels, ensemble.members, strict=True)}
    row = out.filter(pl.col("asset") == "S1").row(-1, named=True)
    expected = sum(ensemble.weights[label] * parts[label].filter(
        (pl.col("asset") == "S1") & (pl.col("ts") == row["ts"]))["pred_return"][0]
        for label in ensemble.labels)
    assert row["pred_return"] == pytest.approx(expected, rel=1e-12)
    assert out["score"].equals(out["pred_return"].alias("score"))


def test_ensemble_errors(bars):
    with pytest.raises(ConfigError, match="must be fit"):
        get_analyst("ensemble", members=MEMBERS).predict(bars)
    with pytest.raises(ConfigError, match="members"):
        get_analyst("ensemble", members=MEMBERS[:1])
    with pytest.raises(ConfigError, match="unknown analyst 'nope'"):
        get_analyst("ensemble", members=[{"name": "nope"}, MEMBERS[0]])
    with pytest.raises(DataError, match="fewer than the horizon"):
        get_analyst("ensemble", members=MEMBERS, horizon=60).fit(bars.head(200))


def test_regime_switch_uses_the_volatile_member_when_trailing_vol_is_high():
    # calm first half, wild second half
    rng = np.random.default_rng(4)
    r = np.concatenate([rng.normal(0, 0.003, 150), rng.normal(0, 0.04, 150)])
    close = 100 * np.exp(np.cumsum(r))
    from datetime import datetime, timedelta

    ts = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(300)]
    bars = pl.DataFrame({"ts": ts, "asset": "A", "close": close})
    switch = get_analyst("regime_switch", calm={"name": "momentum", "config": {"lookback": 10}},
                         volatile={"name": "naive"}, threshold=0.3, periods_per_year=252)
    out = switch.fit(bars).predict(bars)
    early = out.filter(pl.col("ts") < ts[140])
    late = out.filter(pl.col("ts") > ts[180])
    assert not early["volatile_regime"].any() and late["volatile_regime"].all()
    naive = get_analyst("naive").predict(bars)
    joined = late.join(naive, on=["ts", "asset"], suffix="_naive")
    np.testing.assert_allclose(joined["pred_return"], joined["pred_return_naive"])


def test_best_per_symbol_follows_each_symbols_lowest_validation_error(bars):
    ensemble = get_analyst("ensemble", members=MEMBERS, horizon=5, combine="best_per_symbol")
    ensemble.fit(bars, until="2020-10-31")
    assert set(ensemble.best) == {"S0", "S1", "S2", "S3"}
    for asset, label in ensemble.best.items():
        errors = ensemble.validation_by_symbol[asset]
        assert errors[label] == min(errors.values())
    out = ensemble.predict(bars, start="2020-11-01")
    for asset, label in ensemble.best.items():
        member = ensemble.members[ensemble.labels.index(label)]
        expected = member.predict(bars, start="2020-11-01").filter(pl.col("asset") == asset)
        got = out.filter(pl.col("asset") == asset)
        assert (got["member"] == label).all()
        assert got.join(expected, on=["ts", "asset"], suffix="_m").select(
            (pl.col("pred_return") - pl.col("pred_return_m")).abs().max()).item() == 0.0


def test_member_paths_resolve_against_the_scenario_file(tmp_path):
    from alfred.inputs import resolve_analyst_paths
    from alfred.scenario import parse_scenario

    text = """
name: x
data: {source: sp500_stocks}
strategy: {name: topk_long_short}
analysts:
  - name: ensemble
    config:
      members:
        - {name: toto, config: {weights_dir: models/toto}}
        - {name: regime_switch, config: {calm: {name: kronos, config: {weights_dir: k,
                                                                       tokenizer_dir: t}},
                                         volatile: {name: naive}}}
"""
    scenario = parse_scenario(text, source="x.yaml", base_dir=tmp_path)
    config = resolve_analyst_paths(scenario.analysts[0], scenario)
    assert config["members"][0]["config"]["weights_dir"] == str(tmp_path / "models" / "toto")
    calm = config["members"][1]["config"]["calm"]["config"]
    assert calm["weights_dir"] == str(tmp_path / "k")
    assert calm["tokenizer_dir"] == str(tmp_path / "t")


def test_a_run_report_carries_the_ensemble_weights(tmp_path):
    import json

    from alfred.run import run_scenario
    from alfred.scenario import parse_scenario

    text = """
name: ens
data: {source: sp500_stocks, assets: [AAPL, MSFT, XOM], start: 2020-01-01, end: 2020-12-31}
analysts:
  - name: ensemble
    config:
      members: [{name: momentum, config: {lookback: 20}}, {name: naive, config: {horizon: 5}}]
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return}}
report: {tearsheet: false, plots: false}
"""
    summary = run_scenario(parse_scenario(text, source="ens.yaml"), out=tmp_path / "run")
    saved = json.loads((summary.runs[0].run_dir / "analysts.json").read_text())
    weights = saved["0:ensemble"]["weights"]
    assert set(weights) == {"0:momentum", "1:naive"}
    assert sum(weights.values()) == pytest.approx(1.0)
    plain = parse_scenario(text.replace("ensemble", "x").split("analysts:")[0]
                           + "analysts: [{name: momentum}]\n"
                           + "strategy: {name: topk_long_short, config: {k: 1}}\n"
                           + "report: {tearsheet: false, plots: false}\n", source="p.yaml")
    run = run_scenario(plain, out=tmp_path / "plain").runs[0]
    assert not (run.run_dir / "analysts.json").exists()  # nothing learnt, nothing written
