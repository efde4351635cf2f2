"""Small helpers that make data errors say *where* and *how to fix*.

Every DataError in ``engine.data`` names the source, the asset, the timestamp and the row,
so a user with a 500-file directory can go straight to the broken line. The helpers
themselves live in :mod:`engine.text` (one for all of Alfred).
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.text import did_you_mean as _did_you_mean
from engine.text import fmt_ts, preview, shorten

__all__ = ["did_you_mean", "fmt_ts", "preview", "shorten"]


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """``" Did you mean 'x'?"`` for near matches of ``word`` (see :mod:`engine.text`)."""
    return _did_you_mean(word, choices, n=n, sentence=True)
