"""The papermill `parameters` cell -> typed flow parameters.

A parameter is a literal assignment, optionally annotated, optionally followed by a help comment:
`n_estimators: int = 100  # trees in the forest`. Anything else in the cell is an error: a
pipeline parameter must have a value that can be typed on a command line.
"""

from __future__ import annotations

import ast
import io
import tokenize
from typing import Any

from nb2pipe.diagnostics import diagnostic
from nb2pipe.model import Cell, Diagnostic, Parameter

_TYPES: dict[type, str] = {
    bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict",
    tuple: "tuple", type(None): "None",
}


def read_parameters(
    cell: Cell, tree: ast.Module, path: str
) -> tuple[list[Parameter], list[Diagnostic]]:
    comments = _comments(cell.code)
    parameters: list[Parameter] = []
    problems: list[Diagnostic] = []
    lines = cell.code.splitlines()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Pass):
            continue  # code, not a parameter: handled like any import
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring or a bare string used as a comment
        target, annotation, value = _assignment(node)
        if target is None or value is None:
            problems.append(_not_literal(node, cell, path, "is not a simple assignment"))
            continue
        try:
            default = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            problems.append(_not_literal(node, cell, path, f"'{target}' is not set to a literal"))
            continue
        if isinstance(default, set | frozenset | complex | bytes):
            problems.append(_not_literal(
                node, cell, path,
                f"'{target}' is a {type(default).__name__}, which JSON cannot hold",
            ))
            continue
        type_name = _type_of(default)
        if annotation is not None and _is_type_expression(annotation):
            type_name = ast.unparse(annotation)
        end = node.end_lineno or node.lineno
        parameters.append(Parameter(
            name=target,
            type=type_name,
            default=_jsonable(default),
            help=comments.get(end),
            cell=cell.index,
            line=node.lineno,
            source=ast.get_source_segment(cell.code, value) or lines[node.lineno - 1],
        ))
        if flow_argument(target) != target:
            problems.append(diagnostic(
                "NB113", f"parameter '{target}' is '{flow_argument(target)}' in the flow and its "
                "deployments: Prefect parameter names cannot start with '_'",
                path=path, cell=cell, line=node.lineno,
                hint=f"rename it in the notebook (e.g. '{target.lstrip('_')}') to keep one name"))
    return parameters, problems


def flow_argument(name: str) -> str:
    """The name of a parameter in the flow's signature: Prefect (pydantic) refuses names
    with a leading underscore, so `_run` is `run_`."""
    return f"{name.lstrip('_')}_" if name.startswith("_") and name.strip("_") else name


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name):
            return target.id, None, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.annotation, node.value
    return None, None, None


def _is_type_expression(node: ast.expr) -> bool:
    """`int`, `list[str]`, `str | None`, `Literal["a", "b"]`: safe to copy into flow.py.

    Anything else (a call, a string that a type checker would evaluate) is ignored and the type is
    inferred from the value, so a parameters cell cannot run code in the generated flow.
    """
    if isinstance(node, ast.Constant):
        return node.value is None
    if isinstance(node, ast.Name):
        return not node.id.startswith("__")
    if isinstance(node, ast.Attribute):
        return not node.attr.startswith("__") and _is_type_expression(node.value)
    if isinstance(node, ast.BinOp):
        return (isinstance(node.op, ast.BitOr) and _is_type_expression(node.left)
                and _is_type_expression(node.right))
    if isinstance(node, ast.Subscript) and _is_type_expression(node.value):
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if ast.unparse(node.value).rpartition(".")[2] == "Literal":
            return all(isinstance(i, ast.Constant) and isinstance(i.value, str | int | bool)
                       for i in items)
        return all(_is_type_expression(i) for i in items)
    return False


def _type_of(value: Any) -> str:
    name = _TYPES.get(type(value), type(value).__name__)
    if isinstance(value, list) and value:
        kinds = {_TYPES.get(type(v)) for v in value}
        if len(kinds) == 1 and None not in kinds and kinds <= {"bool", "int", "float", "str"}:
            return f"list[{kinds.pop()}]"
    return name


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _comments(code: str) -> dict[int, str]:
    found: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.COMMENT:
                text = token.string.lstrip("#").strip()
                if text:
                    found[token.start[0]] = text
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def _not_literal(node: ast.stmt, cell: Cell, path: str, what: str) -> Diagnostic:
    return diagnostic(
        "NB105",
        f"parameters cell: line {node.lineno} {what}",
        path=path,
        cell=cell,
        line=node.lineno,
        hint="keep only `name = literal` lines here (numbers, strings, booleans, None, lists, "
        "dicts) and move computed values to the first step",
    )
