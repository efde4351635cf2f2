"""Scenario schema: strict keys, typed values, YAML errors with lines, anchors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from alfred.scenario import (
    CostsSpec,
    Scenario,
    load_scenario,
    parse_scenario,
    scenario_to_dict,
    scenario_to_yaml,
)
from engine.costs import Costs
from engine.errors import ConfigError

MINIMAL = """\
name: demo
data:
  source: sp500_stocks
strategy:
  name: buy_and_hold
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_scenario(text, source="demo.yaml")
    return str(info.value)


def test_minimal_scenario_gets_documented_defaults():
    sc = parse_scenario(MINIMAL)
    assert sc.name == "demo"
    assert sc.data.assets is None  # "all"
    assert sc.fill == "next_open"
    assert sc.capital == 1_000_000.0
    assert sc.leverage.max_gross == 1.0 and sc.leverage.max_net == 1.0
    assert sc.fractional is True
    assert sc.report.tearsheet and sc.report.plots
    assert sc.output.directory is None
    assert sc.costs.to_costs() == Costs()  # costs are on by default, as in the engine
    assert [s.run_label for s in sc.strategy_list] == ["buy_and_hold"]


def test_costs_section_is_the_engines_costs_model():
    # one shape of costs: the schema's section is engine.Costs itself (it used to be a
    # mirror class whose defaults had to be kept equal by hand)
    assert CostsSpec is Costs
    assert Scenario.model_fields["costs"].annotation is Costs


def test_costs_values_reach_costs_and_its_own_checks():
    sc = parse_scenario(MINIMAL + "costs: {commission_bps: 5, participation_cap: 0.1}\n")
    assert sc.costs.to_costs() == Costs(commission_bps=5, participation_cap=0.1)
    # checked by the schema itself, so `alfred validate` refuses it too
    with pytest.raises(ConfigError, match=r"costs\.slippage_bps \(line \d+\)"):
        parse_scenario(MINIMAL + "costs: {slippage_bps: -1}\n")


def test_unknown_top_level_key_suggests_the_nearest_with_its_line():
    msg = error_of(MINIMAL + "capitl: 5\n")
    assert "capitl (line 6)" in msg
    assert "did you mean 'capital'" in msg


def test_unknown_nested_key_names_its_path_and_allowed_keys():
    msg = error_of("name: demo\ndata:\n  source: x\n  frequncy: 1w\nstrategy: {name: s}\n")
    assert "data.frequncy (line 4)" in msg
    assert "did you mean 'frequency'" in msg
    assert "source, assets, start, end, frequency" in msg


def test_unknown_key_inside_a_list_item():
    msg = error_of(MINIMAL + "analysts:\n  - name: momentum\n    cfg: {lookback: 3}\n")
    assert "analysts[0].cfg (line 8)" in msg
    assert "did you mean 'config'" in msg


@pytest.mark.parametrize(
    ("extra", "path", "expected"),
    [
        ("capital: lots\n", "capital", "expected a number, got 'lots'"),
        ("seed: 1.5\n", "seed", "expected a whole number, got 1.5"),
        ("fractional: maybe\n", "fractional", "expected true or false"),
        ("fill: tomorrow\n", "fill", "expected one of 'next_open', 'next_close' or 'same_close'"),
        ("leverage: {max_gross: 0}\n", "leverage.max_gross", "expected a number > 0"),
        ("report: yes\n", "report", "expected a mapping"),
        ("analysts: momentum\n", "analysts", "expected a list"),
        ("capital: -5\n", "capital", "expected a number > 0"),
    ],
)
def test_wrong_types_name_the_key_and_the_expected_type(extra, path, expected):
    msg = error_of(MINIMAL + extra)
    assert f"{path} (line 6)" in msg
    assert expected in msg


def test_several_problems_are_reported_together():
    msg = error_of(MINIMAL + "capital: x\nseed: y\n")
    assert "2 problems" in msg and "capital (line 6)" in msg and "seed (line 7)" in msg


def test_missing_required_key():
    msg = error_of("name: demo\nstrategy: {name: s}\n")
    assert "data" in msg and "required key is missing" in msg


def test_malformed_yaml_reports_line_and_column():
    msg = error_of("name: demo\ndata:\n  source: x\n   assets: all\n")
    assert "malformed YAML at line 4" in msg
    assert "column" in msg


def test_unclosed_bracket_reports_line():
    msg = error_of("name: demo\ndata: {source: x\nstrategy: {name: s}\n")
    assert "malformed YAML at line 3" in msg


def test_impossible_date_reports_its_line():
    msg = error_of(MINIMAL + "train_until: 2020-13-01\n")
    assert "'2020-13-01' at line 6" in msg


def test_duplicate_keys_are_rejected_not_silently_overwritten():
    msg = error_of(MINIMAL + "seed: 1\nseed: 2\n")
    assert "'seed' appears twice" in msg and "lines 6 and 7" in msg


def test_python_tags_are_refused_by_the_safe_loader():
    msg = error_of(MINIMAL + "seed: !!python/object/apply:os.system ['echo hi']\n")
    assert "line 6" in msg and "never code" in msg


def test_anchors_and_merge_keys_work():
    text = """\
x-costs: &base_costs
  commission_bps: 3
  slippage_bps: 4
x-strategy: &topk
  name: topk_long_short
  config: {k: 2}
name: demo
data: {source: sp500_stocks}
costs:
  <<: *base_costs
  slippage_bps: 9
strategies:
  - {<<: *topk, label: a}
  - {<<: *topk, label: b, config: {k: 3}}
"""
    sc = parse_scenario(text)
    assert sc.costs.commission_bps == 3 and sc.costs.slippage_bps == 9
    assert [(s.label, s.config["k"]) for s in sc.strategy_list] == [("a", 2), ("b", 3)]
    # anchor holders are not settings and vanish from the resolved config
    assert "x-costs" not in scenario_to_dict(sc)


def test_unknown_key_reached_through_a_merge_points_at_the_anchor_line():
    text = "x-d: &d\n  source: x\n  zzz: 1\nname: q\ndata:\n  <<: *d\nstrategy: {name: s}\n"
    assert "data.zzz (line 3)" in error_of(text)


def test_top_level_anchor_holder_without_x_prefix_gets_a_hint():
    msg = error_of("defaults: &d {seed: 1}\n" + MINIMAL)
    assert "unknown key 'defaults'" in msg and "'x-'" in msg


def test_same_close_requires_the_loud_opt_in():
    msg = error_of(MINIMAL + "fill: same_close\n")
    assert "unsafe_same_close: true" in msg
    sc = parse_scenario(MINIMAL + "fill: same_close\nunsafe_same_close: true\n")
    assert sc.fill == "same_close"


def test_strategy_and_strategies_are_exclusive():
    both = MINIMAL + "strategies: [{name: simple}]\n"
    assert "exactly one of 'strategy'" in error_of(both)
    assert "exactly one of 'strategy'" in error_of("name: q\ndata: {source: x}\n")


def test_strategy_labels_must_be_unique_and_path_safe():
    dupes = "name: q\ndata: {source: x}\nstrategies: [{name: simple}, {name: simple}]\n"
    assert "distinct 'label'" in error_of(dupes)
    ok = "name: q\ndata: {source: x}\nstrategies: [{name: simple}, {name: simple, label: s2}]\n"
    assert [s.run_label for s in parse_scenario(ok).strategy_list] == ["simple", "s2"]
    assert "folder name" in error_of(
        "name: q\ndata: {source: x}\nstrategies: [{name: simple, label: a/b}]\n")
    assert "folder name" in error_of(MINIMAL.replace("name: demo", "name: ../up"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("equal_weight", {"dataset": None, "asset": None, "equal_weight": True}),
        ("{asset: AAPL}", {"dataset": None, "asset": "AAPL", "equal_weight": False}),
        ("{dataset: sp500_index, asset: SP500}",
         {"dataset": "sp500_index", "asset": "SP500", "equal_weight": False}),
    ],
)
def test_benchmark_forms(value, expected):
    sc = parse_scenario(MINIMAL + f"benchmark: {value}\n")
    assert sc.benchmark.model_dump() == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("SPY", "ambiguous"),
        ("{equal_weight: true, asset: A}", "not both"),
        ("{}", "needs 'equal_weight'"),
    ],
)
def test_bad_benchmarks(value, fragment):
    assert fragment in error_of(MINIMAL + f"benchmark: {value}\n")


def test_data_section_checks():
    base = "name: q\nstrategy: {name: s}\ndata:\n  source: x\n"
    assert "'all' or a list" in error_of(base + "  assets: AAPL\n")
    assert "more than once" in error_of(base + "  assets: [A, B, A]\n")
    assert "empty list" in error_of(base + "  assets: []\n")
    assert "after data.end" in error_of(base + "  start: 2020-01-02\n  end: 2020-01-01\n")
    assert "not a resample rule" in error_of(base + "  frequency: weekly\n")
    for rule in ("1d", "1w", "2w", "1mo", "1q", "1y"):
        assert parse_scenario(base + f"  frequency: {rule}\n").data.frequency == rule


def test_train_until_checks():
    assert "no analysts" in error_of(MINIMAL + "train_until: 2010-01-01\n")
    with_analyst = MINIMAL + "analysts: [{name: naive}]\n"
    text = with_analyst.replace("source: sp500_stocks", "source: sp500_stocks\n  end: 2010-01-01")
    assert "no bars to backtest" in error_of(text + "train_until: 2010-01-01\n")
    sc = parse_scenario(with_analyst + "train_until: 2010-06-30\n")
    assert sc.train_until == date(2010, 6, 30)


def test_resolved_yaml_round_trips():
    text = (MINIMAL + "benchmark: equal_weight\n"
            "analysts: [{name: momentum, config: {lookback: 5}}]\n")
    sc = parse_scenario(text.replace("source: sp500_stocks",
                                     "source: sp500_stocks\n  start: 2001-02-03"))
    dumped = scenario_to_yaml(sc)
    assert "assets: all" in dumped
    again = parse_scenario(dumped)
    assert again == sc
    assert again.data.start == date(2001, 2, 3)


def test_models_are_frozen():
    sc = parse_scenario(MINIMAL)
    with pytest.raises(ValidationError):
        sc.capital = 5.0


def test_empty_and_non_mapping_files():
    assert "is empty" in error_of("")
    assert "must be a mapping" in error_of("- a\n- b\n")


def test_load_scenario_resolves_relative_inputs_against_its_folder(tmp_path: Path):
    folder = tmp_path / "nested"
    folder.mkdir()
    path = folder / "s.yaml"
    path.write_text(MINIMAL)
    sc = load_scenario(path)
    assert sc.source == str(path)
    assert sc.resolve_path("data/x.csv") == folder.resolve() / "data" / "x.csv"
    assert sc.resolve_path("/abs/x.csv") == Path("/abs/x.csv")


def test_load_scenario_missing_file_and_folder(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="it is a folder"):
        load_scenario(tmp_path)


def test_errors_name_the_file(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL + "sed: 1\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(info.value).startswith(str(path))
    assert "did you mean 'seed'" in str(info.value)


def test_scenario_model_can_be_built_in_python():
    sc = Scenario(name="py", data={"source": "sp500_stocks"}, strategy={"name": "simple"})
    assert sc.base_dir == Path.cwd()
    assert sc.strategy_list[0].name == "simple"
