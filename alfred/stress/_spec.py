"""The ``stress:`` section of a scenario: synthetic paths, their generator, shocks.

``alfred stress SCENARIO --paths N`` runs the scenario's analysts and strategies on N
synthetic markets built from the scenario's own data (calibrated regime-switching
simulation, or a stationary block bootstrap of its history), optionally with shocks,
and reports the distribution of Sharpe, max drawdown and CAGR across the paths.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ShockSpec(BaseModel):
    """One shock applied to every path: ``crash``, ``vol_spike`` or ``correlation``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["crash", "vol_spike", "correlation"]
    at: int | str = Field(description="first shocked bar: an index >= 1 or a date")
    days: int = Field(ge=1, description="length of the shock in bars")
    drop: float | None = Field(default=None, description="crash: total fall, 0.3 = -30%")
    factor: float | None = Field(default=None, description="vol_spike: volatility multiple")
    strength: float | None = Field(default=None, description="correlation: 0..1 (1 = all "
                                   "assets move as one)")
    assets: list[str] | None = Field(default=None, description="crash / vol_spike: the "
                                     "assets hit (default all)")

    @model_validator(mode="after")
    def _arguments(self) -> ShockSpec:
        needs = {"crash": "drop", "vol_spike": "factor", "correlation": None}[self.kind]
        if needs is not None and getattr(self, needs) is None:
            raise ValueError(f"a {self.kind} shock needs {needs}")
        for name in ("drop", "factor", "strength"):
            if getattr(self, name) is not None and name != needs and not (
                    name == "strength" and self.kind == "correlation"):
                raise ValueError(f"{name} does not apply to a {self.kind} shock")
        if self.drop is not None and not 0.0 < self.drop < 1.0:
            what = "larger than 100%" if self.drop >= 1.0 else "not a fall"
            raise ValueError(f"crash drop {self.drop:g} is {what}: give the fall as a fraction "
                             "in (0, 1), e.g. 0.3 for -30% (a price cannot fall 100% or more)")
        if self.factor is not None and self.factor <= 0:
            raise ValueError(f"vol_spike factor must be > 0, got {self.factor:g}")
        if self.strength is not None and not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"correlation strength must be in [0, 1], got {self.strength:g}")
        if self.assets is not None and self.kind == "correlation":
            raise ValueError("a correlation shock hits every asset; drop assets")
        if isinstance(self.at, int) and self.at < 1:
            raise ValueError(f"shock at must be a bar index >= 1 (bar 0 has no previous "
                             f"close), got {self.at}")
        return self

    def arguments(self) -> dict:
        """Keyword arguments of :func:`alfred.stress.apply_shocks` for this shock."""
        out: dict = {"kind": self.kind, "at": self.at, "days": self.days}
        for name in ("drop", "factor", "strength", "assets"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


class StressSpec(BaseModel):
    """How the synthetic paths are made. The universe is the scenario's ``data`` assets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generator: Literal["regimes", "bootstrap"] = Field(
        "regimes", description="regimes: Markov regime-switching simulation calibrated to "
        "the data; bootstrap: stationary block bootstrap of the data's daily returns")
    paths: int = Field(100, description="number of synthetic paths (--paths overrides)")
    days: int = Field(756, description="bars per path (756 = about three years)")
    seed: int | None = Field(default=None, description="default: the scenario's seed")
    calibration_start: date | None = Field(default=None, description="first day of the "
                                           "history the generator learns from (default: all)")
    calibration_end: date | None = Field(default=None, description="last day of that history "
                                         "(default: data.end)")
    mean_block: float = Field(20.0, gt=1.0, description="bootstrap: mean block length, bars")
    start: date = Field(date(2030, 1, 1), description="first (synthetic) date of each path")
    shocks: list[ShockSpec] = Field(default_factory=list)
    quantiles: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95])

    @model_validator(mode="after")
    def _checks(self) -> StressSpec:
        if self.paths < 1:
            raise ValueError(f"paths must be at least 1, got {self.paths}")
        if self.days < 20:
            raise ValueError(f"days must be at least 20 bars per path, got {self.days}")
        if any(not 0.0 < q < 1.0 for q in self.quantiles):
            raise ValueError(f"quantiles must lie in (0, 1), got {self.quantiles}")
        if (self.calibration_start and self.calibration_end
                and self.calibration_start >= self.calibration_end):
            raise ValueError("calibration_start must be before calibration_end")
        return self
