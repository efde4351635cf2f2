"""``python benchmarks/run.py``: the same as ``python -m benchmarks`` from any folder."""

import sys
from pathlib import Path

# run as a script, Python puts benchmarks/ (not the checkout) on the path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
