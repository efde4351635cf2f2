"""Equality checks run before any timing: a speed figure for a different answer is void."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Check:
    peer: str
    what: str
    max_rel_diff: float
    tolerance: float
    passed: bool
    first_bad_bar: int | None = None  # first bar beyond tolerance, None when all agree
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_curves(peer: str, what: str, ours: np.ndarray, theirs: np.ndarray,
                   tolerance: float, note: str = "") -> Check:
    """Largest relative difference ``|ours / theirs - 1|`` over every bar."""
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    theirs = np.asarray(theirs, dtype=np.float64).reshape(-1)
    if ours.shape != theirs.shape:
        return Check(peer, what, float("inf"), tolerance, False, 0,
                     f"length differs: ours {ours.size} bars, {peer} {theirs.size}")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(ours - theirs) / np.abs(theirs)
    rel = np.where(ours == theirs, 0.0, rel)  # exact equality, zeros included
    rel = np.where(np.isnan(rel), np.inf, rel)  # a NaN on either side is a failure
    worst = float(rel.max()) if rel.size else 0.0
    bad = np.nonzero(rel > tolerance)[0]
    first_bad = int(bad[0]) if bad.size else None
    return Check(peer, what, worst, tolerance, first_bad is None, first_bad, note)


def compare_counts(peer: str, what: str, ours: int, theirs: int, note: str = "") -> Check:
    """Exact equality of two counts (fills, orders)."""
    diff = 0.0 if ours == theirs else abs(ours - theirs) / max(abs(theirs), 1)
    return Check(peer, what, float(diff), 0.0, ours == theirs, None,
                 note or f"ours {ours}, {peer} {theirs}")
