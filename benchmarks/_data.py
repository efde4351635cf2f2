"""Benchmark panels: the bundled 20 stocks, and a 500-asset universe tiled from them.

The panels are built once, outside every timed region, as plain :class:`engine.Panel`
objects -- the same footing as vectorbt receiving ready wide frames. Only numpy and the
engine are imported here, so the memory probe's baseline stays ours alone.
"""

from __future__ import annotations

import numpy as np

from engine import DataError, Panel, load_bars, to_panel

STOCKS_DATASET = "sp500_stocks"


def _close_only_panel(ts: np.ndarray, assets: tuple[str, ...], close: np.ndarray,
                      periods_per_year: float) -> Panel:
    # one shared array for open/high/low: close-only data, no copies
    volume = np.full(close.shape, np.nan)
    return Panel(ts=ts, assets=assets, open=close, high=close, low=close, close=close,
                 volume=volume, periods_per_year=periods_per_year, has_open=False)


def stocks_panel(n_bars: int | None = None) -> Panel:
    """The bundled 20-stock daily closes (8,313 bars), optionally only the last ``n_bars``.

    The workloads need a gap-free panel (the SMA and momentum windows assume one), which
    the bundled set is; a gap would make the peers disagree for reasons unrelated to speed.
    """
    panel = to_panel(load_bars(STOCKS_DATASET))
    close = panel.close
    if n_bars is not None:
        if not 2 <= n_bars <= panel.n_bars:
            raise DataError(f"n_bars={n_bars} is outside 2..{panel.n_bars}, the length of "
                            f"the bundled '{STOCKS_DATASET}' set; pick a size in that range")
        close = close[-n_bars:]
    if not np.isfinite(close).all():
        t, j = np.argwhere(~np.isfinite(close))[0]
        raise DataError(f"'{STOCKS_DATASET}' has no close for {panel.assets[j]} at bar {t}; "
                        "the benchmark workloads need a gap-free panel (rebuild the data "
                        "with `python -m alfred_data.build`)")
    ts = panel.ts[-close.shape[0]:]
    return _close_only_panel(ts, panel.assets, np.ascontiguousarray(close),
                             panel.periods_per_year)


def tiled_panel(base: Panel, copies: int, *, seed: int = 7, noise_sigma: float = 0.005
                ) -> Panel:
    """``copies`` copies of ``base`` side by side, each times its own lognormal noise path.

    Copy k of asset ``A`` is named ``A_k`` and priced ``close_A * exp(cumsum(eps))`` with
    ``eps ~ N(0, noise_sigma)`` per bar, so the tiled assets cross their averages on
    different bars (identical copies would make every order 25-fold and flatter the
    peers' vectorised paths). Seeded: the same arguments always give the same panel.
    """
    if copies < 1:
        raise DataError(f"copies must be >= 1, got {copies}")
    if not noise_sigma >= 0:
        raise DataError(f"noise_sigma must be >= 0, got {noise_sigma}")
    rng = np.random.default_rng(seed)
    tiled = np.tile(base.close, (1, copies))
    noise = np.exp(np.cumsum(rng.normal(0.0, noise_sigma, tiled.shape), axis=0))
    close = np.ascontiguousarray(tiled * noise)
    assets = tuple(f"{a}_{k:02d}" for k in range(copies) for a in base.assets)
    return _close_only_panel(base.ts, assets, close, base.periods_per_year)
