"""Folder moves every writer shares: a finished folder replaces an old one in one step."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def swap_in(staging: Path, target: Path) -> None:
    """Move the complete folder ``staging`` to ``target``; an old ``target`` is renamed
    aside first and removed only once the new one is in place. Callers decide whether the
    old folder may be replaced."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
