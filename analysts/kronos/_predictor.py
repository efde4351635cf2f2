"""``KronosPredictor``: DataFrame in, forecast DataFrame / sample paths out.

Differences from the reference predictor (github.com/shiyu-coder/Kronos), none of which
change a greedy forecast:

* **KV cache.**  The reference re-runs the whole window through the decoder at every
  step.  We run the context once (once per *series*, then repeat the cache along the batch
  for the ``sample_count`` paths) and feed one token per step.  While ``context +
  generated <= max_context`` the window never slides and the cache is exact.  Once it
  would slide, the reference drops the oldest token and re-positions the window at 0, which
  changes every cached state; from that step on we recompute the last ``max_context``
  tokens at each step exactly like the reference (no cache, still batched).  Pass
  ``use_cache=False`` to use that full-recomputation path throughout.
* **Sampling.**  Filtering (temperature, then top-k *or* top-p as in the reference) is the
  same; the draw uses inverse-CDF sampling with uniforms from a per-path
  ``torch.Generator``.  Path ``s`` of series ``b`` uses seed ``seed + b * 1_000_003 + s``
  so a path does not depend on how many other paths or series share the batch.
  ``seed=None`` draws the base seed from torch's global generator (``torch.manual_seed``
  makes it reproducible).  Random streams therefore differ from the reference's
  ``torch.multinomial``; the distribution is the same, and ``top_k=1`` is greedy in both.
* **Errors.**  Bad arguments raise ``engine.errors.ConfigError``; bad data raises
  ``DataError`` naming the column and row (NaN or infinite values are refused, never
  filled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from engine.errors import ConfigError, DataError

__all__ = ["KronosPredictor", "auto_regressive_inference", "filter_logits", "sample_from_logits"]

PRICE_COLS = ["open", "high", "low", "close"]
VOL_COL = "volume"
AMT_COL = "amount"
FEATURES = PRICE_COLS + [VOL_COL, AMT_COL]
TIME_COLS = ["minute", "hour", "weekday", "day", "month"]
_SERIES_SEED_STRIDE = 1_000_003


# --------------------------------------------------------------------------- sampling
def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Reference filtering: top-k when ``top_k > 0`` (and then *only* top-k), else nucleus
    top-p when ``top_p < 1`` (keeps the first token that crosses ``top_p``)."""
    if top_k > 0:
        k = min(max(top_k, 1), logits.size(-1))
        kth = torch.topk(logits, k)[0][..., -1, None]
        return logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(logits, descending=True)
        cum = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        remove = cum > top_p
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = False
        remove = remove.scatter(-1, sorted_idx, remove)
        return logits.masked_fill(remove, float("-inf"))
    return logits


def sample_from_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                       top_p: float = 1.0, uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """One id per row ``[B]``: filter, softmax, then inverse-CDF with ``uniforms`` ``[B]``
    in ``[0, 1)`` (``torch.rand`` when None).  A zero-probability id is never returned."""
    probs = F.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
    if uniforms is None:
        uniforms = torch.rand(probs.shape[0], device=probs.device)
    cdf = torch.cumsum(probs.double(), dim=-1)
    target = (uniforms.to(cdf.device, torch.float64) * cdf[:, -1]).unsqueeze(-1)
    idx = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    return idx.clamp_(max=probs.shape[-1] - 1)


# --------------------------------------------------------------------------- generation
def _window(total: int, max_context: int) -> slice:
    return slice(max(0, total - max_context), total)


@torch.no_grad()
def auto_regressive_inference(tokenizer, model, x, x_stamp, y_stamp, max_context, pred_len,
                              clip=5, T=1.0, top_k=0, top_p=0.99, sample_count=5,
                              verbose=False, uniforms=None, use_cache=True, return_tokens=False):
    """Generate ``sample_count`` paths per series; returns the decoded paths
    ``[N, sample_count, pred_len, d_in]`` in normalised units (the reference returns their
    mean over paths).

    ``x`` ``[N, L, d_in]`` (normalised), ``x_stamp`` ``[N, L, 5]``, ``y_stamp``
    ``[N, pred_len, 5]``.  ``uniforms`` ``[N * sample_count, pred_len, 2]`` (rows ordered
    series-major) drive the draws; random when None.  ``return_tokens`` adds the full token
    sequences ``(s1, s2)``, each ``[N * sample_count, L + pred_len]``.
    """
    device = x.device
    x = torch.clip(x, -clip, clip)
    n, ctx_len = x.shape[0], x.shape[1]
    rows = n * sample_count
    total_len = ctx_len + pred_len
    full_stamp = torch.cat([x_stamp, y_stamp], dim=1).repeat_interleave(sample_count, dim=0)
    if uniforms is None:
        uniforms = torch.rand(rows, pred_len, 2)
    uniforms = uniforms.to(device)

    s1_ctx, s2_ctx = tokenizer.encode(x, half=True)  # once per series
    s1 = s1_ctx.new_zeros(rows, total_len)
    s2 = s2_ctx.new_zeros(rows, total_len)
    s1[:, :ctx_len] = s1_ctx.repeat_interleave(sample_count, dim=0)
    s2[:, :ctx_len] = s2_ctx.repeat_interleave(sample_count, dim=0)

    steps = range(pred_len)
    if verbose:
        try:
            from tqdm import trange

            steps = trange(pred_len)
        except ImportError:
            pass

    cache = None
    last_ctx = None
    if use_cache and ctx_len <= max_context:
        capacity = min(total_len, max_context)
        cache, ctx = model.prefill(s1_ctx, s2_ctx, x_stamp, capacity=capacity)
        cache.repeat_interleave(sample_count)
        last_ctx = ctx[:, -1].repeat_interleave(sample_count, dim=0)

    for i in steps:
        cur = ctx_len + i
        if cache is not None and cur <= cache.capacity:
            s1_logits = model.s1_logits_from(last_ctx)
            s1_next = sample_from_logits(s1_logits, T, top_k, top_p, uniforms[:, i, 0])
            s2_logits = model.s2_logits_cached(last_ctx, s1_next, cache)
        else:
            win = _window(cur, max_context)
            s1_logits, ctx = model.decode_s1(s1[:, win], s2[:, win], full_stamp[:, win])
            s1_next = sample_from_logits(s1_logits[:, -1], T, top_k, top_p, uniforms[:, i, 0])
            s2_logits = model.decode_s2(ctx, s1_next.unsqueeze(-1))[:, -1]
        s2_next = sample_from_logits(s2_logits, T, top_k, top_p, uniforms[:, i, 1])
        s1[:, cur] = s1_next
        s2[:, cur] = s2_next
        if cache is not None and cur + 1 <= cache.capacity and i + 1 < pred_len:
            ctx = model.extend(s1_next[:, None], s2_next[:, None], full_stamp[:, cur:cur + 1], cache)
            last_ctx = ctx[:, -1]

    win = _window(total_len, max_context)
    z = tokenizer.decode((s1[:, win], s2[:, win]), half=True)
    z = z[:, -pred_len:].reshape(n, sample_count, pred_len, z.shape[-1])
    return (z, (s1, s2)) if return_tokens else z


# --------------------------------------------------------------------------- input checks
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_sampling(pred_len, T, top_k, top_p, sample_count):
    _check_int("pred_len", pred_len, 1)
    _check_int("sample_count", sample_count, 1)
    _check_int("top_k", top_k, 0)
    if isinstance(T, bool) or not isinstance(T, Real) or not math.isfinite(T) or T <= 0:
        raise ConfigError(f"T (temperature) must be a finite number > 0, got {T!r}")
    if isinstance(top_p, bool) or not isinstance(top_p, Real) or not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p!r}")


def _timestamps(ts, name: str, expected_len: int) -> pd.Series:
    try:
        series = pd.Series(pd.to_datetime(pd.Series(ts).reset_index(drop=True)))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: cannot be read as timestamps ({exc})") from exc
    if len(series) != expected_len:
        raise DataError(f"{name} has {len(series)} entries, expected {expected_len}")
    if series.isna().any():
        pos = int(np.flatnonzero(series.isna().to_numpy())[0])
        raise DataError(f"{name} has a missing timestamp at position {pos}")
    return series


def calc_time_stamps(ts: pd.Series) -> np.ndarray:
    """``[len, 5]`` float32: minute, hour, weekday, day, month."""
    dt = ts.dt
    return np.stack([dt.minute, dt.hour, dt.day_of_week, dt.day, dt.month], axis=1).astype(np.float32)


def prepare_frame(df, where: str = "df") -> pd.DataFrame:
    """Validated ``open, high, low, close, volume, amount`` float frame.

    Missing ``volume`` -> volume and amount are 0 (any given ``amount`` is overwritten, as in
    the reference).  Missing ``amount`` only -> ``amount = volume * mean(open, high, low,
    close)``.  NaN / inf in these columns -> DataError naming the column and row.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in PRICE_COLS if c not in df.columns]
    if missing:
        raise DataError(f"{where} is missing price column(s) {missing}; needs {PRICE_COLS} "
                        f"(volume and amount are optional), has {list(df.columns)}")
    if len(df) == 0:
        raise DataError(f"{where} has no rows")
    out = pd.DataFrame(index=df.index)
    for col in PRICE_COLS:
        out[col] = _numeric(df[col], col, where)
    if VOL_COL not in df.columns:
        out[VOL_COL] = 0.0
        out[AMT_COL] = 0.0
    else:
        out[VOL_COL] = _numeric(df[VOL_COL], VOL_COL, where)
        if AMT_COL in df.columns:
            out[AMT_COL] = _numeric(df[AMT_COL], AMT_COL, where)
        else:
            out[AMT_COL] = out[VOL_COL] * out[PRICE_COLS].mean(axis=1)
    values = out[FEATURES].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = (int(v[0]) for v in np.nonzero(bad))
        what = "NaN" if np.isnan(values[r, c]) else "an infinite value"
        raise DataError(f"{where} has {what} in column {FEATURES[c]!r} at row {r} "
                        f"(index {df.index[r]!r}); fill or drop it before predicting")
    return out


def _numeric(col: pd.Series, name: str, where: str) -> pd.Series:
    try:
        return pd.to_numeric(col).astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: column {name!r} is not numeric ({exc})") from exc


# --------------------------------------------------------------------------- predictor
class KronosPredictor:
    """Forecast OHLCV(+amount) with a :class:`Kronos` model and its :class:`KronosTokenizer`.

    Each call normalises the given window per column (``(x - mean) / (std + 1e-5)``,
    population std over all rows passed), clips to ``+-clip``, tokenises *all* rows, keeps
    the last ``max_context`` tokens as the decoder window, samples ``pred_len`` tokens per
    path and decodes the last ``max_context`` tokens back to prices.
    """

    price_cols = PRICE_COLS
    vol_col = VOL_COL
    amt_vol = AMT_COL
    time_cols = TIME_COLS

    def __init__(self, model, tokenizer, device="auto", max_context: int = 512, clip: float = 5,
                 use_cache: bool = True):
        self.max_context = _check_int("max_context", max_context, 1)
        if isinstance(clip, bool) or not isinstance(clip, Real) or not clip > 0:
            raise ConfigError(f"clip must be a number > 0, got {clip!r}")
        self.clip = float(clip)
        self.use_cache = bool(use_cache)
        if device is None or device == "auto":
            if torch.cuda.is_available():
                device = "cuda:0"
            elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                device = "mps"
            else:
                device = "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer.to(self.device)
        if getattr(model, "s1_bits", None) != getattr(tokenizer, "s1_bits", None) or \
                getattr(model, "s2_bits", None) != getattr(tokenizer, "s2_bits", None):
            raise ConfigError(
                f"model (s1_bits={getattr(model, 's1_bits', None)}, s2_bits={getattr(model, 's2_bits', None)}) "
                f"and tokenizer (s1_bits={getattr(tokenizer, 's1_bits', None)}, "
                f"s2_bits={getattr(tokenizer, 's2_bits', None)}) do not share a vocabulary")
        self.last_paths: np.ndarray | None = None

    # ----------------------------------------------------------------- internals
    def _seeds(self, n_series: int, sample_count: int, seed) -> list[int]:
        if seed is None:
            seed = int(torch.randint(0, 2 ** 62, (1,)).item())
        seed = _check_int("seed", seed, 0)
        return [seed + b * _SERIES_SEED_STRIDE + s for b in range(n_series) for s in range(sample_count)]

    def _uniforms(self, seeds: list[int], pred_len: int) -> torch.Tensor:
        out = torch.empty(len(seeds), pred_len, 2)
        for r, s in enumerate(seeds):
            g = torch.Generator().manual_seed(s)
            out[r] = torch.rand(pred_len, 2, generator=g)
        return out

    def _prepare(self, df, x_timestamp, y_timestamp, pred_len, where):
        frame = prepare_frame(df, where)
        x_ts = _timestamps(x_timestamp, f"x_timestamp for {where}", len(frame))
        y_ts = _timestamps(y_timestamp, f"y_timestamp for {where}", pred_len)
        x = frame[FEATURES].to_numpy(dtype=np.float32)
        mean, std = np.mean(x, axis=0), np.std(x, axis=0)
        xn = np.clip((x - mean) / (std + 1e-5), -self.clip, self.clip)
        return xn, calc_time_stamps(x_ts), calc_time_stamps(y_ts), mean, std

    def _run(self, xs, x_stamps, y_stamps, pred_len, T, top_k, top_p, sample_count, verbose, seed):
        seeds = self._seeds(len(xs), sample_count, seed)
        uniforms = self._uniforms(seeds, pred_len)
        to = {"device": self.device, "dtype": torch.float32}
        x = torch.as_tensor(np.stack(xs), **to)
        xs_t = torch.as_tensor(np.stack(x_stamps), **to)
        ys_t = torch.as_tensor(np.stack(y_stamps), **to)
        modes = (self.model.training, self.tokenizer.training)
        self.model.eval()
        self.tokenizer.eval()
        try:
            z = auto_regressive_inference(
                self.tokenizer, self.model, x, xs_t, ys_t, self.max_context, pred_len, self.clip,
                T, top_k, top_p, sample_count, verbose, uniforms=uniforms, use_cache=self.use_cache)
        finally:
            self.model.train(modes[0])
            self.tokenizer.train(modes[1])
        return z.float().cpu().numpy()  # [N, S, P, 6] normalised

    # ----------------------------------------------------------------- public API
    def generate(self, x, x_stamp, y_stamp, pred_len, T, top_k, top_p, sample_count, verbose,
                 seed=None) -> np.ndarray:
        """Reference-compatible: normalised arrays in, mean normalised forecast
        ``[N, pred_len, d_in]`` out."""
        _check_sampling(pred_len, T, top_k, top_p, sample_count)
        z = self._run(list(np.asarray(x, np.float32)), list(np.asarray(x_stamp, np.float32)),
                      list(np.asarray(y_stamp, np.float32)), pred_len, T, top_k, top_p,
                      sample_count, verbose, seed)
        return z.mean(axis=1)

    def predict_paths(self, df, x_timestamp, y_timestamp, pred_len, T=1.0, top_k=0, top_p=0.9,
                      sample_count=1, verbose=False, seed=None) -> np.ndarray:
        """Sample paths in price units, ``[sample_count, pred_len, 6]`` (columns
        open, high, low, close, volume, amount).  Also stored as ``self.last_paths``."""
        self.predict(df, x_timestamp, y_timestamp, pred_len, T, top_k, top_p, sample_count,
                     verbose, seed)
        return self.last_paths

    def predict(self, df, x_timestamp, y_timestamp, pred_len, T=1.0, top_k=0, top_p=0.9,
                sample_count=1, verbose=False, seed=None) -> pd.DataFrame:
        """Mean forecast over ``sample_count`` paths, indexed by ``y_timestamp``."""
        _check_sampling(pred_len, T, top_k, top_p, sample_count)
        xn, xst, yst, mean, std = self._prepare(df, x_timestamp, y_timestamp, pred_len, "df")
        z = self._run([xn], [xst], [yst], pred_len, T, top_k, top_p, sample_count, verbose, seed)[0]
        self.last_paths = z * (std + 1e-5) + mean
        preds = z.mean(axis=0) * (std + 1e-5) + mean
        return pd.DataFrame(preds, columns=FEATURES, index=y_timestamp)

    def predict_batch(self, df_list: Sequence, x_timestamp_list: Sequence,
                      y_timestamp_list: Sequence, pred_len, T=1.0, top_k=0, top_p=0.9,
                      sample_count=1, verbose=False, seed=None) -> list[pd.DataFrame]:
        """Several series of equal length at once; ``self.last_paths`` becomes
        ``[n_series, sample_count, pred_len, 6]``.  Series ``b`` gives what
        :meth:`predict` gives with ``seed + b * 1_000_003``."""
        _check_sampling(pred_len, T, top_k, top_p, sample_count)
        for name, seq in (("df_list", df_list), ("x_timestamp_list", x_timestamp_list),
                          ("y_timestamp_list", y_timestamp_list)):
            if not isinstance(seq, (list, tuple)):
                raise ConfigError(f"{name} must be a list or tuple, got {type(seq).__name__}")
        if not len(df_list) == len(x_timestamp_list) == len(y_timestamp_list) or not df_list:
            raise ConfigError("df_list, x_timestamp_list and y_timestamp_list must be non-empty "
                              f"and of equal length, got {len(df_list)}, {len(x_timestamp_list)}, "
                              f"{len(y_timestamp_list)}")
        prepared = [self._prepare(df, xt, yt, pred_len, f"df_list[{i}]")
                    for i, (df, xt, yt) in enumerate(zip(df_list, x_timestamp_list, y_timestamp_list, strict=True))]
        lengths = [p[0].shape[0] for p in prepared]
        if len(set(lengths)) != 1:
            raise DataError(f"predict_batch needs series of equal length, got {lengths}")
        z = self._run([p[0] for p in prepared], [p[1] for p in prepared], [p[2] for p in prepared],
                      pred_len, T, top_k, top_p, sample_count, verbose, seed)
        stds = np.stack([p[4] for p in prepared])[:, None, None]
        means = np.stack([p[3] for p in prepared])[:, None, None]
        self.last_paths = z * (stds + 1e-5) + means
        out = []
        for i, p in enumerate(prepared):
            preds = z[i].mean(axis=0) * (p[4] + 1e-5) + p[3]
            out.append(pd.DataFrame(preds, columns=FEATURES, index=y_timestamp_list[i]))
        return out
