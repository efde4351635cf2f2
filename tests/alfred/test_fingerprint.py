"""The data hash of ``fingerprint.json``: its string columns hashed without a Python loop
give the digest of the per-value definition (stored fingerprints stay comparable)."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import polars as pl
import pytest

from alfred.fingerprint import _length_prefixed, frame_sha256


def _per_value(series: pl.Series) -> str:
    """The definition: each value's UTF-8 length (8 bytes, little-endian), then its bytes."""
    digest = hashlib.sha256()
    for value in series.cast(pl.Utf8).fill_null("").to_list():
        encoded = value.encode()
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()


def _streamed(series: pl.Series, chunk: int) -> str:
    digest = hashlib.sha256()
    for block in _length_prefixed(series.cast(pl.Utf8).fill_null(""), chunk):
        digest.update(block)
    return digest.hexdigest()


def _strings(n: int, seed: int) -> pl.Series:
    rng = random.Random(seed)
    alphabet = "abcXYZ 0é中🙂\t"
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
              for _ in range(n)]
    return pl.Series("asset", [None if rng.random() < 0.1 else v for v in values])


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000, 1 << 20])
def test_streamed_strings_hash_like_the_per_value_definition(chunk):
    series = _strings(3000, seed=chunk)
    assert _streamed(series, chunk) == _per_value(series)


def test_sliced_chunked_categorical_and_empty_columns_hash_like_the_definition():
    series = _strings(2000, seed=5)
    pieces = pl.concat([series, series.slice(100, 50)], rechunk=False)
    assert pieces.n_chunks() == 2
    cases = [pieces, series.slice(37, 400), series.cast(pl.Categorical),
             pl.Series("e", [], dtype=pl.Utf8), pl.Series("e", ["", ""]),
             pl.Series("e", [None, None], dtype=pl.Utf8)]
    for case in cases:
        assert _streamed(case, 13) == _per_value(case), case


def test_a_frame_hash_moves_with_any_string_and_not_with_its_chunks():
    frame = pl.DataFrame({"asset": _strings(500, seed=9),
                          "close": np.linspace(1.0, 2.0, 500)})
    base = frame_sha256(frame)
    assert frame_sha256(pl.concat([frame.head(200), frame.tail(300)], rechunk=False)) == base
    changed = frame.with_columns(pl.when(pl.int_range(pl.len()) == 321).then(pl.lit("x"))
                                 .otherwise(pl.col("asset")).alias("asset"))
    assert frame_sha256(changed) != base
    # moving a byte from one name to the next keeps the concatenation, not the hash
    moved = pl.DataFrame({"asset": ["ab", "c"], "close": [1.0, 1.0]})
    assert frame_sha256(moved) != frame_sha256(pl.DataFrame({"asset": ["a", "bc"],
                                                             "close": [1.0, 1.0]}))


def test_the_loop_and_the_numba_path_of_frame_sha256_agree(monkeypatch):
    from alfred import fingerprint

    frame = pl.DataFrame({"asset": _strings(1000, seed=11), "x": np.arange(1000.0)})
    looped = frame_sha256(frame)
    monkeypatch.setattr(fingerprint, "_LOOP_BELOW", 0)
    assert frame_sha256(frame) == looped
