"""Toto: Datadog's time-series foundation model, implemented natively (weight-compatible).

``Toto.from_pretrained(folder)`` loads the published ``config.json`` + ``model.safetensors``
(Datadog/Toto-Open-Base-1.0, Apache-2.0); ``Toto(TotoConfig.tiny())`` builds a random
model. ``toto.forecast(context, horizon, num_samples, samples_per_batch)`` returns a
:class:`TotoForecast`; ``toto.model`` is the network and ``toto.distribution(...)`` the
training-time forward (see :mod:`analysts.toto._model` for the forward contract).
Requires torch and safetensors.
"""

from analysts.toto._config import TotoConfig
from analysts.toto._forecast import Toto, TotoForecast
from analysts.toto._model import (
    StudentTMixtureParams,
    TotoBackbone,
    TotoKVCache,
    TotoOutput,
)

__all__ = [
    "StudentTMixtureParams",
    "Toto",
    "TotoBackbone",
    "TotoConfig",
    "TotoForecast",
    "TotoKVCache",
    "TotoOutput",
]
