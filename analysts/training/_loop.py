"""The training loop every trainable analyst shares.

One loop, so that the LSTM and the magnitude regressor get the same guarantees:

* **Reproducible on CPU**: the model is built by the caller after ``seed_everything``;
  the batch order of epoch ``e`` comes from a generator seeded with ``(seed, e)``, and the
  global RNG (dropout) state is saved in each checkpoint, so an interrupted-and-resumed
  run ends with the same weights as an uninterrupted one.
* **Checkpoint every epoch** to ``checkpoint_dir/last.pt`` (atomic), resumed by the next
  call with the same directory. A checkpoint written for another model or data shape is
  refused (its fingerprint differs) rather than half-loaded.
* Warm-up then cosine decay, or reduce-on-plateau; AdamW weight decay; gradient
  clipping; bf16 autocast on CUDA; early stopping on the validation loss with the best
  epoch's weights restored; TensorBoard scalars when ``log_dir`` is set; a tqdm bar.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from analysts.training._checkpoint import check_state, load_checkpoint, save_checkpoint
from analysts.training._config import TrainConfig
from analysts.training._data import SampleSet
from analysts.training._device import cpu_threads, resolve_device
from engine.errors import ConfigError, DataError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# on_epoch(epoch, train_loss, val_loss): e.g. an Optuna pruning hook; may raise to stop.
EpochHook = Callable[[int, float, float | None], None]


@dataclass
class TrainResult:
    """What happened: per-epoch history, the best epoch and why training stopped."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float | None = None
    stopped_early: bool = False
    stop_reason: str = ""  # why the last epoch was the last, in words
    resumed_from_epoch: int | None = None
    device: str = "cpu"
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so model initialisation is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may use the global RNG
    torch.manual_seed(seed)


def _lr_factor(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if warmup and step < warmup:
        return (step + 1) / warmup
    if config.scheduler != "cosine":
        return 1.0
    span = max(total_steps - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    floor = config.min_lr_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _evaluate(model: nn.Module, data: SampleSet, loss_fn: LossFn, batch_size: int,
              device: torch.device, autocast: bool) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        for start in range(0, len(data), batch_size):
            index = torch.arange(start, min(start + batch_size, len(data)), device=device)
            out = model(data.inputs(index)).float()
            total += float(loss_fn(out, data.labels(index))) * len(index)
            count += len(index)
    return total / max(count, 1)


def _fingerprint(model: nn.Module, train: SampleSet, val: SampleSet | None,
                 config: TrainConfig) -> str:
    shapes = ",".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    settings = config.model_dump(exclude={"progress", "log_dir", "checkpoint_dir", "resume",
                                          "device", "epochs", "threads"})
    return (f"{type(model).__name__}|{shapes}|train={len(train)}x{train.window}"
            f"|val={0 if val is None else len(val)}|{sorted(settings.items())}")


def train_model(model: nn.Module, loss_fn: LossFn, train: SampleSet, val: SampleSet | None,
                config: TrainConfig, *, on_epoch: EpochHook | None = None) -> TrainResult:
    """Train ``model`` in place; returns the history. The best validation epoch's weights
    are loaded at the end (the last epoch's when there is no validation set)."""
    if len(train) == 0:
        raise DataError("training set is empty; load more bars or move the cut-off later")
    if train.y is None:
        raise DataError("training set has no labels")
    device = resolve_device(config.device)
    autocast = device.type == "cuda" and config.bf16
    model.to(device)
    train = train.to(device)
    val = val.to(device) if val is not None and len(val) > 0 else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    per_epoch = len(train) if config.max_samples_per_epoch is None else min(
        len(train), config.max_samples_per_epoch)
    steps_per_epoch = math.ceil(per_epoch / config.batch_size)
    schedule = (per_epoch, steps_per_epoch, steps_per_epoch * config.epochs)

    result = TrainResult(device=str(device))
    state = {"epoch": 0, "step": 0, "best": math.inf, "best_epoch": -1, "bad_epochs": 0,
             "plateau_best": math.inf, "plateau_bad": 0, "lr_scale": 1.0, "done": False}
    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    fingerprint = _fingerprint(model, train, val, config)
    ckpt = Path(config.checkpoint_dir) / "last.pt" if config.checkpoint_dir else None
    if ckpt is not None and ckpt.is_file() and config.resume:
        best_weights = _resume(ckpt, fingerprint, model, optimizer, device, state, result)

    writer = _tensorboard(config)
    from tqdm.auto import tqdm

    show = config.progress if config.progress is not None else sys.stderr.isatty()
    bar = tqdm(total=config.epochs, initial=int(state["epoch"]), disable=not show,
               desc="training", unit="epoch", leave=False)
    started = time.perf_counter()
    resources = ExitStack()  # released in the finally below, whatever happens
    resources.enter_context(cpu_threads(config.threads))
    try:
        while state["epoch"] < config.epochs and not state["done"]:
            epoch = int(state["epoch"])
            train_loss = _train_epoch(model, loss_fn, train, optimizer, config, state,
                                      schedule, device, autocast)
            val_loss = (_evaluate(model, val, loss_fn, max(config.batch_size, 1024), device,
                                  autocast) if val is not None else None)
            if _track(state, val_loss if val_loss is not None else train_loss, config):
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            record = {"epoch": float(epoch + 1), "train_loss": train_loss,
                      "lr": float(optimizer.param_groups[0]["lr"])}
            if val_loss is not None:
                record["val_loss"] = val_loss
            result.history.append(record)
            state["epoch"] = epoch + 1
            if (val is not None and config.patience is not None
                    and state["bad_epochs"] >= config.patience):
                state["done"] = True
                result.stopped_early = True
            if writer is not None:
                for key, value in record.items():
                    if key != "epoch":
                        writer.add_scalar(key.replace("_", "/", 1), value, epoch + 1)
            if ckpt is not None:
                _save(ckpt, fingerprint, model, best_weights, optimizer, state, result)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4g}",
                            **({"val": f"{val_loss:.4g}"} if val_loss is not None else {}))
            if on_epoch is not None:
                on_epoch(epoch, train_loss, val_loss)
    finally:
        resources.close()
        bar.close()
        if writer is not None:
            writer.close()
    result.stopped_early = result.stopped_early or (
        bool(state["done"]) and len(result.history) < config.epochs)
    if val is not None:
        model.load_state_dict(best_weights)
    model.eval()
    result.best_epoch = int(state["best_epoch"]) + 1
    result.stop_reason = (
        f"early stopping: the validation loss did not improve by more than "
        f"{config.min_delta:g} for {config.patience} epochs" if result.stopped_early
        else f"ran the configured {config.epochs} epochs")
    result.best_val_loss = float(state["best"]) if val is not None else None
    result.seconds = time.perf_counter() - started
    return result


def _resume(ckpt: Path, fingerprint: str, model: nn.Module, optimizer, device,
            state: dict, result: TrainResult) -> dict:
    """Load the last checkpoint into the model, optimizer, state and history; returns the
    best weights saved with it."""
    saved = load_checkpoint(ckpt)
    if saved.get("fingerprint") != fingerprint:
        raise ConfigError(
            f"checkpoint {ckpt} was written for a different model, data or training "
            f"config; delete it (or set resume: false, or another checkpoint_dir) to start "
            f"afresh"
        )
    check_state(model, saved["model"], f"checkpoint {ckpt}")
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    state.update({k: saved["state"][k] for k in state})
    result.history = [dict(h) for h in saved["history"]]
    torch.set_rng_state(saved["rng"])
    result.resumed_from_epoch = int(state["epoch"])
    return {k: v.to(device) for k, v in saved["best_model"].items()}


def _tensorboard(config: TrainConfig):
    if config.log_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("log_dir needs the tensorboard package; pip install tensorboard "
                          "or unset log_dir") from None
    return SummaryWriter(log_dir=config.log_dir)


def _train_epoch(model: nn.Module, loss_fn: LossFn, train: SampleSet, optimizer,
                 config: TrainConfig, state: dict, schedule: tuple[int, int, int], device,
                 autocast: bool) -> float:
    """One pass over (a seeded sample of) the training set; returns the mean loss."""
    per_epoch, steps_per_epoch, total_steps = schedule
    epoch = int(state["epoch"])
    model.train()
    order_gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    order = torch.randperm(len(train), generator=order_gen)[:per_epoch].to(device)
    running, seen = 0.0, 0
    for start in range(0, per_epoch, config.batch_size):
        index = order[start:start + config.batch_size]
        lr = config.lr * state["lr_scale"] * _lr_factor(
            config, int(state["step"]), total_steps, steps_per_epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            out = model(train.inputs(index)).float()
        loss = loss_fn(out, train.labels(index))
        if not torch.isfinite(loss):
            raise DataError(
                f"training loss became {float(loss.detach())} at epoch {epoch + 1}; lower the "
                f"learning rate (lr={config.lr}) or check the features for extreme values"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        running += float(loss.detach()) * len(index)
        seen += len(index)
        state["step"] += 1
    return running / max(seen, 1)


def _track(state: dict, monitored: float, config: TrainConfig) -> bool:
    """Best-epoch and plateau bookkeeping; True when this epoch is the best so far."""
    improved = monitored < state["best"] - config.min_delta
    if improved:
        state["best"], state["best_epoch"], state["bad_epochs"] = (monitored,
                                                                   int(state["epoch"]), 0)
    else:
        state["bad_epochs"] += 1
    if config.scheduler == "plateau":
        if monitored < state["plateau_best"] - config.min_delta:
            state["plateau_best"], state["plateau_bad"] = monitored, 0
        else:
            state["plateau_bad"] += 1
            if state["plateau_bad"] > config.plateau_patience:
                state["lr_scale"] *= config.plateau_factor
                state["plateau_bad"] = 0
    return improved


def _save(ckpt: Path, fingerprint: str, model: nn.Module, best_weights: dict, optimizer,
          state: dict, result: TrainResult) -> None:
    save_checkpoint({
        "fingerprint": fingerprint,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "best_model": {k: v.detach().cpu() for k, v in best_weights.items()},
        "optimizer": optimizer.state_dict(),
        "state": dict(state),
        "history": result.history,
        "rng": torch.get_rng_state(),
    }, ckpt)
