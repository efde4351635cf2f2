"""Training settings (torch-free, so analyst configs can embed them without importing torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    """Optimisation settings. ``checkpoint_dir``/``log_dir`` are where, not how, to train."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    grad_clip: float | None = Field(1.0, gt=0.0)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_epochs: float = Field(1.0, ge=0.0)
    min_lr_ratio: float = Field(0.05, ge=0.0, le=1.0)
    plateau_factor: float = Field(0.5, gt=0.0, lt=1.0)
    plateau_patience: int = Field(2, ge=0)
    patience: int | None = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0.0)
    max_samples_per_epoch: int | None = Field(None, ge=1)
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    # CPU threads for torch. None = half the cores (at least 1): small models gain little
    # from more, and an oversubscribed CPU (other jobs, a parallel test run) makes torch's
    # spinning thread pool 10-20x slower than one thread.
    threads: int | None = Field(None, ge=1)
    progress: bool | None = None
    log_dir: str | None = None
    checkpoint_dir: str | None = None
    resume: bool = True
