"""The ``toto``, ``kronos`` and ``kronos_ensemble`` analysts (sample-path forecasters).

Each loads its model once (``weights_dir``: a local folder of the published checkpoint,
relative to the scenario file; without it a randomly initialised model of the named
``architecture`` is built from ``seed`` -- for tests and dry runs, never for research),
optionally fine-tunes it on the bars up to the fit's cut-off (``fine_tune:``, see
:mod:`analysts._finetune`), and forecasts through the shared loop of
:mod:`analysts._foundation` (context, stride, aggregate, per-bar seeds).
"""

from __future__ import annotations

import time
import zlib
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from analysts._finetune import FineTuneSpec
from analysts._foundation import ForecastAnalyst, ForecastConfig
from analysts.base import AnalystConfig


class TotoAnalystConfig(ForecastConfig):
    """Toto: ``num_samples`` paths (None: the mixture's mean path), aggregated.

    Each asset is forecast on its own (univariate), its draws seeded by the forecast bar
    and the asset, so adding or removing an asset never changes another's forecast;
    ``multivariate: true`` forecasts all assets as variates of one series instead.
    """

    weights_dir: str | None = Field(None, description="folder with config.json + "
                                    "model.safetensors (Datadog/Toto-Open-Base-1.0)")
    architecture: Literal["tiny", "base"] = Field("tiny", description="random model to "
                                                  "build when no weights_dir is given")
    num_samples: int | None = Field(64, ge=1)
    samples_per_batch: int | None = Field(None, ge=1)
    multivariate: bool = Field(False, description="all assets as variates of one series "
                               "(they attend to each other) instead of separately")
    fine_tune: FineTuneSpec | None = None

    @model_validator(mode="after")
    def _losses(self) -> TotoAnalystConfig:
        if self.fine_tune is not None and self.fine_tune.loss == "cross_entropy":
            raise ValueError("fine_tune.loss cross_entropy is for Kronos; Toto takes huber, "
                             "heteroscedastic, mse, quantile or nll")
        return self


class TotoAnalyst(ForecastAnalyst):
    """Datadog's Toto (native implementation, :mod:`analysts.toto`)."""

    name: ClassVar[str] = "toto"
    config_class: ClassVar[type[AnalystConfig]] = TotoAnalystConfig
    config: TotoAnalystConfig

    def __init__(self, config: TotoAnalystConfig | None = None, /, **values: Any) -> None:
        super().__init__(config, **values)
        self._toto = None
        self.training: dict[str, Any] | None = None

    @property
    def toto(self):
        if self._toto is None:
            self._toto = _load_toto(self.config)
        return self._toto

    def model_min_context(self) -> int:
        return int(self.toto.patch_size)

    def fine_tune(self, bars: pl.DataFrame, spec: FineTuneSpec, on_epoch: Any
                  ) -> dict[str, Any]:
        return _fine_tune_toto(self, bars, spec, on_epoch)

    def share_model(self, other: ForecastAnalyst) -> None:
        self._toto = other.toto

    def fit_summary(self) -> dict[str, Any]:
        return _model_summary(self.config, self.training, self.pretrained_through)

    def forecast_paths(self, contexts: dict[str, np.ndarray], seed: int,
                       stamps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cfg = self.config
        out: dict[str, np.ndarray] = {}
        if cfg.multivariate:
            # all assets as variates of one series: [1, assets, time]; a shorter history is
            # left-padded with NaN, which Toto masks as padding
            assets = sorted(contexts)
            length = max(len(contexts[a]) for a in assets)
            batch = np.full((1, len(assets), length), np.nan)
            for i, a in enumerate(assets):
                batch[0, i, length - len(contexts[a]):] = contexts[a][:, 0]
            fc = self.toto.forecast(batch, cfg.horizon, num_samples=cfg.num_samples,
                                    samples_per_batch=cfg.samples_per_batch, seed=seed)
            for i, a in enumerate(assets):
                out[a] = _paths(fc, 0, i)
            return out
        for asset, values in contexts.items():
            # one call per asset, seeded by the bar and the asset: an asset's paths never
            # depend on which other assets are in the universe (the samples of one call
            # are batched already, so this costs little beyond per-call overhead)
            fc = self.toto.forecast(values[None, None, :, 0], cfg.horizon,
                                    num_samples=cfg.num_samples,
                                    samples_per_batch=cfg.samples_per_batch,
                                    seed=(seed + zlib.crc32(asset.encode())) % (2**31 - 1))
            out[asset] = _paths(fc, 0, 0)
        return out


def _paths(fc, b: int, v: int) -> np.ndarray:
    """``[samples, horizon]`` of batch ``b``, variate ``v`` (the mean path alone when the
    forecast did not sample)."""
    if fc.samples is None:
        return fc.mean[b, v][None, :]
    return np.moveaxis(fc.samples[b, v], -1, 0)


def _model_summary(config: Any, training: dict[str, Any] | None,
                   through: Any = None) -> dict[str, Any]:
    """Which weights forecast (said plainly when they are random), the last date of their
    pretraining data when known, and any fine-tuning."""
    if config.weights_dir is not None:
        model = {"weights_dir": config.weights_dir,
                 "pretrained_through": None if through is None else str(through)}
        if getattr(config, "tokenizer_dir", None):
            model["tokenizer_dir"] = config.tokenizer_dir
    else:
        model = {"random_weights": f"{config.architecture} architecture, seed {config.seed} "
                 "(no weights_dir: forecasts carry no skill)"}
    out: dict[str, Any] = {"model": model}
    if training is not None:
        out["fine_tune"] = training
    return out


def _load_toto(config: TotoAnalystConfig):
    import torch

    from analysts.toto import Toto, TotoConfig

    device = config.device
    if config.weights_dir is not None:
        return Toto.from_pretrained(config.weights_dir, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        arch = TotoConfig.tiny() if config.architecture == "tiny" else TotoConfig.base()
        return Toto(arch, device=device)


def _fine_tune_toto(analyst: TotoAnalyst, bars: pl.DataFrame, spec: FineTuneSpec,
                    on_epoch: Any = None) -> dict[str, Any]:
    from analysts._finetune import apply_lora, toto_objective, train_windows, windows

    started = time.perf_counter()
    toto = analyst.toto
    values, train_ends, val_ends = windows(bars, ("close",), spec.window, spec.step,
                                           spec.validation_fraction)
    peft_model = None
    if spec.method == "lora":
        peft_model = apply_lora(toto, spec, ["wQKV", "wO"])
    else:
        for p in toto.parameters():
            p.requires_grad_(True)
    objective = toto_objective(toto, spec)
    result = train_windows(objective, spec, values, train_ends, val_ends, on_epoch)
    if peft_model is not None:
        merged = peft_model.merge_and_unload()
        analyst._toto = merged
    analyst.toto.eval()
    for p in analyst.toto.parameters():
        p.requires_grad_(False)
    return {"method": spec.method, "loss": spec.loss, "windows": int(train_ends.size),
            "validation_windows": int(val_ends.size), "epochs": len(result.history),
            "best_epoch": result.best_epoch, "history": result.history,
            "seconds": time.perf_counter() - started}


# ----------------------------------------------------------------------------- Kronos

class KronosAnalystConfig(ForecastConfig):
    """Kronos: ``sample_count`` OHLCV paths per forecast, aggregated on the close."""

    weights_dir: str | None = Field(None, description="Kronos model folder (Kronos-mini/"
                                    "small/base: config.json + model.safetensors)")
    tokenizer_dir: str | None = Field(None, description="Kronos tokenizer folder")
    architecture: Literal["tiny", "small"] = Field("tiny", description="random model to "
                                                   "build when no weights are given")
    context: int = Field(400, ge=2)
    max_context: int = Field(512, ge=2)
    clip: float = Field(5.0, gt=0.0)
    T: float = Field(1.0, gt=0.0)
    top_k: int = Field(0, ge=0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    sample_count: int = Field(8, ge=1)
    fine_tune: FineTuneSpec | None = None

    @model_validator(mode="after")
    def _checks(self) -> KronosAnalystConfig:
        if (self.weights_dir is None) != (self.tokenizer_dir is None):
            raise ValueError("give both weights_dir and tokenizer_dir (a Kronos model needs "
                             "its tokenizer), or neither for a random test model")
        if self.fine_tune is not None and self.fine_tune.loss not in ("cross_entropy",
                                                                        "huber"):
            raise ValueError("Kronos fine-tunes on next-token cross_entropy; set "
                             "fine_tune.loss: cross_entropy")
        return self


class KronosEnsembleConfig(KronosAnalystConfig):
    """``members`` Kronos forecasts at temperatures spread evenly over [T_min, T_max],
    every member's paths pooled and aggregated like one model's samples."""

    members: int = Field(4, ge=1)
    T_min: float = Field(0.6, gt=0.0)
    T_max: float = Field(1.2, gt=0.0)

    @model_validator(mode="after")
    def _range(self) -> KronosEnsembleConfig:
        if self.T_min > self.T_max:
            raise ValueError(f"T_min {self.T_min} is above T_max {self.T_max}")
        return self


class KronosAnalyst(ForecastAnalyst):
    """Kronos (native implementation, :mod:`analysts.kronos`) on OHLCV(+amount) bars;
    missing open/high/low fall back to the close, missing volume/amount to the
    predictor's documented fallback."""

    name: ClassVar[str] = "kronos"
    config_class: ClassVar[type[AnalystConfig]] = KronosAnalystConfig
    config: KronosAnalystConfig
    columns: ClassVar[tuple[str, ...]] = ("open", "high", "low", "close", "volume", "amount")

    def __init__(self, config: KronosAnalystConfig | None = None, /, **values: Any) -> None:
        super().__init__(config, **values)
        self._predictor = None
        self.training: dict[str, Any] | None = None

    @property
    def predictor(self):
        if self._predictor is None:
            self._predictor = _load_kronos(self.config)
        return self._predictor

    def temperatures(self) -> list[float]:
        return [self.config.T]

    def fine_tune(self, bars: pl.DataFrame, spec: FineTuneSpec, on_epoch: Any
                  ) -> dict[str, Any]:
        return _fine_tune_kronos(self, bars, spec, on_epoch)

    MODEL_KEYS: ClassVar[tuple[str, ...]] = ("weights_dir", "tokenizer_dir", "architecture",
                                             "seed", "device", "fine_tune")

    def share_model(self, other: ForecastAnalyst) -> None:
        from analysts.kronos import KronosPredictor

        source = other.predictor
        self._predictor = KronosPredictor(source.model, source.tokenizer,
                                          device=self.config.device,
                                          max_context=self.config.max_context,
                                          clip=self.config.clip)

    def fit_summary(self) -> dict[str, Any]:
        out = _model_summary(self.config, self.training, self.pretrained_through)
        out["temperatures"] = self.temperatures()
        return out

    def forecast_paths(self, contexts: dict[str, np.ndarray], seed: int,
                       stamps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Assets with contexts of equal length run as one batch per temperature; every
        asset's paths of every temperature are pooled."""
        import pandas as pd

        cfg = self.config
        close = self.columns.index("close")
        groups: dict[int, list[str]] = {}
        for asset in sorted(contexts):
            groups.setdefault(len(contexts[asset]), []).append(asset)
        pooled: dict[str, list[np.ndarray]] = {a: [] for a in contexts}
        for g, (_, assets) in enumerate(sorted(groups.items())):
            frames, x_list, y_list = [], [], []
            for asset in assets:
                frame = pd.DataFrame(contexts[asset], columns=list(self.columns))
                for column in ("amount", "volume"):  # the predictor's documented fallbacks
                    if frame[column].isna().all():
                        frame = frame.drop(columns=[column])
                frames.append(frame)
                x_list.append(pd.Series(pd.to_datetime(stamps[asset])))
                y_list.append(pd.Series(pd.to_datetime(_future(stamps[asset], cfg.horizon))))
            for m, temperature in enumerate(self.temperatures()):
                self.predictor.predict_batch(
                    frames, x_list, y_list, cfg.horizon, T=temperature, top_k=cfg.top_k,
                    top_p=cfg.top_p, sample_count=cfg.sample_count, verbose=False,
                    seed=(seed + 104729 * m + 7919 * g) % (2**31 - 1))
                paths = np.asarray(self.predictor.last_paths)  # [assets, samples, horizon, 6]
                for i, asset in enumerate(assets):
                    pooled[asset].append(paths[i, ..., close])
        return {a: np.concatenate(p, axis=0) for a, p in pooled.items()}


class KronosEnsembleAnalyst(KronosAnalyst):
    name: ClassVar[str] = "kronos_ensemble"
    config_class: ClassVar[type[AnalystConfig]] = KronosEnsembleConfig
    config: KronosEnsembleConfig

    def temperatures(self) -> list[float]:
        cfg = self.config
        if cfg.members == 1:
            return [0.5 * (cfg.T_min + cfg.T_max)]
        return np.linspace(cfg.T_min, cfg.T_max, cfg.members).tolist()


def _future(ts: np.ndarray, horizon: int) -> np.ndarray:
    """Timestamps of the next ``horizon`` bars: business days for daily data, else the
    median spacing of the context."""
    import pandas as pd

    last = pd.Timestamp(ts[-1])
    step = pd.Series(pd.to_datetime(ts)).diff().median()
    if step is pd.NaT or step >= pd.Timedelta(hours=20):
        return pd.bdate_range(last + pd.Timedelta(days=1), periods=horizon).values
    return np.array([last + step * (k + 1) for k in range(horizon)], dtype="datetime64[ns]")


_TINY_TOKENIZER = {"d_in": 6, "d_model": 16, "n_heads": 2, "ff_dim": 32, "n_enc_layers": 2,
                   "n_dec_layers": 2, "ffn_dropout_p": 0.0, "attn_dropout_p": 0.0,
                   "resid_dropout_p": 0.0, "s1_bits": 4, "s2_bits": 4, "beta": 0.05,
                   "gamma0": 1.0, "gamma": 1.1, "zeta": 0.05, "group_size": 4}
_TINY_MODEL = {"s1_bits": 4, "s2_bits": 4, "n_layers": 2, "d_model": 16, "n_heads": 2,
               "ff_dim": 32, "ffn_dropout_p": 0.0, "attn_dropout_p": 0.0,
               "resid_dropout_p": 0.0, "token_dropout_p": 0.0, "learn_te": True}
# Random models of the published shapes: Kronos-Tokenizer-base and Kronos-small.
KRONOS_ARCHITECTURES = {
    "tiny": (_TINY_TOKENIZER, _TINY_MODEL),
    "small": ({**_TINY_TOKENIZER, "d_model": 256, "n_heads": 4, "ff_dim": 512,
               "n_enc_layers": 4, "n_dec_layers": 4, "s1_bits": 10, "s2_bits": 10,
               "group_size": 4},
              {**_TINY_MODEL, "s1_bits": 10, "s2_bits": 10, "n_layers": 8, "d_model": 512,
               "n_heads": 8, "ff_dim": 1024}),
}


def _load_kronos(config: KronosAnalystConfig):
    import torch

    from analysts.kronos import Kronos, KronosPredictor, KronosTokenizer

    if config.weights_dir is not None:
        tokenizer = KronosTokenizer.from_pretrained(config.tokenizer_dir)
        model = Kronos.from_pretrained(config.weights_dir)
    else:
        tok_cfg, model_cfg = KRONOS_ARCHITECTURES[config.architecture]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            tokenizer = KronosTokenizer(**tok_cfg)
            model = Kronos(**model_cfg)
    return KronosPredictor(model, tokenizer, device=config.device,
                           max_context=config.max_context, clip=config.clip)


def _fine_tune_kronos(analyst: KronosAnalyst, bars: pl.DataFrame, spec: FineTuneSpec,
                      on_epoch: Any = None) -> dict[str, Any]:
    """Next-token cross-entropy on tokenised windows (the tokenizer stays frozen)."""
    import pandas as pd
    import torch
    from torch import nn

    from analysts._finetune import apply_lora, train_windows, windows
    from analysts.kronos import calc_time_stamps, prepare_frame

    started = time.perf_counter()
    predictor = analyst.predictor
    parts = []
    for (_asset,), part in sorted(bars.partition_by("asset", as_dict=True).items()):
        frame = part.sort("ts").to_pandas()
        prices = frame[["open", "high", "low", "close", "volume", "amount"]]
        prices = prices.drop(columns=[c for c in ("volume", "amount")
                                      if prices[c].isna().all()])
        if "volume" not in prices.columns:
            prices = prices.drop(columns=["amount"], errors="ignore")
        clean = prepare_frame(prices, "fine-tuning bars")
        stamps = calc_time_stamps(pd.Series(pd.to_datetime(frame["ts"])))
        parts.append(pl.DataFrame(np.hstack([clean.to_numpy(np.float64), stamps]),
                                  schema=[f"c{i}" for i in range(11)]).with_columns(
            pl.lit(_asset).alias("asset"), pl.Series("ts", frame["ts"])))
    columns = tuple(f"c{i}" for i in range(11))
    values, train_ends, val_ends = windows(pl.concat(parts), columns, spec.window, spec.step,
                                           spec.validation_fraction)
    model, tokenizer, clip = predictor.model, predictor.tokenizer, predictor.clip
    tokenizer.eval()
    for p in tokenizer.parameters():
        p.requires_grad_(False)
    peft_model = apply_lora(model, spec, _kronos_targets(model)) if spec.method == "lora" \
        else None
    if peft_model is None:
        for p in model.parameters():
            p.requires_grad_(True)

    class Objective(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            prices, stamp = x[..., :6], x[..., 6:]
            mean = prices.mean(dim=1, keepdim=True)
            std = prices.std(dim=1, keepdim=True, unbiased=False)
            z = ((prices - mean) / (std + 1e-5)).clamp(-clip, clip)
            with torch.no_grad():
                s1, s2 = tokenizer.encode(z, half=True)
            loss, _, _ = self.model.next_token_loss(s1, s2, stamp, teacher_forcing=True)
            return loss.expand(x.shape[0])

    result = train_windows(Objective(), spec, values, train_ends, val_ends, on_epoch)
    if peft_model is not None:
        predictor.model = peft_model.merge_and_unload()
    predictor.model.eval()
    for p in predictor.model.parameters():
        p.requires_grad_(False)
    return {"method": spec.method, "loss": "cross_entropy", "windows": int(train_ends.size),
            "validation_windows": int(val_ends.size), "epochs": len(result.history),
            "best_epoch": result.best_epoch, "history": result.history,
            "seconds": time.perf_counter() - started}


def _kronos_targets(model) -> list[str]:
    """LoRA targets of Kronos: the attention projections (peft matches them by name, so
    the transformer's self-attention and the s2 cross-attention layer both adapt)."""
    import torch

    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and ".transformer." in f".{name}"}
    preferred = [n for n in ("q_proj", "k_proj", "v_proj", "out_proj") if n in names]
    return preferred or sorted(names)

