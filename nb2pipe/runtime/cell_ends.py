"""Where a step's cells end: pyplot's figures are shown and closed there, as Jupyter does.

steps.py holds a step's cells one after the other in one function, and pipeline.json's line map
says which of its lines are which cell's (the capture attributes outputs with it). Jupyter's
inline backend shows and closes a cell's figures when the cell ends, so the next cell draws on a
new one. For a step that plots, run_step (its hook CellEnds) calls its function compiled again
from steps.py with a call to `cell_ended` after the last statement of each cell: the same file
and line numbers (errors and outputs name the same cells), with the report on or off. Called
directly (a test importing steps.py), the function runs as written.
"""

import __future__ as future_statements

import ast
import copy
import functools
import sys
import types
from collections.abc import Callable, Sequence
from typing import TypeVar

from . import capture, files, project
from .calls import Hook, StepCall
from .manifest import LineRun

T = TypeVar("T")
HOOK = "__nb2pipe_cell_ended__"  # its name in the step's globals (steps.py's module)
# `from __future__ import ...` in steps.py, kept when its function is compiled again
_FUTURE = functools.reduce(
    lambda flags, name: flags | getattr(future_statements, name).compiler_flag,
    future_statements.all_feature_names, 0)


def cell_ended() -> None:
    """A cell ended: its figures go to the step's capture (if on) and every figure is closed."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return
    shown = capture.current()
    if shown is not None:
        capture.flush_figures(shown)
    pyplot.close("all")


class CellEnds(Hook):
    """run_step's hook: a plotting step runs with `cell_ended` where each cell ends."""

    def before(self, call: StepCall) -> None:
        entry = project.step(call.step)
        if entry.pyplot:
            call.function = with_cell_ends(call.function, entry.lines, entry.cells)


def with_cell_ends(function: Callable[..., T], lines: Sequence[LineRun],
                   cells: Sequence[int]) -> Callable[..., T]:
    """`function` (a step of steps.py) calling `cell_ended` where each of its own `cells` ends
    (not the code it needs from other cells, above them); itself when its source is not the
    file it was loaded from any more."""
    return _compiled(function, tuple(run for run in lines if run.cell in cells))


@functools.cache
def _compiled(function: Callable[..., T], lines: tuple[LineRun, ...]) -> Callable[..., T]:
    code = getattr(function, "__code__", None)
    if code is None:
        return function
    try:
        tree = _tree(files.read_bytes(code.co_filename), code.co_filename)
    except (OSError, SyntaxError, ValueError):
        return function
    at = next((i for i, node in enumerate(tree.body) if isinstance(node, ast.FunctionDef)
               and node.name == code.co_name and node.lineno == code.co_firstlineno), None)
    if at is None or _function_code(tree.body, code) != code:
        return function  # steps.py was edited since it was imported
    marked = copy.copy(tree.body[at])  # the parsed tree is kept for the file's other steps
    assert isinstance(marked, ast.FunctionDef)
    marked.body = _marked(marked.body, lines)
    made_code = _function_code([*tree.body[:at], marked, *tree.body[at + 1:]], code)
    if made_code is None:
        return function
    function.__globals__.setdefault(HOOK, cell_ended)
    made = types.FunctionType(made_code, function.__globals__, code.co_name,
                              getattr(function, "__defaults__", None),
                              getattr(function, "__closure__", None))
    made.__kwdefaults__ = getattr(function, "__kwdefaults__", None)
    made.__annotations__ = dict(getattr(function, "__annotations__", {}))
    return made


@functools.cache
def _tree(source: bytes, path: str) -> ast.Module:
    return ast.parse(source, filename=path)


def _function_code(body: list[ast.stmt], like: types.CodeType) -> types.CodeType | None:
    """The code of the function `like` is in the module `body`, compiled as steps.py is (the
    whole module, whose imports decide how calls compile; file name; `__future__`), never
    run. Equal to `like` when the file still holds what was imported."""
    module = compile(ast.Module(body=body, type_ignores=[]), like.co_filename, "exec",
                     flags=like.co_flags & _FUTURE, dont_inherit=True)
    return next((c for c in module.co_consts if isinstance(c, types.CodeType)
                 and c.co_name == like.co_name and c.co_firstlineno == like.co_firstlineno),
                None)


def _marked(body: list[ast.stmt], lines: tuple[LineRun, ...]) -> list[ast.stmt]:
    """The statements with a call to the hook after each cell's last one (on its last line)."""
    out: list[ast.stmt] = []
    current = 0
    for statement in body:
        cell = _cell(statement.lineno, lines)
        if current and cell != current:
            out.append(_hook_call(out[-1]))
        out.append(statement)
        current = cell
    if current:
        out.append(_hook_call(out[-1]))
    return out


def _cell(line: int, lines: tuple[LineRun, ...]) -> int:
    return next((run.cell for run in lines if run.start <= line < run.start + run.length), 0)


def _hook_call(after: ast.stmt) -> ast.stmt:
    line = after.end_lineno or after.lineno
    place = {"lineno": line, "end_lineno": line, "col_offset": after.col_offset,
             "end_col_offset": after.col_offset}
    call = ast.Call(func=ast.Name(id=HOOK, ctx=ast.Load(), **place), args=[], keywords=[],
                    **place)
    return ast.Expr(value=call, **place)
