"""Losses for direction (logits vs 0/1 labels) and magnitude (predicted vs realised return).

The magnitude losses differ in what they punish beyond the squared error:

* ``mse``, ``huber`` -- symmetric; Huber is linear beyond ``delta`` (robust to fat tails).
* ``mse_sign``, ``huber_sign`` -- the base loss times ``1 + sign_penalty`` on rows where
  the prediction has the wrong sign: trading on a wrong-sign forecast loses money, a
  right-sign forecast of the wrong size mostly does not.
* ``sign_error_ratio`` -- MSE plus ``sign_penalty`` times a smooth fraction of sign errors
  (a sigmoid of ``-pred * target / temperature``), so the model is pushed to get the sign
  right even where the error is small.
* ``asymmetric_mse`` -- over-predicting (pred > target) costs ``over_weight`` per squared
  unit, under-predicting ``under_weight``: an over-optimistic forecast buys into a worse
  outcome than expected.

Each returns the mean over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from engine.errors import ConfigError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DIRECTION_LOSSES = ("bce", "focal")
MAGNITUDE_LOSSES = ("mse", "huber", "mse_sign", "huber_sign", "sign_error_ratio",
                    "asymmetric_mse")


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, labels)


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0,
               alpha: float | None = None) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): BCE down-weighted by ``(1 - p_true) ** gamma``.

    Confident right answers contribute little, so training focuses on hard rows; with
    ``gamma = 0`` and no ``alpha`` it equals BCE.
    """
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    p = torch.sigmoid(logits)
    p_true = p * labels + (1.0 - p) * (1.0 - labels)
    loss = (1.0 - p_true) ** gamma * bce
    if alpha is not None:
        loss = (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss
    return loss.mean()


def _wrong_sign(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred * target < 0).to(pred.dtype)


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2).mean()


def huber_loss(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    return F.huber_loss(pred, target, delta=delta)


def mse_sign_loss(pred: torch.Tensor, target: torch.Tensor,
                  sign_penalty: float = 1.0) -> torch.Tensor:
    weight = 1.0 + sign_penalty * _wrong_sign(pred, target)
    return (weight * (pred - target) ** 2).mean()


def huber_sign_loss(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0,
                    sign_penalty: float = 1.0) -> torch.Tensor:
    weight = 1.0 + sign_penalty * _wrong_sign(pred, target)
    return (weight * F.huber_loss(pred, target, delta=delta, reduction="none")).mean()


def sign_error_ratio_loss(pred: torch.Tensor, target: torch.Tensor, sign_penalty: float = 1.0,
                          temperature: float = 0.1) -> torch.Tensor:
    soft_errors = torch.sigmoid(-pred * target / temperature)
    return ((pred - target) ** 2).mean() + sign_penalty * soft_errors.mean()


def asymmetric_mse_loss(pred: torch.Tensor, target: torch.Tensor, over_weight: float = 2.0,
                        under_weight: float = 1.0) -> torch.Tensor:
    error = pred - target
    weight = torch.where(error > 0, over_weight, under_weight).to(pred.dtype)
    return (weight * error**2).mean()


def make_loss(name: str, *, delta: float = 1.0, sign_penalty: float = 1.0,
              temperature: float = 0.1, over_weight: float = 2.0, under_weight: float = 1.0,
              focal_gamma: float = 2.0, focal_alpha: float | None = None) -> LossFn:
    """The loss called ``name`` with its parameters bound (ConfigError for unknown names)."""
    table: dict[str, LossFn] = {
        "bce": bce_loss,
        "focal": lambda x, y: focal_loss(x, y, focal_gamma, focal_alpha),
        "mse": mse_loss,
        "huber": lambda p, t: huber_loss(p, t, delta),
        "mse_sign": lambda p, t: mse_sign_loss(p, t, sign_penalty),
        "huber_sign": lambda p, t: huber_sign_loss(p, t, delta, sign_penalty),
        "sign_error_ratio": lambda p, t: sign_error_ratio_loss(p, t, sign_penalty, temperature),
        "asymmetric_mse": lambda p, t: asymmetric_mse_loss(p, t, over_weight, under_weight),
    }
    if name not in table:
        raise ConfigError(f"unknown loss {name!r}; valid losses: {', '.join(table)}")
    return table[name]
