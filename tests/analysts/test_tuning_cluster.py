"""Tuning on a Ray cluster needs a storage every node reaches; SQLite is refused there."""

from __future__ import annotations

import pytest

pytest.importorskip("optuna")
pytest.importorskip("torch")

from analysts.tuning import check_cluster_storage, parse_search_space, tune  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from tests.analysts._ml_helpers import SHORT_FEATURES, TINY_TRAIN, ohlcv_bars  # noqa: E402

SPACE = {
    "analyst": "magnitude",
    "base": {"features": SHORT_FEATURES, "train": {**TINY_TRAIN, "epochs": 1}},
    "params": {"width": {"type": "int", "low": 4, "high": 16, "log": True}},
}


def test_sqlite_storage_is_refused_on_a_remote_ray_cluster_before_anything_runs(tmp_path):
    bars = ohlcv_bars(300, 1)
    spec = {"kind": "ray", "address": "ray://head:10001"}
    with pytest.raises(ConfigError, match=r"cannot use the SQLite storage.*postgresql://"):
        tune(parse_search_space(SPACE), bars, n_trials=1, out=tmp_path, executor=spec)
    assert not (tmp_path / "optuna.db").exists()  # refused before the study was created


@pytest.mark.parametrize(("url", "kind", "address", "refused"), [
    ("sqlite:////tmp/o.db", "ray", "10.0.0.5:6379", True),
    ("sqlite:////tmp/o.db", "ray", "auto", True),
    ("sqlite:////tmp/o.db", "ray", "local", False),  # a private Ray on this machine
    ("sqlite:////tmp/o.db", "local", "local", False),
    ("postgresql://u:secret@db/optuna", "ray", "ray://head:10001", False),
])
def test_which_storages_a_cluster_accepts(url, kind, address, refused):
    if refused:
        with pytest.raises(ConfigError, match="every node reaches"):
            check_cluster_storage(url, kind, address)
    else:
        check_cluster_storage(url, kind, address)
