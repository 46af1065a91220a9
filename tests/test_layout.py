"""The package's shape: stages import each other in one direction, never in a circle."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "nb2pipe"


def imports() -> dict[str, set[str]]:
    """Module -> the nb2pipe modules it imports, lazily inside functions included."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        if "labextension" in path.parts:
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        used = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                parts = package.split(".")
                base = parts[:len(parts) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                used.update(f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                            for a in node.names)
            elif isinstance(node, ast.Import):
                used.update(a.name for a in node.names)
        found[name] = {m for m in used if m in modules and m != name}
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = imports()
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None


def test_the_runtime_imports_nothing_else_of_nb2pipe() -> None:
    """It is copied into projects that run without nb2pipe installed."""
    for module, used in imports().items():
        if module.startswith("nb2pipe.runtime"):
            assert all(m.startswith("nb2pipe.runtime") for m in used), (module, used)
