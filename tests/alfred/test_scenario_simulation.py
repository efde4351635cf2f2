"""The scenario's top-level ``limit_policy`` and ``stops`` keys reach the engine's settings."""

from __future__ import annotations

import pytest

from alfred.scenario import parse_scenario
from engine.errors import ConfigError

MINIMAL = """\
name: demo
data:
  source: sp500_stocks
strategy:
  name: buy_and_hold
"""


def test_limit_policy_defaults_to_scale_and_reaches_the_settings():
    assert parse_scenario(MINIMAL).simulation.limit_policy == "scale"
    sc = parse_scenario(MINIMAL + "limit_policy: clip\n")
    assert sc.simulation.limit_policy == "clip"
    assert sc.simulation.sim_params(252.0).limit_policy == 0


def test_unknown_limit_policy_names_the_key():
    with pytest.raises(ConfigError, match="limit_policy"):
        parse_scenario(MINIMAL + "limit_policy: trim\n", source="demo.yaml")


def test_stops_section_reaches_the_settings_and_checks_its_keys():
    sc = parse_scenario(MINIMAL + "stops: {sl_stop: 0.05, sl_trail: true, tp_stop: 0.1}\n")
    params = sc.simulation.sim_params(252.0)
    assert params.use_stops and params.sl_trail and params.sl_stop == 0.05
    with pytest.raises(ConfigError, match="did you mean 'sl_stop'"):
        parse_scenario(MINIMAL + "stops: {sl_stp: 0.05}\n", source="demo.yaml")


def test_entries_section_reaches_the_settings():
    sc = parse_scenario(MINIMAL + "entries: {order: limit, offset: 0.01, tif_bars: 5}\n")
    params = sc.simulation.sim_params(252.0)
    assert (params.entry_type, params.entry_offset, params.entry_tif_bars) == (1, 0.01, 5)
    with pytest.raises(ConfigError, match="entries"):
        parse_scenario(MINIMAL + "entries: {order: iceberg}\n", source="demo.yaml")


def test_data_membership_makes_the_scenario_point_in_time(tmp_path):
    from alfred.run import run_scenario
    from alfred.scenario import ReportOptions

    (tmp_path / "members.csv").write_text(
        "asset,start,end,delisting_return\n"
        "AAPL,2015-01-01,,\n"
        "JNJ,2015-01-01,2016-06-30,-0.25\n")
    text = ("name: pit\ndata:\n  source: sp500_stocks\n  assets: [AAPL, JNJ]\n"
            "  start: 2016-01-01\n  end: 2016-12-31\n  membership: members.csv\n"
            "strategy:\n  name: equal_weight\n")
    (tmp_path / "pit.yaml").write_text(text)
    from alfred.scenario import load_scenario

    sc = load_scenario(tmp_path / "pit.yaml")
    sc = sc.model_copy(update={"report": ReportOptions(tearsheet=False, plots=False)})
    summary = run_scenario(sc, out=tmp_path / "run")
    import polars as pl

    fills = pl.read_parquet(next(summary.run_dir.rglob("fills.parquet")))
    jnj = fills.filter(pl.col("asset") == "JNJ")
    assert jnj["trigger"].to_list()[-1] == "delisting"  # settled at its last member bar
    assert jnj["ts"].max().date().isoformat() <= "2016-06-30"
    assert summary.runs[0].metrics["order_outcomes"]["triggered_fills"] == {"delisting": 1}


def test_sqrt_impact_from_the_costs_section():
    sc = parse_scenario(MINIMAL + "costs: {impact: sqrt, impact_coef_bps: 20}\n")
    assert sc.simulation.sim_params(252.0).sqrt_impact_rate == pytest.approx(0.002)
    with pytest.raises(ConfigError, match="impact"):
        parse_scenario(MINIMAL + "costs: {impact: cubic}\n", source="demo.yaml")
