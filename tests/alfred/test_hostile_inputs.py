"""Hostile and broken input: bounded cost, exit 2 with a message, nothing silently dropped.

Each fix of issue 13 (items 1, 2, 3 and 6) has its test here; the table of concrete bad
inputs run through the CLI, and the fuzzer, are in ``test_fuzz_scenarios.py``.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from alfred._yaml import MAX_ALIASES, MAX_DEPTH, load_yaml
from alfred.cli import app
from alfred.outputs import output_error, staged_folder
from alfred.scenario import load_scenario, parse_scenario
from engine.errors import ConfigError, DataError
from engine.executor import parse_executor_spec
from engine.text import shorten

runner = CliRunner(env={"COLUMNS": "200"})
N_BARS = 30
TS = [datetime(2021, 1, 4) + timedelta(days=i) for i in range(N_BARS)]

# 9 anchors of 9 aliases each: 81 aliases, 9**9 (387 million) strings once expanded.
ALIAS_BOMB = "\n".join(
    ['x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"x-{b}: &{b} [" + ",".join([f"*{a}"] * 9) + "]"
       for a, b in zip("abcdefgh", "bcdefghi", strict=True)]
)


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result, " ".join(result.output.split())


def write_bars(folder: Path, assets: dict[str, range] | None = None) -> Path:
    """bars.csv: three assets (or ``assets``: name -> bar indices it trades on)."""
    t = np.arange(N_BARS)
    assets = assets or {"A": range(N_BARS), "B": range(N_BARS), "C": range(N_BARS)}
    rows = [(TS[i], name, float(100 + i + k)) for k, (name, span) in enumerate(assets.items())
            for i in t if i in span]
    path = folder / "bars.csv"
    pl.DataFrame(rows, schema=["ts", "asset", "close"], orient="row").sort(
        "ts", "asset").write_csv(path)
    return path


def write_scenario(folder: Path, body: str, *, bars: bool = True) -> Path:
    if bars:
        write_bars(folder)
    path = folder / "s.yaml"
    path.write_text("name: tiny\nreport: {tearsheet: false, plots: false}\n"
                    + textwrap.dedent(body))
    return path


# ---------------------------------------------------------------- 1. bounded cost


def test_alias_bomb_is_refused_naming_the_limit():
    text = f"name: bomb\n{ALIAS_BOMB}\ndescription: *i\ndata: {{source: x}}\n"
    with pytest.raises(ConfigError, match=r"bomb\.yaml: line \d+, column \d+: the aliases "
                       r"expand to more than 100,000 values"):
        parse_scenario(text, source="bomb.yaml")


def test_too_many_aliases_are_refused():
    body = "x-a: &a 1\nlist: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(ConfigError, match=f"more than {MAX_ALIASES} YAML aliases"):
        load_yaml(body, "many.yaml")


def test_a_few_aliases_and_merges_still_work():
    data, _ = load_yaml("x-a: &a {k: 1}\nb: {<<: *a, j: 2}\nc: [*a, *a]\n", "ok.yaml")
    assert data["b"] == {"k": 1, "j": 2} and data["c"] == [{"k": 1}, {"k": 1}]


def test_deep_nesting_is_refused_without_recursion_error():
    text = "name: deep\ndescription: " + "[" * 10_000 + "]" * 10_000 + "\n"
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels"):
        parse_scenario(text, source="deep.yaml")


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(ConfigError, match=r"alias \*a is used inside its own anchor"):
        load_yaml("a: &a [1, *a]\n", "loop.yaml")


def test_alias_bomb_through_the_cli_exits_2_fast_and_small(tmp_path):
    """The 800-byte bomb as ``description: *bomb``: exit 2 within seconds, under 1 GB."""
    write_bars(tmp_path)
    path = tmp_path / "bomb.yaml"
    path.write_text(f"name: bomb\n{ALIAS_BOMB}\ndescription: *i\ndata: {{source: bars.csv}}\n"
                    "strategy: {name: equal_weight}\n")
    assert len(path.read_bytes()) < 800
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from alfred.cli import app\n"
        "r = CliRunner().invoke(app, ['run', sys.argv[1], '--out', sys.argv[2], '-q'])\n"
        # VmHWM belongs to this process image: ru_maxrss would carry over the forking
        # parent's peak (pytest late in a long suite) across exec
        "peak_kib = next(int(l.split()[1]) for l in open('/proc/self/status')\n"
        "                if l.startswith('VmHWM:'))\n"
        "print(r.exit_code, peak_kib, ' '.join(r.output.split()))\n"
    )
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", probe, str(path), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=60, env=env)
    code, peak_kib, message = done.stdout.strip().split(" ", 2)
    assert code == "2", done.stdout + done.stderr
    assert int(peak_kib) < 1024 * 1024, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"
    assert "alias bomb" in message and "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "run").exists()


def test_echoed_values_are_bounded(tmp_path):
    huge = "x" * 1_000_000
    path = write_scenario(tmp_path, f"data: {{source: bars.csv}}\nstrategy: {{name: "
                          f"equal_weight}}\ncapital: {huge}\nfill: {huge}\n")
    result, text = invoke("validate", str(path))
    assert result.exit_code == 2 and len(result.output) < 5_000, len(result.output)
    assert "1,000,002 characters" in text and "capital (line" in text


def test_a_control_character_is_named_with_its_position():
    with pytest.raises(ConfigError, match=r"x\.yaml: character 8 is a control character "
                       r"\(#x0000\)"):
        parse_scenario("name: a\x00\n", source="x.yaml")


def test_a_search_space_is_read_within_the_same_bounds(tmp_path):
    from alfred.cli.analyst import read_search_space

    path = tmp_path / "space.yaml"
    path.write_text(ALIAS_BOMB + "\nanalyst: magnitude\nparams: {lr: *i}\n")
    with pytest.raises(ConfigError, match=r"space\.yaml: line \d+, column \d+: the aliases "
                       "expand"):
        read_search_space(path)
    path.write_text("analyst: magnitude\nparams: {width: {type: int, low: 8, high: 16}}\n")
    assert read_search_space(path).analyst == "magnitude"


def test_a_component_config_error_quoting_a_huge_value_is_bounded():
    from alfred.inputs import build_analysts

    huge = "g" * 100_000
    scenario = parse_scenario(
        "name: f\ndata: {source: x}\nstrategy: {name: simple}\nanalysts:\n"
        f"  - {{name: lstm, config: {{features: {{groups: [returns, {huge}]}}}}}}\n",
        source="f.yaml")
    with pytest.raises(ConfigError) as caught:
        build_analysts(scenario)
    assert len(str(caught.value)) < 3_000 and "characters)" in str(caught.value)


def test_shorten_says_how_long_the_value_was():
    assert shorten("abc") == "'abc'"
    assert shorten("y" * 500).endswith("... (502 characters)")


def test_a_worker_count_above_the_cores_needs_the_command_line():
    cores = os.cpu_count() or 1
    with pytest.raises(ConfigError, match=f"more than this machine's {cores} CPU cores"):
        parse_executor_spec({"kind": "local", "workers": cores + 1})
    assert parse_executor_spec({"kind": "local"}, workers=str(cores + 1)).workers == cores + 1
    with pytest.raises(ConfigError, match=r"w\.yaml: executor \(line 4\): workers"):
        parse_scenario(f"name: w\ndata: {{source: x}}\nstrategy: {{name: simple}}\n"
                       f"executor: {{workers: {cores * 1000}}}\n", source="w.yaml")


# ---------------------------------------------------------------- 2. exit 2, never a traceback


@pytest.mark.parametrize("end", ["9999-12-31", "3000-01-01", "2262-04-12"])
def test_an_end_past_2262_names_the_supported_range(end):
    with pytest.raises(ConfigError, match=r"data\.end .* outside the supported range "
                       r"1677-09-22\.\.2262-04-11"):
        parse_scenario(f"name: e\ndata: {{source: x, end: {end}}}\nstrategy: {{name: simple}}\n",
                       source="e.yaml")


def test_the_last_supported_day_loads(tmp_path):
    path = write_scenario(tmp_path, "data: {source: bars.csv, end: 2262-04-11}\n"
                          "strategy: {name: equal_weight}\n")
    result, text = invoke("validate", str(path))
    assert result.exit_code == 0, text


@pytest.mark.parametrize("where", ["below_a_file", "proc"])
def test_an_out_that_cannot_be_written_exits_2_naming_it(tmp_path, where):
    path = write_scenario(tmp_path, "data: {source: bars.csv}\nstrategy: {name: equal_weight}\n")
    (tmp_path / "plain").write_text("not a folder")
    out = tmp_path / "plain" / "run" if where == "below_a_file" else Path("/proc/alfred-x/run")
    result, text = invoke("run", str(path), "--out", str(out), "-q")
    assert result.exit_code == 2, result.output
    assert "error: cannot write the run folder" in text and str(out) in text
    assert "Traceback" not in result.output


def test_a_full_disk_names_the_folder_and_leaves_nothing(tmp_path, monkeypatch):
    import alfred.run

    path = write_scenario(tmp_path, "data: {source: bars.csv}\nstrategy: {name: equal_weight}\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(alfred.run, "_write_config", full)
    result, text = invoke("run", str(path), "--out", str(tmp_path / "out" / "run"), "-q")
    assert result.exit_code == 2, result.output
    assert f"the disk holding {tmp_path / 'out'} filled up" in text
    assert not (tmp_path / "out").exists()  # nor its staging folder, nor the parent made for it


def test_a_full_disk_in_a_staged_folder_names_the_target(tmp_path):
    target = tmp_path / "t"
    with (pytest.raises(ConfigError, match=f"the disk holding {tmp_path} filled up"),
          staged_folder(target, overwrite=False)):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))
    assert list(tmp_path.iterdir()) == []


def test_output_errors_say_what_to_do():
    message = str(output_error(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x"),
                               Path("/mnt/ro/x")))
    assert "/mnt/ro/x" in message and "read-only" in message and "--out" in message


# ---------------------------------------------------------------- 3. nothing dropped silently


def _weights_scenario(tmp_path: Path, rows: list[tuple[str, str, float]],
                      extra: str = "") -> Path:
    pl.DataFrame(rows, schema=["ts", "asset", "target_weight"], orient="row").write_csv(
        tmp_path / "w.csv")
    return write_scenario(tmp_path, f"""\
        data: {{source: bars.csv}}
        analysts: [{{name: file, config: {{path: w.csv{extra}}}}}]
        strategy: {{name: weights}}
        """)


def test_a_typo_asset_in_a_weights_file_exits_2_naming_row_and_asset(tmp_path):
    path = _weights_scenario(tmp_path, [("2021-01-05", "A", 0.5), ("2021-01-05", "BB", 0.5)])
    result, text = invoke("run", str(path), "--out", str(tmp_path / "run"), "-q")
    assert result.exit_code == 2, result.output
    assert "w.csv" in text and "row 1 (line 3) is for asset 'BB'" in text
    assert "did you mean 'B'?" in text and "ignore_unknown_assets: true" in text
    assert not (tmp_path / "run").exists()


def test_ignore_unknown_assets_keeps_the_old_behaviour_with_a_warning(tmp_path):
    path = _weights_scenario(tmp_path, [("2021-01-05", "A", 0.5), ("2021-01-05", "BB", 0.5)],
                             ", ignore_unknown_assets: true")
    result, text = invoke("run", str(path), "--out", str(tmp_path / "run"), "-q")
    assert result.exit_code == 0, text
    assert "dropped 1 rows for 1 asset(s) the data does not have ('BB')" in text


def test_a_weights_row_after_the_last_bar_exits_2(tmp_path):
    path = _weights_scenario(tmp_path, [("2021-01-05", "A", 0.5), ("2021-03-01", "A", 0.5)])
    result, text = invoke("run", str(path), "--out", str(tmp_path / "run"), "-q")
    assert result.exit_code == 2, text
    assert "row 1 (line 3) (asset 'A', ts 2021-03-01 00:00:00) is dated after the last bar" \
        in text


def test_rows_after_an_explicit_data_end_are_outside_the_period(tmp_path):
    path = _weights_scenario(tmp_path, [("2021-01-05", "A", 0.5), ("2021-01-25", "A", 0.5)])
    text = path.read_text().replace("source: bars.csv", "source: bars.csv, end: 2021-01-20")
    path.write_text(text)
    result, out = invoke("run", str(path), "--out", str(tmp_path / "run"), "-q")
    assert result.exit_code == 0, out


def test_a_listed_asset_without_bars_in_the_period_exits_2(tmp_path):
    write_bars(tmp_path, {"A": range(N_BARS), "B": range(N_BARS), "C": range(0, 5)})
    path = write_scenario(tmp_path, "data: {source: bars.csv, assets: [A, C], "
                          "start: 2021-01-15}\nstrategy: {name: equal_weight}\n", bars=False)
    result, text = invoke("validate", str(path))
    assert result.exit_code == 2, text
    assert "data.assets lists 'C', which have no bar in" in text


def test_assets_all_warns_about_an_asset_without_bars_in_the_period(tmp_path):
    write_bars(tmp_path, {"A": range(N_BARS), "B": range(N_BARS), "C": range(0, 5)})
    path = write_scenario(tmp_path, "data: {source: bars.csv, start: 2021-01-15}\n"
                          "strategy: {name: equal_weight}\n", bars=False)
    result, text = invoke("validate", str(path))
    assert result.exit_code == 0, text
    assert "1 asset(s) of" in text and "are not in the universe: 'C'" in text


def test_explicit_next_open_on_close_only_data_warns(tmp_path):
    path = write_scenario(tmp_path, "data: {source: bars.csv}\nstrategy: {name: equal_weight}\n"
                          "fill: next_open\n")
    result, text = invoke("validate", str(path))
    assert result.exit_code == 0 and "fill: next_open, but" in text and "next bar's close" in text
    path.write_text(path.read_text().replace("fill: next_open\n", ""))
    result, text = invoke("validate", str(path))
    assert result.exit_code == 0 and "fill: next_open" not in text  # the default is quiet


def _ohlc_with_adjusted_close(folder: Path) -> None:
    rows = []
    for i, ts in enumerate(TS):
        close = 100.0 + i
        factor = 0.5 if i < 15 else 1.0  # a 2:1 split on bar 15, back-adjusted
        rows.append((ts, "A", close - 1, close + 2, close - 2, close, close * factor, 1000.0))
    pl.DataFrame(rows, schema=["Date", "Symbol", "Open", "High", "Low", "Close", "Adj Close",
                               "Volume"], orient="row").write_csv(folder / "bars.csv")


@pytest.mark.parametrize("price", [None, "raw", "adjusted"])
def test_ohlc_with_an_adjusted_close_says_which_close_it_trades(tmp_path, price):
    from alfred.inputs import load_inputs

    _ohlc_with_adjusted_close(tmp_path)
    extra = "" if price is None else f", price: {price}"
    path = write_scenario(tmp_path, f"data: {{source: bars.csv{extra}}}\n"
                          "strategy: {name: equal_weight}\n", bars=False)
    with pytest.warns(UserWarning) if price is None else _no_price_note():
        inputs = load_inputs(load_scenario(path))
    first = inputs.bars.row(0, named=True)
    if price == "adjusted":
        assert first["close"] == 50.0 and first["open"] == 49.5 and first["high"] == 51.0
    else:
        assert first["close"] == 100.0 and first["open"] == 99.0


class _no_price_note:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._seen = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        assert not [w for w in self._seen if "adjusted close" in str(w.message)]


def test_price_adjusted_without_an_adjusted_close_is_refused(tmp_path):
    path = write_scenario(tmp_path, "data: {source: bars.csv, price: adjusted}\n"
                          "strategy: {name: equal_weight}\n")
    result, text = invoke("validate", str(path))
    assert result.exit_code == 2 and "data.price: adjusted, but" in text


# ---------------------------------------------------------------- 6. no reaching out


def test_a_scenario_cannot_name_a_ray_cluster(tmp_path):
    path = write_scenario(tmp_path, "data: {source: bars.csv}\nstrategy: {name: equal_weight}\n"
                          "executor: {kind: ray, address: 'ray://attacker.example:10001'}\n")
    result, text = invoke("validate", str(path))
    assert result.exit_code == 2, text
    assert "executor.address (line 5) names a Ray cluster" in text
    assert "--address" in text and "ALFRED_RAY_ADDRESS" in text and "--trust-scenario" in text
    trusted = load_scenario(path, trust=True)
    assert trusted.executor.address == "ray://attacker.example:10001"
    assert load_scenario(path.parent / "s.yaml", trust=True).executor.kind == "ray"


def test_a_sweep_cannot_vary_the_executor():
    text = ("name: r\ndata: {source: x}\nstrategy: {name: simple}\nsweep:\n  params:\n"
            "    executor.address: ['ray://evil:10001']\n")
    with pytest.raises(ConfigError, match=r"sweep\.params key 'executor\.address' \(line 6\) "
                       r"varies the executor"):
        parse_scenario(text, source="s.yaml")


def test_a_local_ray_instance_needs_no_trust():
    scenario = parse_scenario("name: r\ndata: {source: x}\nstrategy: {name: simple}\n"
                              "executor: {kind: ray, address: local}\n")
    assert scenario.executor.address == "local"


def test_the_ray_address_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ALFRED_RAY_ADDRESS", "ray://head:10001")
    assert parse_executor_spec({"kind": "ray"}).address == "ray://head:10001"
    monkeypatch.delenv("ALFRED_RAY_ADDRESS")
    assert parse_executor_spec({"kind": "ray"}).address == "local"


@pytest.mark.parametrize("command", ["sweep", "walkforward", "stress", "train-rl", "tune",
                                     "run", "validate"])
def test_every_scenario_command_takes_trust_scenario(command):
    result, text = invoke(*command.split(), "--help")
    assert result.exit_code == 0 and "--trust-scenario" in text


def test_training_folders_resolve_against_the_scenario_file(tmp_path):
    from alfred.inputs import resolve_analyst_paths

    path = write_scenario(tmp_path, """\
        data: {source: bars.csv}
        analysts:
          - name: magnitude
            config: {train: {checkpoint_dir: ckpt, log_dir: logs, epochs: 1}}
        strategy: {name: topk_long_short, config: {k: 1}}
        """)
    scenario = load_scenario(path)
    config = resolve_analyst_paths(scenario.analysts[0], scenario)
    assert config["train"]["checkpoint_dir"] == str(tmp_path.resolve() / "ckpt")
    assert config["train"]["log_dir"] == str(tmp_path.resolve() / "logs")
    assert config["train"]["epochs"] == 1


def test_data_errors_echo_bounded_values(tmp_path):
    from engine.data import load_bars

    bad = "2021-01-0" + "9" * 5000
    (tmp_path / "b.csv").write_text(f"ts,asset,close\n2021-01-04,A,1\n{bad},A,2\n")
    with pytest.raises(DataError) as caught:
        load_bars(tmp_path / "b.csv")
    assert len(str(caught.value)) < 1000 and "characters)" in str(caught.value)
