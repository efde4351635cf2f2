"""The ``sweep:`` section of a scenario: which keys vary, over which values, how many runs.

Keys are dotted paths into the scenario as written in YAML (``strategy.config.k``,
``costs.commission_bps``, ``strategies.1.config.threshold``, ``analysts.0.name``); a
number indexes a list. Every combination is validated against the scenario schema and
the components' own configs *before* anything runs, so a typo in a key fails in a second,
not after an hour of runs.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.errors import ConfigError


class Range(BaseModel):
    """A continuous or integer range for random search: uniform, or log-uniform."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"range low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self

    def sample(self, rng: np.random.Generator) -> float | int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.integer else float(value)


class SweepSpec(BaseModel):
    """A grid (every combination) or a seeded random sample of scenario variants."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["grid", "random"] = "grid"
    params: dict[str, list[Any] | Range] = Field(default_factory=dict)
    symbols: list[str] | Literal["all"] | None = Field(
        default=None, description="run every variant on each symbol alone (data.assets)")
    n: int | None = Field(default=None, ge=1, description="random mode: how many variants")
    seed: int = 0
    metric: str = "sharpe"
    order: Literal["desc", "asc"] = "desc"
    tearsheet: bool = Field(False, description="HTML tear sheet per run (seconds each)")
    plots: bool = False

    @field_validator("params")
    @classmethod
    def _non_empty_lists(cls, value: dict[str, list[Any] | Range]) -> dict:
        for key, values in value.items():
            if isinstance(values, list) and not values:
                raise ValueError(f"sweep key {key!r} has an empty list of values; the grid "
                                 "would be empty. List at least one value")
            if not key or any(not part for part in key.split(".")):
                raise ValueError(f"sweep key {key!r} is not a dotted path like "
                                 "strategy.config.k")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value):
        if isinstance(value, list):
            if not value:
                raise ValueError("symbols is an empty list; list symbols or use 'all'")
            if len(set(value)) != len(value):
                raise ValueError("symbols lists a symbol twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if not self.params and self.symbols is None:
            raise ValueError("the sweep has no params and no symbols: nothing varies, so the "
                             "grid is empty. Add params (dotted scenario keys) or symbols")
        ranges = [k for k, v in self.params.items() if isinstance(v, Range)]
        if self.mode == "grid" and ranges:
            raise ValueError(f"{ranges} are ranges, which only random mode can sample; use "
                             "mode: random with n, or list values")
        if self.mode == "random" and self.n is None:
            raise ValueError("mode: random needs n, the number of variants to run")
        if self.mode == "grid" and self.n is not None:
            raise ValueError("n is for mode: random; a grid runs every combination")
        return self


def expand(spec: SweepSpec, universe: list[str] | None = None) -> list[dict[str, Any]]:
    """The variants as ``{dotted key: value}`` dicts, in a fixed order.

    A symbol sweep sets ``data.assets`` to one symbol per variant. Random mode samples
    distinct grid points when every param is a list (without replacement, capped at the
    grid's size), and independent draws when ranges are involved.
    """
    keys = list(spec.params)
    if spec.mode == "grid":
        combos = [dict(zip(keys, values, strict=True))
                  for values in itertools.product(*(spec.params[k] for k in keys))]
    else:
        rng = np.random.default_rng(spec.seed)
        if all(isinstance(v, list) for v in spec.params.values()):
            grid = list(itertools.product(*(spec.params[k] for k in keys)))
            picks = rng.choice(len(grid), size=min(spec.n, len(grid)), replace=False)
            combos = [dict(zip(keys, grid[i], strict=True)) for i in sorted(picks)]
        else:
            combos = []
            for _ in range(spec.n):
                combo = {}
                for key in keys:
                    values = spec.params[key]
                    combo[key] = (values.sample(rng) if isinstance(values, Range)
                                  else values[int(rng.integers(len(values)))])
                combos.append(combo)
    if spec.symbols is not None:
        symbols = universe if spec.symbols == "all" else spec.symbols
        if not symbols:
            raise ConfigError("symbols: all needs the data's universe; none was found")
        combos = [{**combo, "data.assets": [symbol]} for symbol in symbols for combo in combos]
    if not combos:
        raise ConfigError("the sweep expands to no variants; check params and symbols")
    return combos


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (dotted, numbers index lists) in a nested dict/list, creating dicts."""
    parts = key.split(".")
    node: Any = tree
    walked = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                where = ".".join(walked) or "the scenario"
                raise ConfigError(f"sweep key {key!r}: {where} is a list of {len(node)}; "
                                  f"{part!r} is not an index in it")
            index = int(part)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            where = ".".join(walked)
            raise ConfigError(f"sweep key {key!r}: {where} is a value ({node!r}), not a "
                              "section; a key cannot go below it")
        walked.append(part)
