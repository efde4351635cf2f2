"""How the engine simulates: one frozen, validated settings object for every workflow.

:class:`SimulationSettings` holds the costs, fill model, capital, leverage limits and
quantity rule that a backtest, a walk-forward fold, a stress path and the RL environment
all share; the scenario builds one, ``run_backtest`` takes one (or the same values as
keywords), the RL environment is built from one. Validation happens here and only here,
so a value that a scenario accepts can never be refused later by the engine.

Costs are **on by default**: a backtest without explicit costs still pays commission,
half the bid/ask spread, slippage and a short-borrow fee. ``Costs.zero()`` turns them off
explicitly (reports then say so).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from engine.configs import Frozen
from engine.kernels import ENTRY_TYPE_NAMES, LIMIT_POLICY_NAMES, SimParams
from engine.types import FillName

_NON_NEGATIVE = ("commission_bps", "commission_fixed", "slippage_bps", "half_spread_bps",
                 "borrow_fee_bps")


class Costs(Frozen):
    """Per-order and per-period costs.

    A buy fills at ``ref_price * (1 + (half_spread_bps + slippage_bps) / 1e4)``, a sell at
    ``ref_price * (1 - ...)``. Commission is ``|qty * fill_price| * commission_bps / 1e4``
    plus ``commission_fixed`` per filled order. Shorts pay ``borrow_fee_bps`` a year on
    their market value, accrued every bar; positive cash earns ``cash_rate`` a year.
    ``participation_cap`` limits an order to that share of the fill bar's volume.
    ``impact: sqrt`` adds square-root market impact tied to the fill bar's volume:
    ``impact_coef_bps * sqrt(qty / volume)`` bps on the fill price (``impact_coef_bps`` is
    the impact of trading a whole bar's volume; none on bars without volume).
    """

    owner: ClassVar[str] = "costs"

    commission_bps: float = 1.0
    commission_fixed: float = 0.0
    slippage_bps: float = 2.0
    half_spread_bps: float = 1.0
    borrow_fee_bps: float = 50.0
    cash_rate: float = 0.0
    participation_cap: float | None = None
    impact: Literal["none", "sqrt"] = "none"
    impact_coef_bps: float = Field(10.0, ge=0, allow_inf_nan=False)

    @field_validator(*_NON_NEGATIVE, mode="before")
    @classmethod
    def _finite_non_negative(cls, value: Any, info: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value >= 0):
            raise ValueError(f"costs.{info.field_name} must be a finite number >= 0, "
                             f"got {value!r}")
        return value

    @field_validator("cash_rate", mode="before")
    @classmethod
    def _finite_rate(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise ValueError(f"costs.cash_rate must be a finite number (a yearly rate such as "
                             f"0.02), got {value!r}")
        return value

    @field_validator("participation_cap", mode="before")
    @classmethod
    def _cap_in_unit_interval(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and 0 < value <= 1):
            raise ValueError(
                f"costs.participation_cap must be in (0, 1] (a share of the bar's volume), "
                f"got {value!r}; leave it unset for no cap")
        return value

    @classmethod
    def zero(cls) -> Costs:
        """No costs at all (for cross-checks and 'before costs' figures)."""
        return cls(commission_bps=0.0, commission_fixed=0.0, slippage_bps=0.0,
                   half_spread_bps=0.0, borrow_fee_bps=0.0, cash_rate=0.0,
                   participation_cap=None, impact="none")

    @property
    def price_impact_bps(self) -> float:
        return self.half_spread_bps + self.slippage_bps

    @property
    def one_way_rate(self) -> float:
        """Proportional cost of one trade: commission plus half-spread plus slippage."""
        return (self.commission_bps + self.price_impact_bps) / 1e4

    @property
    def is_zero(self) -> bool:
        return self == Costs.zero()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def to_costs(self) -> Costs:
        """Itself (the scenario's ``costs`` section is a :class:`Costs`)."""
        return self


class Stops(Frozen):
    """Stop-loss, take-profit and trailing stop, as fractions of the entry price.

    The meaning is vectorbt's ``from_signals(sl_stop=, tp_stop=, sl_trail=)``: a long
    entered at reference price ``P`` is closed when the price reaches ``P * (1 - sl_stop)``
    or ``P * (1 + tp_stop)``; with ``sl_trail`` the stop-loss follows the best price since
    the entry. They apply to every position, whatever opened it (signals, weights, the RL
    manager). ``intrabar``: when the stop and the target both lie inside one bar, which
    one counts (``stop_first``, pessimistic, or ``target_first``).
    """

    owner: ClassVar[str] = "stops"

    sl_stop: float | None = Field(None, gt=0, allow_inf_nan=False)
    tp_stop: float | None = Field(None, gt=0, allow_inf_nan=False)
    sl_trail: bool = False
    intrabar: Literal["stop_first", "target_first"] = "stop_first"

    @model_validator(mode="after")
    def _trail_needs_a_stop(self) -> Stops:
        if self.sl_trail and self.sl_stop is None:
            raise ValueError("stops.sl_trail makes the stop-loss trail; set stops.sl_stop "
                             "(e.g. 0.05 for 5% below the best price) or drop sl_trail")
        return self

    @property
    def enabled(self) -> bool:
        return self.sl_stop is not None or self.tp_stop is not None


class Entries(Frozen):
    """How an instruction that opens a position from flat is placed.

    ``market`` (default) fills at the next fill price. ``limit`` rests a buy at
    ``close * (1 - offset)`` (a short entry at ``close * (1 + offset)``), ``stop`` a buy at
    ``close * (1 + offset)`` (a short at ``close * (1 - offset)``), ``close`` being the
    decision bar's; the order is live for ``tif_bars`` bars after the decision and is
    recorded as expired when its level is not reached.
    """

    owner: ClassVar[str] = "entries"

    order: Literal["market", "limit", "stop"] = "market"
    offset: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False)
    tif_bars: int = Field(1, ge=1)


class SimulationSettings(Frozen):
    """Everything that decides how orders fill and the book is kept, besides the plan.

    ``fill='same_close'`` fills a decision at the close it was computed from; it is
    refused unless ``unsafe_same_close=True``. Close-only data always fills at the next
    close (:meth:`fill_for`). ``limit_policy='scale'`` (default) fits a rebalance that
    would breach the gross/net leverage limits or the cash floor by scaling the opening
    part of all its orders by one factor; ``'clip'`` cuts whichever orders come last.
    """

    owner: ClassVar[str] = "simulation settings"

    costs: Costs = Field(default_factory=Costs)
    capital: float = Field(1_000_000.0, gt=0, allow_inf_nan=False)
    fill: FillName = "next_open"
    unsafe_same_close: bool = False
    max_gross_leverage: float = Field(1.0, gt=0, allow_inf_nan=False)
    max_net_leverage: float = Field(1.0, gt=0, allow_inf_nan=False)
    fractional: bool = True
    limit_policy: Literal["scale", "clip"] = "scale"
    stops: Stops = Field(default_factory=Stops)
    entries: Entries = Field(default_factory=Entries)
    close_at_data_end: bool = True  # settle a position when its asset's bars end early

    @model_validator(mode="after")
    def _same_close_guard(self) -> SimulationSettings:
        if self.fill == "same_close" and not self.unsafe_same_close:
            raise ValueError(
                "fill: same_close trades at the close the decision was made at (look-ahead "
                "unless your signals are computed before the close); set "
                "unsafe_same_close: true to accept that, or use next_open / next_close")
        return self

    def replace(self, **values: Any) -> SimulationSettings:
        """A validated copy with ``values`` changed (None values are ignored)."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        merged = {name: getattr(self, name) for name in type(self).model_fields}
        merged.update(given)
        return type(self)(**merged)

    def without_costs(self) -> SimulationSettings:
        return self.replace(costs=Costs.zero())

    def fill_for(self, has_open: bool) -> Literal["next_open", "next_close", "same_close"]:
        """The fill mode on data with or without opens (close-only -> next close)."""
        return "next_close" if self.fill == "next_open" and not has_open else self.fill

    def sim_params(self, periods_per_year: float) -> SimParams:
        """The kernels' scalar settings (shared by backtests and the RL environment)."""
        costs = self.costs
        return SimParams(
            commission_rate=costs.commission_bps / 1e4,
            commission_fixed=float(costs.commission_fixed),
            impact_rate=costs.price_impact_bps / 1e4,
            sqrt_impact_rate=costs.impact_coef_bps / 1e4 if costs.impact == "sqrt" else 0.0,
            borrow_rate_per_bar=costs.borrow_fee_bps / 1e4 / periods_per_year,
            cash_rate_per_bar=costs.cash_rate / periods_per_year,
            participation_cap=(np.nan if costs.participation_cap is None
                               else costs.participation_cap),
            max_gross=float(self.max_gross_leverage),
            max_net=float(self.max_net_leverage),
            fractional=bool(self.fractional),
            limit_policy=LIMIT_POLICY_NAMES[self.limit_policy],
            sl_stop=np.nan if self.stops.sl_stop is None else float(self.stops.sl_stop),
            tp_stop=np.nan if self.stops.tp_stop is None else float(self.stops.tp_stop),
            sl_trail=bool(self.stops.sl_trail),
            stop_first=self.stops.intrabar == "stop_first",
            use_stops=self.stops.enabled,
            entry_type=ENTRY_TYPE_NAMES[self.entries.order],
            entry_offset=float(self.entries.offset),
            entry_tif_bars=int(self.entries.tif_bars),
            use_delisting=False,  # run_backtest / the envs switch it on per panel
        )

    def backtest_kwargs(self) -> dict[str, Any]:
        """These settings as ``run_backtest`` keywords."""
        return {"settings": self}

    def describe(self) -> dict[str, Any]:
        """Plain data for reports and result metadata."""
        return {**self.model_dump(exclude={"costs", "stops", "entries"}),
                "costs": self.costs.to_dict(), "stops": self.stops.model_dump(),
                "entries": self.entries.model_dump()}
