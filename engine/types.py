"""Type aliases shared across Alfred (one place, like stable-baselines3's type_aliases)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

import numpy as np

# A point in time as users write it: a date, a datetime, an ISO string or numpy datetime64.
TimeLike = date | datetime | str | np.datetime64

# When a decision made at the close of bar t fills (DESIGN.md "Engine semantics").
FillName = Literal["next_open", "next_close", "same_close"]

# progress(step, done, total): the step starting now and how many of ``total`` are done.
ProgressFn = Callable[[str, int, int], None]
