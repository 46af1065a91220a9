"""Plan -> steps.py: one plain function per step, importable and testable without Prefect."""

from __future__ import annotations

import ast
import builtins
import textwrap
from dataclasses import dataclass

from nb2pipe.escape import docstring_text
from nb2pipe.generate.code import Namer, literal, string_lines
from nb2pipe.generate.last_value import DISPLAYHOOK
from nb2pipe.generate.plan import Line, Plan, StepPlan
from nb2pipe.model import Bind, CellSymbols, Delete, StarImport

UNBOUND = "UNBOUND"  # nb2pipe_runtime.unbound.UNBOUND, imported by steps.py when needed
STAMP_LINES = 1  # the writer puts one stamp line above every generated text file
_BUILTINS = frozenset(dir(builtins))
_TYPE_NAMES = frozenset({"bool", "int", "float", "str", "list", "dict", "tuple", "None"})


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
    bound = {e.name for symbols in plan.graph.symbols.values()
             for e in symbols.events if isinstance(e, Bind)}
    namer = Namer(bound)
    any_name = namer.claim("Any")
    unbound_name = namer.claim(UNBOUND)
    # Builtin type names the notebook binds to something else are not used in signatures.
    types = _TYPE_NAMES - bound
    annotations = {p.name: _annotation(p.type, any_name, types) for p in plan.parameters}
    returns = f"dict[str, {any_name}]" if {"dict", "str"} <= types else "dict"
    extra = sorted({m for s in plan.graph.steps for i in s.cells
                    for m in plan.graph.notebook.cells[i - 1].implicit_imports})
    extra_lines = [f"import {m}" for m in extra if f"import {m}" not in imports]
    from nb2pipe.graph.resolve import NOTEBOOK_PROVIDED

    extra_lines.extend(NOTEBOOK_PROVIDED[name] for name in plan.notebook_names)
    if plan.steps and (any_name in returns or any(v == any_name for v in annotations.values())):
        extra_lines.insert(0, "from typing import Any" + (
            f" as {any_name}" if any_name != "Any" else ""))
    if any(line.cell is not None and line.text.lstrip().startswith(f"{DISPLAYHOOK}(")
           for step in plan.steps for line in step.body):
        # A cell's last value, shown in the run's report as the notebook shows it.
        extra_lines.append(f"from nb2pipe_runtime.capture import {DISPLAYHOOK}")
    if any(step.maybe_unbound or step.unbound_inputs for step in plan.steps):
        extra_lines.append(f"from nb2pipe_runtime.unbound import {UNBOUND}" + (
            f" as {unbound_name}" if unbound_name != UNBOUND else ""))
    if any(line.cell is None and " = with_globals(" in line.text
           for step in plan.steps for line in step.preamble):
        extra_lines.append("from nb2pipe_runtime.late_globals import with_globals")
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
        source, body_start = _function(step, cells, plan.graph.symbols, module_names,
                                       _signature(step, annotations, returns), unbound_name)
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


def _signature(step: StepPlan, annotations: dict[str, str | None], result: str) -> list[str]:
    """`def f(df, test_size: float) -> dict[str, Any]:`, one argument a line when too long.
    Parameters have the type the parameters cell gives them; values from other steps, any."""
    arguments = [f"{a}: {annotations[a]}" if a in step.parameters and annotations.get(a) else a
                 for a in step.arguments]
    returns = f") -> {result}:"
    line = f"def {step.function}({', '.join(arguments)}{returns}"
    if len(line) <= 100:
        return [line]
    return [f"def {step.function}(", *(f"    {a}," for a in arguments), returns]


def _annotation(type_name: str, any_name: str, types: frozenset[str]) -> str | None:
    """A parameter's type as steps.py can spell it at module level: the builtin types the
    parameters cell's literals have (`list[int]`), Any for None, else no annotation (a type
    the notebook annotates with a name steps.py may not import)."""
    if type_name == "None":
        return any_name
    try:
        tree = ast.parse(type_name, mode="eval")
    except SyntaxError:
        return None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    simple = all(isinstance(n, ast.Name | ast.Subscript | ast.Tuple | ast.Load | ast.BinOp
                            | ast.BitOr | ast.Expression | ast.Constant)
                 for n in ast.walk(tree))
    if simple and names <= types:
        return type_name
    return None


def _function(step: StepPlan, cells: dict[int, str], symbols: dict[int, CellSymbols],
              module_names: frozenset[str], signature: list[str],
              unbound: str = UNBOUND) -> tuple[list[str], int]:
    """The function's lines, and where its body (preamble, then cells) starts."""
    returns = ", ".join(step.returns) or "nothing"
    where = ", ".join(str(c) for c in step.cells)
    numbered = f'ell{"s" if len(step.cells) > 1 else ""} {where}'
    summary = (f"C{numbered}: returns {returns}." if step.function == step.name else
               f"Step `{step.name}` (c{numbered}): returns {returns}.")
    lines = list(signature)
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
    for name in step.unbound_inputs:  # as the notebook left it: reading it is a NameError
        lines.extend([f"    if {name} is {unbound}:  # the step that binds it left it unbound",
                      f"        del {name}"])
    body_start = len(lines)
    lines.extend(_indented(list(step.preamble) + list(step.body), cells, "    "))
    lines.extend(_return(step, unbound))
    known = frozenset(step.arguments) | module_names | _BUILTINS
    return _lint_marks(lines, [*step.preamble, *step.body], body_start, symbols, cells,
                       known), body_start


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


def _lint_marks(lines: list[str], code: list[Line], at: int, symbols: dict[int, CellSymbols],
                cells: dict[int, str], known: frozenset[str]) -> list[str]:
    """Reads that run as the notebook runs them but that ruff reports as undefined (F821)
    inside a step's function, marked for ruff so the project passes its own lint:

    - a name the step deletes that its own functions or lambdas read (`checker = ...`,
      `def num(x): return checker.search(x)`, `rooms = [...]`, `del checker, num`): at a
      notebook's top level ruff does not report it, inside a function it does;
    - a name read only where Python 3 never goes (`if False:`, `if six.PY2:`, after `break`)
      that the step's function does not have (another step binds it): the analysis rightly
      gives it no input.

    `code` are the function's lines from cells, the first at `lines[at]`; `known`: the names
    the function has without binding them (its arguments, steps.py's globals, builtins).
    """
    where: dict[tuple[int, int], list[int]] = {}
    for offset, line in enumerate(code):
        if line.cell is not None and line.line is not None:
            where.setdefault((line.cell, line.line), []).append(at + offset)
    present = sorted({cell for cell, _ in where})
    own = [e for cell in present for e in symbols[cell].events if (cell, e.line) in where]
    bound = known | {e.name for e in own if isinstance(e, Bind)}
    deleted = {e.name for e in own if isinstance(e, Delete)}
    marked = {(cell, line) for cell in present
              for name, line in symbols[cell].dead_global_reads if name not in bound}
    marked |= {(cell, line) for cell in present
               for name, line in symbols[cell].late_reads if name in deleted}
    nowhere = _defined_nowhere(symbols)
    marked |= {(cell, line) for cell in present
               for name, line in symbols[cell].late_reads if name in nowhere}
    out = list(lines)
    for cell, number in marked & where.keys():
        if number + 1 in string_lines(cells[cell]):  # the line ends inside a string
            continue
        for index in where[(cell, number)]:
            if "noqa" not in out[index] and not out[index].endswith("\\"):
                out[index] += "  # noqa: F821 (read where it is not defined)"
    return out


def _defined_nowhere(symbols: dict[int, CellSymbols]) -> frozenset[str]:
    """Names a function of the notebook reads that no cell binds (NB309): ruff reports them in
    steps.py as in the notebook. None when a star import or exec() may bind any name."""
    events = [e for s in symbols.values() for e in s.events]
    if any(isinstance(e, StarImport) for e in events) or any(
            f.kind == "exec" for s in symbols.values() for f in s.facts):
        return frozenset()
    bound = {e.name for e in events if isinstance(e, Bind)}
    return frozenset(name for s in symbols.values() for name, _ in s.late_reads
                     if name not in bound and name not in _BUILTINS)


def _return(step: StepPlan, unbound: str = UNBOUND) -> list[str]:
    if not step.returns:
        return ["    return {}"]
    # A name the cells bind only when a condition holds is returned as UNBOUND otherwise
    items = [f'"{name}": locals().get("{name}", {unbound})' if name in step.maybe_unbound
             else f'"{name}": {name}' for name in step.returns]
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
