"""A standard scaler fit on the training window only, strict about its columns.

Fit on rows of the training window (never the validation or test rows, never the whole
history), it stores means and standard deviations per column. A frame whose columns
differ from the fitted ones is refused with the missing and unexpected names: silently
scaling column 3 with column 4's statistics is the kind of bug that still "trains".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from engine.errors import ConfigError, DataError


class FeatureScaler:
    """``(x - mean) / std`` per column; a constant column gets std 1 (it maps to 0)."""

    def __init__(self) -> None:
        self.columns: tuple[str, ...] = ()
        self.mean: np.ndarray = np.empty(0)
        self.std: np.ndarray = np.empty(0)

    @property
    def is_fit(self) -> bool:
        return bool(self.columns)

    def fit(self, frame: pl.DataFrame, columns: Sequence[str] | None = None) -> FeatureScaler:
        """Learn means and stds of ``columns`` (default: every column of ``frame``)."""
        columns = tuple(frame.columns if columns is None else columns)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"scaler: columns {missing} are not in the frame ({frame.columns})")
        if frame.height == 0:
            raise DataError("scaler: the training window has no rows to fit on; move the "
                            "cut-off later or load more history")
        values = _matrix(frame, columns)
        finite = np.isfinite(values)
        empty = [c for c, ok in zip(columns, finite.any(axis=0), strict=True) if not ok]
        if empty:
            raise DataError(
                f"scaler: feature column(s) {empty} have no finite value in the training "
                f"window ({frame.height} rows); drop them or extend the window"
            )
        with np.errstate(invalid="ignore"):
            masked = np.where(finite, values, np.nan)
            mean = np.nanmean(masked, axis=0)
            std = np.nanstd(masked, axis=0)
        std[~(std > 1e-12)] = 1.0
        self.columns, self.mean, self.std = columns, mean, std
        return self

    def check_columns(self, columns: Sequence[str], where: str = "frame") -> None:
        """Refuse columns that differ from the fitted ones, naming the differences."""
        if not self.is_fit:
            raise ConfigError("scaler is not fit yet; call fit(...) on the training window first")
        columns = tuple(columns)
        if columns == self.columns:
            return
        missing = [c for c in self.columns if c not in columns]
        extra = [c for c in columns if c not in self.columns]
        if missing or extra:
            raise DataError(
                f"scaler: the {where}'s columns differ from the ones it was fit on: missing "
                f"{missing}, unexpected {extra}; build features with the same feature config "
                f"as at fit time"
            )
        raise DataError(
            f"scaler: the {where}'s columns are in a different order than at fit time; "
            f"select them as {list(self.columns)}"
        )

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """The frame's columns scaled, as a float32 matrix (rows x fitted columns)."""
        self.check_columns(frame.columns)
        return ((_matrix(frame, self.columns) - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        scaler = cls()
        try:
            columns = tuple(str(c) for c in data["columns"])
            mean = np.asarray(data["mean"], dtype=np.float64)
            std = np.asarray(data["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"scaler: saved state is malformed ({exc}); retrain the model") from None
        if not (len(columns) == mean.shape[0] == std.shape[0]):
            raise DataError(
                f"scaler: saved state has {len(columns)} columns but {mean.shape[0]} means and "
                f"{std.shape[0]} stds; the file is corrupt, retrain the model"
            )
        scaler.columns, scaler.mean, scaler.std = columns, mean, std
        return scaler


def _matrix(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    return frame.select(
        [pl.col(c).cast(pl.Float64).fill_null(np.nan) for c in columns]
    ).to_numpy().reshape(frame.height, len(columns))
