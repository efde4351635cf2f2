"""Parity of our Toto with Datadog's reference implementation (toto-ts), in pytest.

``fixtures/<case>/`` holds a tiny random checkpoint saved from the *reference*
``TotoBackbone`` (its own unfused key names) and the reference's outputs on fixed inputs
(``expected.safetensors``), written once by ``benchmarks/make_parity_fixtures.py toto``
(versions in ``fixtures/provenance.json``).  The reference is not needed here: our
``Toto.from_pretrained`` loads the folder and must reproduce

* one forward pass (scaler loc/scale and every Student-T mixture parameter), with a
  masked prefix and, in ``spacewise_first``, two id groups;
* the mean forecast without the KV cache, and with it (ours keeps one xPos centre; with
  ``reference_cache_xpos=True`` it follows the reference's cached path);
* the 10/50/90% quantiles of 2000 sample paths, a statistical check (ours draws from its
  own random stream).

The ``*_catches_*`` tests perturb one weight and show that each comparison then fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from safetensors.torch import load_file  # noqa: E402

from analysts.toto import Toto  # noqa: E402

FIXTURES = Path(__file__).with_name("fixtures")
PROVENANCE = json.loads((FIXTURES / "provenance.json").read_text())
CASES = sorted(PROVENANCE["cases"])
# float32: max |ours - reference| over the tensor, divided by max(1, max |reference|).
# Measured at generation: forward <= 4.8e-7 (mixture weights), mean forecasts <= 6.5e-8.
# The reference's own cached path differs from its uncached one by 1.0e-5 (xPos centre),
# so FORECAST_RTOL tells the two cache conventions apart.
FORWARD_RTOL = 2e-6
FORECAST_RTOL = 1e-6
# 10/50/90% quantiles of 2000 paths each side (ours: its own random stream), |difference|
# in units of each (variate, step)'s inter-quartile range.  Sampling noise alone measured
# 0.037-0.047 (mean) and 0.14-0.25 (max) over 36 seeds; scales x e^0.5 give 0.22 / 0.48.
QUANTILE_MEAN_TOL = 0.08
QUANTILE_MAX_TOL = 0.35


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one intra-op thread is fastest and keeps a busy 2-core box responsive."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load(case: str) -> Toto:
    return Toto.from_pretrained(FIXTURES / case, device="cpu")


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return request.param, load(request.param), load_file(str(FIXTURES / request.param / "expected.safetensors"))


def rel_diff(got: torch.Tensor | np.ndarray, want: torch.Tensor) -> float:
    got = torch.as_tensor(got, dtype=torch.float64)
    want = want.to(torch.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float((got - want).abs().max()) / max(1.0, float(want.abs().max()))


# ----------------------------------------------------------------------------- checks
def forward_diffs(toto: Toto, expected) -> dict[str, float]:
    with torch.no_grad():
        out = toto.model(expected["input.forward_series"], expected["input.forward_padding"],
                         expected["input.forward_id_mask"])
    p = out.params
    ours = {"loc": out.loc, "scale": out.scale, "df": p.df, "mix_loc": p.loc,
            "mix_scale": p.scale, "weights": p.weights, "mean": p.mean()}
    return {k: rel_diff(v, expected[f"forward.{k}"]) for k, v in ours.items()}


def forecast_diffs(toto: Toto, expected, horizon: int) -> dict[str, float]:
    ctx = expected["input.context"].numpy()
    nocache = expected["mean_forecast.nocache"]
    diffs = {
        "nocache": rel_diff(toto.forecast(ctx, horizon, use_kv_cache=False).mean, nocache),
        "cache": rel_diff(toto.forecast(ctx, horizon, use_kv_cache=True).mean, nocache),
    }
    toto.model.reference_cache_xpos = True
    try:
        cached = toto.forecast(ctx, horizon, use_kv_cache=True).mean
    finally:
        toto.model.reference_cache_xpos = False
    diffs["cache, reference xPos"] = rel_diff(cached, expected["mean_forecast.cache"])
    return diffs


def quantile_diffs(toto: Toto, expected, spec: dict) -> tuple[float, float]:
    """(mean, max) over quantiles, variates and steps of |ours - reference| / IQR."""
    n = spec["samples"]
    draws = toto.forecast(expected["input.context"].numpy(), spec["horizon"], n, n // 4,
                          seed=3).samples.astype(np.float64)
    ours = np.quantile(draws, spec["quantiles"], axis=-1)
    iqr = np.quantile(draws, 0.75, -1) - np.quantile(draws, 0.25, -1)
    z = np.abs(ours - expected["samples.quantiles"].numpy()) / iqr
    return float(z.mean()), float(z.max())


def perturbed(case: str, name: str, delta: float) -> Toto:
    toto = load(case)
    with torch.no_grad():
        dict(toto.model.named_parameters())[name].view(-1)[0] += delta
    return toto


# ----------------------------------------------------------------------------- parity
def test_fixtures_come_from_the_reference():
    assert PROVENANCE["reference"]["package"] == "toto-ts"
    assert CASES == ["spacewise_first", "tiny"]


def test_forward_pass_matches_reference(case):
    name, toto, expected = case
    diffs = forward_diffs(toto, expected)
    assert max(diffs.values()) <= FORWARD_RTOL, diffs


def test_mean_forecast_matches_reference(case):
    name, toto, expected = case
    diffs = forecast_diffs(toto, expected, PROVENANCE["cases"][name]["horizon"])
    assert max(diffs.values()) <= FORECAST_RTOL, diffs


def test_sample_quantiles_match_reference(case):
    name, toto, expected = case
    mean, worst = quantile_diffs(toto, expected, PROVENANCE["cases"][name])
    assert mean <= QUANTILE_MEAN_TOL and worst <= QUANTILE_MAX_TOL, (mean, worst)


# ----------------------------------------------------------------------------- each check can fail
def test_forward_check_catches_a_small_perturbation():
    expected = load_file(str(FIXTURES / "tiny" / "expected.safetensors"))
    toto = perturbed("tiny", "transformer.layers.0.mlp.0.w3.weight", 1e-3)
    assert max(forward_diffs(toto, expected).values()) > FORWARD_RTOL


def test_forecast_check_catches_a_small_perturbation():
    expected = load_file(str(FIXTURES / "tiny" / "expected.safetensors"))
    toto = perturbed("tiny", "transformer.layers.1.attention.wO.weight", 1e-3)
    diffs = forecast_diffs(toto, expected, PROVENANCE["cases"]["tiny"]["horizon"])
    assert min(diffs.values()) > FORECAST_RTOL, diffs


def test_forecast_check_tells_the_reference_cache_convention_apart():
    """Our default cache (one xPos centre) is the reference's *uncached* forecast; the
    reference's cached forecast is further away than the tolerance."""
    toto = load("tiny")
    expected = load_file(str(FIXTURES / "tiny" / "expected.safetensors"))
    ours = toto.forecast(expected["input.context"].numpy(), PROVENANCE["cases"]["tiny"]["horizon"],
                         use_kv_cache=True).mean
    assert rel_diff(ours, expected["mean_forecast.cache"]) > FORECAST_RTOL


def test_quantile_check_catches_a_wider_distribution():
    expected = load_file(str(FIXTURES / "tiny" / "expected.safetensors"))
    toto = load("tiny")
    with torch.no_grad():  # every component's scale x e^0.5 (softplus of a larger input)
        dict(toto.model.named_parameters())["output_distribution.scale_proj.bias"] += 0.5
    mean, worst = quantile_diffs(toto, expected, PROVENANCE["cases"]["tiny"])
    assert mean > QUANTILE_MEAN_TOL and worst > QUANTILE_MAX_TOL, (mean, worst)
