"""Cutting a bar calendar into walk-forward folds (pure date arithmetic, unit-tested).

Indices refer to the sorted unique timestamps of the whole dataset (every asset's bars
together). For fold k with test bars ``[test_first, test_last]``:

* the last training bar is ``test_first - embargo - 1``: ``embargo`` whole bars lie
  between training and test, so a label of horizon ``h <= embargo`` observed on the last
  training bar never reaches into the test window;
* rolling windows keep the training length fixed; expanding windows start at the first
  bar of the data (the ``train`` length is then the minimum for the first fold);
* the test windows start at ``start`` and follow each other every ``step`` (= ``test``
  by default) up to the end of the data, the last one cut at the last bar, so with the
  default step they tile the requested span exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from alfred.walkforward._spec import Span, WalkForwardSpec, add_span
from engine.errors import ConfigError


@dataclass(frozen=True)
class Fold:
    index: int
    train_first: int
    train_last: int
    test_first: int
    test_last: int

    def dates(self, ts: np.ndarray) -> dict[str, str]:
        day = lambda i: str(ts[i].astype("datetime64[D]"))  # noqa: E731
        return {"train_start": day(self.train_first), "train_end": day(self.train_last),
                "test_start": day(self.test_first), "test_end": day(self.test_last)}


def make_folds(ts: np.ndarray, spec: WalkForwardSpec, *, horizon: int = 0,
               start: date | None = None, end: date | None = None) -> list[Fold]:
    """Folds over the calendar ``ts`` (sorted datetime64[ns]); ConfigError when the data
    cannot hold them, saying by how much."""
    ts = np.asarray(ts, dtype="datetime64[ns]")
    n = ts.size
    embargo = horizon if spec.embargo is None else spec.embargo
    if embargo < horizon:
        raise ConfigError(
            f"walkforward.embargo {embargo} is shorter than the analysts' label horizon "
            f"{horizon}: the last training labels would overlap the test window. Set "
            f"embargo >= {horizon} (or leave it out to use the horizon)"
        )
    last = n - 1
    if end is not None:
        last = int(np.searchsorted(ts, np.datetime64(end, "D") + np.timedelta64(1, "D"))) - 1
    first_test = spec.start or start
    if first_test is not None:
        a = int(np.searchsorted(ts, np.datetime64(first_test, "D").astype("datetime64[ns]")))
    else:
        a = _earliest_test(ts, spec.train, embargo)
    if a > last:
        raise ConfigError(f"walkforward: no bars to test between {first_test} and "
                          f"{ts[last].astype('datetime64[D]')}; move walkforward.start earlier")
    folds = []
    origin, step = a, spec.step if spec.step is not None else spec.test
    k = 0
    while a <= last:
        b = min(_test_end(ts, origin, k, step, spec.test), last)
        train_last = a - embargo - 1
        need_first = _backward(ts, train_last, spec.train)
        if train_last < 0 or need_first < 0:
            short = -need_first if need_first < 0 else -train_last
            approx = "" if isinstance(spec.train, int) else " (about, at 252 bars a year)"
            raise ConfigError(
                f"walkforward: fold {len(folds)} tests from {ts[a].astype('datetime64[D]')}, so "
                f"its training window ({_say(spec.train)}, ending {embargo} bars before) would "
                f"start before the first bar ({ts[0].astype('datetime64[D]')}): the data is "
                f"{short} bars short{approx}. Move walkforward.start later, shorten train, or "
                "load more history"
            )
        train_first = 0 if spec.mode == "expanding" else need_first
        folds.append(Fold(len(folds), train_first, train_last, a, b))
        k += 1
        a = _test_start(ts, origin, k, step)
    if not folds:  # pragma: no cover - the loop runs at least once when a <= last
        raise ConfigError("walkforward: no folds")
    return folds


def _earliest_test(ts: np.ndarray, train: Span, embargo: int) -> int:
    if isinstance(train, int):
        return train + embargo
    first = add_span(ts[0], train)
    return int(np.searchsorted(ts, first)) + embargo


def _test_start(ts: np.ndarray, origin: int, k: int, step: Span) -> int:
    """First bar of test window ``k``: ``k`` steps from the first test bar. Calendar steps
    count from the first window's date, so windows do not drift with holidays."""
    if isinstance(step, int):
        return origin + k * step
    return max(origin + k, int(np.searchsorted(ts, add_span(ts[origin], step, k))))


def _test_end(ts: np.ndarray, origin: int, k: int, step: Span, test: Span) -> int:
    """Last bar of test window ``k`` (before clipping to the data's end)."""
    if isinstance(step, int) and isinstance(test, int):
        return origin + k * step + test - 1
    if step == test:
        return _test_start(ts, origin, k + 1, step) - 1
    begin = _test_start(ts, origin, k, step)
    if isinstance(test, int):
        return begin + test - 1
    anchor = ts[origin] if isinstance(step, int) else add_span(ts[origin], step, k)
    return max(begin, int(np.searchsorted(ts, add_span(anchor, test))) - 1)


def _backward(ts: np.ndarray, last: int, span: Span) -> int:
    """First index of a window of ``span`` ending at bar ``last`` (negative: too short)."""
    if last < 0:
        return last
    if isinstance(span, int):
        return last - span + 1
    begin = add_span(ts[last], span, sign=-1)
    if begin < ts[0] - np.timedelta64(4, "D"):  # a window reaching before the data
        days = int((ts[0] - begin) / np.timedelta64(1, "D"))
        return -max(1, round(days * 252 / 365))
    return int(np.searchsorted(ts, begin, side="right"))


def _say(span: Span) -> str:
    return f"{span} bars" if isinstance(span, int) else span
