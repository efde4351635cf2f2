"""Native Toto (analysts.toto): shapes, causality, KV cache, sampling, checkpoints, inputs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from safetensors.torch import load_file, save_file  # noqa: E402

from analysts.toto import Toto, TotoConfig, TotoForecast, TotoKVCache  # noqa: E402
from engine.errors import ConfigError, DataError  # noqa: E402

P = 8  # tiny config patch size


@pytest.fixture(scope="module")
def toto() -> Toto:
    torch.manual_seed(0)
    return Toto(TotoConfig.tiny(), device="cpu")


@pytest.fixture(scope="module")
def context() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 45)).cumsum(-1) + np.array([[10.0], [0.0], [-5.0]])
    return x.astype(np.float32)


def test_config_presets_and_layer_pattern():
    base = TotoConfig.base()
    assert (base.patch_size, base.embed_dim, base.num_layers, base.num_heads) == (64, 768, 12, 12)
    assert base.k_components == 24 and base.mlp_hidden_dim == 3072
    assert base.layer_axes() == ["time"] * 11 + ["space"]
    assert TotoConfig.tiny(spacewise_first=True, num_layers=4).layer_axes() == [
        "space", "time", "space", "time"
    ]
    with pytest.raises(ConfigError, match="divisible"):
        TotoConfig.tiny(num_heads=3)


def test_forecast_shapes(toto, context):
    fc = toto.forecast(context, horizon=13)
    assert isinstance(fc, TotoForecast)
    assert fc.mean.shape == (3, 13) and fc.samples is None
    assert np.isfinite(fc.mean).all()
    fc = toto.forecast(context, horizon=13, num_samples=5, seed=0)
    assert fc.samples.shape == (3, 13, 5)
    np.testing.assert_allclose(fc.mean, fc.samples.mean(-1), rtol=1e-6, atol=1e-6)
    assert fc.quantile(0.5).shape == (3, 13) and fc.std.shape == (3, 13)
    batched = toto.forecast(np.stack([context, context]), horizon=4, num_samples=2, seed=1)
    assert batched.mean.shape == (2, 3, 4) and batched.samples.shape == (2, 3, 4, 2)
    tensor_in = toto.forecast(torch.from_numpy(context), horizon=4)
    np.testing.assert_allclose(tensor_in.mean, toto.forecast(context, horizon=4).mean)


def test_backbone_is_causal_over_patches(toto):
    torch.manual_seed(1)
    x = torch.randn(1, 3, 6 * P).cumsum(-1)
    with torch.no_grad():
        base = toto.model(x)
        k = 3  # change a value inside patch k
        y = x.clone()
        y[0, 1, k * P + 2] += 5.0
        changed = toto.model(y)
    cut = k * P
    for a, b in zip(base.params, changed.params, strict=True):
        assert torch.equal(a[..., :cut, :], b[..., :cut, :])
        assert not torch.allclose(a[..., cut:, :], b[..., cut:, :])
    assert torch.equal(base.loc[..., :cut], changed.loc[..., :cut])
    assert torch.equal(base.scale[..., :cut], changed.scale[..., :cut])


def test_kv_cache_matches_full_decoding(toto, context):
    h = 3 * P + 3
    cached = toto.forecast(context, h, use_kv_cache=True).mean
    full = toto.forecast(context, h, use_kv_cache=False).mean
    scale = max(1.0, float(np.abs(full).max()))
    assert np.abs(cached - full).max() <= 1e-5 * scale
    s_cached = toto.forecast(context, h, 4, 3, seed=2, use_kv_cache=True).samples
    s_full = toto.forecast(context, h, 4, 3, seed=2, use_kv_cache=False).samples
    np.testing.assert_allclose(s_cached, s_full, rtol=1e-4, atol=1e-4 * scale)


def test_forward_with_kv_cache_in_chunks(toto):
    """The backbone's forward with a cache processes only the patches the cache lacks."""
    torch.manual_seed(4)
    x = torch.randn(2, 3, 5 * P).cumsum(-1)
    with torch.no_grad():
        full = toto.model(x, scaling_prefix_length=3 * P)
        cache = TotoKVCache()
        first = toto.model(x[..., : 3 * P], kv_cache=cache, scaling_prefix_length=3 * P)
        rest = toto.model(x, kv_cache=cache, scaling_prefix_length=3 * P)
    assert cache.seq_len == 5
    torch.testing.assert_close(first.mean, full.mean[..., : 3 * P], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rest.mean, full.mean[..., 3 * P :], rtol=1e-5, atol=1e-5)


def test_samples_per_batch_need_not_divide(toto, context):
    a = toto.forecast(context, 10, num_samples=7, samples_per_batch=3, seed=5)
    b = toto.forecast(context, 10, num_samples=7, samples_per_batch=3, seed=5)
    assert a.samples.shape == (3, 10, 7)
    np.testing.assert_array_equal(a.samples, b.samples)
    c = toto.forecast(context, 10, num_samples=7, samples_per_batch=3, seed=6)
    assert not np.allclose(a.samples, c.samples)
    big = toto.forecast(context, 10, num_samples=2, samples_per_batch=50, seed=5)
    assert big.samples.shape == (3, 10, 2)


def test_save_and_load_round_trip(toto, context, tmp_path):
    toto.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["patch_size"] == P and "scaler_cls" in cfg
    keys = load_file(str(tmp_path / "model.safetensors"))
    assert "model.transformer.layers.0.mlp.0.w12.weight" in keys
    assert "model.transformer.layers.0.norm1.scale" in keys
    again = Toto.from_pretrained(tmp_path, device="cpu")
    np.testing.assert_array_equal(
        toto.forecast(context, 12).mean, again.forecast(context, 12).mean
    )
    np.testing.assert_array_equal(
        toto.forecast(context, 12, 4, seed=3).samples,
        again.forecast(context, 12, 4, seed=3).samples,
    )


def test_missing_or_misshaped_tensor_is_listed(toto, tmp_path):
    toto.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["model.unembed.bias"]
    state["model.patch_embed.projection.weight"] = torch.zeros(32, 5)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ConfigError) as err:
        Toto.from_pretrained(tmp_path, device="cpu")
    msg = str(err.value)
    assert "model.unembed.bias" in msg and "missing" in msg
    assert "model.patch_embed.projection.weight" in msg and "(32, 8)" in msg and "(32, 5)" in msg


def test_not_a_toto_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8, "model_type": "bert"}))
    save_file({"encoder.weight": torch.zeros(2, 2)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ConfigError, match="not a Toto"):
        Toto.from_pretrained(tmp_path, device="cpu")
    (tmp_path / "config.json").write_text(json.dumps(TotoConfig.tiny().to_dict()))
    with pytest.raises(ConfigError, match="not a Toto checkpoint"):
        Toto.from_pretrained(tmp_path, device="cpu")


def test_hub_id_without_huggingface_hub(monkeypatch):
    import sys

    # hide the module whether or not it is installed: None in sys.modules makes the
    # lazy import inside Toto._download raise ImportError
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ConfigError, match="huggingface_hub is not installed: download"):
        Toto.from_pretrained("Datadog/Toto-Open-Base-1.0-not-local")
    with pytest.raises(ConfigError, match="no such checkpoint folder"):
        Toto.from_pretrained("not/a/folder/nor/a/hub-id")


def test_extra_config_key_warns(toto, tmp_path):
    toto.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["some_new_knob"] = 3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="some_new_knob"):
        Toto.from_pretrained(tmp_path, device="cpu")


def test_published_and_reference_key_names_load(toto, context, tmp_path):
    """Fused (published, xFormers) and unfused (reference without xFormers) SwiGLU names."""
    state = {k: v.clone() for k, v in toto.state_dict().items()}
    published = dict(state)
    published["model.transformer.rotary_emb.freqs"] = torch.ones(toto.config.head_dim // 2)
    unfused = {}
    for k, v in state.items():
        k = k.replace("mlp.0.w12.", "mlp.0.").replace("mlp.0.w3.", "mlp.2.")
        unfused[k] = v
    assert "model.transformer.layers.0.mlp.2.weight" in unfused
    expected = toto.forecast(context, 9).mean
    for i, sd in enumerate((published, unfused)):
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(toto.config.to_dict()))
        save_file(sd, str(folder / "model.safetensors"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # rotary freqs are dropped silently
            loaded = Toto.from_pretrained(folder, device="cpu")
        np.testing.assert_array_equal(loaded.forecast(context, 9).mean, expected)
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(toto.config.to_dict()))
    torch.save(unfused, folder / "pytorch_model.bin")
    np.testing.assert_array_equal(Toto.from_pretrained(folder).forecast(context, 9).mean, expected)


def test_bad_inputs(toto, context):
    with pytest.raises(DataError, match="at least one patch of 8"):
        toto.forecast(context[:, :5], 4)
    with pytest.raises(ConfigError, match="num_samples"):
        toto.forecast(context, 4, num_samples=0)
    with pytest.raises(ConfigError, match="samples_per_batch"):
        toto.forecast(context, 4, num_samples=3, samples_per_batch=0)
    with pytest.raises(ConfigError, match="horizon"):
        toto.forecast(context, 0)
    with pytest.raises(DataError, match="variates, time"):
        toto.forecast(context[None, None], 4)
    bad = context.copy()
    bad[1, 7] = np.inf
    with pytest.raises(DataError, match="variate 1, time index 7"):
        toto.forecast(bad, 4)
    bad = context.copy()
    bad[2] = np.nan
    with pytest.raises(DataError, match="variate 2"):
        toto.forecast(bad, 4)


def test_nan_is_masked_like_padding(toto, context):
    nan = context.copy()
    nan[0, 10] = np.nan
    mask = np.ones(context.shape, dtype=bool)
    mask[0, 10] = False
    zeroed = context.copy()
    zeroed[0, 10] = 0.0
    a = toto.forecast(nan, 10).mean
    b = toto.forecast(zeroed, 10, padding_mask=mask).mean
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


def test_id_mask_separates_groups(toto, context):
    other = context.copy()
    other[1] += 3.0
    ids = [0, 1, 0]
    a = toto.forecast(context, 10, id_mask=ids).mean
    b = toto.forecast(other, 10, id_mask=ids).mean
    np.testing.assert_array_equal(a[[0, 2]], b[[0, 2]])
    assert not np.allclose(a[1], b[1])


def test_distribution_for_training(toto):
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4 * P).cumsum(-1)
    toto.train()
    try:
        out = toto.distribution(x)
        assert out.params.df.shape == (2, 3, 4 * P, toto.config.k_components)
        assert out.loc.shape == out.scale.shape == out.mean.shape == (2, 3, 4 * P)
        targets = torch.randn(2, 3, 3 * P)
        head = type(out)(out.params.map(lambda t: t[..., : 3 * P, :]), out.loc[..., : 3 * P],
                         out.scale[..., : 3 * P])
        loss = head.nll(targets).mean()
        loss.backward()
        assert torch.isfinite(loss)
        assert toto.model.unembed.weight.grad is not None
    finally:
        toto.zero_grad(set_to_none=True)
        toto.eval()
    with torch.no_grad():
        lp = out.distribution().log_prob(x)
    assert lp.shape == x.shape and torch.isfinite(lp).all()
