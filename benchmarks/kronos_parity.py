"""Parity of ``analysts.kronos`` with the reference Kronos code (github.com/shiyu-coder/Kronos).

Point ``KRONOS_REF`` at a folder holding the reference's ``model/`` package (its
``kronos.py`` / ``module.py``; it needs einops and huggingface_hub, e.g. in a throwaway
venv created with ``--system-site-packages``) and run::

    KRONOS_REF=/tmp/kronos_ref python benchmarks/kronos_parity.py

Random-initialised reference models (a tiny one and the Kronos-small / Tokenizer-base
shapes) are saved with the reference's ``save_pretrained`` and loaded with ours; then
tokenizer ids, reconstructions, logits, losses and greedy forecasts are compared.  Exits 0
with a "skipped" line when the reference is not available, 1 when a check fails.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

TINY_TOK = dict(d_in=6, d_model=32, n_heads=2, ff_dim=64, n_enc_layers=3, n_dec_layers=3,
                ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0, s1_bits=4, s2_bits=4,
                beta=0.05, gamma0=1.0, gamma=1.1, zeta=0.05, group_size=4)
TINY_MODEL = dict(s1_bits=4, s2_bits=4, n_layers=2, d_model=32, n_heads=2, ff_dim=64,
                  ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0, token_dropout_p=0.0,
                  learn_te=False)
# Kronos-Tokenizer-base / Kronos-small shapes (24.7M parameters)
BASE_TOK = dict(TINY_TOK, d_model=256, n_heads=4, ff_dim=512, n_enc_layers=4, n_dec_layers=4,
                s1_bits=10, s2_bits=10)
SMALL_MODEL = dict(TINY_MODEL, s1_bits=10, s2_bits=10, n_layers=8, d_model=512, n_heads=8,
                   ff_dim=1024, learn_te=True)

LOGIT_TOL = 1e-5


def load_reference():
    """``(RefKronosTokenizer, RefKronos, RefKronosPredictor)`` or None with a reason."""
    root = os.environ.get("KRONOS_REF")
    if not root:
        return None, "KRONOS_REF is not set"
    if not (Path(root) / "model" / "kronos.py").is_file():
        return None, f"KRONOS_REF={root} has no model/kronos.py"
    sys.path.insert(0, root)
    try:
        from model import Kronos, KronosPredictor, KronosTokenizer  # the reference package
    except ImportError as exc:
        return None, f"cannot import the reference ({exc})"
    return (KronosTokenizer, Kronos, KronosPredictor), ""


def ohlcv_frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, n)))
    vol = rng.lognormal(10, 0.5, n)
    df = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": vol,
                       "amount": vol * close})
    ts = pd.Series(pd.date_range("2024-01-02 09:30", periods=n, freq="5min"))
    return df, ts


def _record_decode(tokenizer, store: list):
    original = tokenizer.decode

    def wrapped(x, half=False):
        store.append((x[0].detach().cpu().clone(), x[1].detach().cpu().clone()))
        return original(x, half=half)

    tokenizer.decode = wrapped


def compare(ref_classes, tok_cfg, model_cfg, label, ctx_len, pred_len, max_context, seed=0,
            sample_count=2):
    import torch

    from analysts.kronos import Kronos, KronosPredictor, KronosTokenizer

    RefTok, RefModel, RefPredictor = ref_classes
    torch.manual_seed(seed)
    ref_tok, ref_model = RefTok(**tok_cfg).eval(), RefModel(**model_cfg).eval()
    results: dict[str, float | bool] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ref_tok.save_pretrained(f"{tmp}/tok")
        ref_model.save_pretrained(f"{tmp}/model")
        tok = KronosTokenizer.from_pretrained(f"{tmp}/tok")
        model = Kronos.from_pretrained(f"{tmp}/model")

    with torch.no_grad():
        x = torch.randn(3, ctx_len, 6).clamp(-5, 5)
        r1, r2 = ref_tok.encode(x, half=True)
        o1, o2 = tok.encode(x, half=True)
        results["tokenizer ids identical"] = bool(torch.equal(r1, o1) and torch.equal(r2, o2))
        results["decode max|diff|"] = float((ref_tok.decode((r1, r2), half=True)
                                             - tok.decode((o1, o2), half=True)).abs().max())
        ref_out = ref_tok(x)
        our_out = tok(x)
        results["tokenizer forward max|diff|"] = float(max((ref_out[0][0] - our_out[0][0]).abs().max(),
                                                           (ref_out[0][1] - our_out[0][1]).abs().max()))
        results["bsq loss |diff|"] = float((ref_out[1] - our_out[1]).abs())

        stamp = torch.stack([torch.randint(0, n, (3, ctx_len)) for n in (60, 24, 7, 32, 13)], -1).float()
        rl, rctx = ref_model.decode_s1(r1, r2, stamp)
        ol, octx = model.decode_s1(o1, o2, stamp)
        results["s1 logits max|diff|"] = float((rl - ol).abs().max())
        s1_next = rl[:, -1].argmax(-1, keepdim=True)
        rs2 = ref_model.decode_s2(rctx, s1_next)[:, -1]
        os2 = model.decode_s2(octx, s1_next)[:, -1]
        results["s2 logits (eval, last) max|diff|"] = float((rs2 - os2).abs().max())
        # cached path vs reference full window
        cache, ctx = model.prefill(o1, o2, stamp, capacity=ctx_len)
        cs2 = model.s2_logits_cached(ctx[:, -1], s1_next[:, 0], cache)
        results["cached s1 logits max|diff|"] = float((model.s1_logits_from(ctx[:, -1]) - rl[:, -1]).abs().max())
        results["cached s2 logits max|diff|"] = float((cs2 - rs2).abs().max())

    # training-mode teacher-forced forward (causal cross-attention with RoPE) + loss
    ref_model.train()
    model.train()
    rf = ref_model(r1[:, :-1], r2[:, :-1], stamp[:, :-1], use_teacher_forcing=True, s1_targets=r1[:, 1:])
    of = model(o1[:, :-1], o2[:, :-1], stamp[:, :-1], use_teacher_forcing=True, s1_targets=o1[:, 1:])
    results["train fwd s2 logits max|diff|"] = float((rf[1] - of[1]).detach().abs().max())
    rloss = ref_model.head.compute_loss(rf[0], rf[1], r1[:, 1:], r2[:, 1:])[0]
    oloss = model.next_token_loss(o1, o2, stamp, teacher_forcing=True)[0]
    results["next-token loss |diff|"] = float((rloss - oloss).detach().abs())
    ref_model.eval()
    model.eval()

    # greedy forecasts through both predictors
    df, ts = ohlcv_frame(ctx_len + pred_len, seed)
    ctx_df, x_ts, y_ts = df.iloc[:ctx_len], ts.iloc[:ctx_len], ts.iloc[ctx_len:]
    ref_tokens: list = []
    our_tokens: list = []
    ref_pred = RefPredictor(ref_model, ref_tok, device="cpu", max_context=max_context)
    our_pred = KronosPredictor(model, tok, device="cpu", max_context=max_context)
    _record_decode(ref_tok, ref_tokens)
    _record_decode(tok, our_tokens)
    with torch.no_grad():
        rp = ref_pred.predict(ctx_df, x_ts, y_ts, pred_len, T=1.0, top_k=1, top_p=1.0,
                              sample_count=sample_count, verbose=False)
    op = our_pred.predict(ctx_df, x_ts, y_ts, pred_len, T=1.0, top_k=1, top_p=1.0,
                          sample_count=sample_count)
    del tok.decode, ref_tok.decode
    same = all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(ref_tokens, our_tokens, strict=True))
    results["greedy token ids identical"] = bool(same)
    rel = np.abs(rp.to_numpy() - op.to_numpy()) / np.maximum(np.abs(rp.to_numpy()), 1e-9)
    results["greedy forecast max rel diff"] = float(rel.max())
    print(f"\n== {label}: context {ctx_len}, horizon {pred_len}, max_context {max_context}, "
          f"sample_count {sample_count}")
    ok = True
    for key, value in results.items():
        if isinstance(value, bool):
            good = value
        elif "rel" in key:
            good = value < 1e-5
        else:
            good = value < LOGIT_TOL * (10 if "loss" in key or "forward" in key or "decode" in key else 1)
        ok &= good
        shown = value if isinstance(value, bool) else f"{value:.3g}"
        print(f"  {'ok ' if good else 'BAD'} {key}: {shown}")
    return ok


def main() -> int:
    ref, reason = load_reference()
    if ref is None:
        print(f"kronos parity skipped: {reason}")
        return 0
    import torch

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    ok = compare(ref, TINY_TOK, TINY_MODEL, "tiny", ctx_len=40, pred_len=12, max_context=64)
    ok &= compare(ref, TINY_TOK, TINY_MODEL, "tiny, window slides during generation",
                  ctx_len=40, pred_len=16, max_context=48)
    ok &= compare(ref, TINY_TOK, TINY_MODEL, "tiny, context longer than max_context",
                  ctx_len=60, pred_len=8, max_context=48)
    ok &= compare(ref, BASE_TOK, SMALL_MODEL, "Kronos-small + Tokenizer-base shapes",
                  ctx_len=200, pred_len=10, max_context=512, sample_count=1)
    print("\nall parity checks passed" if ok else "\nPARITY FAILURES")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
