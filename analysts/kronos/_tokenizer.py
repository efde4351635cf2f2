"""``KronosTokenizer``: OHLCVA windows <-> hierarchical BSQ tokens (s1 coarse, s2 fine)."""

from __future__ import annotations

import torch
from torch import nn

from ._modules import BSQuantizer, PretrainedMixin, TransformerBlock

__all__ = ["KronosTokenizer"]


class KronosTokenizer(PretrainedMixin, nn.Module):
    """Transformer encoder -> binary spherical quantiser -> transformer decoder.

    Same hyper-parameter names as the published ``config.json`` files
    (NeoQuasar/Kronos-Tokenizer-base, -2k).  ``n_enc_layers`` / ``n_dec_layers`` give
    ``n - 1`` transformer blocks each (as in the reference).  Both stacks are causal, so
    the token at ``t`` depends on the rows ``<= t`` only (but on *all* of them: encode the
    same rows to get the same tokens).

    Input rows are normalised ``[open, high, low, close, volume, amount]`` (``d_in`` = 6).
    """

    CONFIG_KEYS = ("d_in", "d_model", "n_heads", "ff_dim", "n_enc_layers", "n_dec_layers",
                   "ffn_dropout_p", "attn_dropout_p", "resid_dropout_p", "s1_bits", "s2_bits",
                   "beta", "gamma0", "gamma", "zeta", "group_size")
    OPTIONAL_CONFIG = {"ffn_dropout_p": 0.0, "attn_dropout_p": 0.0, "resid_dropout_p": 0.0}

    def __init__(self, d_in, d_model, n_heads, ff_dim, n_enc_layers, n_dec_layers,
                 ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0, s1_bits=10,
                 s2_bits=10, beta=0.05, gamma0=1.0, gamma=1.1, zeta=0.05, group_size=4):
        super().__init__()
        self._config = {
            "d_in": d_in, "d_model": d_model, "n_heads": n_heads, "ff_dim": ff_dim,
            "n_enc_layers": n_enc_layers, "n_dec_layers": n_dec_layers,
            "ffn_dropout_p": ffn_dropout_p, "attn_dropout_p": attn_dropout_p,
            "resid_dropout_p": resid_dropout_p, "s1_bits": s1_bits, "s2_bits": s2_bits,
            "beta": beta, "gamma0": gamma0, "gamma": gamma, "zeta": zeta, "group_size": group_size,
        }
        self.d_in = d_in
        self.d_model = d_model
        self.n_heads = n_heads
        self.ff_dim = ff_dim
        self.enc_layers = n_enc_layers
        self.dec_layers = n_dec_layers
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.codebook_dim = s1_bits + s2_bits

        def block():
            return TransformerBlock(d_model, n_heads, ff_dim, ffn_dropout_p, attn_dropout_p,
                                    resid_dropout_p)

        self.embed = nn.Linear(d_in, d_model)
        self.head = nn.Linear(d_model, d_in)
        self.encoder = nn.ModuleList([block() for _ in range(n_enc_layers - 1)])
        self.decoder = nn.ModuleList([block() for _ in range(n_dec_layers - 1)])
        self.quant_embed = nn.Linear(d_model, self.codebook_dim)
        self.post_quant_embed_pre = nn.Linear(s1_bits, d_model)
        self.post_quant_embed = nn.Linear(self.codebook_dim, d_model)
        self.tokenizer = BSQuantizer(s1_bits, s2_bits, beta, gamma0, gamma, zeta, group_size)

    # ----------------------------------------------------------------- pieces
    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x)
        for layer in self.encoder:
            z = layer(z)
        return self.quant_embed(z)

    def _decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.decoder:
            z = layer(z)
        return self.head(z)

    def indices_to_bits(self, x, half: bool = False) -> torch.Tensor:
        """Token ids -> scaled BSQ codes ``[..., s1_bits + s2_bits]`` (``+-1/sqrt(dim)``)."""
        if half:
            s1, s2 = x
            bits = torch.cat([BSQuantizer.indices_to_bits(s1, self.s1_bits),
                              BSQuantizer.indices_to_bits(s2, self.s2_bits)], dim=-1)
        else:
            bits = BSQuantizer.indices_to_bits(x, self.codebook_dim)
        return bits * (1.0 / self.codebook_dim ** 0.5)

    # ----------------------------------------------------------------- public API
    def forward(self, x: torch.Tensor):
        """Training pass: ``((recon_s1_only, recon_full), bsq_loss, quantized, ids)``."""
        bsq_loss, quantized, ids = self.tokenizer(self._latent(x))
        z_pre = self._decode_latent(self.post_quant_embed_pre(quantized[..., : self.s1_bits]))
        z = self._decode_latent(self.post_quant_embed(quantized))
        return (z_pre, z), bsq_loss, quantized, ids

    def encode(self, x: torch.Tensor, half: bool = True):
        """``x`` ``[batch, time, d_in]`` -> ``(s1_ids, s2_ids)`` (each ``[batch, time]``, int64)
        when ``half`` (the default here; the reference defaults to ``False``), else composite
        ids in ``[0, 2**(s1_bits+s2_bits))``."""
        _, _, ids = self.tokenizer(self._latent(x), half=half, with_loss=False)
        return ids

    def decode(self, x, half: bool = True) -> torch.Tensor:
        """``(s1_ids, s2_ids)`` (``half``) or composite ids -> ``[batch, time, d_in]``."""
        return self._decode_latent(self.post_quant_embed(self.indices_to_bits(x, half)))
