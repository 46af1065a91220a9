"""What a block of code binds, read from its syntax tree: a function's locals and globals,
the names a loop body binds for its later passes, whether a function is a generator."""

from __future__ import annotations

import ast
from collections.abc import Sequence


def loop_bound_names(body: Sequence[ast.stmt]) -> frozenset[str]:
    """Names a loop body binds at its own level (not inside functions or classes) in a way a
    later pass can read: `acc = i` can, `acc += i` alone cannot (it fails on the first pass, in
    the notebook too)."""
    found: set[str] = set()
    self_reading: set[str] = set()  # bound only by statements that read them first
    clean: set[str] = set()  # bound somewhere without being read first
    for node in _own_nodes(body):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
            clean.add(node.name)
        elif isinstance(node, ast.alias):
            found.add(node.asname or node.name.partition(".")[0])
            clean.add(node.asname or node.name.partition(".")[0])
        elif isinstance(node, ast.AugAssign):
            self_reading.update(_stored(node.target))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = _stored(*(node.targets if isinstance(node, ast.Assign) else [node.target]))
            loaded = names_loaded(node.value) if node.value is not None else set()
            self_reading.update(targets & loaded)
            clean.update(targets - loaded)
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            clean.update(_stored(node.target))
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            clean.update(_stored(node.optional_vars))
        elif isinstance(node, ast.NamedExpr):
            clean.add(node.target.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found.add(node.name)
            clean.add(node.name)
    return frozenset(found - (self_reading - clean))


def _stored(*targets: ast.expr) -> set[str]:
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def names_loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def is_generator(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(n, ast.Yield | ast.YieldFrom) for n in _own_nodes(node.body))


def _own_nodes(body: Sequence[ast.AST]) -> list[ast.AST]:
    """Every node of a function body, not descending into nested functions, lambdas, classes."""
    found: list[ast.AST] = []
    stack = list(body)
    while stack:
        node = stack.pop()
        found.append(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue  # a definition among the statements: its name is bound here, no more
        if isinstance(node, ast.comprehension):  # its targets are the comprehension's own
            stack.extend((node.iter, *node.ifs))
            continue
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                              | ast.ClassDef):
                stack.append(child)
            elif not isinstance(child, ast.Lambda):
                found.append(child)  # its name is bound here
    return found


def function_locals(body: Sequence[ast.AST]) -> tuple[set[str], set[str]]:
    """Names a function body binds (its locals) and names it declares global or nonlocal."""
    bound: set[str] = set()
    declared: set[str] = set()
    for node in _own_nodes(body):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update(
                (a.asname or a.name.partition(".")[0]) for a in node.names if a.name != "*"
            )
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            declared.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound - declared, declared


def definitely_bound(body: Sequence[ast.stmt]) -> frozenset[str]:
    """Names bound on every path through `body` that ends normally (Python's own rule for what
    a later statement can read without NameError): both branches of an `if`, a `try` body and
    every one of its handlers. Loops may not run, so what they bind is left out; `del` unbinds.
    An under-estimate: a name left out is only treated as possibly unbound."""
    found: set[str] = set()
    for node in body:
        if isinstance(node, ast.Delete):
            found -= _stored(*node.targets)
        else:
            found |= _statement_binds(node)
    return frozenset(found)


def _statement_binds(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Assign):
        return _stored(*node.targets)
    if isinstance(node, ast.AnnAssign):
        return _stored(node.target) if node.value is not None else set()
    if isinstance(node, ast.AugAssign):
        return _stored(node.target)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {a.asname or a.name.partition(".")[0] for a in node.names if a.name != "*"}
    if isinstance(node, ast.If):
        if not node.orelse:
            return set()
        return set(definitely_bound(node.body) & definitely_bound(node.orelse))
    if isinstance(node, ast.With | ast.AsyncWith):
        targets = [item.optional_vars for item in node.items if item.optional_vars]
        return _stored(*targets) | definitely_bound(node.body)
    if isinstance(node, ast.Try | ast.TryStar):
        ends = definitely_bound([*node.body, *node.orelse])
        for handler in node.handlers:  # `except E as err` unbinds err as it ends
            ends &= definitely_bound(handler.body) - {handler.name}
        return set(ends | definitely_bound(node.finalbody))
    return set()
