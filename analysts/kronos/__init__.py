"""Native, weight-compatible Kronos (Shi et al. 2025, github.com/shiyu-coder/Kronos, MIT).

* :class:`KronosTokenizer` - OHLCVA rows <-> hierarchical BSQ tokens ``(s1, s2)``.
* :class:`Kronos` - decoder-only predictor over those tokens (with a KV cache).
* :class:`KronosPredictor` - DataFrame in; mean forecast (``predict``), sample paths
  (``predict_paths`` / ``last_paths``), several series (``predict_batch``).

Checkpoints: folders with ``config.json`` + ``model.safetensors`` as written by
huggingface_hub's ``PyTorchModelHubMixin`` (NeoQuasar/Kronos-mini, -small, -base,
Kronos-Tokenizer-base, -2k).  ``from_pretrained`` takes such a folder (or a hub id when
``huggingface_hub`` is installed); ``save_pretrained`` writes the same layout.

Requires torch and safetensors; import this package lazily where those are optional.
"""

from ._model import Kronos
from ._predictor import (
    KronosPredictor,
    auto_regressive_inference,
    calc_time_stamps,
    prepare_frame,
    sample_from_logits,
)
from ._tokenizer import KronosTokenizer

__all__ = [
    "calc_time_stamps",
    "prepare_frame",
    "Kronos",
    "KronosPredictor",
    "KronosTokenizer",
    "auto_regressive_inference",
    "sample_from_logits",
]
