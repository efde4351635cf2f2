"""Scenario files: the one YAML file that reproduces a result.

A scenario names the data, the analysts, the strategy (or several, compared side by
side), costs, capital, fill model, leverage limits, seed, report options and output
directory. The schema is strict on purpose: a typo in a key is an error with a "did you
mean", never a silently ignored setting, because a silently ignored ``slipage_bps`` makes
a backtest look better than it is. YAML is read with ``yaml.safe_load`` only and
components are picked from registries by name, so a scenario can never import code.

Anchors and merge keys work (``costs: {<<: *base, slippage_bps: 3}``); anchors shared by
several sections live under top-level keys starting with ``x-`` (the docker-compose
convention), which the schema ignores. Duplicate keys are errors, not "last one wins".

Relative paths *inside* a scenario (``data.source``, an analyst's ``path``) are resolved
against the scenario file's folder, so ``alfred run`` works from any working directory;
``output.directory`` is resolved against the working directory, like any CLI output.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from alfred._scenario_errors import line_of, pydantic_to_config_error
from alfred._yaml import load_yaml
from alfred.stress import StressSpec
from alfred.sweep import SweepSpec
from alfred.walkforward import WalkForwardSpec
from engine.errors import ConfigError
from engine.executor import ExecutorSpec
from engine.settings import Costs, Entries, SimulationSettings, Stops
from engine.text import shorten
from engine.types import FillName
from portfolio import RLSpec  # pydantic only: no torch/gymnasium at import

# Resampling rules a scenario may ask for: a count and a polars calendar unit.
_FREQUENCY_RE = re.compile(r"^[1-9][0-9]*(d|w|mo|q|y)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# Bars are kept as nanoseconds since 1970 in 64 bits: these are the whole days that fit.
FIRST_DATE, LAST_DATE = date(1677, 9, 22), date(2262, 4, 11)


def _in_supported_range(value: date | None, key: str) -> date | None:
    if value is not None and not FIRST_DATE <= value <= LAST_DATE:
        raise ValueError(
            f"{key} {value} is outside the supported range {FIRST_DATE}..{LAST_DATE} (bar "
            f"times are 64-bit nanoseconds); leave {key} out to use the data's own "
            f"{'first' if key.endswith('start') else 'last'} bar, or pick a date in range")
    return value


class _Strict(BaseModel):
    """Frozen and closed: unknown keys are errors (see module docstring for why)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSpec(_Strict):
    """Which bars to load and which slice of them the scenario uses."""

    source: str = Field(description="bundled dataset name, imported dataset name or a path")
    assets: list[str] | None = Field(default=None, description="universe; 'all' = every asset")
    start: date | None = None
    end: date | None = None
    frequency: str | None = Field(default=None, description="resample rule, e.g. 1w, 1mo, 1q")
    regime: str | None = Field(default=None, description="a named historical window (gfc, "
                               "covid_crash, ...; alfred regimes lists them): sets start/end")
    price: Literal["raw", "adjusted"] | None = Field(
        default=None, description="for data with open/high/low and an adjusted close: trade "
        "on the raw prices, or on adjusted ones (open/high/low scaled by adj_close / close)")
    membership: str | None = Field(
        default=None, description="a CSV/parquet file of (asset, start, end, "
        "delisting_return): a point-in-time universe (engine.membership)")

    @field_validator("start", "end")
    @classmethod
    def _representable(cls, value: date | None, info: ValidationInfo) -> date | None:
        return _in_supported_range(value, f"data.{info.field_name}")

    @field_validator("assets", mode="before")
    @classmethod
    def _all_means_every_asset(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value == "all":
                return None
            raise ValueError(f"assets must be 'all' or a list of asset names, got {shorten(value)}")
        return value

    @field_validator("assets")
    @classmethod
    def _unique_assets(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("assets is an empty list; list at least one asset or use 'all'")
            dupes = sorted({a for a in value if value.count(a) > 1})
            if dupes:
                raise ValueError(f"assets lists {dupes} more than once; list each asset once")
        return value

    @field_validator("frequency")
    @classmethod
    def _known_frequency(cls, value: str | None) -> str | None:
        if value is not None and not _FREQUENCY_RE.match(value):
            raise ValueError(
                f"frequency {shorten(value)} is not a resample rule; use a count and a unit such "
                "as 1d, 1w, 2w, 1mo, 1q or 1y (or leave it out to keep the data's own bars)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _regime_sets_the_period(cls, values: Any) -> Any:
        if not isinstance(values, dict) or values.get("regime") is None:
            return values
        from reports.regimes import get_regime

        try:
            regime = get_regime(str(values["regime"]))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        for key in ("start", "end"):
            given = values.get(key)
            if given is not None and str(given) != str(getattr(regime, key)):
                raise ValueError(
                    f"data.regime {regime.name!r} sets the period ({regime.start} to "
                    f"{regime.end}); drop data.{key} ({given}) or drop data.regime")
        return {**values, "start": regime.start, "end": regime.end}

    @model_validator(mode="after")
    def _ordered_period(self) -> DataSpec:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"data.start {self.start} is after data.end {self.end}; swap them")
        return self

    @field_serializer("assets")
    def _write_all(self, value: list[str] | None) -> list[str] | str:
        return "all" if value is None else value


class Benchmark(_Strict):
    """What the strategy is measured against.

    Exactly one form: ``equal_weight`` (the data's own universe, rebalanced every bar, no
    costs), ``{asset: X}`` (an asset of the data), or ``{dataset: NAME}`` with an optional
    ``asset`` (a bundled or imported dataset, e.g. the S&P 500 index).
    """

    dataset: str | None = None
    asset: str | None = None
    equal_weight: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> Benchmark:
        if self.equal_weight and (self.dataset or self.asset):
            raise ValueError(
                "benchmark is either 'equal_weight' or {dataset/asset}, not both; drop one"
            )
        if not self.equal_weight and not (self.dataset or self.asset):
            raise ValueError(
                "benchmark needs 'equal_weight', {asset: NAME} or {dataset: NAME, asset: NAME}"
            )
        return self


class AnalystSpec(_Strict):
    """An analyst from ``analysts.REGISTRY`` and the settings handed to its constructor."""

    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class StrategySpec(_Strict):
    """A strategy from ``strategies.REGISTRY``; ``label`` names its run among several."""

    name: str
    label: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("label")
    @classmethod
    def _path_safe_label(cls, value: str | None) -> str | None:
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(
                f"label {shorten(value)} becomes a folder name; use letters, digits, '_', '-' "
                "or '.'"
            )
        return value

    @property
    def run_label(self) -> str:
        return self.label or self.name


# The scenario's ``costs:`` section is the engine's own Costs model (one shape, one
# validation); CostsSpec is its name in the schema.
CostsSpec = Costs


class Leverage(_Strict):
    max_gross: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    max_net: float = Field(default=1.0, gt=0, allow_inf_nan=False)


class ReportOptions(_Strict):
    tearsheet: bool = True
    plots: bool = True


class OutputSpec(_Strict):
    directory: str | None = Field(
        default=None, description="run folder; default runs/<name>/<timestamp>"
    )


class Scenario(_Strict):
    """A complete, validated scenario. Build it with :func:`load_scenario`."""

    name: str
    description: str = ""
    data: DataSpec
    benchmark: Benchmark | None = None
    analysts: list[AnalystSpec] = Field(default_factory=list)
    train_until: date | None = Field(
        default=None,
        description="analysts are fit on bars up to and including this date; the backtest "
        "starts at the first bar after it so no decision uses in-sample signals",
    )
    train_start: date | None = Field(
        default=None,
        description="the first bar any analyst that trains may learn a label from (earlier "
        "bars still warm up its features); an analyst's own config.train_start overrides "
        "it. Analysts that learn nothing (momentum, naive, file, a foundation model "
        "without fine_tune) do not take it",
    )
    strategy: StrategySpec | None = None
    strategies: list[StrategySpec] | None = None
    costs: Costs = Field(default_factory=Costs)
    capital: float = Field(default=1_000_000.0, gt=0, allow_inf_nan=False)
    fill: FillName = "next_open"
    unsafe_same_close: bool = False
    leverage: Leverage = Field(default_factory=Leverage)
    fractional: bool = True
    limit_policy: Literal["scale", "clip"] = "scale"
    stops: Stops = Field(default_factory=Stops)
    entries: Entries = Field(default_factory=Entries)
    seed: int = 0
    report: ReportOptions = Field(default_factory=ReportOptions)
    output: OutputSpec = Field(default_factory=OutputSpec)
    # what `alfred train-rl` trains and evaluates (the RL portfolio manager)
    rl: RLSpec | None = None
    # how fan-outs of this scenario (sweep variants, walk-forward folds, stress paths,
    # tuning trials) run: local processes by default, or Ray
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    # what `alfred sweep` varies (a grid or random sample of this file's own keys)
    sweep: SweepSpec | None = None
    # what `alfred walkforward` does: analysts refit per fold, one stitched OOS curve
    walkforward: WalkForwardSpec | None = None
    # what `alfred stress` does: the strategies on synthetic paths built from the data
    stress: StressSpec | None = None

    # Folder of the scenario file, for resolving relative input paths (None = cwd), and
    # the file's name for error messages.
    _base_dir: Path | None = PrivateAttr(default=None)
    _source: str = PrivateAttr(default="<scenario>")

    @field_validator("name")
    @classmethod
    def _path_safe_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                f"name {shorten(value)} becomes a folder name; use letters, digits, '_', '-' or '.'"
            )
        return value

    @field_validator("train_until")
    @classmethod
    def _representable(cls, value: date | None) -> date | None:
        return _in_supported_range(value, "train_until")

    @field_validator("train_start")
    @classmethod
    def _train_start_fits(cls, value: date | None, info: ValidationInfo) -> date | None:
        value = _in_supported_range(value, "train_start")
        if value is None:
            return value
        specs = info.data.get("analysts") or []
        if not any(analyst_trains(s.name, s.config) for s in specs):
            names = ", ".join(s.name for s in specs) or "none"
            raise ValueError(f"train_start is set but no analyst here trains (analysts: "
                             f"{names}); only lstm, magnitude and a foundation model with "
                             "fine_tune learn from bars. Drop train_start")
        until, data = info.data.get("train_until"), info.data.get("data")
        start = data.start if data is not None else None
        if until is not None and value >= until:
            raise ValueError(f"train_start {value} is not before train_until {until} (the "
                             "analysts' cut-off); move train_start earlier")
        if until is None and start is not None and value >= start:
            raise ValueError(f"train_start {value} is not before data.start {start} (without "
                             "train_until the analysts are fit up to the backtest's first "
                             "bar); move train_start earlier or set train_until")
        return value

    @field_validator("benchmark", mode="before")
    @classmethod
    def _benchmark_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value == "equal_weight":
                return {"equal_weight": True}
            name = value if len(value) <= 80 else "NAME"
            raise ValueError(
                f"benchmark {shorten(value)} is ambiguous; write 'equal_weight', "
                f"{{asset: {name}}} for an asset of the data or {{dataset: {name}}} "
                "for a bundled or imported dataset"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if (self.strategy is None) == (self.strategies is None):
            raise ValueError(
                "give exactly one of 'strategy' (one run) or 'strategies' (a list compared "
                "side by side)"
            )
        if self.strategies is not None:
            if not self.strategies:
                raise ValueError("strategies is an empty list; list at least one strategy")
            labels = [s.run_label for s in self.strategies]
            dupes = sorted({lb for lb in labels if labels.count(lb) > 1})
            if dupes:
                raise ValueError(
                    f"strategies share the run label(s) {dupes}; give each a distinct 'label'"
                )
        self.simulation  # noqa: B018 - the engine's own checks, at schema time
        if self.train_until is not None:
            if not self.analysts:
                raise ValueError("train_until is set but there are no analysts to fit; drop it")
            if self.data.end is not None and self.train_until >= self.data.end:
                raise ValueError(
                    f"train_until {self.train_until} leaves no bars to backtest before data.end "
                    f"{self.data.end}; move it earlier"
                )
        return self

    @property
    def simulation(self) -> SimulationSettings:
        """Costs, fill, capital, limits and quantity rule as the engine takes them."""
        return SimulationSettings(
            costs=self.costs, capital=self.capital, fill=self.fill,
            unsafe_same_close=self.unsafe_same_close,
            max_gross_leverage=self.leverage.max_gross,
            max_net_leverage=self.leverage.max_net, fractional=self.fractional,
            limit_policy=self.limit_policy, stops=self.stops, entries=self.entries)

    @property
    def strategy_list(self) -> list[StrategySpec]:
        """Every strategy run, whether the file used ``strategy`` or ``strategies``."""
        return list(self.strategies) if self.strategies is not None else [self.strategy]

    @property
    def base_dir(self) -> Path:
        return self._base_dir if self._base_dir is not None else Path.cwd()

    def resolve_path(self, value: str) -> Path:
        """An input path from the scenario, relative to the scenario file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def source(self) -> str:
        """Where the scenario came from (its file path), for error messages."""
        return self._source

    def located(self, base_dir: Path | None, source: str | None = None) -> Scenario:
        """A copy that resolves relative input paths against ``base_dir``."""
        clone = self.model_copy()
        clone._base_dir = None if base_dir is None else Path(base_dir).resolve()
        clone._source = source if source is not None else self._source
        return clone


def analyst_trains(name: str, config: dict[str, Any]) -> bool:
    """Whether analyst ``name`` with ``config`` learns from the scenario's bars, and so
    takes ``train_start``: a trainable analyst, a foundation model with ``fine_tune``, or
    a composite with such a member. Unknown names are left to the registry's error."""
    from analysts import REGISTRY

    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        return False
    config = config if isinstance(config, dict) else {}  # a bad member config: its own error
    fields = cls.config_class.model_fields
    if "train_start" in fields:
        return "fine_tune" not in fields or config.get("fine_tune") is not None
    return any(analyst_trains(m["name"], m.get("config") or {}) for m in _members(config))


def inherit_train_start(name: str, config: dict[str, Any], start: date | None
                        ) -> dict[str, Any]:
    """``config`` with the scenario's ``train_start`` filled in where the analyst (or a
    member of a composite) trains and does not set its own."""
    if start is None or not isinstance(config, dict) or not analyst_trains(name, config):
        return config
    out = dict(config)
    if "members" in out and isinstance(out["members"], list):
        out["members"] = [_inherit_member(m, start) for m in out["members"]]
    for key in ("calm", "volatile"):
        if isinstance(out.get(key), dict):
            out[key] = _inherit_member(out[key], start)
    from analysts import REGISTRY

    if "train_start" in REGISTRY[name].config_class.model_fields:
        out.setdefault("train_start", start)
    return out


def _members(config: dict[str, Any]) -> list[dict[str, Any]]:
    members = config.get("members") if isinstance(config.get("members"), list) else []
    members = [*members, *(config[k] for k in ("calm", "volatile")
                           if isinstance(config.get(k), dict))]
    return [m for m in members if isinstance(m, dict) and isinstance(m.get("name"), str)]


def _inherit_member(member: Any, start: date) -> Any:
    if not isinstance(member, dict) or not isinstance(member.get("name"), str):
        return member
    config = member.get("config") if isinstance(member.get("config"), dict) else {}
    return {**member, "config": inherit_train_start(member["name"], config, start)}


def parse_scenario(
    text: str, *, source: str = "<string>", base_dir: Path | None = None,
    trust: bool = False,
) -> Scenario:
    """Validate scenario YAML text; errors name ``source``, the key path and its line.

    ``trust=False`` (the default) refuses network targets in the file (see
    :func:`refuse_network_targets`); the CLI's ``--trust-scenario`` sets it.
    """
    raw, root = load_yaml(text, source)
    if raw is None:
        raise ConfigError(f"{source} is empty; a scenario needs at least 'name', 'data' and "
                          "'strategy' (see scenarios/quickstart.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of keys (name:, data:, strategy: ...), "
                          f"not a {type(raw).__name__}")
    if not trust:
        refuse_network_targets(raw, root, source)
    # Top-level ``x-...`` keys hold YAML anchors shared by the sections below (the
    # docker-compose convention); they are not settings, so the schema never sees them.
    raw = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise pydantic_to_config_error(exc, raw, text, source, Scenario) from None
    return scenario.located(base_dir, source)


def load_scenario(path: str | Path, *, trust: bool = False) -> Scenario:
    """Read and validate a scenario file (strict schema, safe YAML, anchors allowed)."""
    path = Path(path)
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise ConfigError(f"scenario file {path} not found{hint}; pass the path of a .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read scenario file {path}: {exc}") from None
    return parse_scenario(text, source=str(path), base_dir=path.resolve().parent, trust=trust)


# Addresses that stay on this machine: a private Ray instance started for the run.
_LOCAL_ADDRESSES = ("local",)


def refuse_network_targets(raw: dict, root: yaml.Node | None, source: str) -> None:
    """A scenario file is data someone may hand you: it must not choose where your data and
    code are sent. ``executor.address`` (a Ray cluster) comes from ``--address`` or
    ``ALFRED_RAY_ADDRESS``; ``--trust-scenario`` lets a file you wrote name one."""
    tail = ("a scenario file may not choose where your data and code are sent. Pass "
            "--address on the command line or set ALFRED_RAY_ADDRESS, or pass "
            "--trust-scenario if you wrote this file")
    sweep = raw.get("sweep")
    params = sweep.get("params") if isinstance(sweep, dict) else None
    for key in params if isinstance(params, dict) else ():
        if str(key) == "executor" or str(key).startswith("executor."):
            line = line_of(root, ("sweep", "params", key))
            raise ConfigError(f"{source}: sweep.params key {shorten(key, 80)} (line {line}) "
                              f"varies the executor, which could name a Ray cluster; {tail}")
    executor = raw.get("executor")
    if not isinstance(executor, dict) or "address" not in executor:
        return
    address = executor["address"]
    if address in _LOCAL_ADDRESSES:
        return
    line = line_of(root, ("executor", "address"))
    raise ConfigError(f"{source}: executor.address (line {line}) names a Ray cluster "
                      f"({shorten(address)}); {tail}")


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Plain data with every default filled in (dates as ISO strings)."""
    return scenario.model_dump(mode="json")


def scenario_to_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario_to_dict(scenario), sort_keys=False, allow_unicode=True)
