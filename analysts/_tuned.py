"""Which bars a promoted tuning file was tuned on, and the check that no test window lies
inside or before them (hyperparameters count as training).

Kept free of other analysts imports: the analysts' predict wrapper (``_config``) calls
it, and ``analysts.tuning`` re-exports it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import ConfigError


def tuned_meta(path: str | Path) -> dict[str, Any]:
    """The tuning period of a promoted file: ``{"file", "first_bar", "last_bar",
    "tuned_on": {SYMBOL: {...}}}``; a file without one is a ConfigError (its period is
    unknown, so no test window can be shown to lie after it)."""
    file = Path(path).expanduser()
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"tuned_configs {file}: cannot read it ({exc})") from None
    period = data.get("tuned_period") if isinstance(data, dict) else None
    if not isinstance(period, dict) or not {"first_bar", "last_bar"} <= set(period):
        raise ConfigError(f"tuned_configs {file} does not say which bars it was tuned on; "
                          f"promote it again with this Alfred (`alfred analyst promote`), or "
                          f"set allow_tuned_overlap: true to use it anyway")
    return {"file": str(file), **period, "tuned_on": data.get("tuned_on", {})}


def check_tuned_overlap(meta: dict[str, Any], test_start: datetime | str,
                        test_end: datetime | str, *, allow: bool = False,
                        where: str = "the test window") -> str | None:
    """Refuse a test window with a bar inside or before the tuning period.

    Hyperparameters count as training: a config tuned on bars up to ``last_bar`` says
    nothing honest about any bar up to ``last_bar``. When ``test_start <= last_bar`` this
    raises ConfigError, unless ``allow`` (``allow_tuned_overlap: true``), when it returns
    the note every affected row must carry. Returns None when the window is clean.
    """
    last = datetime.fromisoformat(str(meta["last_bar"]))
    start = datetime.fromisoformat(str(test_start))
    end = datetime.fromisoformat(str(test_end))
    if None in (last.tzinfo, start.tzinfo, end.tzinfo):  # compare wall times
        last, start, end = (d.replace(tzinfo=None) for d in (last, start, end))
    if start > last:
        return None
    note = (f"{where} {start.date()} .. {end.date()} overlaps the period its tuned_configs "
            f"were tuned on ({str(meta['first_bar'])[:10]} .. {str(meta['last_bar'])[:10]}, "
            f"{meta['file']})")
    if allow:
        return note + "; its numbers are in sample for the hyperparameters"
    raise ConfigError(note + "; test after the tuning period, tune on earlier bars, or set "
                      "allow_tuned_overlap: true to run it with every affected row marked")
