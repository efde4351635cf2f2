"""``lstm``: an LSTM over a window of feature rows that emits ``prob_up``.

The label is "the close ``horizon`` bars ahead is above today's close". The network sees
the last ``window`` rows of scaled features of one asset (one model pooled over the
universe by default) and outputs a logit; ``prob_up`` is its sigmoid and ``score`` is
``2 * prob_up - 1`` (positive when the model leans up), so ``topk_long_short`` can rank
on it too.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from analysts._samples import Rows
from analysts._trainable import TrainableAnalyst, TrainableConfig, Unit
from analysts.base import AnalystConfig


class LSTMConfig(TrainableConfig):
    """``window`` rows per sequence; ``hidden_size``/``num_layers``/``dropout`` shape the
    network; ``loss``: ``bce`` or ``focal`` (``focal_gamma``, optional ``focal_alpha``)."""

    window: int = Field(20, ge=1)
    hidden_size: int = Field(32, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    loss: Literal["bce", "focal"] = "bce"
    focal_gamma: float = Field(2.0, ge=0.0)
    focal_alpha: float | None = Field(None, gt=0.0, lt=1.0)


class LSTMAnalyst(TrainableAnalyst):
    """Direction classifier: signals ``prob_up`` and ``score``."""

    name: ClassVar[str] = "lstm"
    config_class: ClassVar[type[AnalystConfig]] = LSTMConfig
    config: LSTMConfig
    output_columns: ClassVar[tuple[str, ...]] = ("prob_up", "score")

    def build_model(self, config: LSTMConfig, n_features: int) -> Any:
        from analysts.nn import LSTMClassifier

        return LSTMClassifier(n_features, config.hidden_size, config.num_layers, config.dropout)

    def build_loss(self, config: LSTMConfig) -> Any:
        from analysts.nn import make_loss

        return make_loss(config.loss, focal_gamma=config.focal_gamma,
                         focal_alpha=config.focal_alpha)

    def labels(self, rows: Rows, positions: np.ndarray) -> np.ndarray:
        return rows.frame[rows.label_up].to_numpy()[positions].astype(np.float32)

    def signals(self, outputs: np.ndarray, unit: Unit) -> dict[str, np.ndarray]:
        prob = 1.0 / (1.0 + np.exp(-outputs))
        return {"prob_up": prob, "score": 2.0 * prob - 1.0}
