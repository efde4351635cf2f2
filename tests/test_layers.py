"""The architecture, checked: layers point down, no import circles, honest privacy.

``docs/architecture.md`` draws the layers. Every import statement of the product code is
read from the source (module level and inside functions alike), so a lazy import cannot
hide an upward dependency or a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("alfred", "engine", "analysts", "strategies", "portfolio", "reports", "alfred_data")

# What each package may import besides itself (DESIGN.md "Layers").
ALLOWED = {
    "engine": set(),
    "analysts": {"engine"},
    "strategies": {"engine"},
    "reports": {"engine"},
    "portfolio": {"engine", "analysts.training"},
    "alfred_data": {"engine"},
    "alfred": {"engine", "analysts", "strategies", "portfolio", "reports", "alfred_data"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


SOURCES = _sources()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, resolved to known modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in SOURCES else module
                       for a in node.names]
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                out.append((_known(target), node.lineno))
    return out


def _known(module: str) -> str:
    """The longest prefix of ``module`` that is one of our modules."""
    parts = module.split(".")
    while parts and ".".join(parts) not in SOURCES:
        parts.pop()
    return ".".join(parts) if parts else module


GRAPH = {name: _imports(name, path) for name, path in SOURCES.items()}


def _allowed(importer: str, imported: str) -> bool:
    own = importer.split(".")[0]
    other = imported.split(".")[0]
    if own == other:
        return True
    return any(imported == a or imported.startswith(a + ".") or other == a
               for a in ALLOWED[own])


def test_packages_import_only_downward():
    bad = [f"{name} (line {line}) imports {target}"
           for name, edges in GRAPH.items() for target, line in edges
           if not _allowed(name, target)]
    assert not bad, "upward or sideways imports:\n" + "\n".join(sorted(bad))


def test_engine_imports_no_other_alfred_package():
    bad = [f"{name} (line {line}) imports {target}"
           for name, edges in GRAPH.items() if name.split(".")[0] == "engine"
           for target, line in edges if target.split(".")[0] != "engine"]
    assert not bad, "\n".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target, _ in GRAPH.get(node, []):
            if target == node or target not in GRAPH:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_no_import_circles():
    cycles = _cycles()
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def _private_owner(module: str) -> str | None:
    """The package that owns an underscore module (None for a public module)."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def test_underscore_modules_are_imported_only_inside_their_package():
    bad = []
    for name, edges in GRAPH.items():
        for target, line in edges:
            owner = _private_owner(target)
            if owner is not None and not (name == owner or name.startswith(owner + ".")):
                bad.append(f"{name} (line {line}) imports private {target}")
    assert not bad, "\n".join(sorted(bad))


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_readable(package):
    long = [f"{path.relative_to(ROOT)}: {n} lines" for path in (ROOT / package).rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 800]
    assert not long, "modules over 800 lines: " + ", ".join(long)


def test_checker_sees_a_planted_violation(tmp_path):
    """The graph builder is not vacuous: it resolves relative and lazy imports."""
    fake = tmp_path / "engine" / "sub" / "mod.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from reports import metrics\n    from ..kernels import step\n")
    global ROOT
    saved = ROOT
    try:
        ROOT = tmp_path
        edges = _imports("engine.sub.mod", fake)
    finally:
        ROOT = saved
    assert ("reports.metrics", 2) in edges and ("engine.kernels.step", 3) in edges
    assert not _allowed("engine.sub.mod", "reports.metrics")
    assert _private_owner("alfred.sweep._run") == "alfred.sweep"


def test_functions_stay_readable_outside_the_kernels():
    """No function over 100 lines outside the numba kernels (HOUSE_STYLE)."""
    long = []
    for name, path in SOURCES.items():
        if ".kernels" in name or name.endswith("_kernels"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 100:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, "functions over 100 lines: " + ", ".join(long)
