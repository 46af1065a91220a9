"""The names `from MODULE import *` binds, as the notebook's kernel would see them, so a step
imports each name it uses explicitly, and only names that exist.

A module whose installed source declares a literal `__all__` is read, not imported. Any other
installed module (numpy, whose `__all__` is computed at import time and differs from one version
to the next) is imported in a new process of the environment's Python, away from the notebook's
folder, and what it binds is recorded: that runs the installed library's code, never the
notebook's. When it cannot be imported there, its source's public top-level names stand in
(following `from .sub import *` inside a package), and a built-in or compiled module of the
standard library is imported here (that runs no Python code). Anything else (the notebook's own
modules, packages not installed) is unknown, and a name that may come from it stays an error.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import sys
from functools import cache
from pathlib import Path

from nb2pipe.notebook.pylab import environment_names

_MAX_DEPTH = 4  # nested `from .sub import *` followed inside a package
_NOT_IMPORTED = frozenset(("readline", "antigravity", "this"))


def star_names(module: str) -> frozenset[str] | None:
    """The names `from module import *` binds, or None when they cannot be known: a literal
    `__all__` in the installed source, else what importing the installed module in the
    notebook's environment binds, else (it cannot be imported here) its source's public
    top-level names."""
    if not _valid(module):
        return None
    spec = _find(module)
    if spec is not None and (spec.origin or "").endswith(".py"):
        has_all, declared = _declared_all(_tree(Path(spec.origin or "")) or ast.Module([], []))
        if has_all and declared is not None:
            return declared
    found = _installed_names(module)
    if found is not None:
        return frozenset(found)
    return _names(module, 0)


def _valid(module: str) -> bool:
    return bool(module) and not module.startswith(".") and all(
        p.isidentifier() for p in module.split("."))


def _installed_names(module: str) -> dict[str, str] | None:
    """What importing the installed module binds, where the notebook runs (pylab.py)."""
    top = module.partition(".")[0]
    if top in _NOT_IMPORTED or (_find(module) is None and top not in sys.stdlib_module_names):
        return None  # not installed here (the notebook's own module), or its import acts
    return environment_names(module)


def _tree(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


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
    tree = _tree(path)
    if tree is None:
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
