"""The names `from MODULE import *` binds, for modules that can be known without running the
notebook's code, so a step imports each name it uses explicitly.

A module with Python source is read, not imported: its `__all__` when that is a literal, else
its public top-level names (following `from .sub import *` inside a package). A built-in or
compiled module of the standard library (math, itertools) is imported: that runs no Python code.
Anything else (the notebook's own modules, packages not installed here, an `__all__` computed at
import time) is unknown, and a name that may come from it stays an error.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import sys
from functools import cache
from pathlib import Path

_MAX_DEPTH = 4  # nested `from .sub import *` followed inside a package
_NOT_IMPORTED = frozenset(("readline", "antigravity", "this"))


def star_names(module: str) -> frozenset[str] | None:
    """The names `from module import *` binds, or None when they cannot be known."""
    if not module or module.startswith(".") or not all(p.isidentifier() for p in module.split(".")):
        return None
    return _names(module, 0)


@cache
def _names(module: str, depth: int) -> frozenset[str] | None:
    spec = _find(module)
    if spec is None:
        return None
    origin = spec.origin or ""
    if origin.endswith(".py"):
        return _from_source(module, Path(origin), spec.submodule_search_locations is not None,
                            depth)
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names and top not in _NOT_IMPORTED and (
            origin in ("built-in", "frozen") or origin.endswith((".so", ".pyd"))):
        imported = importlib.import_module(module)
        public = getattr(imported, "__all__", None)
        if public is None:
            public = [n for n in dir(imported) if not n.startswith("_")]
        return frozenset(n for n in public if isinstance(n, str))
    return None


def _find(module: str) -> importlib.machinery.ModuleSpec | None:
    """Where a module is, without importing it or its parent packages."""
    parts = module.split(".")
    if parts[0] in sys.builtin_module_names and len(parts) == 1:
        return importlib.machinery.ModuleSpec(module, None, origin="built-in")
    spec = importlib.machinery.PathFinder.find_spec(parts[0])
    for depth in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(parts[:depth + 1]), list(spec.submodule_search_locations))
    return spec


def _from_source(module: str, path: Path, package: bool, depth: int) -> frozenset[str] | None:
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    has_all, declared = _declared_all(tree)
    if has_all:
        return declared
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            inner = _star_source(module, package, node, depth)
            if inner is None:
                return None
            found |= inner
        else:
            found |= _bound_at_top(node)
    return frozenset(n for n in found if not n.startswith("_"))


def _declared_all(tree: ast.Module) -> tuple[bool, frozenset[str] | None]:
    """(True, names) for `__all__ = [...]` (and `+= [...]`) made of string literals; (True,
    None) for an `__all__` computed at import time; (False, None) when there is none."""
    names: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target: ast.expr | None = node.targets[0]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            target = node.target
        else:
            continue
        if not (isinstance(target, ast.Name) and target.id == "__all__"):
            continue
        value = node.value
        elements = value.elts if isinstance(value, ast.List | ast.Tuple) else None
        items = [e.value for e in elements or () if isinstance(e, ast.Constant)
                 and isinstance(e.value, str)]
        if elements is None or len(items) != len(elements):
            return True, None
        names = [*(names or []), *items] if isinstance(node, ast.AugAssign) else items
    return (True, frozenset(names)) if names is not None else (False, None)


def _star_source(module: str, package: bool, node: ast.ImportFrom,
                 depth: int) -> frozenset[str] | None:
    if depth >= _MAX_DEPTH or node.level == 0:
        return None  # another distribution's star import: not followed
    base = module.split(".") if package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    target = ".".join([*base, *([node.module] if node.module else [])])
    return _names(target, depth + 1)


def _bound_at_top(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name.partition(".")[0]) for a in node.names if a.name != "*"}
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    if isinstance(node, ast.If | ast.Try):
        found: set[str] = set()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                found |= _bound_at_top(child)
            elif isinstance(child, ast.ExceptHandler):
                for inner in child.body:
                    found |= _bound_at_top(inner)
        return found
    return set()
