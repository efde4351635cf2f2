"""The dense, aligned view of a bars frame that the kernels consume.

A :class:`Panel` is built once per run from validated long bars (see
``engine.data.align_bars``). Every price matrix has shape ``(n_bars, n_assets)`` and holds
NaN where an asset has no bar: such a cell is *not tradable*. Valuation carries the last
known close forward; trading never does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Panel:
    ts: np.ndarray  # datetime64[ns], shape (n_bars,), strictly increasing
    assets: tuple[str, ...]
    open: np.ndarray  # float64 (n_bars, n_assets); equals close where the data has no open
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # NaN where the data has no volume
    periods_per_year: float  # annualisation factor inferred from the bar spacing
    has_open: bool = True
    # per asset, the return a holder gets when the asset leaves the universe after its last
    # bar (a membership file's delisting_return); None or NaN: unknown (closed at the last
    # close, with a warning). See engine.membership.
    delisting_return: np.ndarray | None = None

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[0])

    @property
    def n_assets(self) -> int:
        return int(self.close.shape[1])

    @property
    def tradable(self) -> np.ndarray:
        """Boolean (n_bars, n_assets): True where the asset has a bar."""
        return np.isfinite(self.close)

    def asset_index(self, asset: str) -> int:
        try:
            return self.assets.index(asset)
        except ValueError:
            raise KeyError(asset) from None
