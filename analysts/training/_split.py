"""Chronological splits: train on the past, validate on the next period, test on the last.

Splits are by *timestamp*, not by row, so every asset shares the same boundaries and no
validation day of one stock sits inside another stock's training period. Shuffled splits
are never offered: on time series they leak the future.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from engine.errors import ConfigError, DataError


@dataclass(frozen=True)
class TimeSplit:
    """Inclusive end of train and validation periods (test runs to the data's end)."""

    train_end: datetime
    val_end: datetime
    test_end: datetime
    n_train: int  # timestamps in each period
    n_val: int
    n_test: int

    def label(self, ts: pl.Expr) -> pl.Expr:
        """``"train" | "val" | "test"`` for each row's ts."""
        return (pl.when(ts <= self.train_end).then(pl.lit("train"))
                .when(ts <= self.val_end).then(pl.lit("val")).otherwise(pl.lit("test")))


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3:
        raise ConfigError(f"split needs three fractions (train, validation, test), got "
                          f"{list(fractions)}")
    train, val, test = (float(f) for f in fractions)
    if min(train, val, test) < 0 or train <= 0 or abs(train + val + test - 1.0) > 1e-6:
        raise ConfigError(
            f"split fractions must be >= 0 with train > 0 and sum to 1, got "
            f"{[train, val, test]} (e.g. 0.6, 0.2, 0.2)"
        )
    return train, val, test


def chronological_split(ts: pl.Series | np.ndarray | Sequence[datetime],
                        fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> TimeSplit:
    """Cut the distinct timestamps of ``ts`` into train / validation / test periods."""
    train, val, _ = check_fractions(fractions)
    stamps = pl.Series("ts", ts).unique().sort()
    n = stamps.len()
    n_train = int(np.floor(n * train + 1e-9))
    n_val = int(np.floor(n * (train + val) + 1e-9)) - n_train
    n_test = n - n_train - n_val
    needed = [(name, k, f) for name, k, f in (("train", n_train, train),
                                               ("validation", n_val, val),
                                               ("test", n_test, 1 - train - val)) if f > 0]
    empty = [name for name, k, _ in needed if k == 0]
    if empty:
        raise DataError(
            f"a {list(fractions)} split of {n} timestamps leaves the {', '.join(empty)} "
            f"period(s) empty; load more bars or change the fractions"
        )
    last = stamps[-1]
    train_end = stamps[n_train - 1]
    val_end = stamps[n_train + n_val - 1] if n_val else train_end
    return TimeSplit(train_end, val_end, last, n_train, n_val, n_test)
