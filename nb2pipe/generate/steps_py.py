"""Plan -> steps.py: one plain function per step, importable and testable without Prefect."""

from __future__ import annotations

import ast
import builtins
import textwrap
from dataclasses import dataclass

from nb2pipe.analysis.versions import static_test
from nb2pipe.escape import docstring_text
from nb2pipe.generate.code import literal, string_lines
from nb2pipe.generate.plan import Line, Plan, StepPlan
from nb2pipe.generate.step_code import DISPLAYHOOK

STAMP_LINES = 1  # the writer puts one stamp line above every generated text file


@dataclass(frozen=True)
class Rendered:
    text: str
    line_map: dict[str, list[list[int]]]  # step -> [[steps.py line, cell, cell line], ...]
    functions: dict[str, str]  # step -> the function's source, for its code hash


def render_steps(plan: Plan, local_modules: list[str] | None = None,
                 workdir: str = "..") -> Rendered:
    """`local_modules`: modules beside the notebook that its cells import (found on disk by the
    caller); the notebook's folder, `workdir` from here, then goes on sys.path first."""
    out: list[str] = []
    line_map: dict[str, list[list[int]]] = {}
    functions: dict[str, str] = {}
    cells = {c.index: c.code for c in plan.graph.notebook.cells}
    out.extend([
        f'"""Steps of the pipeline converted from {docstring_text(plan.notebook_name)}.',
        "",
        "Each function runs one step: the code of its cells (IPython syntax made plain Python),",
        "with the values it needs from earlier steps and the parameters it uses as arguments. It",
        "returns the values later steps need. Importable and testable without Prefect.",
        '"""',
        "",
    ])
    imports = [b.lines[0].text for b in plan.module if b.kind == "import"]
    extra = sorted({m for s in plan.graph.steps for i in s.cells
                    for m in plan.graph.notebook.cells[i - 1].implicit_imports})
    extra_lines = [f"import {m}" for m in extra if f"import {m}" not in imports]
    from nb2pipe.graph.resolve import NOTEBOOK_PROVIDED

    extra_lines.extend(NOTEBOOK_PROVIDED[name] for name in plan.notebook_names)
    if any(line.cell is not None and line.text.lstrip().startswith(f"{DISPLAYHOOK}(")
           for step in plan.steps for line in step.body):
        # A cell's last value, shown in the run's report as the notebook shows it.
        extra_lines.append(f"from nb2pipe_runtime.capture import {DISPLAYHOOK}")
    if local_modules:
        shown = ", ".join(f"{m}.py" for m in local_modules)
        extra_lines[:0] = [
            "import sys",
            "from pathlib import Path",
            "",
            f"# {shown} beside the notebook: imported from there, as the notebook does.",
            f"sys.path.insert(0, str((Path(__file__).resolve().parent / {literal(workdir)})"
            ".resolve()))",
        ]
    imports.extend(line for line in plan.submodule_imports if line not in imports)
    imports.extend(plan.random_imports)
    if plan.pyplot_import:
        imports.append(plan.pyplot_import)
    if extra_lines or imports:
        out.extend(extra_lines + imports)
    else:
        out.pop()  # no blank line left dangling after the docstring
    for block in (b for b in plan.module if b.kind != "import"):
        out.extend(["", ""] if block.kind in ("function", "class") or _after_def(out) else [""])
        first = block.lines[0]
        out.append(f"# cell {first.cell}")
        out.extend(_indented(list(block.lines), cells, ""))
    # Names steps.py defines above the steps, and those its ruff settings take as builtins.
    module_names = _top_level_names(out) | frozenset(plan.ruff_builtins)
    for step in plan.steps:
        out.extend(["", ""])
        start = len(out)
        source, body_start = _function(step, cells, module_names)
        out.extend(source)
        functions[step.name] = "\n".join(source)
        line_map[step.name] = [
            [start + body_start + offset + 1 + STAMP_LINES, line.cell, line.line]
            for offset, line in enumerate([*step.preamble, *step.body])
            if line.cell is not None and line.line is not None
        ]
    return Rendered("\n".join(out) + "\n", line_map, functions)


def _after_def(out: list[str]) -> bool:
    return any(line.startswith(("def ", "class ", "@")) for line in out[-30:])


def _function(step: StepPlan, cells: dict[int, str],
              module_names: frozenset[str] = frozenset()) -> tuple[list[str], int]:
    """The function's lines, and where its body (preamble, then cells) starts."""
    returns = ", ".join(step.returns) or "nothing"
    where = ", ".join(str(c) for c in step.cells)
    summary = (f'Step `{step.name}` (cell{"s" if len(step.cells) > 1 else ""} {where}): '
               f"returns {returns}.")
    lines = [f"def {step.function}({', '.join(step.arguments)}) -> dict:"]
    if step.title:  # the heading the step's short name was made from, in full
        title = docstring_text(step.title)
        wrapped = textwrap.wrap(title, 92, initial_indent='    """', subsequent_indent="    ",
                                break_long_words=False, break_on_hyphens=False)
        lines.extend([*wrapped, ""])
        lines.extend(textwrap.wrap(summary, 92, initial_indent="    ", subsequent_indent="    "))
        lines.append('    """')
    elif len(summary) <= 90:
        lines.append(f'    """{summary}"""')
    else:
        wrapped = textwrap.wrap(summary, 92, initial_indent='    """', subsequent_indent="    ")
        lines.extend([*wrapped, '    """'])
    body_start = len(lines)
    lines.extend(_indented(list(step.preamble) + list(step.body), cells, "    "))
    lines.extend(_return(step))
    return _lint_marks(lines, module_names), body_start


def _top_level_names(lines: list[str]) -> frozenset[str]:
    """Names steps.py binds above the step functions (imports, notebook functions)."""
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    return frozenset(_bound_in(tree.body))


def _bound_in(nodes: list[ast.stmt]) -> set[str]:
    found: set[str] = set()
    for statement in nodes:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(statement.name)
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                found.add(node.id)
            elif isinstance(node, ast.alias):
                found.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.add(node.name)
            elif isinstance(node, ast.arg):
                found.add(node.arg)
    return found


def _lint_marks(lines: list[str], module_names: frozenset[str]) -> list[str]:
    """Reads that run as the notebook runs them but that ruff reports as undefined (F821)
    inside a step's function, marked for ruff so the project passes its own lint:

    - a name the cell deletes after its own function or lambda read it (`checker = ...`,
      `def num(x): return checker.search(x)`, `rooms = [...]`, `del checker, num`): at a
      notebook's top level ruff does not report it, inside a function it does;
    - a name read only in a branch Python 3 never runs (`if False:`, `if six.PY2:`) that this
      step does not have (another step binds it): the analysis rightly gives it no input.
    """
    try:
        function = ast.parse("\n".join(lines)).body[0]
    except (SyntaxError, ValueError, RecursionError, MemoryError, IndexError):
        return lines
    assert isinstance(function, ast.FunctionDef)
    scope = _own_scope(function)
    marked: set[int] = set()
    deleted = {target.id for node in scope if isinstance(node, ast.Delete)
               for target in node.targets if isinstance(target, ast.Name)}
    known = (_bound_in(function.body) | {a.arg for a in ast.walk(function.args)
                                         if isinstance(a, ast.arg)}
             | module_names | set(dir(builtins)))
    for node in scope:
        if isinstance(node, ast.If) and (answer := static_test(node.test)) is not None:
            for dead in node.orelse if answer else node.body:
                marked.update(name.lineno - 1 for name in ast.walk(dead)
                              if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Load)
                              and name.id not in known)
    if not deleted and not marked:
        return lines
    for node in scope:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            bound = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                    bound.add(inner.id)
            marked.update(inner.lineno - 1 for inner in ast.walk(node)
                          if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Load)
                          and inner.id in deleted and inner.id not in bound)
    out = list(lines)
    for index in marked:
        if "noqa" not in out[index]:
            out[index] += "  # noqa: F821 (read where it is not defined)"
    try:  # a line that goes on in a string or after a backslash: leave the function as it was
        same = ast.dump(ast.parse("\n".join(out))) == ast.dump(ast.parse("\n".join(lines)))
    except SyntaxError:
        same = False
    return out if same else lines


def _own_scope(function: ast.stmt) -> list[ast.AST]:
    """The statements and expressions of a function's own scope, and the nested functions and
    lambdas themselves (not what is inside them)."""
    found: list[ast.AST] = []
    todo: list[ast.AST] = list(getattr(function, "body", []))
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                          | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _return(step: StepPlan) -> list[str]:
    if not step.returns:
        return ["    return {}"]
    items = [f'"{name}": {name}' for name in step.returns]
    single = f"    return {{{', '.join(items)}}}"
    if len(single) <= 100:
        return [single]
    return ["    return {", *(f"        {item}," for item in items), "    }"]


def _indented(lines: list[Line], cells: dict[int, str], prefix: str) -> list[str]:
    """Indent lines taken from cells, leaving lines inside multi-line strings as written."""
    keep: dict[int, set[int]] = {}
    out = []
    for line in lines:
        if line.cell is None:
            out.append(prefix + line.text)
            continue
        if line.cell not in keep:
            keep[line.cell] = string_lines(cells[line.cell])
        if line.line in keep[line.cell]:
            out.append(line.text)
        else:
            out.append(prefix + line.text if line.text.strip() else "")
    return out
