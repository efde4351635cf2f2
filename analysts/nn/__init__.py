"""Networks and losses of the trainable analysts (imports torch; import it lazily)."""

from analysts.nn._losses import (
    DIRECTION_LOSSES,
    MAGNITUDE_LOSSES,
    asymmetric_mse_loss,
    bce_loss,
    focal_loss,
    huber_loss,
    huber_sign_loss,
    make_loss,
    mse_loss,
    mse_sign_loss,
    sign_error_ratio_loss,
)
from analysts.nn._models import LSTMClassifier, MagnitudeMLP

__all__ = [
    "DIRECTION_LOSSES",
    "MAGNITUDE_LOSSES",
    "LSTMClassifier",
    "MagnitudeMLP",
    "asymmetric_mse_loss",
    "bce_loss",
    "focal_loss",
    "huber_loss",
    "huber_sign_loss",
    "make_loss",
    "mse_loss",
    "mse_sign_loss",
    "sign_error_ratio_loss",
]
