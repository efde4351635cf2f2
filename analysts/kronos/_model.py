"""``Kronos``: the decoder-only predictor over hierarchical (s1, s2) tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._modules import (
    DependencyAwareLayer,
    DualHead,
    HierarchicalEmbedding,
    KVCache,
    PretrainedMixin,
    RMSNorm,
    TemporalEmbedding,
    TransformerBlock,
)

__all__ = ["Kronos"]


class Kronos(PretrainedMixin, nn.Module):
    """Kronos predictor (weight-compatible with NeoQuasar/Kronos-mini, -small, -base).

    Per position ``t`` the model reads the token ``(s1_t, s2_t)`` plus its time stamp and
    predicts the next token in two stages: ``s1`` logits from the final hidden state
    ``h_t``, then ``s2`` logits from ``norm(h_t + cross_attn(emb_s1(s1_{t+1}), h))`` (the
    dependency-aware layer), i.e. s2 is conditioned on the s1 that was chosen.

    **forward**: ``forward(s1_ids, s2_ids, stamp=None, padding_mask=None,
    use_teacher_forcing=False, s1_targets=None) -> (s1_logits, s2_logits)``

    * ``s1_ids``, ``s2_ids``: int64 ``[batch, seq]``; ``stamp``: ``[batch, seq, 5]``
      (minute, hour, weekday, day, month; floats or ints).
    * ``padding_mask``: optional ``[batch, seq]``, nonzero = padding (excluded as keys).
    * returns ``s1_logits`` ``[batch, seq, 2**s1_bits]`` and ``s2_logits``
      ``[batch, seq, 2**s2_bits]``; position ``t`` predicts token ``t + 1``.  The s2 logits
      are conditioned on ``s1_targets`` with teacher forcing, else on s1 ids *sampled* from
      the s1 logits (the reference's training recipe).  As in the reference, the s2
      cross-attention is causal only in training mode.

    **training loss**: :meth:`next_token_loss` (inputs ``[:, :-1]``, targets ``[:, 1:]``).
    **inference**: :meth:`decode_s1` / :meth:`decode_s2` (full window, as the reference) and
    the KV-cached :meth:`prefill` / :meth:`extend` / :meth:`s2_logits_cached`.
    """

    CONFIG_KEYS = ("s1_bits", "s2_bits", "n_layers", "d_model", "n_heads", "ff_dim",
                   "ffn_dropout_p", "attn_dropout_p", "resid_dropout_p", "token_dropout_p",
                   "learn_te")
    OPTIONAL_CONFIG = {"ffn_dropout_p": 0.0, "attn_dropout_p": 0.0, "resid_dropout_p": 0.0,
                       "token_dropout_p": 0.0}

    def __init__(self, s1_bits, s2_bits, n_layers, d_model, n_heads, ff_dim, ffn_dropout_p=0.0,
                 attn_dropout_p=0.0, resid_dropout_p=0.0, token_dropout_p=0.0, learn_te=True):
        super().__init__()
        self._config = {
            "s1_bits": s1_bits, "s2_bits": s2_bits, "n_layers": n_layers, "d_model": d_model,
            "n_heads": n_heads, "ff_dim": ff_dim, "ffn_dropout_p": ffn_dropout_p,
            "attn_dropout_p": attn_dropout_p, "resid_dropout_p": resid_dropout_p,
            "token_dropout_p": token_dropout_p, "learn_te": learn_te,
        }
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.n_layers = n_layers
        self.d_model = d_model
        self.n_heads = n_heads
        self.ff_dim = ff_dim
        self.learn_te = learn_te
        self.s1_vocab_size = 2 ** s1_bits
        self.s2_vocab_size = 2 ** s2_bits
        self.token_drop = nn.Dropout(token_dropout_p)
        self.embedding = HierarchicalEmbedding(s1_bits, s2_bits, d_model)
        self.time_emb = TemporalEmbedding(d_model, learn_te)
        self.transformer = nn.ModuleList([
            TransformerBlock(d_model, n_heads, ff_dim, ffn_dropout_p, attn_dropout_p, resid_dropout_p)
            for _ in range(n_layers)
        ])
        self.norm = RMSNorm(d_model)
        self.dep_layer = DependencyAwareLayer(d_model)
        self.head = DualHead(s1_bits, s2_bits, d_model)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # same initialisation scheme as the reference (it also re-draws FixedEmbedding tables)
        if isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0, std=self.d_model ** -0.5)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)

    # ----------------------------------------------------------------- core passes
    def _embed(self, s1_ids, s2_ids, stamp):
        x = self.embedding([s1_ids, s2_ids])
        if stamp is not None:
            x = x + self.time_emb(stamp)
        return self.token_drop(x)

    def decode_s1(self, s1_ids, s2_ids, stamp=None, padding_mask=None):
        """Full pass: ``(s1_logits [B, T, V1], context [B, T, d])`` (no cache)."""
        x = self._embed(s1_ids, s2_ids, stamp)
        for layer in self.transformer:
            x = layer(x, key_padding_mask=padding_mask)
        x = self.norm(x)
        return self.head(x), x

    def decode_s2(self, context, s1_ids, padding_mask=None, causal: bool | None = None):
        """s2 logits from ``context`` (output of :meth:`decode_s1`) and chosen ``s1_ids``."""
        sibling = self.embedding.emb_s1(s1_ids)
        x2 = self.dep_layer(context, sibling, key_padding_mask=padding_mask, causal=causal)
        return self.head.cond_forward(x2)

    def forward(self, s1_ids, s2_ids, stamp=None, padding_mask=None, use_teacher_forcing=False,
                s1_targets=None, causal_s2: bool | None = None):
        s1_logits, x = self.decode_s1(s1_ids, s2_ids, stamp, padding_mask)
        if use_teacher_forcing:
            if s1_targets is None:
                raise ValueError("use_teacher_forcing=True needs s1_targets")
            cond = s1_targets
        else:
            probs = F.softmax(s1_logits.detach(), dim=-1)
            cond = torch.multinomial(probs.view(-1, self.s1_vocab_size), 1).view(s1_ids.shape)
        s2_logits = self.decode_s2(x, cond, padding_mask, causal=causal_s2)
        return s1_logits, s2_logits

    def next_token_loss(self, s1_ids, s2_ids, stamp=None, padding_mask=None,
                        teacher_forcing: bool = False):
        """Next-token cross-entropy for full token sequences ``[batch, seq]``.

        Inputs are positions ``[:, :-1]`` (and ``stamp[:, :-1]``), targets ``[:, 1:]``.
        Returns ``(loss, ce_s1, ce_s2)`` with ``loss = (ce_s1 + ce_s2) / 2``.  With
        ``teacher_forcing=False`` (the reference's pre-training recipe) s2 is conditioned on
        s1 sampled from the model; with ``True`` on the true next s1 (deterministic).  The
        s2 cross-attention is causal here in train *and* eval mode (no look-ahead), so a
        validation loss is not inflated by future context.  ``padding_mask`` ``[batch,
        seq]`` (nonzero = padding) drops padded targets and padded keys.
        """
        inp_pad = None if padding_mask is None else padding_mask[:, :-1]
        tgt_pad = None if padding_mask is None else padding_mask[:, 1:]
        st = None if stamp is None else stamp[:, :-1]
        s1_t, s2_t = s1_ids[:, 1:], s2_ids[:, 1:]
        s1_logits, s2_logits = self.forward(
            s1_ids[:, :-1], s2_ids[:, :-1], st, inp_pad, use_teacher_forcing=teacher_forcing,
            s1_targets=s1_t, causal_s2=True,
        )
        return self.head.compute_loss(s1_logits, s2_logits, s1_t, s2_t, padding_mask=tgt_pad)

    # ----------------------------------------------------------------- KV-cached inference
    def new_cache(self, batch: int, capacity: int, like: torch.Tensor) -> KVCache:
        attn = self.transformer[0].self_attn if self.n_layers else None
        cross = self.dep_layer.cross_attn
        cache = KVCache(self.n_layers)
        cache.allocate(batch, attn.n_heads if attn else 1, attn.head_dim if attn else 1, capacity,
                       like, cross.n_heads, cross.head_dim)
        return cache

    def _run_cached(self, s1_ids, s2_ids, stamp, cache: KVCache) -> torch.Tensor:
        x = self._embed(s1_ids, s2_ids, stamp)
        for i, layer in enumerate(self.transformer):
            x = layer(x, cache=cache, layer=i)
        x = self.norm(x)
        start, end = cache.length, cache.length + x.shape[1]
        k, v = self.dep_layer.cross_attn.project_kv(x, x)
        cache.dep_k[:, :, start:end] = k
        cache.dep_v[:, :, start:end] = v
        cache.length = end
        return x

    def prefill(self, s1_ids, s2_ids, stamp=None, capacity: int | None = None):
        """Run the window ``[B, T]`` once; returns ``(cache, context [B, T, d])``.

        ``capacity`` (>= T) is the longest window the cache will hold.
        """
        capacity = s1_ids.shape[1] if capacity is None else capacity
        like = self.embedding.fusion_proj.weight
        cache = self.new_cache(s1_ids.shape[0], capacity, like)
        return cache, self._run_cached(s1_ids, s2_ids, stamp, cache)

    def extend(self, s1_ids, s2_ids, stamp, cache: KVCache) -> torch.Tensor:
        """Append tokens ``[B, t]`` at the next positions; returns their context ``[B, t, d]``."""
        return self._run_cached(s1_ids, s2_ids, stamp, cache)

    def s1_logits_from(self, context_last: torch.Tensor) -> torch.Tensor:
        return self.head(context_last)

    def s2_logits_cached(self, context_last: torch.Tensor, s1_ids: torch.Tensor,
                         cache: KVCache) -> torch.Tensor:
        """s2 logits ``[B, V2]`` for the last position, given its context ``[B, d]`` and the
        chosen ``s1_ids`` ``[B]``; attends to every cached window position (as the
        reference's eval-mode :meth:`decode_s2` does for the last row)."""
        n = cache.length
        query = self.embedding.emb_s1(s1_ids.view(-1, 1))
        cross = self.dep_layer.cross_attn
        attn = cross.attend_one(query, cache.dep_k[:, :, :n], cache.dep_v[:, :, :n])
        x2 = self.dep_layer.norm(context_last.unsqueeze(1) + attn)
        return self.head.cond_forward(x2)[:, 0]

    @staticmethod
    def _derivable(name: str) -> bool:
        return name.endswith("rotary.inv_freq")

