"""Trading costs and account limits, as frozen settings.

Costs are **on by default**: a backtest without explicit costs still pays commission,
half the bid/ask spread, slippage and a short-borrow fee. ``Costs.zero()`` turns them off
explicitly (reports then say so).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from engine.errors import ConfigError


@dataclass(frozen=True)
class Costs:
    """Per-order and per-period costs.

    A buy fills at ``ref_price * (1 + (half_spread_bps + slippage_bps) / 1e4)``, a sell at
    ``ref_price * (1 - ...)``. Commission is ``|qty * fill_price| * commission_bps / 1e4``
    plus ``commission_fixed`` per filled order. Shorts pay ``borrow_fee_bps`` a year on
    their market value, accrued every bar; positive cash earns ``cash_rate`` a year.
    ``participation_cap`` limits an order to that share of the fill bar's volume.
    """

    commission_bps: float = 1.0
    commission_fixed: float = 0.0
    slippage_bps: float = 2.0
    half_spread_bps: float = 1.0
    borrow_fee_bps: float = 50.0
    cash_rate: float = 0.0
    participation_cap: float | None = None

    def __post_init__(self) -> None:
        for name in ("commission_bps", "commission_fixed", "slippage_bps", "half_spread_bps",
                     "borrow_fee_bps"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"costs.{name} must be a finite number >= 0, got {value!r}")
        if not math.isfinite(self.cash_rate):
            raise ConfigError(f"costs.cash_rate must be finite, got {self.cash_rate!r}")
        cap = self.participation_cap
        if cap is not None and not (math.isfinite(cap) and 0 < cap <= 1):
            raise ConfigError(
                f"costs.participation_cap must be in (0, 1] (a share of the bar's volume), "
                f"got {cap!r}; leave it unset for no cap"
            )

    @classmethod
    def zero(cls) -> Costs:
        """No costs at all (for cross-checks and 'before costs' figures)."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None)

    @property
    def price_impact_bps(self) -> float:
        return self.half_spread_bps + self.slippage_bps

    @property
    def is_zero(self) -> bool:
        return self == Costs.zero()

    def to_dict(self) -> dict:
        return asdict(self)
