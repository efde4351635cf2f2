"""Toto's network, written natively in torch and weight-compatible with Datadog's checkpoints.

Module and parameter names follow the published ``model.safetensors`` (inside the
``model.`` prefix that :class:`analysts.toto.Toto` adds), so a published state dict
loads by name and shape:

=====================================================  =====================================
key (under ``model.``)                                 what
=====================================================  =====================================
``patch_embed.projection.{weight,bias}``               patch (``patch_size`` values) -> embed
``transformer.layers.N.norm{1,2}.scale``               RMSNorm gains (eps 1e-8)
``transformer.layers.N.attention.wQKV.{weight,bias}``  fused q/k/v projection
``transformer.layers.N.attention.wO.{weight,bias}``    attention output projection
``transformer.layers.N.mlp.0.w12.{weight,bias}``       SwiGLU gate+up (xFormers fused naming)
``transformer.layers.N.mlp.0.w3.{weight,bias}``        SwiGLU down projection
``unembed.{weight,bias}``                              embed -> ``patch_size`` x embed
``output_distribution.{df,loc_proj,scale_proj,...}``   Student-T (mixture) head
=====================================================  =====================================

The unfused naming (``mlp.0`` / ``mlp.2``) is mapped on load by :func:`remap_state_dict`.

Forward contract (:meth:`TotoBackbone.forward`)::

    out = backbone(inputs,                 # [batch, variates, time] float, time % patch == 0
                   input_padding_mask,     # [batch, variates, time] bool, True = real value
                   id_mask,                # [batch, variates] or [batch, variates, time] int:
                                           #   variates with equal ids attend to each other
                   kv_cache=None,          # TotoKVCache: process only the patches it lacks
                   scaling_prefix_length=None)  # global scaler stats from inputs[..., :n]
    out.params   # StudentTMixtureParams(df, loc, scale, logits), each [batch, variates, t, K]
                 #   in the *scaled* space; position t predicts the value at t + patch_size
    out.loc, out.scale   # [batch, variates, t] causal patch statistics used to unscale
    out.mean             # unscaled mixture mean, [batch, variates, t]

Numerics follow the reference (toto-ts 0.2.0): causal patch-wise mean/std scaling in
float64 (Welford, Bessel, optional clamp to 1e-10..1e10 x the context's global std),
pre-norm layers, causal time-wise attention with rotary + xPos (rotary-embedding-torch
defaults: theta 10000, interleaved pairs, xPos scale base 512, the reference's
``cat``-ed xPos scale), bidirectional space-wise attention masked by ``id_mask``.

One deliberate difference: the reference centres the xPos exponent on ``max(position)//2``
of *each call*, so its KV-cache decoding drifts from its own full-sequence pass by up to
``scale**(1/512)`` per cached key. Here the centre is fixed per sequence, which makes
cached and uncached decoding agree (and both equal the reference's full pass). Set
``TotoBackbone.reference_cache_xpos = True`` to reproduce the reference's cached path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from analysts.toto._config import (
    SCALER_CAUSAL,
    SCALER_CAUSAL_PATCH,
    SCALER_STD_MEAN,
    TotoConfig,
)

XPOS_SCALE_BASE = 512.0
ROPE_THETA = 10000.0


# ---------------------------------------------------------------------------- scaler
@dataclass
class ScalerState:
    """Running float64 statistics of the causal scaler, each ``[batch, variates, 1]``."""

    cum_w: torch.Tensor
    cum_wx: torch.Tensor
    m2: torch.Tensor
    last_mean: torch.Tensor
    lower: torch.Tensor | None  # clamp bounds from the global (context) statistics
    upper: torch.Tensor | None
    loc: torch.Tensor | None = None  # fixed stats of the non-causal StdMeanScaler
    scale: torch.Tensor | None = None

    def repeat_batch(self, repeats: int) -> ScalerState:
        """Each batch row repeated ``repeats`` times in a row (row b -> b*repeats..)."""

        def rep(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.repeat_interleave(repeats, dim=0)

        return ScalerState(*(rep(getattr(self, f)) for f in self.__dataclass_fields__))


class TotoScaler(nn.Module):
    """The reference's three input scalers (no parameters).

    * ``CausalPatchStdMeanScaler`` (published): per patch, the causal mean/std of all
      values up to the patch's last step; minimum scale 0.1; optional global clamp.
    * ``CausalStdMeanScaler``: the same statistics per time step (reference builds it with
      defaults, so never globally clamped).
    * ``StdMeanScaler``: one mean/std over the (prefix of the) series; minimum scale 1e-3.
    """

    def __init__(self, config: TotoConfig):
        super().__init__()
        self.kind = config.scaler_cls
        self.patch_size = config.patch_size
        if self.kind == SCALER_CAUSAL_PATCH:
            self.minimum_scale = 0.1
            self.stabilize = bool(config.stabilize_with_global)
            self.exponent = float(config.scale_factor_exponent)
        elif self.kind == SCALER_CAUSAL:
            self.minimum_scale = 0.1
            self.stabilize = False
            self.exponent = 10.0
        else:
            self.minimum_scale = 1e-3
            self.stabilize = False
            self.exponent = 10.0

    def start(
        self,
        data: torch.Tensor,
        padding_mask: torch.Tensor,
        prefix_length: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, ScalerState]:
        """Scale a whole series; return ``(scaled, loc, scale, state)`` (state for :meth:`step`)."""
        x = data.to(torch.float64)
        w = padding_mask.to(torch.float64)
        shape = (*data.shape[:-1], 1)
        zeros = torch.zeros(shape, dtype=torch.float64, device=data.device)
        if prefix_length is not None:
            prefix = torch.zeros_like(w)
            prefix[..., :prefix_length] = 1.0
            w_prefix = w * prefix
        else:
            w_prefix = w
        if self.kind == SCALER_STD_MEAN:
            denom = w_prefix.sum(-1, keepdim=True).clamp_min(1.0)
            mean = torch.nan_to_num((x * w_prefix).sum(-1, keepdim=True) / denom)
            var = (((x - mean) * w_prefix) ** 2).sum(-1, keepdim=True) / denom
            loc = mean.to(data.dtype)
            scale = torch.sqrt(var + self.minimum_scale).to(data.dtype)
            state = ScalerState(zeros, zeros, zeros, zeros, None, None, loc, scale)
            loc_t, scale_t = loc.expand_as(data), scale.expand_as(data)
            return (data - loc_t) / scale_t, loc_t, scale_t, state
        lower = upper = None
        if self.stabilize:
            g_denom = w_prefix.sum(-1, keepdim=True).clamp_min(1.0)
            g_mean = torch.nan_to_num((w_prefix * x).sum(-1, keepdim=True) / g_denom)
            g_var = (((x - g_mean) * w_prefix) ** 2).sum(-1, keepdim=True) / g_denom
            g_scale = torch.sqrt(g_var + self.minimum_scale)
            lower = torch.clamp_min(g_scale * 10.0 ** (-self.exponent), self.minimum_scale)
            upper = g_scale * 10.0**self.exponent
        state = ScalerState(zeros, zeros, zeros, zeros, lower, upper)
        return self._causal(data, x, w, state)

    def step(
        self, data: torch.Tensor, state: ScalerState, padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, ScalerState]:
        """Scale the next values of series whose earlier values built ``state``."""
        if self.kind == SCALER_STD_MEAN:
            assert state.loc is not None and state.scale is not None
            loc_t, scale_t = state.loc.expand_as(data), state.scale.expand_as(data)
            return (data - loc_t) / scale_t, loc_t, scale_t, state
        x = data.to(torch.float64)
        w = torch.ones_like(x) if padding_mask is None else padding_mask.to(torch.float64)
        return self._causal(data, x, w, state)

    def _causal(
        self, data: torch.Tensor, x: torch.Tensor, w: torch.Tensor, state: ScalerState
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, ScalerState]:
        # Welford's algorithm, vectorised with cumulative sums, continued from ``state``.
        cum_w = state.cum_w + torch.cumsum(w, dim=-1)
        cum_wx = state.cum_wx + torch.cumsum(w * x, dim=-1)
        denom = cum_w.clamp_min(1.0)
        means = cum_wx / denom
        shifted = torch.cat([state.last_mean, means[..., :-1]], dim=-1)
        m2 = state.m2 + torch.cumsum((x - shifted) * (x - means) * w, dim=-1)
        var = m2 / torch.clamp(denom - 1.0, min=1.0)  # Bessel's correction, as the reference
        scale = torch.sqrt(var + self.minimum_scale)
        if state.lower is not None and state.upper is not None:
            scale = torch.clamp(scale, min=state.lower, max=state.upper)
        new_state = ScalerState(
            cum_w[..., -1:],
            cum_wx[..., -1:],
            m2[..., -1:],
            means[..., -1:],
            state.lower,
            state.upper,
        )
        loc = means.to(data.dtype)
        scale = scale.to(data.dtype)
        if self.kind == SCALER_CAUSAL_PATCH:
            p = self.patch_size
            shape = data.shape
            loc = loc.reshape(*shape[:-1], -1, p)[..., -1:].expand(*shape[:-1], -1, p)
            loc = loc.reshape(shape)
            scale = scale.reshape(*shape[:-1], -1, p)[..., -1:].expand(*shape[:-1], -1, p)
            scale = scale.reshape(shape)
        return (data - loc) / scale, loc, scale, new_state

    def forward(
        self,
        data: torch.Tensor,
        padding_mask: torch.Tensor,
        prefix_length: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scaled, loc, scale, _ = self.start(data, padding_mask, prefix_length)
        return scaled, loc, scale


# ---------------------------------------------------------------------------- layers
class RMSNorm(nn.Module):
    """RMS normalisation with a learned gain named ``scale`` (the reference's key)."""

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps) * self.scale


class XPosRotary(nn.Module):
    """Rotary position embedding with xPos scaling, as rotary-embedding-torch computes it
    for the reference's ``TimeAwareRotaryEmbedding(head_dim, use_xpos=True)``.

    Holds no persistent state: the checkpoint's ``rotary_emb.freqs`` is recomputed here.
    """

    def __init__(self, head_dim: int):
        super().__init__()
        self.head_dim = head_dim
        inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        xpos = (torch.arange(0, head_dim, 2) + 0.4 * head_dim) / (1.4 * head_dim)
        self.register_buffer("xpos_scale", xpos, persistent=False)

    def tables(
        self, start: int, length: int, centre: float, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """cos, sin (``[length, head_dim]``) and the xPos scale for positions start.."""
        pos = torch.arange(length, device=device, dtype=torch.float32) + float(start)
        freqs = pos[:, None] * self.inv_freq.to(device)[None, :]
        freqs = freqs.repeat_interleave(2, dim=-1)
        power = (pos - centre) / XPOS_SCALE_BASE
        scale = self.xpos_scale.to(device)[None, :] ** power[:, None]
        scale = torch.cat([scale, scale], dim=-1)  # the reference cats (not interleaves)
        return freqs.cos(), freqs.sin(), scale

    @staticmethod
    def rotate_half(x: torch.Tensor) -> torch.Tensor:
        pairs = x.unflatten(-1, (-1, 2))
        return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)

    def apply(
        self, q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, scale: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = q.dtype
        qf, kf = q.float(), k.float()
        inv = scale**-1
        rq = qf * cos * scale + self.rotate_half(qf) * sin * scale
        rk = kf * cos * inv + self.rotate_half(kf) * sin * inv
        return rq.to(dtype), rk.to(dtype)


class SwiGLU(nn.Module):
    """SwiGLU feed-forward with xFormers' fused parameter names ``w12`` and ``w3``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * up)


class TotoKVCache:
    """Keys and values of the time-wise layers, ``[batch*variates, heads, time, head_dim]``.

    ``seq_len`` counts the patches already processed. Buffers grow by doubling; pass
    ``capacity`` (patches) to allocate once.
    """

    def __init__(self, capacity: int = 0):
        self.capacity = int(capacity)
        self._k: dict[int, torch.Tensor] = {}
        self._v: dict[int, torch.Tensor] = {}
        self._len: dict[int, int] = {}
        self.centre: float | None = None  # xPos centre fixed at the first call

    @property
    def seq_len(self) -> int:
        return min(self._len.values()) if self._len else 0

    def layer_len(self, layer: int) -> int:
        return self._len.get(layer, 0)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = k.shape[2]
        start = self._len.get(layer, 0)
        end = start + n
        buf_k = self._k.get(layer)
        if buf_k is None or buf_k.shape[2] < end or buf_k.shape[0] != k.shape[0]:
            cap = max(end, self.capacity, 2 * (buf_k.shape[2] if buf_k is not None else 0))
            new_k = k.new_empty((k.shape[0], k.shape[1], cap, k.shape[3]))
            new_v = v.new_empty((v.shape[0], v.shape[1], cap, v.shape[3]))
            if buf_k is not None and start:
                new_k[:, :, :start] = buf_k[:, :, :start]
                new_v[:, :, :start] = self._v[layer][:, :, :start]
            self._k[layer], self._v[layer] = new_k, new_v
        self._k[layer][:, :, start:end] = k
        self._v[layer][:, :, start:end] = v
        self._len[layer] = end
        return self._k[layer][:, :, :end], self._v[layer][:, :, :end]

    def repeat_batch(self, batch: int, repeats: int, extra_capacity: int = 0) -> TotoKVCache:
        """A copy in which batch row b becomes rows b*repeats .. b*repeats+repeats-1."""
        out = TotoKVCache(capacity=self.seq_len + extra_capacity)
        out.centre = self.centre
        for layer, k in self._k.items():
            n = self._len[layer]
            for src, dst in ((k, out._k), (self._v[layer], out._v)):
                rows, heads, _, dh = src.shape
                variates = rows // batch
                buf = src.new_empty((rows * repeats, heads, max(out.capacity, n), dh))
                view = src[:, :, :n].reshape(batch, 1, variates, heads, n, dh)
                buf.view(batch, repeats, variates, heads, -1, dh)[..., :n, :] = view
                dst[layer] = buf
            out._len[layer] = n
        return out


class TotoAttention(nn.Module):
    """Multi-head attention over time (causal, rotary+xPos) or over variates (masked by id)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float, axis: str):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.axis = axis
        self.dropout = dropout
        self.wQKV = nn.Linear(embed_dim, 3 * embed_dim)
        self.wO = nn.Linear(embed_dim, embed_dim)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # The reference splits the projection as (qkv, head_dim, heads): head index fastest.
        n, s, _ = x.shape
        qkv = self.wQKV(x).view(n, s, 3, self.head_dim, self.num_heads)
        q, k, v = qkv.permute(2, 0, 4, 1, 3).unbind(0)  # each [n, heads, s, head_dim]
        return q, k, v

    def forward(
        self,
        layer: int,
        x: torch.Tensor,
        *,
        rope: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        rotary: XPosRotary | None,
        space_mask: torch.Tensor | None,
        kv_cache: TotoKVCache | None,
    ) -> torch.Tensor:
        b, nv, s, e = x.shape
        p = self.dropout if self.training else 0.0
        if self.axis == "time":
            q, k, v = self._qkv(x.reshape(b * nv, s, e))
            if rope is not None and rotary is not None:
                q, k = rotary.apply(q, k, *rope)
            offset = 0
            if kv_cache is not None:
                offset = kv_cache.layer_len(layer)
                k, v = kv_cache.append(layer, k, v)
            if offset == 0:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=s > 1)
            elif s == 1:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            else:
                total = k.shape[2]
                q_pos = torch.arange(offset, offset + s, device=x.device)[:, None]
                mask = torch.arange(total, device=x.device)[None, :] <= q_pos
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            out = out.permute(0, 2, 1, 3).reshape(b, nv, s, e)
        else:
            xs = x.permute(0, 2, 1, 3).reshape(b * s, nv, e)
            q, k, v = self._qkv(xs)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=space_mask, dropout_p=p)
            out = out.permute(0, 2, 1, 3).reshape(b, s, nv, e).permute(0, 2, 1, 3)
        return self.wO(out)


class TotoLayer(nn.Module):
    def __init__(self, config: TotoConfig, axis: str):
        super().__init__()
        self.axis = axis
        self.norm1 = RMSNorm(config.embed_dim)
        self.norm2 = RMSNorm(config.embed_dim)
        self.attention = TotoAttention(config.embed_dim, config.num_heads, config.dropout, axis)
        self.mlp = nn.Sequential(
            SwiGLU(config.embed_dim, config.mlp_hidden_dim), nn.Dropout(config.dropout)
        )

    def forward(self, layer: int, x: torch.Tensor, **kwargs) -> torch.Tensor:
        h = x + self.attention(layer, self.norm1(x), **kwargs)
        return h + self.mlp(self.norm2(h))


class TotoTransformer(nn.Module):
    def __init__(self, config: TotoConfig):
        super().__init__()
        self.axes = config.layer_axes()
        self.rotary_emb = XPosRotary(config.head_dim)
        self.layers = nn.ModuleList(TotoLayer(config, axis) for axis in self.axes)

    def forward(
        self,
        x: torch.Tensor,
        id_mask: torch.Tensor | None,
        kv_cache: TotoKVCache | None = None,
        *,
        reference_cache_xpos: bool = False,
    ) -> torch.Tensor:
        b, nv, s, _ = x.shape
        offset = kv_cache.seq_len if kv_cache is not None else 0
        total = offset + s
        if reference_cache_xpos or kv_cache is None:
            centre = float((total - 1) // 2)
        else:
            if kv_cache.centre is None:
                kv_cache.centre = float((total - 1) // 2)
            centre = kv_cache.centre
        rope = self.rotary_emb.tables(offset, s, centre, x.device) if "time" in self.axes else None
        space_mask = None
        if id_mask is not None and "space" in self.axes and nv > 1:
            ids = id_mask.transpose(1, 2)  # [b, s, v]
            same = ids[..., :, None] == ids[..., None, :]
            if not bool(same.all()):
                space_mask = same.reshape(b * s, 1, nv, nv)
        for i, layer in enumerate(self.layers):
            x = layer(
                i,
                x,
                rope=rope,
                rotary=self.rotary_emb,
                space_mask=space_mask,
                kv_cache=kv_cache if layer.axis == "time" else None,
            )
        return x


# ---------------------------------------------------------------------------- output head
class StudentTMixtureParams(NamedTuple):
    """Parameters of the next-patch Student-T mixture, each ``[..., K]``, in scaled space."""

    df: torch.Tensor
    loc: torch.Tensor
    scale: torch.Tensor
    logits: torch.Tensor

    @property
    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=-1)

    def mean(self) -> torch.Tensor:
        """Mixture mean (each component's mean is its loc since df > 2)."""
        return (self.weights * self.loc).sum(-1)

    def distribution(self) -> torch.distributions.Distribution:
        comps = torch.distributions.StudentT(self.df, self.loc, self.scale, validate_args=False)
        mix = torch.distributions.Categorical(probs=self.weights, validate_args=False)
        return torch.distributions.MixtureSameFamily(mix, comps, validate_args=False)

    def sample(self) -> torch.Tensor:
        """One draw per element: pick a component, then draw from its Student-T."""
        idx = torch.multinomial(self.weights.reshape(-1, self.logits.shape[-1]), 1)
        idx = idx.reshape(*self.logits.shape[:-1], 1)
        df = self.df.gather(-1, idx).squeeze(-1)
        loc = self.loc.gather(-1, idx).squeeze(-1)
        scale = self.scale.gather(-1, idx).squeeze(-1)
        t = torch.distributions.StudentT(df, validate_args=False).sample()
        return loc + scale * t

    def map(self, fn) -> StudentTMixtureParams:
        return StudentTMixtureParams(*(fn(t) for t in self))


class TotoOutput(NamedTuple):
    """Backbone output: mixture parameters (scaled space) and the scaler's loc/scale."""

    params: StudentTMixtureParams
    loc: torch.Tensor
    scale: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        """Unscaled predictive mean for each position (predicting position + patch_size)."""
        return self.loc + self.scale * self.params.mean()

    def distribution(self, unscaled: bool = True) -> torch.distributions.Distribution:
        """The mixture, optionally mapped back to data units (``loc + scale * x``)."""
        base = self.params.distribution()
        if not unscaled:
            return base
        affine = torch.distributions.AffineTransform(self.loc, self.scale)
        return torch.distributions.TransformedDistribution(base, [affine], validate_args=False)

    def nll(self, targets: torch.Tensor) -> torch.Tensor:
        """Per-position NLL of ``targets`` in the scaled space, as the reference trains."""
        eps = torch.finfo(targets.dtype).eps
        scaled = (targets - self.loc) / (self.scale + eps)
        return -self.params.distribution().log_prob(scaled)


class StudentTMixtureHead(nn.Module):
    """``MixtureOfStudentTsOutput`` (or the single ``StudentTOutput`` when ``mixture`` is off)."""

    def __init__(self, embed_dim: int, k: int, mixture: bool = True):
        super().__init__()
        self.k = k
        self.mixture = mixture
        self.df = nn.Linear(embed_dim, k)
        self.loc_proj = nn.Linear(embed_dim, k)
        self.scale_proj = nn.Linear(embed_dim, k)
        if mixture:
            self.mixture_weights = nn.Linear(embed_dim, k)

    def forward(self, x: torch.Tensor) -> StudentTMixtureParams:
        eps = torch.finfo(x.dtype).eps
        df = 2.0 + F.softplus(self.df(x)).clamp_min(eps)
        loc = self.loc_proj(x)
        scale = F.softplus(self.scale_proj(x)).clamp_min(eps)
        logits = self.mixture_weights(x) if self.mixture else torch.zeros_like(loc)
        return StudentTMixtureParams(df, loc, scale, logits)


# ---------------------------------------------------------------------------- backbone
class PatchEmbedding(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Linear(patch_size, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x.unflatten(-1, (-1, self.patch_size)))


class TotoBackbone(nn.Module):
    """The Toto network (the reference's ``TotoBackbone``); see the module docstring."""

    def __init__(self, config: TotoConfig):
        super().__init__()
        self.config = config
        self.patch_size = config.patch_size
        self.embed_dim = config.embed_dim
        self.scaler = TotoScaler(config)
        self.patch_embed = PatchEmbedding(config.patch_size, config.embed_dim)
        self.transformer = TotoTransformer(config)
        self.unembed = nn.Linear(config.embed_dim, config.embed_dim * config.patch_size)
        self.output_distribution = StudentTMixtureHead(
            config.embed_dim, config.k_components, mixture=config.is_mixture
        )
        self.reference_cache_xpos = False

    # -- pieces the decoder uses directly
    def encode(
        self,
        scaled: torch.Tensor,
        id_mask: torch.Tensor | None = None,
        kv_cache: TotoKVCache | None = None,
    ) -> torch.Tensor:
        """Scaled values ``[b, v, n*patch]`` -> hidden states ``[b, v, n, embed]``."""
        h = self.patch_embed(scaled)
        return self.transformer(
            h, id_mask, kv_cache, reference_cache_xpos=self.reference_cache_xpos
        )

    def head(self, hidden: torch.Tensor) -> StudentTMixtureParams:
        """Hidden states ``[b, v, n, embed]`` -> parameters for ``[b, v, n*patch, K]``."""
        b, v, n, e = hidden.shape
        flat = self.unembed(hidden).view(b, v, n * self.patch_size, e)
        return self.output_distribution(flat)

    @staticmethod
    def reduce_id_mask(id_mask: torch.Tensor | None, patch_size: int) -> torch.Tensor | None:
        """``[b, v]`` or ``[b, v, t]`` ids -> one id per patch ``[b, v, n]`` (or None)."""
        if id_mask is None:
            return None
        if id_mask.dim() == 2:
            return id_mask[..., None]
        return id_mask.unflatten(-1, (-1, patch_size)).amin(-1)

    def forward(
        self,
        inputs: torch.Tensor,
        input_padding_mask: torch.Tensor | None = None,
        id_mask: torch.Tensor | None = None,
        kv_cache: TotoKVCache | None = None,
        scaling_prefix_length: int | None = None,
    ) -> TotoOutput:
        if inputs.dim() != 3 or inputs.shape[-1] % self.patch_size:
            raise ValueError(
                f"inputs must be [batch, variates, time] with time a multiple of "
                f"{self.patch_size}, got {tuple(inputs.shape)}"
            )
        if input_padding_mask is None:
            input_padding_mask = torch.ones_like(inputs, dtype=torch.bool)
        scaled, loc, scale = self.scaler(inputs, input_padding_mask, scaling_prefix_length)
        ids = self.reduce_id_mask(id_mask, self.patch_size)
        start = 0
        if kv_cache is not None:
            start = kv_cache.seq_len * self.patch_size
            scaled, loc, scale = scaled[..., start:], loc[..., start:], scale[..., start:]
            if ids is not None and ids.shape[-1] > 1:
                ids = ids[..., kv_cache.seq_len :]
        if ids is not None and ids.shape[-1] == 1:
            ids = ids.expand(-1, -1, scaled.shape[-1] // self.patch_size)
        hidden = self.encode(scaled, ids, kv_cache)
        return TotoOutput(self.head(hidden), loc, scale)


# ---------------------------------------------------------------------------- state dicts
_UNFUSED_TO_FUSED = {
    "mlp.0.weight": "mlp.0.w12.weight",
    "mlp.0.bias": "mlp.0.w12.bias",
    "mlp.2.weight": "mlp.0.w3.weight",
    "mlp.2.bias": "mlp.0.w3.bias",
}


def remap_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Published/reference key names -> this module's (``model.``-prefixed) names.

    Drops the rotary buffers (recomputed here), maps the unfused SwiGLU naming
    (``mlp.0``/``mlp.2``) to the fused one and adds the ``model.`` prefix when a bare
    backbone state dict is given.
    """
    out: dict[str, torch.Tensor] = {}
    bare = not any(k.startswith("model.") for k in state)
    for key, value in state.items():
        if "rotary_emb." in key:
            continue
        name = f"model.{key}" if bare else key
        for old, new in _UNFUSED_TO_FUSED.items():
            if name.endswith("." + old):
                name = name[: -len(old)] + new
                break
        out[name] = value
    return out


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def rounded_patches(steps: int, patch_size: int) -> int:
    return math.ceil(steps / patch_size)
