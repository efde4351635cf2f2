"""Native Kronos: tokenizer, KV-cached predictor, checkpoints, predictor input checks.

Tiny random-initialised configs only; parity with the reference code is checked on its
committed outputs in ``test_upstream_parity.py`` (and, with the reference checkout, by
``benchmarks/kronos_parity.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from analysts.kronos import Kronos, KronosPredictor, KronosTokenizer  # noqa: E402
from analysts.kronos._modules import BinarySphericalQuantizer, BSQuantizer  # noqa: E402
from analysts.kronos._predictor import (  # noqa: E402
    auto_regressive_inference,
    filter_logits,
    prepare_frame,
    sample_from_logits,
)
from engine.errors import ConfigError, DataError  # noqa: E402

TOK_CFG = dict(d_in=6, d_model=16, n_heads=2, ff_dim=32, n_enc_layers=2, n_dec_layers=2,
               ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0, s1_bits=3, s2_bits=3,
               beta=0.05, gamma0=1.0, gamma=1.1, zeta=0.05, group_size=3)
MODEL_CFG = dict(s1_bits=3, s2_bits=3, n_layers=2, d_model=16, n_heads=2, ff_dim=32,
                 ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0, token_dropout_p=0.0,
                 learn_te=True)
FEATURES = ["open", "high", "low", "close", "volume", "amount"]


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    return KronosTokenizer(**TOK_CFG).eval(), Kronos(**MODEL_CFG).eval()


@pytest.fixture(scope="module")
def predictor(pair):
    return KronosPredictor(pair[1], pair[0], device="cpu", max_context=32)


def frame(n: int, seed: int = 0, columns=FEATURES):
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    data = {"open": close * (1 + rng.normal(0, 0.002, n)), "high": close * 1.01,
            "low": close * 0.99, "close": close, "volume": rng.lognormal(8, 0.3, n)}
    data["amount"] = data["volume"] * close
    df = pd.DataFrame({c: data[c] for c in columns})
    ts = pd.Series(pd.date_range("2024-03-01 09:30", periods=n + 40, freq="15min"))
    return df, ts[:n], ts[n:]


def stamps(batch: int, length: int) -> torch.Tensor:
    return torch.stack([torch.randint(0, n, (batch, length)) for n in (60, 24, 7, 32, 13)], -1).float()


# ----------------------------------------------------------------------------- tokenizer
def test_encode_decode_shapes_and_code_ranges(pair):
    tok, _ = pair
    x = torch.randn(3, 17, 6)
    s1, s2 = tok.encode(x, half=True)
    assert s1.shape == s2.shape == (3, 17) and s1.dtype == s2.dtype == torch.int64
    assert int(s1.min()) >= 0 and int(s1.max()) < 2 ** 3 and int(s2.max()) < 2 ** 3
    full = tok.encode(x, half=False)
    assert full.shape == (3, 17) and int(full.max()) < 2 ** 6
    # the composite id holds s1 in its low bits and s2 in its high bits (little-endian code)
    assert torch.equal(full, s1 + (s2 << 3))
    assert tok.decode((s1, s2), half=True).shape == (3, 17, 6)
    assert torch.allclose(tok.decode((s1, s2), half=True), tok.decode(full, half=False))


def test_codes_are_signs_of_the_latent(pair):
    tok, _ = pair
    x = torch.randn(2, 9, 6)
    with torch.no_grad():
        latent = tok._latent(x)
    s1, s2 = tok.encode(x)
    bits = tok.indices_to_bits((s1, s2), half=True)
    assert torch.equal(torch.sign(bits), torch.where(latent > 0, 1.0, -1.0))
    assert torch.allclose(bits.abs(), torch.full_like(bits, 6 ** -0.5))
    assert torch.allclose(bits.norm(dim=-1), torch.ones(2, 9))  # codes lie on the unit sphere


def test_quantizer_straight_through_and_bit_round_trip():
    ids = torch.arange(2 ** 6)
    bits = BSQuantizer.indices_to_bits(ids, 6)
    assert set(bits.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(BSQuantizer.bits_to_indices(bits), ids)
    z = torch.randn(5, 6, requires_grad=True)
    q = BinarySphericalQuantizer.quantize(z)
    assert torch.equal(q.detach(), torch.where(z > 0, 1.0, -1.0))
    q.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through: identity gradient


def test_tokenizer_training_forward_has_finite_loss(pair):
    tok, _ = pair
    tok.train()
    try:
        (z_pre, z), loss, quantized, ids = tok(torch.randn(2, 8, 6))
    finally:
        tok.eval()
    assert z_pre.shape == z.shape == (2, 8, 6) and quantized.shape == (2, 8, 6)
    assert torch.isfinite(loss) and ids.shape == (2, 8)


# ----------------------------------------------------------------------------- predictor model
def test_forward_signature_and_loss(pair):
    _, model = pair
    s1, s2, st = torch.randint(0, 8, (2, 10)), torch.randint(0, 8, (2, 10)), stamps(2, 10)
    s1_logits, s2_logits = model(s1, s2, st, use_teacher_forcing=True, s1_targets=s1)
    assert s1_logits.shape == s2_logits.shape == (2, 10, 8)
    loss, ce1, ce2 = model.next_token_loss(s1, s2, st, teacher_forcing=True)
    assert torch.isclose(loss, (ce1 + ce2) / 2)
    loss.backward()
    assert model.head.proj_s2.weight.grad is not None
    model.zero_grad()
    again = model.next_token_loss(s1, s2, st, teacher_forcing=True)[0]
    assert torch.equal(loss.detach(), again.detach())
    pad = torch.zeros(2, 10, dtype=torch.long)
    pad[0, 7:] = 1
    assert torch.isfinite(model.next_token_loss(s1, s2, st, padding_mask=pad)[0])


def test_kv_cache_logits_match_full_recomputation(pair):
    _, model = pair
    torch.manual_seed(1)
    s1, s2, st = torch.randint(0, 8, (3, 14)), torch.randint(0, 8, (3, 14)), stamps(3, 14)
    with torch.no_grad():
        full_logits, full_ctx = model.decode_s1(s1, s2, st)
        cache, ctx = model.prefill(s1[:, :9], s2[:, :9], st[:, :9], capacity=14)
        for t in range(9, 14):
            ctx = model.extend(s1[:, t:t + 1], s2[:, t:t + 1], st[:, t:t + 1], cache)
        assert torch.allclose(model.s1_logits_from(ctx[:, -1]), full_logits[:, -1], atol=1e-5)
        pick = full_logits[:, -1].argmax(-1)
        s2_full = model.decode_s2(full_ctx, pick[:, None])[:, -1]
        assert torch.allclose(model.s2_logits_cached(ctx[:, -1], pick, cache), s2_full, atol=1e-5)


@pytest.mark.parametrize(("ctx_len", "pred_len", "max_context"),
                         [(20, 8, 32), (20, 12, 24), (30, 6, 24)])  # fits, slides, too long
def test_cached_generation_equals_full_recomputation(pair, ctx_len, pred_len, max_context):
    tok, model = pair
    torch.manual_seed(2)
    x, xs, ys = torch.randn(2, ctx_len, 6), stamps(2, ctx_len), stamps(2, pred_len)
    args = (tok, model, x, xs, ys, max_context, pred_len, 5, 1.0, 1, 1.0, 3)
    uniforms = torch.rand(6, pred_len, 2)
    z_c, ids_c = auto_regressive_inference(*args, uniforms=uniforms, use_cache=True, return_tokens=True)
    z_f, ids_f = auto_regressive_inference(*args, uniforms=uniforms, use_cache=False, return_tokens=True)
    assert torch.equal(ids_c[0], ids_f[0]) and torch.equal(ids_c[1], ids_f[1])
    assert torch.equal(z_c, z_f)
    assert z_c.shape == (2, 3, pred_len, 6)


def test_batched_paths_equal_per_path_loop(predictor):
    df, x_ts, y_ts = frame(24)
    kw = dict(pred_len=6, T=1.0, top_p=0.9)
    batched = predictor.predict_paths(df, x_ts, y_ts[:6], sample_count=4, seed=11, **kw)
    assert batched.shape == (4, 6, 6)
    for s in range(4):
        single = predictor.predict_paths(df, x_ts, y_ts[:6], sample_count=1, seed=11 + s, **kw)
        np.testing.assert_allclose(single[0], batched[s], rtol=1e-5)
    assert not np.allclose(batched[0], batched[1])  # different paths
    mean = predictor.predict(df, x_ts, y_ts[:6], sample_count=4, seed=11, **kw)
    np.testing.assert_allclose(mean.to_numpy(), batched.mean(axis=0), rtol=1e-4)
    assert list(mean.columns) == FEATURES and (mean.index == pd.Index(y_ts[:6])).all()


def test_predict_batch_matches_single_series(predictor):
    (a, ax, ay), (b, bx, by) = frame(20, 1), frame(20, 2)
    out = predictor.predict_batch([a, b], [ax, bx], [ay[:5], by[:5]], pred_len=5, sample_count=2, seed=3)
    assert predictor.last_paths.shape == (2, 2, 5, 6)
    single = predictor.predict(b, bx, by[:5], pred_len=5, sample_count=2, seed=3 + 1_000_003)
    np.testing.assert_allclose(out[1].to_numpy(), single.to_numpy(), rtol=1e-5)
    with pytest.raises(DataError, match="equal length"):
        predictor.predict_batch([a, b.iloc[:19]], [ax, bx[:19]], [ay[:5], by[:5]], pred_len=5)


def test_greedy_is_deterministic_and_same_without_cache(pair):
    tok, model = pair
    df, x_ts, y_ts = frame(40)
    cached = KronosPredictor(model, tok, device="cpu", max_context=32)
    plain = KronosPredictor(model, tok, device="cpu", max_context=32, use_cache=False)
    kw = dict(pred_len=5, top_k=1, sample_count=2)
    a = cached.predict(df, x_ts, y_ts[:5], seed=1, **kw)
    b = plain.predict(df, x_ts, y_ts[:5], seed=2, **kw)
    pd.testing.assert_frame_equal(a, b)


def test_sampling_filters():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0]])
    assert torch.isinf(filter_logits(logits, top_k=2)).sum() == 3
    probs = torch.softmax(logits, -1)[0]
    kept = ~torch.isinf(filter_logits(logits, top_p=0.7))[0]
    # nucleus keeps the smallest prefix whose mass crosses top_p
    assert kept.tolist() == [True, True, False, False, False] and probs[0] < 0.7
    u = torch.rand(200)
    picks = sample_from_logits(logits.expand(200, 5), 1.0, top_k=2, uniforms=u)
    assert set(picks.tolist()) <= {0, 1}
    assert sample_from_logits(logits, 0.5, top_k=1, uniforms=torch.tensor([0.999])).item() == 0


# ----------------------------------------------------------------------------- checkpoints
def test_save_load_round_trip(pair, tmp_path):
    tok, model = pair
    tok.save_pretrained(tmp_path / "tok")
    model.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["n_layers"] == 2
    tok2 = KronosTokenizer.from_pretrained(tmp_path / "tok")
    model2 = Kronos.from_pretrained(str(tmp_path / "model"))
    assert not model2.training
    x = torch.randn(1, 12, 6)
    assert all(torch.equal(a, b) for a, b in zip(tok.encode(x), tok2.encode(x), strict=True))
    s1, s2, st = torch.randint(0, 8, (1, 12)), torch.randint(0, 8, (1, 12)), stamps(1, 12)
    assert torch.equal(model.decode_s1(s1, s2, st)[0], model2.decode_s1(s1, s2, st)[0])
    tuned = Kronos.from_pretrained(tmp_path / "model", token_dropout_p=0.1)  # config override
    assert tuned.config_dict()["token_dropout_p"] == 0.1
    with pytest.raises(ConfigError, match="unknown argument"):
        Kronos.from_pretrained(tmp_path / "model", n_layer=3)


def test_wrong_model_folder_is_named(pair, tmp_path):
    tok, model = pair
    tok.save_pretrained(tmp_path / "tok")
    model.save_pretrained(tmp_path / "model")
    with pytest.raises(ConfigError, match="holds a KronosTokenizer checkpoint"):
        Kronos.from_pretrained(tmp_path / "tok")
    with pytest.raises(ConfigError, match="holds a Kronos checkpoint"):
        KronosTokenizer.from_pretrained(tmp_path / "model")


def test_missing_and_misshaped_tensors_are_listed(pair, tmp_path):
    from safetensors.torch import load_file, save_file

    _, model = pair
    model.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["head.proj_s2.bias"]
    state["norm.weight"] = torch.ones(3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ConfigError, match=r"missing tensors \['head.proj_s2.bias'\].*norm.weight: file \(3,\)"):
        Kronos.from_pretrained(tmp_path)
    # a config that disagrees with the tensors
    cfg = json.loads((tmp_path / "config.json").read_text())
    del cfg["d_model"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="d_model"):
        Kronos.from_pretrained(tmp_path)


def test_missing_folder_and_hub_without_huggingface_hub(tmp_path, monkeypatch):
    import sys

    with pytest.raises(ConfigError, match="does not exist"):
        Kronos.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="missing config.json, model.safetensors"):
        Kronos.from_pretrained(tmp_path / "empty")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ConfigError, match="huggingface_hub is not installed"):
        Kronos.from_pretrained("NeoQuasar/Kronos-small")


# ----------------------------------------------------------------------------- predictor input
def test_volume_and_amount_fallbacks():
    df, _, _ = frame(10, columns=["open", "high", "low", "close"])
    out = prepare_frame(df)
    assert (out["volume"] == 0).all() and (out["amount"] == 0).all()
    df, _, _ = frame(10, columns=["open", "high", "low", "close", "volume"])
    out = prepare_frame(df)
    expected = df["volume"] * df[["open", "high", "low", "close"]].mean(axis=1)
    np.testing.assert_allclose(out["amount"], expected)
    # volume missing: amount is zeroed too, as in the reference
    df, _, _ = frame(10, columns=["open", "high", "low", "close", "amount"])
    assert (prepare_frame(df)["amount"] == 0).all()


def test_predict_without_volume_columns(predictor):
    df, x_ts, y_ts = frame(20, columns=["open", "high", "low", "close"])
    out = predictor.predict(df, x_ts, y_ts[:3], pred_len=3, seed=0)
    assert out.shape == (3, 6) and np.isfinite(out.to_numpy()).all()


def test_bad_inputs(predictor):
    df, x_ts, y_ts = frame(20)
    y3 = y_ts[:3]
    bad = df.copy()
    bad.iloc[7, bad.columns.get_loc("low")] = np.nan
    with pytest.raises(DataError, match=r"NaN in column 'low' at row 7"):
        predictor.predict(bad, x_ts, y3, pred_len=3)
    bad.iloc[7, bad.columns.get_loc("low")] = np.inf
    with pytest.raises(DataError, match="infinite"):
        predictor.predict(bad, x_ts, y3, pred_len=3)
    with pytest.raises(DataError, match=r"missing price column\(s\) \['high'\]"):
        predictor.predict(df.drop(columns="high"), x_ts, y3, pred_len=3)
    with pytest.raises(DataError, match="y_timestamp"):
        predictor.predict(df, x_ts, y_ts[:4], pred_len=3)
    with pytest.raises(DataError, match="x_timestamp"):
        predictor.predict(df, x_ts[:5], y3, pred_len=3)
    with pytest.raises(DataError, match="DataFrame"):
        predictor.predict(df.to_numpy(), x_ts, y3, pred_len=3)
    for kwargs, match in [({"pred_len": 0}, "pred_len"), ({"sample_count": 0}, "sample_count"),
                          ({"T": 0.0}, "T"), ({"T": -1.0}, "T"), ({"top_p": 0.0}, "top_p"),
                          ({"top_p": 1.5}, "top_p"), ({"top_k": -1}, "top_k")]:
        call = {"pred_len": 3, **kwargs}
        with pytest.raises(ConfigError, match=match):
            predictor.predict(df, x_ts, y3, **call)
    with pytest.raises(ConfigError, match="max_context"):
        KronosPredictor(predictor.model, predictor.tokenizer, device="cpu", max_context=0)
