"""Naive and zoned timestamps in one file cannot be one clock: the error says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.data import load_bars
from engine.errors import DataError


@pytest.mark.parametrize(("rows", "naive_line", "zoned_line"), [
    (["2020-01-01", "2020-01-02T00:00:00+00:00", "2020-01-03"], 2, 3),
    (["2020-01-01T00:00:00Z", "2020-01-02"], 3, 2),
    (["2020-01-01 09:30:00-05:00", "2020-01-02 09:30:00"], 3, 2),
])
def test_mixed_naive_and_zoned_timestamps_name_both_rows(tmp_path: Path, rows, naive_line,
                                                         zoned_line):
    path = tmp_path / "mixed.csv"
    path.write_text("ts,asset,close\n" + "".join(f"{ts},A,{i + 1}\n"
                                                  for i, ts in enumerate(rows)))
    with pytest.raises(DataError, match="mix naive and zoned values") as caught:
        load_bars(path)
    message = str(caught.value)
    assert f"at line {naive_line} of mixed.csv has no time zone" in message
    assert f"at line {zoned_line} of mixed.csv has one" in message


def test_consistent_zones_still_load(tmp_path: Path):
    path = tmp_path / "zoned.csv"
    path.write_text("ts,asset,close\n2020-01-01T00:00:00+00:00,A,1\n"
                    "2020-01-02T00:00:00+00:00,A,2\n")
    assert load_bars(path).height == 2
