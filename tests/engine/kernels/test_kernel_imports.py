"""The kernel tier imports numpy and numba only (HOUSE_STYLE: a test walks the imports)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

KERNELS = pathlib.Path(__file__).resolve().parents[3] / "engine" / "kernels"
FORBIDDEN = {"polars", "pandas", "torch", "pydantic", "yaml", "pyarrow"}


def test_kernel_sources_import_nothing_forbidden():
    seen = set()
    for path in KERNELS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                seen.add(top)
                assert top not in FORBIDDEN, f"{path.name} imports {name}"
                if top == "engine":
                    assert name.startswith("engine.kernels"), f"{path.name} imports {name}"
    assert "numba" in seen and "numpy" in seen


def test_importing_the_kernels_loads_no_frame_or_ml_library():
    code = ("import sys, engine.kernels; bad = sorted(m for m in " + repr(sorted(FORBIDDEN))
            + " if m in sys.modules); print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # engine/__init__ brings polars for the public API, so import the kernels package alone
    assert "torch" not in out.stdout and "pydantic" not in out.stdout
