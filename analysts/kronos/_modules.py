"""Building blocks of Kronos, written to be weight-compatible with the published checkpoints.

The attribute names below (``q_proj``, ``rotary.inv_freq``, ``tokenizer.bsq.basis``, ...)
are the tensor names inside the ``model.safetensors`` files of the NeoQuasar/Kronos-*
repositories, so they must not be renamed.

Numerics follow the reference implementation (github.com/shiyu-coder/Kronos, MIT):

* RMSNorm: ``x * rsqrt(mean(x^2) + 1e-5) * weight`` computed in float32.
* Rotary embedding: base 10000, ``cat(freqs, freqs)`` layout, "rotate half" convention,
  positions counted from the first token of the current window.
* Self-attention: causal, via ``F.scaled_dot_product_attention``.  A key/value cache
  (:class:`KVCache`) lets one new token attend to the cached window without recomputing it.
* The dependency-aware layer's cross-attention (s2 conditioned on the sampled s1) uses
  4 heads whatever the model's ``n_heads``; it is causal in training mode only.  In eval
  mode with a single query (the sampling step) the rotary rotation is the identity
  (position 0), so the query attends to the whole window, as in the reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BSQuantizer",
    "BinarySphericalQuantizer",
    "DependencyAwareLayer",
    "DualHead",
    "FeedForward",
    "FixedEmbedding",
    "HierarchicalEmbedding",
    "KVCache",
    "MultiHeadAttentionWithRoPE",
    "MultiHeadCrossAttentionWithRoPE",
    "RMSNorm",
    "RotaryPositionalEmbedding",
    "TemporalEmbedding",
    "TransformerBlock",
]


# --------------------------------------------------------------------------- basics
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(torch.mean(xf * xf, dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class FeedForward(nn.Module):
    """SwiGLU feed-forward: ``w2(silu(w1 x) * w3 x)``."""

    def __init__(self, d_model: int, ff_dim: int, ffn_dropout_p: float = 0.0):
        super().__init__()
        self.w1 = nn.Linear(d_model, ff_dim, bias=False)
        self.w3 = nn.Linear(d_model, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, d_model, bias=False)
        self.ffn_dropout = nn.Dropout(ffn_dropout_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RotaryPositionalEmbedding(nn.Module):
    """Rotary embedding; ``inv_freq`` is a persistent buffer (it is in the checkpoints)."""

    def __init__(self, dim: int):
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)
        self._cache_key: tuple | None = None
        self._cos: torch.Tensor | None = None
        self._sin: torch.Tensor | None = None

    def cos_sin(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin tables ``[1, 1, length, dim]`` for positions ``0 .. length-1`` (cached)."""
        key = (length, str(device), self.inv_freq.data_ptr())
        if self._cache_key != key or self._cos is None or self._cos.shape[-2] < length:
            t = torch.arange(length, device=device).type_as(self.inv_freq)
            freqs = torch.outer(t, self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            self._cos = emb.cos()[None, None]
            self._sin = emb.sin()[None, None]
            self._cache_key = key
        return self._cos, self._sin

    def rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return x * cos + _rotate_half(x) * sin

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q`` and ``k`` (``[B, H, T, hd]``) at positions ``0 .. T-1``."""
        cos, sin = self.cos_sin(q.shape[-2], q.device)
        return self.rotate(q, cos, sin), self.rotate(k, cos, sin)


class KVCache:
    """Pre-allocated per-layer key/value cache for the predictor's self-attention.

    ``k[i]`` / ``v[i]`` are ``[B, H, capacity, head_dim]``; the first ``length`` positions
    are valid.  Keys are stored *after* the rotary rotation, at their window positions.
    """

    def __init__(self, n_layers: int):
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers
        self.length = 0
        self.capacity = 0
        # keys/values of the dependency-aware layer's cross-attention (un-rotated)
        self.dep_k: torch.Tensor | None = None
        self.dep_v: torch.Tensor | None = None

    def allocate(self, batch: int, n_heads: int, head_dim: int, capacity: int, like: torch.Tensor,
                 dep_heads: int, dep_head_dim: int):
        self.capacity = capacity
        for i in range(len(self.k)):
            self.k[i] = like.new_zeros(batch, n_heads, capacity, head_dim)
            self.v[i] = like.new_zeros(batch, n_heads, capacity, head_dim)
        self.dep_k = like.new_zeros(batch, dep_heads, capacity, dep_head_dim)
        self.dep_v = like.new_zeros(batch, dep_heads, capacity, dep_head_dim)
        self.length = 0

    def repeat_interleave(self, repeats: int) -> None:
        """Repeat every batch row ``repeats`` times (context prefilled once per series)."""
        for i in range(len(self.k)):
            self.k[i] = self.k[i].repeat_interleave(repeats, dim=0)
            self.v[i] = self.v[i].repeat_interleave(repeats, dim=0)
        self.dep_k = self.dep_k.repeat_interleave(repeats, dim=0)
        self.dep_v = self.dep_v.repeat_interleave(repeats, dim=0)


def _sdpa(q, k, v, *, attn_mask=None, is_causal=False, dropout_p=0.0):
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal
    )


def _causal_keep_mask(q_len: int, k_len: int, key_keep: torch.Tensor | None, device) -> torch.Tensor:
    """Boolean "may attend" mask: causal (top-left aligned) and not on a padded key."""
    keep = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()
    if key_keep is None:
        return keep
    return keep[None, None] & key_keep[:, None, None, :]


# --------------------------------------------------------------------------- attention
class _RoPEAttentionBase(nn.Module):
    """Projections, rotary embedding and head split shared by Kronos's self- and
    cross-attention (attribute names are the checkpoint's key names)."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout_p: float = 0.0,
                 resid_dropout_p: float = 0.0):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = RotaryPositionalEmbedding(self.head_dim)
        self.attn_dropout_p = attn_dropout_p
        self.resid_dropout = nn.Dropout(resid_dropout_p)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)


class MultiHeadAttentionWithRoPE(_RoPEAttentionBase):
    """Causal self-attention with rotary positions and an optional key/value cache."""

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        """``x`` ``[B, T, d]``.

        Without ``cache``: full causal attention over positions ``0..T-1``.
        ``key_padding_mask`` (``[B, T]``, True/1 = padding) removes padded keys.
        With ``cache``: ``x`` holds the tokens at positions ``cache.length ..
        cache.length + T - 1``; their rotated keys/values are written into the cache and
        they attend to every cached position before them.  The caller advances
        ``cache.length`` after the last layer.
        """
        b, t, _ = x.shape
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(x)), self._heads(self.v_proj(x))
        dropout = self.attn_dropout_p if self.training else 0.0
        if cache is None:
            q, k = self.rotary(q, k)
            if key_padding_mask is None:
                out = _sdpa(q, k, v, is_causal=True, dropout_p=dropout)
            else:
                mask = _causal_keep_mask(t, t, key_padding_mask == 0, x.device)
                out = _sdpa(q, k, v, attn_mask=mask, dropout_p=dropout)
        else:
            start, end = cache.length, cache.length + t
            if end > cache.capacity:
                raise RuntimeError(f"KV cache overflow: {end} > capacity {cache.capacity}")
            cos, sin = self.rotary.cos_sin(cache.capacity, x.device)
            cos, sin = cos[:, :, start:end], sin[:, :, start:end]
            q, k = self.rotary.rotate(q, cos, sin), self.rotary.rotate(k, cos, sin)
            cache.k[layer][:, :, start:end] = k
            cache.v[layer][:, :, start:end] = v
            keys, values = cache.k[layer][:, :, :end], cache.v[layer][:, :, :end]
            if start == 0:
                out = _sdpa(q, keys, values, is_causal=True)
            elif t == 1:
                out = _sdpa(q, keys, values)
            else:  # several new tokens after a cached prefix: bottom-right aligned causal mask
                keep = torch.ones(t, end, dtype=torch.bool, device=x.device).tril(diagonal=start)
                out = _sdpa(q, keys, values, attn_mask=keep)
        out = out.transpose(1, 2).contiguous().view(b, t, self.d_model)
        return self.resid_dropout(self.out_proj(out))


class MultiHeadCrossAttentionWithRoPE(_RoPEAttentionBase):
    """Cross-attention of the dependency-aware layer (query: s1 embedding, keys: context)."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout_p: float = 0.0,
                 resid_dropout: float = 0.0):
        super().__init__(d_model, n_heads, attn_dropout_p, resid_dropout)

    def project_kv(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Un-rotated key/value heads ``[B, H, T, hd]`` (what a single query attends to)."""
        return self._heads(self.k_proj(key)), self._heads(self.v_proj(value))

    def attend_one(self, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """One query per row (``[B, 1, d]``) over precomputed heads; rotary is the identity."""
        b = query.shape[0]
        q = self._heads(self.q_proj(query))
        out = _sdpa(q, k, v)
        return self.out_proj(out.transpose(1, 2).contiguous().view(b, 1, self.d_model))

    def forward(self, query, key, value, key_padding_mask=None, causal: bool | None = None):
        b, q_len, _ = query.shape
        k_len = key.shape[1]
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        if q_len == k_len:
            q, k = self.rotary(q, k)
        elif q_len != 1:
            raise ValueError(f"cross-attention needs q_len == k_len or q_len == 1, got {q_len}/{k_len}")
        # q_len == 1: the reference rotates both at position 0, i.e. leaves them unchanged.
        is_causal = self.training if causal is None else causal
        dropout = self.attn_dropout_p if self.training else 0.0
        if key_padding_mask is None:
            out = _sdpa(q, k, v, is_causal=is_causal, dropout_p=dropout)
        else:
            key_keep = key_padding_mask == 0
            if is_causal:
                mask = _causal_keep_mask(q_len, k_len, key_keep, query.device)
            else:
                mask = key_keep[:, None, None, :].expand(b, 1, q_len, k_len)
            out = _sdpa(q, k, v, attn_mask=mask, dropout_p=dropout)
        out = out.transpose(1, 2).contiguous().view(b, q_len, self.d_model)
        return self.resid_dropout(self.out_proj(out))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm1 x)`` then ``x + ffn(norm2 x)``."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int = 1024, ffn_dropout_p: float = 0.0,
                 attn_dropout_p: float = 0.0, resid_dropout_p: float = 0.0):
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.self_attn = MultiHeadAttentionWithRoPE(d_model, n_heads, attn_dropout_p, resid_dropout_p)
        self.norm2 = RMSNorm(d_model)
        self.ffn = FeedForward(d_model, ff_dim, ffn_dropout_p)

    def forward(self, x, key_padding_mask=None, cache: KVCache | None = None, layer: int = 0):
        x = x + self.self_attn(self.norm1(x), key_padding_mask=key_padding_mask, cache=cache, layer=layer)
        return x + self.ffn(self.norm2(x))


# --------------------------------------------------------------------------- predictor parts
class HierarchicalEmbedding(nn.Module):
    """``fusion_proj(cat(emb_s1(s1) * sqrt(d), emb_s2(s2) * sqrt(d)))``."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int = 256):
        super().__init__()
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.d_model = d_model
        self.emb_s1 = nn.Embedding(2 ** s1_bits, d_model)
        self.emb_s2 = nn.Embedding(2 ** s2_bits, d_model)
        self.fusion_proj = nn.Linear(d_model * 2, d_model)
        nn.init.normal_(self.emb_s1.weight, mean=0, std=d_model ** -0.5)
        nn.init.normal_(self.emb_s2.weight, mean=0, std=d_model ** -0.5)

    def split_token(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Composite id ``s1 << s2_bits | s2`` -> ``(s1, s2)``."""
        t = token_ids.long()
        return t >> self.s2_bits, t & ((1 << self.s2_bits) - 1)

    def forward(self, token_ids) -> torch.Tensor:
        if isinstance(token_ids, (tuple, list)):
            s1_ids, s2_ids = token_ids
        else:
            s1_ids, s2_ids = self.split_token(token_ids)
        scale = math.sqrt(self.d_model)
        fused = torch.cat([self.emb_s1(s1_ids) * scale, self.emb_s2(s2_ids) * scale], dim=-1)
        return self.fusion_proj(fused)


class DependencyAwareLayer(nn.Module):
    """``norm(context + cross_attn(query=emb_s1(s1), key=value=context))``."""

    def __init__(self, d_model: int, n_heads: int = 4, attn_dropout_p: float = 0.0,
                 resid_dropout: float = 0.0):
        super().__init__()
        self.cross_attn = MultiHeadCrossAttentionWithRoPE(d_model, n_heads, attn_dropout_p, resid_dropout)
        self.norm = RMSNorm(d_model)

    def forward(self, hidden_states, sibling_embed, key_padding_mask=None, causal: bool | None = None):
        attn_out = self.cross_attn(sibling_embed, hidden_states, hidden_states,
                                   key_padding_mask=key_padding_mask, causal=causal)
        return self.norm(hidden_states + attn_out)


class DualHead(nn.Module):
    def __init__(self, s1_bits: int, s2_bits: int, d_model: int):
        super().__init__()
        self.vocab_s1 = 2 ** s1_bits
        self.vocab_s2 = 2 ** s2_bits
        self.proj_s1 = nn.Linear(d_model, self.vocab_s1)
        self.proj_s2 = nn.Linear(d_model, self.vocab_s2)

    def compute_loss(self, s1_logits, s2_logits, s1_targets, s2_targets, padding_mask=None):
        """Mean of the s1 and s2 cross-entropies; ``padding_mask`` nonzero = excluded."""
        if padding_mask is not None:
            valid = padding_mask == 0
            ce_s1 = F.cross_entropy(s1_logits[valid], s1_targets[valid])
            ce_s2 = F.cross_entropy(s2_logits[valid], s2_targets[valid])
        else:
            ce_s1 = F.cross_entropy(s1_logits.reshape(-1, self.vocab_s1), s1_targets.reshape(-1))
            ce_s2 = F.cross_entropy(s2_logits.reshape(-1, self.vocab_s2), s2_targets.reshape(-1))
        return (ce_s1 + ce_s2) / 2, ce_s1, ce_s2

    def forward(self, x):
        return self.proj_s1(x)

    def cond_forward(self, x2):
        return self.proj_s2(x2)


class FixedEmbedding(nn.Module):
    """Frozen sinusoidal table (stored in the checkpoints as ``<name>.emb.weight``)."""

    def __init__(self, c_in: int, d_model: int):
        super().__init__()
        w = torch.zeros(c_in, d_model, dtype=torch.float32)
        position = torch.arange(0, c_in).float().unsqueeze(1)
        div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        w[:, 0::2] = torch.sin(position * div_term)
        w[:, 1::2] = torch.cos(position * div_term)
        self.emb = nn.Embedding(c_in, d_model)
        self.emb.weight = nn.Parameter(w, requires_grad=False)

    def forward(self, x):
        return self.emb(x).detach()


class TemporalEmbedding(nn.Module):
    """Sum of minute/hour/weekday/day/month embeddings; ``stamp[..., :5]`` in that order."""

    SIZES = (("minute_embed", 60), ("hour_embed", 24), ("weekday_embed", 7),
             ("day_embed", 32), ("month_embed", 13))

    def __init__(self, d_model: int, learn_pe: bool):
        super().__init__()
        make = nn.Embedding if learn_pe else FixedEmbedding
        for name, size in self.SIZES:
            setattr(self, name, make(size, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.long()
        minute = self.minute_embed(x[:, :, 0])
        hour = self.hour_embed(x[:, :, 1])
        weekday = self.weekday_embed(x[:, :, 2])
        day = self.day_embed(x[:, :, 3])
        month = self.month_embed(x[:, :, 4])
        return hour + weekday + day + month + minute


# --------------------------------------------------------------------------- quantiser
class BinarySphericalQuantizer(nn.Module):
    """Binary spherical quantisation (Zhao et al. 2024, arXiv:2406.07548).

    ``quantize`` maps each coordinate to ``+-1`` with a straight-through gradient; the codes
    are scaled by ``1/sqrt(embed_dim)`` (points on the unit sphere).  ``loss`` is the
    training objective of the reference's default configuration (commitment + soft entropy
    penalty with analytical per-bit probabilities).
    """

    def __init__(self, embed_dim: int, beta: float, gamma0: float, gamma: float, zeta: float,
                 group_size: int = 9, l2_norm: bool = True, inv_temperature: float = 1.0):
        super().__init__()
        if embed_dim % group_size:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by group_size={group_size}")
        self.embed_dim = embed_dim
        self.beta, self.gamma0, self.gamma, self.zeta = beta, gamma0, gamma, zeta
        self.group_size = group_size
        self.num_groups = embed_dim // group_size
        self.l2_norm = l2_norm
        self.inv_temperature = inv_temperature
        # most-significant-bit-first weights (as in the checkpoints; int64)
        self.register_buffer("basis", 2 ** torch.arange(embed_dim - 1, -1, -1))
        self.register_buffer("group_basis", 2 ** torch.arange(group_size - 1, -1, -1))

    @property
    def q_scale(self) -> float:
        return 1.0 / math.sqrt(self.embed_dim) if self.l2_norm else 1.0

    @staticmethod
    def quantize(z: torch.Tensor) -> torch.Tensor:
        """``sign(z)`` in ``{-1, +1}`` (0 -> -1) with a straight-through gradient."""
        zhat = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
        return z + (zhat - z).detach()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.quantize(z) * self.q_scale

    def loss(self, z: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        """Commitment + entropy penalty of the reference's default (analytical) mode.

        Bit ``i`` is positive with probability ``p_i = sigmoid(4 z_i q_scale / tau)``;
        per-sample entropy is the mean over tokens of ``sum_i H(p_i)`` and the codebook
        entropy is ``sum_i H(mean over tokens of p_i)``.
        """
        commit = self.beta * torch.mean(((zq.detach() - z) ** 2).sum(dim=-1))
        p = torch.sigmoid(-4 * z * self.q_scale * self.inv_temperature)
        prob = torch.stack([p, 1 - p], dim=-1)
        per_sample = (-(prob * torch.log(prob + 1e-8)).sum(-1)).sum(-1).mean()
        avg_prob = prob.reshape(-1, self.embed_dim, 2).mean(0)
        cb_entropy = (-(avg_prob * torch.log(avg_prob + 1e-8)).sum(-1)).sum()
        penalty = self.gamma0 * per_sample - self.gamma * cb_entropy
        return commit + self.zeta * penalty / self.inv_temperature


class BSQuantizer(nn.Module):
    """Splits the ``s1_bits + s2_bits`` BSQ code into a coarse (s1) and fine (s2) token.

    Token ids are little-endian: bit ``i`` of an id is the sign of coordinate ``i`` of its
    half (``1`` for positive), so ``id = sum_i [z_i > 0] * 2**i``.
    """

    def __init__(self, s1_bits, s2_bits, beta, gamma0, gamma, zeta, group_size):
        super().__init__()
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.codebook_dim = s1_bits + s2_bits
        self.bsq = BinarySphericalQuantizer(self.codebook_dim, beta, gamma0, gamma, zeta,
                                            group_size=group_size)

    @staticmethod
    def bits_to_indices(bits: torch.Tensor) -> torch.Tensor:
        weights = 2 ** torch.arange(bits.shape[-1], dtype=torch.long, device=bits.device)
        return ((bits >= 0).long() * weights).sum(-1)

    @staticmethod
    def indices_to_bits(ids: torch.Tensor, n_bits: int) -> torch.Tensor:
        """Inverse of :meth:`bits_to_indices`: ``{-1, +1}`` float codes ``[..., n_bits]``."""
        mask = 2 ** torch.arange(n_bits, device=ids.device, dtype=torch.long)
        return ((ids.long().unsqueeze(-1) & mask) != 0).float() * 2 - 1

    def forward(self, z: torch.Tensor, half: bool = False, with_loss: bool = True):
        """Returns ``(loss, quantized, ids)``; ids is ``(s1, s2)`` when ``half``."""
        z = F.normalize(z, dim=-1)
        quantized = self.bsq(z)
        loss = self.bsq.loss(z, quantized) if with_loss else quantized.new_zeros(())
        if half:
            ids = (self.bits_to_indices(quantized[..., : self.s1_bits]),
                   self.bits_to_indices(quantized[..., self.s1_bits:]))
        else:
            ids = self.bits_to_indices(quantized)
        return loss, quantized, ids


# --------------------------------------------------------------------------- checkpoints
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

# config.json keys that identify which model a folder holds
_KIND_KEYS = {
    "KronosTokenizer": {"d_in", "n_enc_layers", "n_dec_layers", "group_size"},
    "Kronos": {"n_layers", "learn_te", "token_dropout_p"},
}
# tensor names that identify which model a folder holds
_KIND_TENSORS = {
    "KronosTokenizer": ("quant_embed.weight", "post_quant_embed.weight"),
    "Kronos": ("embedding.emb_s1.weight", "head.proj_s1.weight"),
}


def _errors():
    from engine.errors import ConfigError

    return ConfigError


def _kind_from_config(cfg: dict) -> str | None:
    for kind, keys in _KIND_KEYS.items():
        if keys <= set(cfg):
            return kind
    return None


def _kind_from_tensors(names) -> str | None:
    names = set(names)
    for kind, probe in _KIND_TENSORS.items():
        if all(p in names for p in probe):
            return kind
    return None


def resolve_pretrained_dir(name_or_path, **hub_kwargs):
    """A local folder, or a Hugging Face hub id downloaded with ``huggingface_hub``."""
    from pathlib import Path

    ConfigError = _errors()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    if path.exists():
        raise ConfigError(f"{text!r} is a file; expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME}")
    looks_like_hub_id = text.count("/") == 1 and not text.startswith((".", "/", "~"))
    if not looks_like_hub_id:
        raise ConfigError(f"checkpoint folder {text!r} does not exist")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ConfigError(
            f"{text!r} is not a local folder and looks like a Hugging Face hub id, but "
            "huggingface_hub is not installed: `pip install huggingface_hub`, or download "
            f"the repository's {CONFIG_NAME} and {WEIGHTS_NAME} into a folder and pass its path"
        ) from exc
    allowed = {k: v for k, v in hub_kwargs.items() if v is not None}
    return Path(snapshot_download(repo_id=text, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME], **allowed))


class PretrainedMixin:
    """``from_pretrained`` / ``save_pretrained`` in the PyTorchModelHubMixin layout.

    Subclasses define ``CONFIG_KEYS`` (constructor arguments, which are also the keys of
    config.json) and ``_derivable(name)`` (persistent tensors that are constants, such as
    rotary frequencies, which may be absent from a file).
    """

    CONFIG_KEYS: tuple[str, ...] = ()
    OPTIONAL_CONFIG: dict = {}

    def config_dict(self) -> dict:
        return dict(self._config)

    def save_pretrained(self, save_directory) -> None:
        import json
        from pathlib import Path

        from safetensors.torch import save_file

        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=2, sort_keys=True))
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, map_location="cpu", strict=True,
                        revision=None, cache_dir=None, token=None, local_files_only=False,
                        force_download=False, **config_overrides):
        """Build from ``config.json`` and load ``model.safetensors`` by tensor name.

        ``pretrained_model_name_or_path``: a local folder, or a hub id (needs
        ``huggingface_hub``; ``revision``, ``cache_dir``, ``token``, ``local_files_only``,
        ``force_download`` are passed to it).  ``config_overrides`` replace config values
        (e.g. dropout rates for fine-tuning).  Returns the model in eval mode.  Raises
        ``ConfigError`` for a folder of the other Kronos model, missing/unknown
        hyper-parameters, and missing, mis-shaped or (``strict``) unexpected tensors.
        """
        import json

        from safetensors import safe_open

        ConfigError = _errors()
        unknown = sorted(set(config_overrides) - set(cls.CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"{cls.__name__}.from_pretrained: unknown argument(s) {unknown}; "
                              f"hyper-parameters are {list(cls.CONFIG_KEYS)}")
        folder = resolve_pretrained_dir(
            pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir, token=token,
            local_files_only=local_files_only, force_download=force_download)
        cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        missing_files = [p.name for p in (cfg_path, w_path) if not p.is_file()]
        if missing_files:
            raise ConfigError(f"{folder}: missing {', '.join(missing_files)} (expected the "
                              f"{cls.__name__} layout: {CONFIG_NAME} + {WEIGHTS_NAME})")
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{cfg_path}: not valid JSON ({exc})") from exc
        if not isinstance(cfg, dict):
            raise ConfigError(f"{cfg_path}: expected a JSON object of hyper-parameters")
        try:
            with safe_open(str(w_path), framework="pt") as fh:
                names = list(fh.keys())
        except Exception as exc:  # safetensors raises its own error types
            raise ConfigError(f"{w_path}: not a readable safetensors file ({exc})") from exc

        held = _kind_from_config(cfg) or _kind_from_tensors(names)
        if held is not None and held != cls.__name__:
            raise ConfigError(
                f"{folder} holds a {held} checkpoint, not a {cls.__name__}: load it with "
                f"{held}.from_pretrained(...)"
            )
        missing_keys = [k for k in cls.CONFIG_KEYS
                        if k not in cfg and k not in cls.OPTIONAL_CONFIG and k not in config_overrides]
        if missing_keys:
            raise ConfigError(f"{cfg_path}: missing hyper-parameters {missing_keys} for {cls.__name__}")
        kwargs = {k: cfg.get(k, cls.OPTIONAL_CONFIG.get(k)) for k in cls.CONFIG_KEYS}
        kwargs.update(config_overrides)
        try:
            model = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{cfg_path}: cannot build {cls.__name__} from {kwargs}: {exc}") from exc
        model.load_safetensors(w_path, strict=strict, map_location=map_location)
        model.eval()
        return model

    def load_safetensors(self, path, *, strict=True, map_location="cpu") -> None:
        """Load tensors by name, checking names and shapes; errors list every problem."""
        from safetensors.torch import load_file

        ConfigError = _errors()
        state = load_file(str(path), device=str(map_location))
        own = self.state_dict()
        missing = [k for k in own if k not in state and not self._derivable(k)]
        unexpected = [k for k in state if k not in own]
        shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in state if k in own and state[k].shape != own[k].shape]
        problems = []
        if missing:
            problems.append(f"missing tensors {missing}")
        if shapes:
            problems.append(f"mis-shaped tensors [{'; '.join(shapes)}]")
        if unexpected and strict:
            problems.append(f"unexpected tensors {unexpected}")
        if problems:
            raise ConfigError(f"{path}: does not match the {type(self).__name__} built from its "
                              f"config.json: " + "; ".join(problems))
        load = {k: v for k, v in state.items() if k in own}
        self.load_state_dict(load, strict=False)

    @staticmethod
    def _derivable(name: str) -> bool:
        return name.endswith(("rotary.inv_freq", "bsq.basis", "bsq.group_basis"))
