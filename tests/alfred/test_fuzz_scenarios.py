"""Scenario fuzzing: a mutated shipped scenario is accepted or refused with a message.

Random mutations of every file in ``scenarios/`` (keys renamed, dropped or invented;
values swapped for other types, huge, empty, non-finite or out of range; anchors, alias
bombs and self-referencing aliases; text damage and other encodings) go through the
scenario schema and the component registries (``parse_scenario`` + strategy and analyst
construction: everything ``alfred validate`` checks before it loads data and fits) and,
for the scenarios that validate in a second, through ``alfred validate`` itself. The
property: a ``ConfigError``/``DataError`` with a bounded message (exit 2), or success
(exit 0); never another exception, never a traceback.

The table at the end is the concrete bad-input corpus of issue 13, each case run through
the CLI: exit 2, and the message names the file and the key, row or asset.
"""

from __future__ import annotations

import copy
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from alfred.cli import app
from alfred.inputs import build_analysts
from alfred.run import _build_strategies
from alfred.scenario import parse_scenario
from engine.errors import ConfigError, DataError

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = {p.name: p.read_text(encoding="utf-8") for p in sorted(SCENARIOS.glob("*.yaml"))}
# validate in about a second (no model to fit): fuzzed through the CLI as well
QUICK = ("equal_weight.yaml", "buy_and_hold.yaml", "weights_file.yaml")
MAX_MESSAGE = 20_000  # characters: every echo is shortened, so no message comes near this

runner = CliRunner(env={"COLUMNS": "200"})
FUZZ = settings(max_examples=60, deadline=20_000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ------------------------------------------------------------------ mutations

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
    st.text(max_size=30), st.just("x" * 100_000), st.just(""), st.just([]), st.just({}),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=2),
    st.sampled_from(["9999-12-31", "3000-01-01", "0001-01-01", "2020-13-01", "all", "auto",
                     "-1", "1e400", ".nan", "ray://10.0.0.1:10001", "../../etc/passwd",
                     "!!python/object/apply:os.system ['true']", "\x00", "日本語"]),
)


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path (mapping keys and list indices) in a loaded YAML tree."""
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _paths(value, (*prefix, i))
    return out


def _parent(tree: Any, path: tuple) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


@st.composite
def mutated_tree(draw) -> tuple[str, str]:
    """(scenario name, YAML text) with one to three structural mutations."""
    name = draw(st.sampled_from(sorted(SHIPPED)))
    tree = copy.deepcopy(yaml.safe_load(SHIPPED[name]))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(tree)
        path = draw(st.sampled_from(paths))
        parent, last = _parent(tree, path), path[-1]
        action = draw(st.sampled_from(["value", "drop", "rename", "invent", "wrap"]))
        if action == "value":
            parent[last] = draw(ODD_VALUES)
        elif action == "drop":
            del parent[last]
        elif action == "rename" and isinstance(last, str):
            typo = draw(st.sampled_from([last[:-1], last + "s", last.upper(), "_" + last]))
            parent[typo or "x"] = parent.pop(last)
        elif action == "invent" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(ODD_VALUES)
        elif action == "wrap":
            parent[last] = [parent[last]] if draw(st.booleans()) else {"value": parent[last]}
    return name, yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


BOMB = ("x-a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"x-{b}: &{b} [" + ",".join([f"*{a}"] * 9) + "]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)))


@st.composite
def mutated_text(draw) -> tuple[str, str]:
    """(scenario name, text) damaged as text: aliases, bytes, encodings, truncation."""
    name = draw(st.sampled_from(sorted(SHIPPED)))
    text = SHIPPED[name]
    lines = text.splitlines(keepends=True)
    action = draw(st.sampled_from(["bomb", "self_alias", "deep", "truncate", "insert",
                                   "tabs", "bom", "utf16", "duplicate", "tag"]))
    if action == "bomb":
        key = draw(st.sampled_from(["description", "name", "seed", "capital", "x-z"]))
        text = BOMB + text + f"\n{key}: *i\n"
    elif action == "self_alias":
        text += "\nx-loop: &loop [1, *loop]\n"
    elif action == "deep":
        depth = draw(st.sampled_from([50, 200, 5_000]))
        text += "\nx-deep: " + "[" * depth + "]" * depth + "\n"
    elif action == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif action == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(min_size=1, max_size=8)) + text[at:]
    elif action == "tabs":
        text = text.replace("  ", "\t", draw(st.integers(1, 3)))
    elif action == "bom":
        text = "\ufeff" + text
    elif action == "utf16":
        text = text.encode("utf-16").decode("latin-1")  # the bytes of another encoding
    elif action == "duplicate" and lines:
        line = draw(st.sampled_from(lines))
        text = text + ("\n" if not text.endswith("\n") else "") + line
    elif action == "tag":
        text += "\nx-evil: !!python/object/apply:os.system ['echo fuzz']\n"
    return name, text


# ------------------------------------------------------------------ the properties


@pytest.fixture(scope="module", autouse=True)
def _components_imported():
    """Build every shipped scenario once, so the deadline times the checks, not the first
    import of torch or a model package."""
    for name, text in SHIPPED.items():
        scenario = parse_scenario(text, source=name, base_dir=SCENARIOS)
        _build_strategies(scenario)
        build_analysts(scenario)


def _check(text: str, name: str) -> None:
    """Accepted, or refused with a bounded ConfigError/DataError naming the file."""
    source = f"fuzz/{name}"
    try:
        scenario = parse_scenario(text, source=source, base_dir=SCENARIOS)
        _build_strategies(scenario)
        build_analysts(scenario)
    except (ConfigError, DataError) as exc:
        message = str(exc)
        assert len(message) < MAX_MESSAGE, f"{len(message):,}-character message"
        assert "Traceback" not in message


@FUZZ
@given(mutated_tree())
def test_structural_mutations_are_accepted_or_refused_with_a_message(case):
    name, text = case
    _check(text, name)


@FUZZ
@given(mutated_text())
def test_text_mutations_are_accepted_or_refused_with_a_message(case):
    name, text = case
    _check(text, name)


@settings(max_examples=20, deadline=30_000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(QUICK).flatmap(lambda name: st.tuples(
    st.just(name), st.sampled_from(["value", "text"]), st.randoms(use_true_random=False))))
def test_alfred_validate_exits_0_or_2_on_mutated_scenarios(case):
    name, kind, rnd = case
    tree = yaml.safe_load(SHIPPED[name])
    if kind == "value":
        path = rnd.choice(_paths(tree))
        _parent(tree, path)[path[-1]] = rnd.choice(
            [None, -1, 0, "", "x" * 10_000, [], {}, "9999-12-31", 1e308, True, "APPL"])
        text = yaml.safe_dump(tree, sort_keys=False)
    else:
        text = SHIPPED[name]
        at = rnd.randrange(len(text))
        text = text[:at] + rnd.choice(["\t", ":", "- ", "*x", "&", "{", "'", "\x00"]) + text[at:]
    path = SCENARIOS / f".fuzz-{name}"  # beside the original, so data/ paths resolve
    try:
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(app, ["validate", str(path)])
    finally:
        path.unlink(missing_ok=True)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and len(result.output) < MAX_MESSAGE
    if result.exit_code == 2:
        assert "error: " in result.output


def test_every_shipped_scenario_passes_the_schema_and_registries():
    for name, text in SHIPPED.items():
        scenario = parse_scenario(text, source=name, base_dir=SCENARIOS)
        _build_strategies(scenario)
        build_analysts(scenario)


# ------------------------------------------------------------------ the corpus

N_BARS = 30
TS = [datetime(2021, 1, 4) + timedelta(days=i) for i in range(N_BARS)]
BASE = "name: tiny\nreport: {tearsheet: false, plots: false}\n"


def _bars(folder: Path) -> None:
    rows = [(TS[i], a, float(100 + i + k)) for i in range(N_BARS)
            for k, a in enumerate(("A", "B", "C"))]
    pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").write_csv(
        folder / "bars.csv")
    pl.DataFrame([("2021-01-05", "A", 0.5), ("2021-01-05", "BB", 0.5)],
                 schema=["ts", "asset", "target_weight"], orient="row").write_csv(
        folder / "typo.csv")
    pl.DataFrame([("2021-01-05", "A", 0.5), ("2021-02-20", "A", 0.5)],
                 schema=["ts", "asset", "target_weight"], orient="row").write_csv(
        folder / "late.csv")
    (folder / "mixed.csv").write_text("ts,asset,close\n2021-01-04,A,1\n"
                                      "2021-01-05T00:00:00+00:00,A,2\n")
    (folder / "toto").mkdir()
    (folder / "toto" / "config.json").write_text('{"patch_size": 4, "embed_dim": 8}')
    (folder / "toto" / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(300))


STRATEGY = "strategy: {name: equal_weight}\n"
# (case, scenario body after name/report, extra CLI args, fragments the message must hold)
CORPUS = [
    ("alias_bomb", BOMB + "description: *i\ndata: {source: bars.csv}\n" + STRATEGY, [],
     ["the aliases expand to more than 100,000 values"]),
    ("alias_loop", "x-l: &l [1, *l]\ndata: {source: bars.csv}\n" + STRATEGY, [],
     ["alias *l is used inside its own anchor"]),
    ("deep_list", "description: " + "[" * 10_000 + "]" * 10_000 + "\ndata: {source: bars.csv}\n"
     + STRATEGY, [], ["nested more than 100 levels deep"]),
    ("huge_value", "data: {source: bars.csv}\n" + STRATEGY + "capital: " + "9" * 300 + "x\n",
     [], ["capital (line", "characters)"]),
    ("end_9999", "data: {source: bars.csv, end: 9999-12-31}\n" + STRATEGY, [],
     ["data.end (line 3)", "1677-09-22..2262-04-11"]),
    ("end_3000", "data: {source: bars.csv, end: 3000-01-01}\n" + STRATEGY, [],
     ["data.end (line 3)", "1677-09-22..2262-04-11"]),
    ("workers_10000", "data: {source: bars.csv}\n" + STRATEGY + "executor: {workers: 10000}\n",
     [], ["executor (line 5)", "workers 10000 is more than this machine's"]),
    ("ray_address", "data: {source: bars.csv}\n" + STRATEGY
     + "executor: {kind: ray, address: 'ray://evil:10001'}\n", [],
     ["executor.address (line 5)", "--trust-scenario"]),
    ("corrupt_toto", "data: {source: bars.csv}\nanalysts: [{name: toto, config: "
     "{weights_dir: toto}}]\nstrategy: {name: topk_long_short, config: {k: 1}}\n", [],
     ["model.safetensors: not a readable safetensors file"]),
    ("typo_asset_in_weights", "data: {source: bars.csv}\nanalysts: [{name: file, config: "
     "{path: typo.csv}}]\nstrategy: {name: weights}\n", [],
     ["typo.csv", "row 1 (line 3) is for asset 'BB'", "did you mean 'B'?"]),
    ("weights_after_last_bar", "data: {source: bars.csv}\nanalysts: [{name: file, config: "
     "{path: late.csv}}]\nstrategy: {name: weights}\n", [],
     ["late.csv", "row 1 (line 3) (asset 'A'", "after the last bar"]),
    ("asset_without_bars", "data: {source: bars.csv, assets: [A, D]}\n" + STRATEGY, [],
     ["'D'"]),
    ("mixed_time_zones", "data: {source: mixed.csv}\n" + STRATEGY, [],
     ["mixed.csv", "mix naive and zoned values", "line 2", "line 3"]),
    ("out_below_a_file", "data: {source: bars.csv}\n" + STRATEGY, ["--out", "{tmp}/bars.csv/run"],
     ["cannot write the run folder", "bars.csv/run", "not a folder"]),
    ("out_on_proc", "data: {source: bars.csv}\n" + STRATEGY, ["--out", "/proc/alfred-fuzz/run"],
     ["cannot write the run folder /proc/alfred-fuzz/run"]),
]


@pytest.mark.parametrize(("case", "body", "extra", "fragments"), CORPUS,
                         ids=[c[0] for c in CORPUS])
def test_bad_input_corpus_exits_2_naming_file_and_key(tmp_path, case, body, extra, fragments):
    _bars(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(BASE + textwrap.dedent(body))
    # analysts are fitted (and their files read) by a run; validate checks configs only
    out = ["--out", str(tmp_path / "run")] if "analysts" in body else []
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra] or out
    command = ["run", str(path), "-q", *args] if args else ["validate", str(path)]
    result = runner.invoke(app, command)
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output[-2000:]
    assert "error: " in text and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
    assert str(path) in text or "cannot write the run folder" in text
    for fragment in fragments:
        assert fragment in text, fragment
    assert len(result.output) < MAX_MESSAGE
