"""Fine-tuning the foundation models on the shared training loop: LoRA (peft) or full.

A ``fine_tune:`` block in a Toto or Kronos analyst's config adapts the pretrained (or
random, for tests) model to the scenario's bars before it forecasts:

.. code-block:: yaml

    fine_tune:
      method: lora            # or full
      rank: 8                 # LoRA rank and alpha (scaling alpha / rank)
      alpha: 16
      target_modules: null    # default per model: Toto wQKV, wO; Kronos qkv/out projections
      loss: huber             # Toto: huber | heteroscedastic | mse | quantile | nll
      window: 128             # bars per training window (a multiple of Toto's patch)
      step: 16                # bars between window starts
      train: {epochs: 3, lr: 1e-4, batch_size: 16}

Windows are cut from each asset's closes up to the fit's cut-off; the last
``validation_fraction`` of each asset's windows (by end date) is held out for early
stopping. The loop is :func:`analysts.training.train_model` (device auto, bf16 autocast
on CUDA, checkpoints, early stopping, seeds). After LoRA training the adapters are merged
into the weights (``merge_and_unload``), so forecasting costs nothing extra.

Toto losses compare the model's next-patch prediction at every position of the window
with the value one patch later (teacher forcing), in the model's own scaled units (so
assets of any price level weigh the same): ``mse`` / ``huber`` on the mixture mean,
``heteroscedastic`` the Gaussian NLL with the mixture's mean and variance, ``quantile``
the pinball loss at ``quantiles`` of a normal with that mean and variance (an
approximation of the mixture's quantiles), ``nll`` the mixture's own NLL (the
reference's pre-training loss). Kronos trains on next-token cross-entropy of its s1 and
s2 tokens.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from analysts.training import TrainConfig
from engine.errors import ConfigError, DataError


class FineTuneSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["lora", "full"] = "lora"
    rank: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None
    loss: Literal["huber", "heteroscedastic", "mse", "quantile", "nll", "cross_entropy"] = \
        "huber"
    quantiles: list[float] = Field(default_factory=lambda: [0.1, 0.5, 0.9])
    huber_delta: float = Field(1.0, gt=0.0)
    window: int = Field(128, ge=8)
    step: int = Field(16, ge=1)
    validation_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(
        epochs=3, lr=1e-4, batch_size=16, patience=2))

    @model_validator(mode="after")
    def _quantiles(self) -> FineTuneSpec:
        if any(not 0.0 < q < 1.0 for q in self.quantiles):
            raise ValueError(f"quantiles must lie in (0, 1), got {self.quantiles}")
        return self


def windows(bars: pl.DataFrame, columns: tuple[str, ...], window: int, step: int,
            validation_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of every asset's ``columns`` stacked, and the end rows of training and
    validation windows (each window lies inside one asset)."""
    parts, train_ends, val_ends, offset = [], [], [], 0
    for _, part in sorted(bars.sort("ts").partition_by("asset", as_dict=True).items()):
        values = part.select(columns).to_numpy().astype(np.float64)
        n = values.shape[0]
        ends = np.arange(window - 1, n, step)
        if ends.size:
            # the latest windows of the asset validate; they end last in time
            n_val = int(round(ends.size * validation_fraction))
            cut = ends.size - n_val
            train, val = ends[:cut], ends[cut:]
            if val.size:  # no training window may share a bar with a validation window
                train = train[train < val[0] - window + 1]
            train_ends.append(offset + train)
            val_ends.append(offset + val)
        parts.append(values)
        offset += n
    if not parts or not train_ends or sum(e.size for e in train_ends) == 0:
        longest = max((p.shape[0] for p in parts), default=0)
        raise DataError(f"fine-tuning needs a training window of {window} bars that ends "
                        "before the asset's first validation window begins (so the two share "
                        f"no bar); the longest asset has {longest} bars up to the cut-off: "
                        "lower fine_tune.window or validation_fraction, or give more history")
    return (np.concatenate(parts), np.concatenate(train_ends),
            np.concatenate(val_ends) if val_ends else np.array([], dtype=np.int64))


def apply_lora(model: Any, spec: FineTuneSpec, default_targets: list[str]) -> Any:
    """Wrap ``model`` with LoRA adapters on ``target_modules`` (peft); only the adapters
    train. Returns the peft model. The adapters' random initialisation is seeded from
    ``spec.train.seed``, so two identical fine-tunes are bit-identical on CPU."""
    try:
        import peft
    except ImportError:  # pragma: no cover - peft is in the ml extra
        raise ConfigError("LoRA fine-tuning needs peft: pip install 'alfred[ml]'") from None
    targets = spec.target_modules or default_targets
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        raise ConfigError(f"fine_tune.target_modules {missing} are not modules of the model; "
                          f"linear layers it has: {sorted(_linear_names(model))}")
    from analysts.training import seed_everything

    config = peft.LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                             target_modules=targets)
    seed_everything(spec.train.seed)
    return peft.get_peft_model(model, config)


def _linear_names(model: Any) -> set[str]:
    import torch

    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear)}


def toto_objective(toto: Any, spec: FineTuneSpec):
    """An ``nn.Module`` whose forward maps windows ``[batch, window, 1]`` to per-sample
    losses (the shared loop averages them with ``mean_loss``)."""
    import torch
    from torch import nn

    patch = int(toto.patch_size)
    if spec.window % patch:
        raise ConfigError(f"fine_tune.window {spec.window} must be a multiple of Toto's "
                          f"patch size {patch}")
    if spec.loss == "cross_entropy":
        raise ConfigError("loss cross_entropy is Kronos's; Toto trains on huber, "
                          "heteroscedastic, mse, quantile or nll")
    z = torch.tensor([_normal_ppf(q) for q in spec.quantiles])
    qs = torch.tensor(spec.quantiles)

    class Objective(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.toto = toto

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            context = x[..., 0].unsqueeze(1)  # [batch, 1, window]
            out = self.toto.distribution(context)
            target = context[..., patch:]
            scale = out.scale[..., :-patch] + 1e-8
            loc = out.loc[..., :-patch]
            params = type(out.params)(*(p[..., :-patch, :] for p in out.params))
            mean = params.mean()
            y = (target - loc) / scale  # the target in the model's scaled units
            if spec.loss == "nll":
                per = -params.distribution().log_prob(y)
            elif spec.loss == "mse":
                per = (mean - y) ** 2
            elif spec.loss == "huber":
                per = nn.functional.huber_loss(mean, y, reduction="none", delta=spec.huber_delta)
            else:
                w = params.weights
                second = params.scale ** 2 * params.df / (params.df - 2.0).clamp_min(1e-3)
                var = ((w * (second + params.loc ** 2)).sum(-1) - mean ** 2).clamp_min(1e-6)
                if spec.loss == "heteroscedastic":
                    per = 0.5 * (torch.log(var) + (y - mean) ** 2 / var)
                else:  # quantile: pinball at a normal approximation's quantiles
                    pred = mean.unsqueeze(-1) + var.sqrt().unsqueeze(-1) * z.to(mean)
                    err = y.unsqueeze(-1) - pred
                    q = qs.to(mean)
                    per = torch.maximum(q * err, (q - 1.0) * err).mean(-1)
            return per.flatten(1).mean(-1)

    return Objective()


def mean_loss(out, _labels):
    """The loop's loss: the objective module already returns per-sample losses."""
    return out.mean()


def _normal_ppf(q: float) -> float:
    """Inverse of the standard normal CDF (Acklam's rational approximation, ~1e-9)."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00)
    low = 0.02425
    if q < low:
        t = math.sqrt(-2 * math.log(q))
        return (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / \
            ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1)
    if q > 1 - low:
        return -_normal_ppf(1 - q)
    t = q - 0.5
    r = t * t
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * t / \
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)


def train_windows(objective: Any, spec: FineTuneSpec, values: np.ndarray,
                  train_ends: np.ndarray, val_ends: np.ndarray, on_epoch: Any = None) -> Any:
    """Run the shared loop over the windows; returns its TrainResult."""
    from analysts.training import SampleSet, seed_everything, train_model

    seed_everything(spec.train.seed)
    x = values if values.ndim == 2 else values[:, None]
    train = SampleSet.from_numpy(x, train_ends, np.zeros(train_ends.size), spec.window)
    val = (SampleSet.from_numpy(x, val_ends, np.zeros(val_ends.size), spec.window)
           if val_ends.size else None)
    return train_model(objective, mean_loss, train, val, spec.train, on_epoch=on_epoch)
