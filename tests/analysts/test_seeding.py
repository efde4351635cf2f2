"""Seeds make CPU fine-tunes bit-reproducible, LoRA adapters included."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from analysts import get_analyst  # noqa: E402
from tests.analysts._ml_helpers import close_only, ohlcv_bars  # noqa: E402

TRAIN = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "progress": False, "threads": 1,
         "device": "cpu", "seed": 3}


@pytest.fixture(scope="module")
def bars():
    return ohlcv_bars(160, 2, seed=5)


def _weights(name: str, bars, **fine_tune):
    config = {"context": 48, "device": "cpu", "fine_tune": {
        "method": "lora", "rank": 2, "alpha": 4, "window": 32, "step": 8,
        "train": TRAIN, **fine_tune}}
    if name == "kronos":
        config["sample_count"] = 2
        analyst = get_analyst(name, **config).fit(bars, until="2020-04-30")
        return analyst.predictor.model.state_dict()
    analyst = get_analyst(name, **config, num_samples=2).fit(close_only(bars),
                                                             until="2020-04-30")
    return analyst.toto.state_dict()


@pytest.mark.parametrize(("name", "extra"), [("toto", {"loss": "huber"}),
                                             ("kronos", {"loss": "cross_entropy"})])
def test_two_identical_lora_fine_tunes_are_bit_identical(bars, name, extra):
    torch.manual_seed(123)  # whatever the global RNG holds before must not matter
    first = _weights(name, bars, **extra)
    torch.manual_seed(456)
    second = _weights(name, bars, **extra)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = _weights(name, bars, **extra, train={**TRAIN, "seed": 4})
    assert not all(torch.equal(first[k], other[k]) for k in first)  # the seed matters


def test_train_start_keeps_earlier_labels_out_of_the_fit():
    """With train_start, bars long before it (beyond every feature's look-back) change
    nothing in the fitted model; without it they do."""
    import polars as pl

    from analysts import get_analyst as make

    bars = close_only(ohlcv_bars(260, 3, seed=6))
    stamps = bars["ts"].unique().sort()
    start, until = stamps[120], stamps[-1]
    early = bars.with_columns(pl.when(pl.col("ts") < stamps[60]).then(pl.col("close") * 1.2)
                              .otherwise(pl.col("close")).alias("close"))
    config = {"depth": 1, "width": 8, "features": {"groups": ["returns"]},
              "train": {"epochs": 2, "batch_size": 64, "patience": None, "progress": False,
                        "seed": 3, "threads": 1, "device": "cpu"}}

    def weights(frame, **extra):
        analyst = make("magnitude", **config, **extra).fit(frame, until=until)
        return analyst.units["*"].model.state_dict()

    a, b = weights(bars, train_start=start), weights(early, train_start=start)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c, d = weights(bars), weights(early)
    assert not all(torch.equal(c[k], d[k]) for k in c)
    with pytest.raises(Exception, match="train_start .* is not before the fit's cut-off"):
        make("magnitude", **config, train_start=until).fit(bars, until=until)


def test_pretrained_through_from_config_or_weights_folder(tmp_path):
    from datetime import date, datetime

    from analysts.evaluation import model_notes
    from engine.errors import ConfigError

    random = get_analyst("toto", device="cpu", num_samples=2)
    assert random.pretrained_through is None
    assert "random_weights" in random.fit_summary()["model"]
    assert model_notes(random, datetime(2020, 1, 1)) == [
        "the model runs on random weights: its forecasts carry no skill"]
    random.toto.save_pretrained(tmp_path / "toto")
    folder = tmp_path / "toto"
    loaded = get_analyst("toto", weights_dir=str(folder), device="cpu")
    assert loaded.pretrained_through is None
    (folder / "pretrained_through.txt").write_text("2024-01-31\n")
    assert loaded.pretrained_through == date(2024, 1, 31)
    assert loaded.fit_summary()["model"]["pretrained_through"] == "2024-01-31"
    [note] = model_notes(loaded, datetime(2008, 1, 2))
    assert "inside the model's pretraining period (pretrained through 2024-01-31)" in note
    assert model_notes(loaded, datetime(2024, 2, 1)) == []
    override = get_analyst("toto", weights_dir=str(folder), device="cpu",
                           pretrained_through="2019-12-31")
    assert override.pretrained_through == date(2019, 12, 31)
    (folder / "pretrained_through.txt").write_text("early 2024")
    with pytest.raises(ConfigError, match="not an ISO date"):
        _ = loaded.pretrained_through
    kronos = get_analyst("kronos", pretrained_through="2024-03-01")
    assert kronos.pretrained_through == date(2024, 3, 1)
