"""Public Toto API: load/save checkpoints and forecast (mirrors ``toto-ts``).

::

    from analysts.toto import Toto, TotoConfig, TotoForecast

    toto = Toto.from_pretrained("path/to/Toto-Open-Base-1.0")   # config.json + model.safetensors
    fc = toto.forecast(context, horizon=96, num_samples=256, samples_per_batch=64, seed=0)
    fc.mean          # [variates, horizon] numpy
    fc.samples       # [variates, horizon, samples] numpy (None without num_samples)
    fc.quantile(0.9)

Decoding is autoregressive one patch at a time, as the reference's ``TotoForecaster``:
the context is left-padded with zeros (masked out of the scaler's statistics) to a whole
number of patches; each step predicts the next patch's Student-T mixture, and either its
mean (``num_samples=None``) or one draw per sample path is appended. Unlike the
reference, the context is encoded once and its KV cache is shared by every sample path,
and ``samples_per_batch`` need not divide ``num_samples`` (the last batch is smaller).

Missing values: NaNs in the context are handled with the reference's padding-mask
mechanism: the value is set to 0 and masked out of the scaler's statistics (exactly how
the reference treats its own left padding). A variate with no finite value, or an
infinite value, is refused with :class:`engine.errors.DataError`.

The Toto 1.0 network does not read timestamps: ``timestamp_seconds`` and
``time_interval_seconds`` are accepted for API compatibility and ignored, as in the
reference.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from analysts.toto._config import TotoConfig
from analysts.toto._model import (
    StudentTMixtureParams,
    TotoBackbone,
    TotoKVCache,
    TotoOutput,
    remap_state_dict,
)
from engine.errors import ConfigError, DataError

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
TORCH_BIN_NAME = "pytorch_model.bin"
DEFAULT_MAX_SAMPLES_PER_BATCH = 128
_CORE_KEYS = ("patch_size", "embed_dim", "num_layers", "num_heads")


@dataclass(frozen=True)
class TotoForecast:
    """A forecast: ``mean`` ``[variates, horizon]`` and optional ``samples``
    ``[variates, horizon, samples]`` (a leading batch axis when the context had one)."""

    mean: np.ndarray
    samples: np.ndarray | None = None

    def _need_samples(self) -> np.ndarray:
        if self.samples is None:
            raise ConfigError("this forecast has no samples: call forecast(..., num_samples=N)")
        return self.samples

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """Quantile(s) of the sample paths over the last axis."""
        return np.quantile(self._need_samples(), q, axis=-1)

    @property
    def median(self) -> np.ndarray:
        return np.median(self._need_samples(), axis=-1)

    @property
    def std(self) -> np.ndarray:
        return self._need_samples().std(axis=-1, ddof=1)


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _replace_extreme(t: torch.Tensor) -> torch.Tensor:
    bad = ~torch.isfinite(t) | (t.abs() >= torch.finfo(t.dtype).max / 2)
    return torch.where(bad, torch.zeros((), dtype=t.dtype, device=t.device), t)


class Toto(nn.Module):
    """Datadog's Toto time-series foundation model (weights compatible with the published ones).

    ``Toto(config)`` builds random weights (seed with ``torch.manual_seed`` first);
    :meth:`from_pretrained` loads a checkpoint folder. ``toto.model`` is the
    :class:`~analysts.toto._model.TotoBackbone` (its forward is documented there), and
    ``toto.state_dict()`` has the published key layout.
    """

    def __init__(self, config: TotoConfig | None = None, *, device: str | torch.device = "auto"):
        super().__init__()
        self.config = config if config is not None else TotoConfig.base()
        self.model = TotoBackbone(self.config)
        self.to(_pick_device(device))
        self.eval()

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str], *, device: str | torch.device = "auto"
    ) -> Toto:
        """Load ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin``) from a folder.

        A Hugging Face hub id (``"Datadog/Toto-Open-Base-1.0"``) is accepted when
        ``huggingface_hub`` is installed; otherwise download the folder and pass its path.
        """
        folder = Path(path)
        if not folder.is_dir():
            folder = cls._download(str(path))
        config_file = folder / CONFIG_NAME
        if not config_file.is_file():
            raise ConfigError(f"{folder}: no {CONFIG_NAME}; is this a Toto checkpoint folder?")
        try:
            raw = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are both
            raise ConfigError(f"{config_file}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict) or not any(k in raw for k in _CORE_KEYS):
            raise ConfigError(
                f"{config_file} is not a Toto config (none of {', '.join(_CORE_KEYS)}); "
                "this folder holds another model"
            )
        state = cls._read_weights(folder)
        if not any("patch_embed.projection" in k for k in state):
            raise ConfigError(
                f"{folder} is not a Toto checkpoint: none of its {len(state)} tensors is a Toto "
                f"weight (e.g. model.patch_embed.projection.weight); first keys: "
                f"{', '.join(sorted(state)[:5])}"
            )
        config = TotoConfig.from_dict(raw, source=str(config_file))
        toto = cls(config, device="cpu")
        toto.load_checkpoint_state(state, source=str(folder))
        return toto.to(_pick_device(device))

    @staticmethod
    def _download(repo_id: str) -> Path:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id):
            raise ConfigError(f"{repo_id!r}: no such checkpoint folder")
        try:
            import huggingface_hub  # noqa: PLC0415 - optional dependency, imported lazily
        except ImportError:
            raise ConfigError(
                f"{repo_id!r} is not a local folder and huggingface_hub is not installed: "
                f"download the model folder ({CONFIG_NAME} + {SAFETENSORS_NAME}) and pass its "
                "path to Toto.from_pretrained"
            ) from None
        local = huggingface_hub.snapshot_download(
            repo_id=repo_id, allow_patterns=[CONFIG_NAME, SAFETENSORS_NAME]
        )
        return Path(local)

    @staticmethod
    def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
        st_file = folder / SAFETENSORS_NAME
        bin_file = folder / TORCH_BIN_NAME
        if st_file.is_file():
            from safetensors.torch import load_file  # noqa: PLC0415

            try:
                return load_file(str(st_file), device="cpu")
            except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
                raise ConfigError(
                    f"{st_file}: not a readable safetensors file ({_brief(exc)}); download the "
                    f"checkpoint folder again or point weights_dir at a Toto checkpoint"
                ) from None
        if bin_file.is_file():
            try:
                obj = torch.load(str(bin_file), map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - UnpicklingError, zip errors, EOFError ...
                raise ConfigError(
                    f"{bin_file}: not a readable weights-only torch checkpoint ({_brief(exc)}); "
                    "Alfred loads only plain tensors (no pickled code): convert it to "
                    f"{SAFETENSORS_NAME} or download the checkpoint folder again"
                ) from None
            for key in ("state_dict", "model_state_dict"):
                if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                    obj = obj[key]
            if not isinstance(obj, dict):
                raise ConfigError(f"{bin_file}: expected a state dict, got {type(obj).__name__}")
            return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        raise ConfigError(f"{folder}: neither {SAFETENSORS_NAME} nor {TORCH_BIN_NAME} found")

    def load_checkpoint_state(self, state: dict[str, torch.Tensor], *, source: str = "state") -> None:
        """Load a published/reference state dict, refusing missing or mis-shaped tensors."""
        got = remap_state_dict(state)
        expected = self.state_dict()
        if not any(k in expected for k in got):
            raise ConfigError(
                f"{source} is not a Toto checkpoint: no tensor name matches the Toto layout "
                f"(first keys: {', '.join(sorted(state)[:5])})"
            )
        problems: list[str] = []
        for name, ref in expected.items():
            if name not in got:
                problems.append(f"{name}: missing (expected {tuple(ref.shape)})")
            elif tuple(got[name].shape) != tuple(ref.shape):
                problems.append(
                    f"{name}: expected {tuple(ref.shape)}, got {tuple(got[name].shape)}"
                )
        if problems:
            shown = "; ".join(problems[:10])
            more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
            raise ConfigError(
                f"{source}: {len(problems)} tensor(s) missing or mis-shaped for this config: "
                f"{shown}{more}"
            )
        unexpected = sorted(k for k in got if k not in expected)
        if unexpected:
            warnings.warn(
                f"{source}: ignoring {len(unexpected)} tensor(s) Toto does not use: "
                f"{', '.join(unexpected[:10])}",
                UserWarning,
                stacklevel=2,
            )
        with torch.no_grad():
            self.load_state_dict({k: got[k] for k in expected}, strict=True)

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` + ``model.safetensors`` in the published layout."""
        from safetensors.torch import save_file  # noqa: PLC0415

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save_json(folder / CONFIG_NAME)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(folder / SAFETENSORS_NAME), metadata={"format": "pt"})
        return folder

    # ------------------------------------------------------------------ training hook
    def distribution(
        self,
        context: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        id_mask: torch.Tensor | None = None,
        *,
        scaling_prefix_length: int | None = None,
    ) -> TotoOutput:
        """One forward pass over ``context`` ``[batch, variates, time]`` (time a multiple of
        the patch size; a 2-D ``[variates, time]`` gets a batch axis) with gradients on.

        Returns a :class:`~analysts.toto._model.TotoOutput`: position ``t`` holds the
        Student-T mixture for the value at ``t + patch_size``. ``out.nll(targets)`` is the
        reference's training NLL (targets scaled by ``out.loc``/``out.scale``),
        ``out.mean`` the unscaled mixture mean, ``out.distribution()`` the unscaled
        distribution and ``out.params.distribution()`` the scaled one.
        """
        if context.dim() == 2:
            context = context[None]
            padding_mask = None if padding_mask is None else padding_mask[None]
        if context.shape[-1] % self.patch_size:
            raise DataError(
                f"context length {context.shape[-1]} is not a multiple of the patch size "
                f"{self.patch_size}; left-pad it and mark the padding in padding_mask"
            )
        context = context.to(self.device, torch.float32)
        if padding_mask is not None:
            padding_mask = padding_mask.to(self.device, torch.bool)
        if id_mask is not None:
            id_mask = id_mask.to(self.device)
        return self.model(context, padding_mask, id_mask, None, scaling_prefix_length)

    # ------------------------------------------------------------------ forecasting
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _prepare(
        self,
        context: Any,
        padding_mask: Any | None,
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        if isinstance(context, torch.Tensor):
            values = context.detach().to("cpu", torch.float64).numpy()
        else:
            try:
                values = np.asarray(context, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"context must be a numeric array, got {type(context)!r}") from exc
        squeeze = values.ndim == 2
        if values.ndim not in (2, 3):
            raise DataError(
                f"context must be [variates, time] or [batch, variates, time], got shape "
                f"{values.shape}"
            )
        if squeeze:
            values = values[None]
        b, v, t = values.shape
        if v == 0 or b == 0:
            raise DataError(f"context has no variates (shape {values.shape})")
        if t < self.patch_size:
            raise DataError(
                f"context has {t} time step(s); Toto needs at least one patch of "
                f"{self.patch_size} steps"
            )
        if padding_mask is None:
            mask = np.ones(values.shape, dtype=bool)
        else:
            mask = np.asarray(
                padding_mask.detach().cpu().numpy() if isinstance(padding_mask, torch.Tensor)
                else padding_mask,
                dtype=bool,
            )
            if squeeze and mask.ndim == 2:
                mask = mask[None]
            if mask.shape != values.shape:
                raise DataError(
                    f"padding_mask shape {mask.shape} differs from the context's {values.shape}"
                )
        inf = np.isinf(values)
        if inf.any():
            bi, vi, ti = np.argwhere(inf)[0]
            where = f"variate {vi}, time index {ti}" + (f", batch {bi}" if not squeeze else "")
            raise DataError(f"context holds an infinite value at {where}; clean it first")
        nan = np.isnan(values)
        mask = mask & ~nan
        empty = ~mask.any(-1)
        if empty.any():
            bi, vi = np.argwhere(empty)[0]
            where = f"variate {vi}" + (f" of batch {bi}" if not squeeze else "")
            raise DataError(f"context {where} has no valid (non-NaN, unmasked) value")
        values = np.where(mask, values, 0.0)
        pad = (-t) % self.patch_size
        if pad:
            values = np.concatenate([np.zeros((b, v, pad)), values], axis=-1)
            mask = np.concatenate([np.zeros((b, v, pad), dtype=bool), mask], axis=-1)
        series = torch.as_tensor(values, dtype=torch.float32, device=self.device)
        return series, torch.as_tensor(mask, device=self.device), squeeze

    @torch.no_grad()
    def forecast(
        self,
        context: Any,
        horizon: int,
        num_samples: int | None = None,
        samples_per_batch: int | None = None,
        *,
        timestamp_seconds: Any | None = None,
        time_interval_seconds: Any | None = None,
        seed: int | None = None,
        use_kv_cache: bool = True,
        padding_mask: Any | None = None,
        id_mask: Any | None = None,
    ) -> TotoForecast:
        """Forecast ``horizon`` steps after ``context`` (``[variates, time]`` or
        ``[batch, variates, time]``, numpy or torch).

        ``num_samples=None`` decodes the mixture mean; otherwise ``num_samples`` sample
        paths are drawn, ``samples_per_batch`` at a time (default: all, up to 128; the
        last batch may be smaller) and ``mean`` is their average. ``seed`` makes the
        draws reproducible without touching the global RNG. ``padding_mask`` (True =
        real value) and ``id_mask`` (``[variates]`` or ``[batch, variates]`` group ids:
        only equal ids attend to each other) follow the reference's masks.
        """
        del timestamp_seconds, time_interval_seconds  # not used by Toto 1.0 (see module doc)
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
            raise ConfigError(f"horizon must be a positive integer, got {horizon!r}")
        if num_samples is not None and (
            isinstance(num_samples, bool)
            or not isinstance(num_samples, int | np.integer)
            or num_samples <= 0
        ):
            raise ConfigError(f"num_samples must be a positive integer or None, got {num_samples!r}")
        if samples_per_batch is not None and (
            isinstance(samples_per_batch, bool)
            or not isinstance(samples_per_batch, int | np.integer)
            or samples_per_batch <= 0
        ):
            raise ConfigError(
                f"samples_per_batch must be a positive integer or None, got {samples_per_batch!r}"
            )
        series, mask, squeeze = self._prepare(context, padding_mask)
        ids = self._id_mask(id_mask, series.shape[0], series.shape[1], squeeze)
        steps = math.ceil(int(horizon) / self.patch_size)

        was_training = self.model.training
        self.model.eval()
        rng = contextlib.nullcontext()
        if seed is not None:
            devices = [self.device] if self.device.type == "cuda" else []
            rng = torch.random.fork_rng(devices=devices)
        try:
            with rng:
                if seed is not None:
                    torch.manual_seed(int(seed))
                if num_samples is None:
                    paths = self._decode_mean(series, mask, ids, steps, use_kv_cache)
                    mean = paths[..., : int(horizon)]
                    samples = None
                else:
                    per = int(samples_per_batch or min(int(num_samples), DEFAULT_MAX_SAMPLES_PER_BATCH))
                    draws = self._decode_samples(
                        series, mask, ids, steps, int(num_samples), per, use_kv_cache
                    )
                    samples = draws[..., : int(horizon), :]
                    mean = samples.mean(-1)
        finally:
            self.model.train(was_training)
        mean_np = mean.float().cpu().numpy()
        samples_np = None if samples is None else samples.float().cpu().numpy()
        if squeeze:
            mean_np = mean_np[0]
            samples_np = None if samples_np is None else samples_np[0]
        return TotoForecast(mean=mean_np, samples=samples_np)

    def _id_mask(self, id_mask: Any, batch: int, variates: int, squeeze: bool) -> torch.Tensor | None:
        if id_mask is None:
            return None
        ids = torch.as_tensor(np.asarray(id_mask), device=self.device).long()
        if squeeze and ids.dim() == 1:
            ids = ids[None]
        if tuple(ids.shape) != (batch, variates):
            raise DataError(
                f"id_mask must have shape {(variates,) if squeeze else (batch, variates)}, "
                f"got {tuple(ids.shape)}"
            )
        return ids[..., None]  # one id per variate, broadcast over patches

    # -- shared pieces
    def _encode_params(
        self,
        scaled: torch.Tensor,
        ids: torch.Tensor | None,
        cache: TotoKVCache | None,
        n_patches: int,
    ) -> StudentTMixtureParams:
        """Encode scaled values; mixture parameters of the *last* patch's prediction."""
        patch_ids = None if ids is None else ids.expand(-1, -1, n_patches)
        with self._autocast():
            hidden = self.model.encode(scaled, patch_ids, cache)
        return self.model.head(hidden[:, :, -1:].float())

    def _prefill(
        self, series: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor | None, use_cache: bool
    ):
        n = series.shape[-1] // self.patch_size
        scaled, loc, scale, state = self.model.scaler.start(series, mask, series.shape[-1])
        cache = TotoKVCache(capacity=n) if use_cache else None
        params = self._encode_params(scaled, ids, cache, n)
        p = self.patch_size
        return params, loc[..., -p:], scale[..., -p:], state, cache

    def _next_uncached(
        self,
        series: torch.Tensor,
        mask: torch.Tensor,
        ids: torch.Tensor | None,
        prefix: int,
    ):
        scaled, loc, scale, _ = self.model.scaler.start(series, mask, prefix)
        params = self._encode_params(scaled, ids, None, series.shape[-1] // self.patch_size)
        p = self.patch_size
        return params, loc[..., -p:], scale[..., -p:]

    def _next_cached(self, new: torch.Tensor, state, ids: torch.Tensor | None, cache: TotoKVCache):
        scaled, loc, scale, state = self.model.scaler.step(new, state)
        params = self._encode_params(scaled, ids, cache, 1)
        return params, loc, scale, state

    # -- mean path
    def _decode_mean(
        self,
        series: torch.Tensor,
        mask: torch.Tensor,
        ids: torch.Tensor | None,
        steps: int,
        use_cache: bool,
    ) -> torch.Tensor:
        prefix = series.shape[-1]
        params, loc, scale, state, cache = self._prefill(series, mask, ids, use_cache)
        outputs = []
        for step in range(steps):
            nxt = _replace_extreme(loc + scale * params.mean())
            outputs.append(nxt)
            if step == steps - 1:
                break
            if cache is not None:
                params, loc, scale, state = self._next_cached(nxt, state, ids, cache)
            else:
                series = torch.cat([series, nxt], dim=-1)
                mask = torch.cat([mask, torch.ones_like(nxt, dtype=torch.bool)], dim=-1)
                params, loc, scale = self._next_uncached(series, mask, ids, prefix)
        return torch.cat(outputs, dim=-1)

    # -- sampling path
    def _decode_samples(
        self,
        series: torch.Tensor,
        mask: torch.Tensor,
        ids: torch.Tensor | None,
        steps: int,
        num_samples: int,
        per_batch: int,
        use_cache: bool,
    ) -> torch.Tensor:
        b = series.shape[0]
        prefix = series.shape[-1]
        params0, loc0, scale0, state0, cache0 = self._prefill(series, mask, ids, use_cache)
        chunks = []
        done = 0
        while done < num_samples:
            r = min(per_batch, num_samples - done)
            done += r

            def rep(t: torch.Tensor, r: int = r) -> torch.Tensor:
                return t.repeat_interleave(r, dim=0)

            params = params0.map(rep)
            loc, scale = rep(loc0), rep(scale0)
            bids = None if ids is None else rep(ids)
            if cache0 is not None:
                cache = cache0.repeat_batch(b, r, extra_capacity=steps)
                state = state0.repeat_batch(r)
            else:
                cache, state = None, None
                s_series, s_mask = rep(series), rep(mask)
            outputs = []
            for step in range(steps):
                nxt = _replace_extreme(loc + scale * params.sample())
                outputs.append(nxt)
                if step == steps - 1:
                    break
                if cache is not None:
                    params, loc, scale, state = self._next_cached(nxt, state, bids, cache)
                else:
                    s_series = torch.cat([s_series, nxt], dim=-1)
                    s_mask = torch.cat([s_mask, torch.ones_like(nxt, dtype=torch.bool)], dim=-1)
                    params, loc, scale = self._next_uncached(s_series, s_mask, bids, prefix)
            paths = torch.cat(outputs, dim=-1)  # [b*r, v, steps*patch]
            chunks.append(paths.unflatten(0, (b, r)).permute(0, 2, 3, 1))
        return torch.cat(chunks, dim=-1)


def _brief(exc: BaseException) -> str:
    """A loader's error in one bounded line (torch's own run to pages)."""
    if isinstance(exc, pickle.UnpicklingError):  # torch's text suggests weights_only=False
        return "it holds pickled Python objects, not only tensors"
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else f"{text[:300]}..."
