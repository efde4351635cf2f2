"""``magnitude``: an MLP that forecasts the percent change over the next ``horizon`` bars.

Emits ``pred_return`` (a fraction: 0.01 = +1 %) and ``score`` (the same number), ready
for ``topk_long_short``. Labels are divided by their training-period standard deviation
before training (stored with the model and multiplied back at prediction), so the loss
parameters -- Huber's ``delta``, the tanh head's ``head_bound`` -- are in standard
deviations of the label and mean the same on any asset or horizon.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from analysts._samples import Rows
from analysts._trainable import TrainableAnalyst, TrainableConfig, Unit
from analysts.base import AnalystConfig

MagnitudeLoss = Literal["mse", "huber", "mse_sign", "huber_sign", "sign_error_ratio",
                        "asymmetric_mse"]


class MagnitudeConfig(TrainableConfig):
    """Network: ``depth`` x ``width``, ``dropout``, ``layer_norm``, ``head`` (``tanh``
    bounded at ``±head_bound`` label std devs, or ``identity``). Loss: ``loss`` with
    ``delta`` (Huber), ``sign_penalty`` (sign losses), ``temperature``
    (sign_error_ratio), ``over_weight``/``under_weight`` (asymmetric_mse)."""

    depth: int = Field(2, ge=0)
    width: int = Field(64, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    layer_norm: bool = True
    head: Literal["tanh", "identity"] = "tanh"
    head_bound: float = Field(3.0, gt=0.0)
    loss: MagnitudeLoss = "huber"
    delta: float = Field(1.0, gt=0.0)
    sign_penalty: float = Field(1.0, ge=0.0)
    temperature: float = Field(0.1, gt=0.0)
    over_weight: float = Field(2.0, gt=0.0)
    under_weight: float = Field(1.0, gt=0.0)


class MagnitudeAnalyst(TrainableAnalyst):
    """Return regressor: signals ``pred_return`` and ``score``."""

    name: ClassVar[str] = "magnitude"
    config_class: ClassVar[type[AnalystConfig]] = MagnitudeConfig
    config: MagnitudeConfig
    output_columns: ClassVar[tuple[str, ...]] = ("pred_return", "score")

    def build_model(self, config: MagnitudeConfig, n_features: int) -> Any:
        from analysts.nn import MagnitudeMLP

        return MagnitudeMLP(n_features * config.window, config.depth, config.width,
                            config.dropout, config.layer_norm, config.head, config.head_bound)

    def build_loss(self, config: MagnitudeConfig) -> Any:
        from analysts.nn import make_loss

        return make_loss(config.loss, delta=config.delta, sign_penalty=config.sign_penalty,
                         temperature=config.temperature, over_weight=config.over_weight,
                         under_weight=config.under_weight)

    def labels(self, rows: Rows, positions: np.ndarray) -> np.ndarray:
        return rows.frame[rows.label_return].to_numpy()[positions].astype(np.float32)

    def scale_target(self, labels: np.ndarray) -> float:
        std = float(np.std(labels)) if labels.size else 0.0
        return std if std > 1e-12 else 1.0

    def signals(self, outputs: np.ndarray, unit: Unit) -> dict[str, np.ndarray]:
        pred = outputs * unit.target_scale
        return {"pred_return": pred, "score": pred}
