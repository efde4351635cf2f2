"""The toto / kronos / kronos_ensemble analysts: signals, as-of rule, fine-tuning, config."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from analysts import get_analyst  # noqa: E402
from analysts._finetune import FineTuneSpec, apply_lora, toto_objective  # noqa: E402
from analysts.evaluation import rolling_origin  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from tests.analysts._ml_helpers import close_only, ohlcv_bars  # noqa: E402

TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "progress": False, "threads": 1,
         "device": "cpu", "seed": 3}


@pytest.fixture(scope="module")
def bars():
    return ohlcv_bars(160, 3, seed=5)


def test_toto_signals_and_the_as_of_rule(bars):
    analyst = get_analyst("toto", context=64, horizon=5, num_samples=16, stride=7,
                          device="cpu", seed=1)
    first = analyst.predict(close_only(bars), start="2020-04-01")
    assert set(first.columns) == {"ts", "asset", "score", "prob_up", "pred_return",
                                  "uncertainty"}
    assert first["asset"].n_unique() == 3 and first["uncertainty"].min() > 0
    cut = first["ts"].unique().sort()[20]
    later = close_only(bars).with_columns(
        pl.when(pl.col("ts") > cut).then(pl.col("close") * 1.5).otherwise(pl.col("close"))
        .alias("close"))
    second = analyst.predict(later, start="2020-04-01")
    upto = pl.col("ts") <= cut
    assert first.filter(upto).equals(second.filter(upto))
    assert not first.filter(~upto).equals(second.filter(~upto))
    # the mean path when sampling is off: no spread
    mean = get_analyst("toto", context=64, num_samples=None, stride=7, device="cpu")
    assert mean.predict(close_only(bars), start="2020-04-01")["uncertainty"].max() == 0.0


def test_toto_multivariate_lets_assets_see_each_other(bars):
    one = get_analyst("toto", context=64, num_samples=None, stride=30, device="cpu", seed=1)
    joint = get_analyst("toto", context=64, num_samples=None, stride=30, device="cpu", seed=1,
                        multivariate=True)
    a = one.predict(close_only(bars), start="2020-04-01")
    b = joint.predict(close_only(bars), start="2020-04-01")
    assert a.select("ts", "asset").equals(b.select("ts", "asset"))
    assert not np.allclose(a["pred_return"], b["pred_return"])


def test_a_lora_step_changes_only_adapter_weights_and_merging_keeps_the_outputs():
    from analysts.toto import Toto, TotoConfig

    torch.manual_seed(0)
    toto = Toto(TotoConfig.tiny(), device="cpu")
    spec = FineTuneSpec(rank=4, alpha=8, window=64, loss="huber", train=TRAIN)
    peft_model = apply_lora(toto, spec, ["wQKV", "wO"])
    before = {k: v.detach().clone() for k, v in peft_model.state_dict().items()}
    objective = toto_objective(toto, spec)
    x = torch.linspace(90, 110, 64 * 4).reshape(4, 64, 1) + torch.randn(4, 64, 1)
    optimiser = torch.optim.SGD([p for p in objective.parameters() if p.requires_grad], lr=0.1)
    objective(x).mean().backward()
    # lora_B starts at zero, so its gradient is what moves first; take two steps
    optimiser.step()
    optimiser.zero_grad()
    objective(x).mean().backward()
    optimiser.step()
    after = peft_model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all("lora_" in k for k in moved)
    context = x[..., 0].unsqueeze(1)
    with torch.no_grad():
        adapted = toto.distribution(context).mean
        merged = peft_model.merge_and_unload()
        again = merged.distribution(context).mean
    torch.testing.assert_close(adapted, again, rtol=1e-5, atol=1e-5)
    assert not any("lora_" in k for k in merged.state_dict())


@pytest.mark.parametrize("loss", ["huber", "heteroscedastic", "mse", "quantile", "nll"])
def test_every_toto_loss_fine_tunes(bars, loss):
    analyst = get_analyst("toto", context=64, num_samples=4, stride=40, device="cpu",
                          fine_tune={"method": "full" if loss == "nll" else "lora",
                                     "window": 32, "step": 8, "loss": loss, "train": TRAIN})
    before = analyst.predict(close_only(bars), start="2020-05-01")
    analyst.fit(close_only(bars), until="2020-04-30")
    history = analyst.training["history"]
    assert history and np.isfinite(history[-1]["train_loss"])
    assert analyst.training["windows"] > 0 and analyst.training["validation_windows"] > 0
    after = analyst.predict(close_only(bars), start="2020-05-01")
    assert not np.allclose(before["pred_return"], after["pred_return"])


def test_kronos_and_the_temperature_ensemble(bars):
    kronos = get_analyst("kronos", context=48, horizon=5, sample_count=3, stride=25,
                         device="cpu", seed=2)
    out = kronos.predict(bars, start="2020-04-15")
    assert out.height > 0 and out["prob_up"].is_between(0, 1).all()
    ensemble = get_analyst("kronos_ensemble", context=48, horizon=5, sample_count=2,
                           members=3, T_min=0.5, T_max=1.5, stride=25, device="cpu", seed=2)
    assert ensemble.temperatures() == pytest.approx([0.5, 1.0, 1.5])
    paths = ensemble.forecast_paths(
        {"S0": bars.filter(pl.col("asset") == "S0").select(
            "open", "high", "low", "close", "volume").with_columns(
            pl.lit(float("nan")).alias("amount")).to_numpy()[:48]},
        seed=4, stamps={"S0": bars.filter(pl.col("asset") == "S0")["ts"].to_numpy()[:48]})
    assert paths["S0"].shape == (3 * 2, 5)  # every member's paths pooled
    close_only_out = ensemble.predict(close_only(bars), start="2020-04-15")
    assert close_only_out.height > 0  # open/high/low fall back to the close, volume to 0


def test_kronos_fine_tunes_on_next_token_cross_entropy(bars):
    analyst = get_analyst("kronos", context=48, sample_count=2, stride=40, device="cpu",
                          fine_tune={"method": "lora", "rank": 2, "alpha": 4, "window": 32,
                                     "step": 8, "loss": "cross_entropy", "train": TRAIN})
    before = {k: v.clone() for k, v in analyst.predictor.model.state_dict().items()}
    analyst.fit(bars, until="2020-04-30")
    assert np.isfinite(analyst.training["history"][-1]["train_loss"])
    after = analyst.predictor.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    # merged LoRA moves exactly the attention projections (self- and s2 cross-attention)
    assert any(k.startswith("transformer.") for k in changed)
    assert changed and all("attn." in k and k.endswith("proj.weight") for k in changed)


def test_weights_dir_loads_a_saved_checkpoint(tmp_path, bars):
    random = get_analyst("toto", context=64, num_samples=None, stride=30, device="cpu", seed=9)
    random.toto.save_pretrained(tmp_path / "toto")
    loaded = get_analyst("toto", weights_dir=str(tmp_path / "toto"), context=64,
                         num_samples=None, stride=30, device="cpu")
    a = random.predict(close_only(bars), start="2020-04-01")
    b = loaded.predict(close_only(bars), start="2020-04-01")
    np.testing.assert_allclose(a["pred_return"], b["pred_return"], rtol=1e-6, atol=1e-9)
    # the run report says plainly which weights forecast
    assert "no skill" in random.fit_summary()["model"]["random_weights"]
    assert loaded.fit_summary()["model"] == {"weights_dir": str(tmp_path / "toto"),
                                             "pretrained_through": None}  # unknown


def test_rolling_origin_reports_errors_next_to_the_baselines_and_latency(bars):
    analyst = get_analyst("toto", context=64, horizon=5, num_samples=8, device="cpu")
    table = rolling_origin(analyst, close_only(bars), windows=4)
    overall = table.filter(pl.col("asset") == "ALL").row(0, named=True)
    assert overall["n"] == 4 * 3
    assert overall["ms_per_call"] > 0
    for baseline in ("zero", "drift", "last"):
        assert overall[f"{baseline}_pct_return_mae"] > 0
        assert 0 <= overall[f"{baseline}_dm_p"] <= 1
    assert overall["verdict"]  # random weights: whatever it says, it is a sentence
    assert set(table["asset"]) == {"ALL", "S0", "S1", "S2"}


@pytest.mark.parametrize(("name", "config", "message"), [
    ("toto", {"num_samples": 0}, "num_samples"),
    ("toto", {"aggregate": "avg"}, "valid forms"),
    ("toto", {"fine_tune": {"loss": "cross_entropy"}}, "cross_entropy is for Kronos"),
    ("kronos", {"weights_dir": "x"}, "give both weights_dir and tokenizer_dir"),
    ("kronos", {"top_p": 1.5}, "top_p"),
    ("kronos_ensemble", {"T_min": 1.5, "T_max": 1.0}, "T_min 1.5 is above T_max"),
    ("kronos", {"fine_tune": {"loss": "quantile"}}, "cross_entropy"),
])
def test_bad_configs_are_config_errors(name, config, message):
    with pytest.raises(ConfigError, match=message):
        get_analyst(name, **config)


def test_a_wrong_weights_folder_is_a_config_error(tmp_path, bars):
    from analysts._foundation_analysts import KRONOS_ARCHITECTURES
    from analysts.kronos import KronosTokenizer

    KronosTokenizer(**KRONOS_ARCHITECTURES["tiny"][0]).save_pretrained(tmp_path / "tok")
    analyst = get_analyst("toto", weights_dir=str(tmp_path / "tok"), device="cpu")
    with pytest.raises(ConfigError, match="is not a Toto config.*holds another model"):
        analyst.predict(close_only(bars))
    window = get_analyst("toto", device="cpu", fine_tune={"window": 60, "train": TRAIN})
    with pytest.raises(ConfigError, match="multiple of Toto's patch size"):
        window.fit(close_only(bars))


def test_tuned_configs_give_each_symbol_its_own_settings(tmp_path, bars):
    import json

    path = tmp_path / "toto.json"
    period = {"first_bar": "2015-01-01", "last_bar": "2019-12-31"}  # tuned before the bars
    path.write_text(json.dumps({"analyst": "toto", "tuned_period": period, "symbols": {
        "S0": {"aggregate": "quantile_0.2"}, "S1": {"num_samples": 4, "context": 32}}}))
    common = {"context": 64, "num_samples": 16, "stride": 10, "device": "cpu", "seed": 1}
    tuned = get_analyst("toto", tuned_configs=str(path), **common)
    out = tuned.predict(close_only(bars), start="2020-03-01")
    assert set(out["asset"]) == {"S0", "S1", "S2"}
    alone = get_analyst("toto", **{**common, "aggregate": "quantile_0.2"}).predict(
        close_only(bars).filter(pl.col("asset") == "S0"), start="2020-03-01")
    assert alone["pred_return"].equals(out.filter(pl.col("asset") == "S0")["pred_return"])
    assert tuned._symbol_analysts()["S0"].toto is tuned.toto  # one model, shared
    # an untuned symbol forecasts exactly as without tuned configs: each asset's draws
    # depend on its own bars and seed only, never on the other assets
    plain = get_analyst("toto", **common).predict(close_only(bars), start="2020-03-01")
    s2 = pl.col("asset") == "S2"
    assert plain.filter(s2)["pred_return"].equals(out.filter(s2)["pred_return"])
    path.write_text(json.dumps({"analyst": "toto", "tuned_period": period,
                                "symbols": {"S0": {"num_samples": 0}}}))
    with pytest.raises(ConfigError, match="tuned config of S0"):
        get_analyst("toto", tuned_configs=str(path), **common).predict(close_only(bars))
    # forecasting inside the tuning period is refused, or flagged when allowed
    inside = {"first_bar": "2019-01-01", "last_bar": "2020-04-30"}
    path.write_text(json.dumps({"analyst": "toto", "tuned_period": inside, "symbols": {}}))
    with pytest.raises(ConfigError, match="overlaps the period its tuned_configs"):
        get_analyst("toto", tuned_configs=str(path), **common).predict(
            close_only(bars), start="2020-03-01")
    with pytest.warns(UserWarning, match="in sample for the hyperparameters"):
        get_analyst("toto", tuned_configs=str(path), allow_tuned_overlap=True,
                    **common).predict(close_only(bars), start="2020-03-01")


def test_fine_tuning_windows_never_share_bars_between_training_and_validation(bars):
    from analysts._finetune import windows

    values, train, val = windows(close_only(bars), ("close",), 32, 8, 0.25)
    assert train.size and val.size
    n = close_only(bars).filter(pl.col("asset") == "S0").height
    for lo in (0, n, 2 * n):  # each asset's rows
        t = train[(train >= lo) & (train < lo + n)]
        v = val[(val >= lo) & (val < lo + n)]
        assert t.max() < v.min() - 32 + 1  # the last training window ends before any


@pytest.mark.parametrize("threads", [1, 2])
def test_forecasting_runs_with_the_configured_torch_threads_and_restores_them(bars, threads,
                                                                              monkeypatch):
    # A tiny model on a busy 2-core machine ran ~6x slower with torch's default threads
    # (oversubscription); forecasting therefore runs under `threads` (default: half the
    # cores, as training does) and leaves the process setting as it found it.
    analyst = get_analyst("toto", context=64, num_samples=4, stride=40, device="cpu", seed=1,
                          threads=threads)
    seen = []
    inner = type(analyst).forecast_paths

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return inner(self, *args, **kwargs)

    monkeypatch.setattr(type(analyst), "forecast_paths", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        out = analyst.predict(close_only(bars), start="2020-04-01")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert out.height > 0 and seen and set(seen) == {threads}
    with pytest.raises(ConfigError, match="threads"):
        get_analyst("toto", threads=0)
