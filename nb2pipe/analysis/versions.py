"""Checks of the Python version a cell makes (`if sys.version_info < (3, 0):`), decided
statically: a branch Python 3 never runs is not analysed (what it reads is no use)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from nb2pipe.analysis.chains import dotted

# Two versions of Python 3 as far apart as can be: a test about the version that gives the same
# answer for both gives it for every Python 3.
_PYTHONS = ((3, 0, 0, "final", 0), (3, 99, 99, "final", 0))


def static_test(test: ast.expr) -> bool | None:
    """True or False when `test` is a check of the Python major version (`sys.version_info <
    (3, 0)`, `six.PY2`, `sys.version_info.major == 2`) with the same answer on every Python 3;
    None for anything else."""
    answers = {_evaluate(test, version) for version in _PYTHONS}
    if len(answers) != 1:
        return None
    answer = answers.pop()
    return answer if isinstance(answer, bool) else None


_UNKNOWN = object()


def _evaluate(node: ast.expr, version: tuple[object, ...]) -> object:
    """A tiny evaluator for version checks; `_UNKNOWN` for anything outside them."""
    name = dotted(node)
    if name in ("sys.version_info",):
        return version
    if name in ("sys.version",):
        return ".".join(str(v) for v in version[:3])
    if name in ("six.PY2", "six.PY3"):
        return name == "six.PY3"
    if name in ("sys.version_info.major", "sys.version_info.minor"):
        return version[0 if name.endswith("major") else 1]
    if isinstance(node, ast.Constant) and isinstance(node.value, int | str):
        return node.value
    if isinstance(node, ast.Tuple):
        items = tuple(_evaluate(e, version) for e in node.elts)
        return _UNKNOWN if _UNKNOWN in items else items
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        value = _evaluate(node.operand, version)
        return _UNKNOWN if not isinstance(value, bool) else not value
    if isinstance(node, ast.BoolOp):
        values = [_evaluate(v, version) for v in node.values]
        if not all(isinstance(v, bool) for v in values):
            return _UNKNOWN
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Subscript):
        return _subscript(node, version)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left = _evaluate(node.left, version)
        right = _evaluate(node.comparators[0], version)
        if _UNKNOWN in (left, right) or type(left) is not type(right):
            return _UNKNOWN
        return _compare(node.ops[0], left, right)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "startswith" and len(node.args) == 1 and not node.keywords):
        text = _evaluate(node.func.value, version)
        prefix = _evaluate(node.args[0], version)
        if isinstance(text, str) and isinstance(prefix, str):
            return text.startswith(prefix)
    return _UNKNOWN


def _subscript(node: ast.Subscript, version: tuple[object, ...]) -> object:
    value = _evaluate(node.value, version)
    if not isinstance(value, tuple | str):
        return _UNKNOWN
    key = node.slice
    if isinstance(key, ast.Constant) and isinstance(key.value, int):
        return value[key.value]
    if isinstance(key, ast.Slice) and key.step is None:
        bounds = [_bound(key.lower), _bound(key.upper)]
        if all(b is None or isinstance(b, int) for b in bounds):
            lower = bounds[0] if isinstance(bounds[0], int) else None
            upper = bounds[1] if isinstance(bounds[1], int) else None
            return value[lower:upper]
    return _UNKNOWN


def _bound(node: ast.expr | None) -> object:
    """A slice bound: None (absent), an int, or `_UNKNOWN`."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return _UNKNOWN


_COMPARISONS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}


def _compare(op: ast.cmpop, left: object, right: object) -> object:
    compare = _COMPARISONS.get(type(op))
    if compare is None:
        return _UNKNOWN
    try:
        return bool(compare(left, right))
    except TypeError:
        return _UNKNOWN
