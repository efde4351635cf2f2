"""Run folders as data: packed where a task ran, written only by the driver."""

from __future__ import annotations

import pytest

from alfred.outputs import MARKER, pack_folder, unpack_folder
from engine.errors import ConfigError


def test_a_packed_folder_unpacks_to_the_same_files(tmp_path):
    source = tmp_path / "made"
    (source / "a" / "b").mkdir(parents=True)
    (source / "metrics.json").write_text("{}")
    (source / "a" / "b" / "equity.parquet").write_bytes(b"\x00\x01binary")
    files = pack_folder(source)
    assert files == {"a/b/equity.parquet": b"\x00\x01binary", "metrics.json": b"{}"}
    target = tmp_path / "runs" / "v0001"
    unpack_folder(files, target, overwrite=False)
    assert (target / "a" / "b" / "equity.parquet").read_bytes() == b"\x00\x01binary"
    assert (target / MARKER).is_file()  # replaceable by a later --overwrite
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no staging
    unpack_folder({"metrics.json": b"{\"new\": 1}"}, target, overwrite=True)
    assert (target / "metrics.json").read_text() == "{\"new\": 1}"
    assert not (target / "a").exists()  # replaced whole, not merged


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../x"])
def test_a_packed_path_outside_the_folder_is_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="outside it"):
        unpack_folder({name: b"x"}, tmp_path / "run", overwrite=False)
    assert not (tmp_path / "run").exists() and not (tmp_path / "escape.txt").exists()
