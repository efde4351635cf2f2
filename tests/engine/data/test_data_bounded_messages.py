"""Data errors echo at most a couple of hundred characters of what the file holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.data import load_bars
from engine.errors import DataError

HUGE = "Z" * 5_000


@pytest.mark.parametrize(("body", "fragment"), [
    (f"2020-01-01,{HUGE},1\n2020-01-01,{HUGE},2\n", "duplicate bar for asset 'ZZZ"),
    (f"2020-01-01,A,{HUGE}\n", "holds text that is not a number: 'ZZZ"),
    (f"2020-01-0{HUGE},A,1\n", "is not a date/time"),
], ids=["asset", "price", "timestamp"])
def test_a_huge_cell_is_shortened_in_the_message(tmp_path: Path, body, fragment):
    path = tmp_path / "bars.csv"
    path.write_text("ts,asset,close\n" + body)
    with pytest.raises(DataError) as caught:
        load_bars(path)
    message = str(caught.value)
    assert fragment in message and "characters)" in message and len(message) < 1_000
