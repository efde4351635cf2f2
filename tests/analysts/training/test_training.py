from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from analysts.nn import LSTMClassifier, MagnitudeMLP, make_loss  # noqa: E402
from analysts.training import (  # noqa: E402
    SampleSet,
    TrainConfig,
    chronological_split,
    load_checkpoint,
    load_weights,
    resolve_device,
    save_weights,
    seed_everything,
    train_model,
)
from analysts.training._loop import _lr_factor  # noqa: E402
from engine.errors import ConfigError, DataError  # noqa: E402

BASE = {"epochs": 4, "batch_size": 32, "patience": None, "progress": False, "device": "cpu",
        "threads": 1,
        "seed": 11}


def _data(n: int = 240, features: int = 3, window: int = 4, seed: int = 0,
          flip: bool = False) -> SampleSet:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    ends = np.arange(window - 1, n)
    y = (x[ends, 0] > 0).astype(np.float32)
    return SampleSet.from_numpy(x, ends, 1.0 - y if flip else y, window)


def _train(config: dict, *, val=None, hook=None, model_seed: int = 5):
    seed_everything(model_seed)
    model = LSTMClassifier(3, hidden_size=6, dropout=0.2)
    result = train_model(model, make_loss("bce"), _data(), val, TrainConfig(**config),
                         on_epoch=hook)
    return model, result


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_auto_device_and_a_clear_error_for_missing_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU is available.*device: auto"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_chronological_split_cuts_distinct_timestamps():
    ts = [datetime(2024, 1, 1) + timedelta(days=i) for i in range(10)]
    split = chronological_split(ts * 3)  # three assets share the calendar
    assert (split.n_train, split.n_val, split.n_test) == (6, 2, 2)
    assert split.train_end == ts[5] and split.val_end == ts[7] and split.test_end == ts[9]
    with pytest.raises(ConfigError, match="sum to 1"):
        chronological_split(ts, (0.6, 0.3, 0.3))
    with pytest.raises(DataError, match="leaves the validation period"):
        chronological_split(ts[:2], (0.8, 0.1, 0.1))


def test_warmup_then_cosine_schedule():
    config = TrainConfig(epochs=10, warmup_epochs=1.0, min_lr_ratio=0.1)
    factors = [_lr_factor(config, s, 100, 10) for s in range(100)]
    np.testing.assert_allclose(factors[:10], np.arange(1, 11) / 10)
    assert factors[10] == pytest.approx(1.0)
    assert factors[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.5)))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_seeded_training_on_cpu_is_bit_reproducible():
    first, r1 = _train(BASE, val=_data(seed=1))
    second, r2 = _train(BASE, val=_data(seed=1))
    assert _same_weights(first, second)
    assert r1.history == r2.history
    third, _ = _train({**BASE, "seed": 12}, val=_data(seed=1))
    assert not _same_weights(first, third)  # the seed matters (batch order)


def test_resume_after_interruption_ends_with_the_same_weights(tmp_path):
    full, full_result = _train({**BASE, "checkpoint_dir": str(tmp_path / "a")})

    def interrupt(epoch, train_loss, val_loss):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train({**BASE, "checkpoint_dir": str(tmp_path / "b")}, hook=interrupt)
    saved = load_checkpoint(tmp_path / "b" / "last.pt")
    assert saved["state"]["epoch"] == 2
    # a fresh process would rebuild the model from another seed: resuming overwrites it
    resumed, result = _train({**BASE, "checkpoint_dir": str(tmp_path / "b")}, model_seed=99)
    assert result.resumed_from_epoch == 2
    assert _same_weights(full, resumed)
    assert result.history == full_result.history


def test_a_checkpoint_for_another_model_is_refused(tmp_path):
    _train({**BASE, "epochs": 1, "checkpoint_dir": str(tmp_path)})
    seed_everything(0)
    other = LSTMClassifier(3, hidden_size=8)
    with pytest.raises(ConfigError, match="written for a different model"):
        train_model(other, make_loss("bce"), _data(), None,
                    TrainConfig(**{**BASE, "checkpoint_dir": str(tmp_path)}))


def test_early_stopping_restores_the_best_epoch():
    # validation labels are the opposite of the training labels: the better the fit, the
    # worse the validation loss, so the first epoch is the best
    config = {**BASE, "epochs": 12, "patience": 2, "lr": 0.02, "scheduler": "plateau",
              "plateau_patience": 0, "warmup_epochs": 0}
    model, result = _train(config, val=_data(seed=0, flip=True))
    assert result.stopped_early and result.epochs_run < 12
    assert result.best_epoch == int(np.argmin([h["val_loss"] for h in result.history])) + 1
    lrs = [h["lr"] for h in result.history]
    assert lrs[-1] < lrs[0]  # plateau halved the rate
    val = _data(seed=0, flip=True)
    with torch.no_grad():
        logits = model(val.inputs(torch.arange(len(val))))
    restored = float(make_loss("bce")(logits, val.y))
    assert restored == pytest.approx(result.best_val_loss, rel=1e-5)


def test_tensorboard_scalars_are_written(tmp_path):
    _train({**BASE, "epochs": 1, "log_dir": str(tmp_path / "tb")}, val=_data(seed=1))
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_safetensors_weights_round_trip_and_mismatch_is_named(tmp_path):
    seed_everything(1)
    model = MagnitudeMLP(5, depth=2, width=8)
    save_weights(model, tmp_path / "w.safetensors")
    seed_everything(2)
    again = load_weights(MagnitudeMLP(5, depth=2, width=8), tmp_path / "w.safetensors")
    assert _same_weights(model, again)
    with pytest.raises(DataError, match=r"shape mismatch.*body.0.weight: file \(8, 5\) vs "
                                        r"model \(16, 5\)"):
        load_weights(MagnitudeMLP(5, depth=2, width=16), tmp_path / "w.safetensors")
    with pytest.raises(DataError, match="missing tensors"):
        load_weights(MagnitudeMLP(5, depth=3, width=8), tmp_path / "w.safetensors")


def test_empty_training_set_and_diverging_loss_are_errors():
    empty = SampleSet.from_numpy(np.zeros((3, 3)), np.array([], dtype=np.int64),
                                 np.array([], dtype=np.float32), 1)
    with pytest.raises(DataError, match="training set is empty"):
        train_model(MagnitudeMLP(3), make_loss("mse"), empty, None, TrainConfig(**BASE))
    x = np.full((10, 3), 1e30, dtype=np.float32)
    huge = SampleSet.from_numpy(x, np.arange(10), np.full(10, 1e30, dtype=np.float32), 1)
    with pytest.raises(DataError, match="training loss became"):
        train_model(MagnitudeMLP(3, head="identity", layer_norm=False), make_loss("mse"),
                    huge, None, TrainConfig(**BASE))
