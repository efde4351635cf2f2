"""Weights and training checkpoints on disk.

* Model weights are safetensors (no pickle, loadable by any tool), checked against the
  model built from the saved config: a key or shape mismatch names the tensors and says
  the config does not match, instead of torch's wall of text or a silent partial load.
* Training checkpoints (model + optimizer + scheduler + RNG state + history, to resume an
  interrupted run) are torch files read with ``torch.load(weights_only=True)`` only, and
  written atomically (temp file, then rename) so a crash mid-write leaves the previous one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine.errors import DataError


def save_weights(model: nn.Module, path: str | Path) -> None:
    """The model's state dict as a safetensors file (atomic)."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    save_file(state, str(tmp))
    os.replace(tmp, path)


def check_state(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Raise DataError naming missing, unexpected and mis-shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        details = "; ".join(
            part for part in (
                f"missing tensors {missing[:6]}" if missing else "",
                f"unexpected tensors {unexpected[:6]}" if unexpected else "",
                f"shape mismatch {shapes[:4]}" if shapes else "",
            ) if part
        )
        raise DataError(
            f"{where} does not match the model built from its config ({details}); the "
            f"weights were saved with a different model config -- fix config.json or retrain"
        )


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load safetensors weights into ``model`` after checking every key and shape."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"weights file {path} does not exist; train and save the analyst first")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise DataError(f"cannot read weights {path} ({exc}); the file is corrupt") from None
    check_state(model, state, f"weights file {path}")
    model.load_state_dict(state)
    return model


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint, read with ``weights_only=True`` (no arbitrary unpickling)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"cannot read training checkpoint {path} ({type(exc).__name__}: {exc}); delete it "
            f"to start the training afresh"
        ) from None
