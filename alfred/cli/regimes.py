"""``alfred regimes``: the named regimes, and the bull/bear spells of any dataset."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from alfred.cli.common import exit_codes, out_console


def regimes_command(
    dataset: Annotated[str | None, typer.Option(help="Label this dataset's bull and bear "
                                                "markets (20% rule), e.g. sp500_index.")]
    = None,
    asset: Annotated[str | None, typer.Option(help="The dataset's asset to label (default: "
                                              "its only asset).")] = None,
    threshold: Annotated[float, typer.Option(help="Fall (and rise) that turns the market.")]
    = 0.2,
) -> None:
    """List the named regimes (use one with data: {regime: NAME}), or label a dataset."""
    with exit_codes():
        if dataset is None:
            _named()
        else:
            _spells(dataset, asset, threshold)


def _named() -> None:
    from reports.regimes import REGIMES

    table = Table(title="named regimes (scenario: data: {regime: NAME})")
    for column in ("name", "kind", "start", "end", "description"):
        table.add_column(column, no_wrap=column != "description")
    for r in REGIMES.values():
        table.add_row(r.name, r.kind, str(r.start), str(r.end), r.description)
    out_console().print(table)


def _spells(dataset: str, asset: str | None, threshold: float) -> None:
    import numpy as np
    import polars as pl

    from engine.data import load_bars
    from engine.errors import ConfigError
    from reports.regimes import drawdown_regimes

    bars = load_bars(dataset)
    assets = bars["asset"].unique().sort().to_list()
    if asset is None:
        if len(assets) > 1:
            raise ConfigError(f"{dataset} holds {len(assets)} assets; pick one with --asset "
                              f"({', '.join(assets[:10])}{', ...' if len(assets) > 10 else ''})")
        asset = assets[0]
    elif asset not in assets:
        raise ConfigError(f"{dataset} has no asset {asset!r}; it holds {', '.join(assets[:10])}")
    series = bars.filter(pl.col("asset") == asset).sort("ts")
    prices, ts = series["close"].to_numpy(), series["ts"].to_numpy()
    labels = drawdown_regimes(prices, threshold)
    table = Table(title=f"{dataset}:{asset} market regimes ({threshold:.0%} rule)")
    for column in ("regime", "from", "to", "bars", "change"):
        table.add_column(column, justify="right" if column in ("bars", "change") else "left")
    change_points = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = [0, *change_points.tolist(), labels.size]
    for a, z in zip(bounds[:-1], bounds[1:], strict=True):
        base = prices[a - 1] if a > 0 else prices[a]
        table.add_row(labels[a], str(ts[a])[:10], str(ts[z - 1])[:10], str(z - a),
                      f"{prices[z - 1] / base - 1:+.1%}")
    out_console().print(table)
