"""A corrupt or foreign Toto checkpoint is a ConfigError naming the file, never a crash."""

from __future__ import annotations

import json
import os
import pickle

import pytest

pytest.importorskip("torch")

from analysts.toto import Toto  # noqa: E402
from engine.errors import ConfigError  # noqa: E402

CONFIG = {"patch_size": 4, "embed_dim": 8, "num_layers": 1, "num_heads": 2}


class _Payload:
    """A pickle that would run a command if loaded without weights_only."""

    def __reduce__(self):
        return (os.system, ("echo never-run",))


def test_a_corrupt_safetensors_file_names_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "model.safetensors").write_bytes(os.urandom(300))
    with pytest.raises(ConfigError, match=r"model\.safetensors: not a readable safetensors "
                       r"file \(SafetensorError"):
        Toto.from_pretrained(tmp_path, device="cpu")


def test_a_pickled_object_checkpoint_is_refused_naming_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ConfigError, match=r"pytorch_model\.bin: not a readable weights-only "
                       r"torch checkpoint \(it holds pickled Python objects"):
        Toto.from_pretrained(tmp_path, device="cpu")


def test_a_truncated_torch_checkpoint_names_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "pytorch_model.bin").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConfigError, match=r"pytorch_model\.bin: not a readable"):
        Toto.from_pretrained(tmp_path, device="cpu")


def test_a_config_that_is_not_text_names_it(tmp_path):
    (tmp_path / "config.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"config\.json: not valid JSON"):
        Toto.from_pretrained(tmp_path, device="cpu")
