"""Stage 3, analyze: Split -> Analysis (per-cell symbols, parameters, per-cell diagnostics).

The only stage that touches `ast` and ast-grep nodes. It looks at one cell at a time; joining
cells into a graph is the next stage's work.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from nb2pipe.analysis.parameters import read_parameters
from nb2pipe.analysis.rules import RuleResults, run_rules
from nb2pipe.analysis.visitor import Visitor, root_name
from nb2pipe.diagnostics import diagnostic
from nb2pipe.model import (
    Bind,
    Cell,
    CellSymbols,
    CodeEntity,
    Diagnostic,
    Fact,
    Notebook,
    Parameter,
    Span,
    Split,
    Statement,
)

_FACT_WARNINGS = {"exec": "NB303", "seed": "NB307"}


@dataclass(frozen=True)
class Analysis:
    cells: dict[int, CellSymbols]  # by cell index
    parameters: tuple[Parameter, ...]
    diagnostics: tuple[Diagnostic, ...]
    skipped_names: dict[str, int]  # names bound in `skip` cells -> cell index, for hints


def analyze(notebook: Notebook, split: Split) -> Analysis:
    path = notebook.display_path
    diagnostics: list[Diagnostic] = []
    cells: list[Cell] = [
        *split.parameter_cells,
        *split.library_cells,
        *(cell for step in split.steps for cell in step.cells),
    ]
    cells.sort(key=lambda c: c.index)
    trees: dict[int, ast.Module] = {}
    for cell in cells:
        try:
            trees[cell.index] = ast.parse(cell.code)
        except SyntaxError as exc:
            line = exc.lineno or 1
            source_lines = cell.source.splitlines() or [""]
            text = source_lines[min(line, len(source_lines)) - 1]
            diagnostics.append(diagnostic(
                "NB108", f"syntax error: {exc.msg}", path=path, cell=cell, line=line,
                hint=f"fix the cell so it runs: {text.strip()[:80]!r}" if text.strip() else None,
            ))
    rules = run_rules([(c.index, c.code) for c in cells if c.index in trees])
    parameters: list[Parameter] = []
    for cell in split.parameter_cells:
        if cell.index in trees:
            found, problems = read_parameters(cell, trees[cell.index], path)
            parameters.extend(found)
            diagnostics.extend(problems)
    symbols = {}
    for cell in cells:
        tree = trees.get(cell.index)
        if tree is None:
            symbols[cell.index] = CellSymbols(cell.index, ())
            continue
        symbols[cell.index] = _cell_symbols(cell, tree, rules)
        diagnostics.extend(_cell_diagnostics(cell, symbols[cell.index], path))
    return Analysis(symbols, tuple(_last_wins(parameters)), tuple(diagnostics),
                    _skipped_names(split.skipped_cells))


def _skipped_names(cells: tuple[Cell, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    for cell in cells:
        try:
            tree = ast.parse(cell.code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                found.setdefault(node.id, cell.index)
    return found


def _cell_symbols(cell: Cell, tree: ast.Module, rules: RuleResults) -> CellSymbols:
    lines = cell.code.splitlines()
    visitor = Visitor(cell.index, lines, rules.calls.get(cell.index, {}))
    scope = visitor.module(tree)
    implicit = tuple(
        Bind(module, cell.index, 0, code=CodeEntity("import", (module,), Span(cell.index, 0, 0),
                                                   module=module))
        for module in cell.implicit_imports
    )
    facts = tuple(rules.facts.get(cell.index, ()))
    warnings = tuple(("NB302", line, "global statement: the function rebinds notebook globals")
                     for line in visitor.global_lines)
    return CellSymbols(
        cell=cell.index,
        events=(*implicit, *scope.events),
        facts=facts,
        statements=tuple(_statement(cell.index, node) for node in tree.body),
        display_only=_display_only(tree, facts, rules.calls.get(cell.index, {})),
        warnings=warnings,
        shown=_shown(tree),
    )


def _shown(tree: ast.Module) -> tuple[str, ...]:
    """Names a cell shows: bare `accuracy` lines (Kale metrics style) or `print(accuracy)`."""
    found: dict[str, None] = {}
    for node in tree.body:
        if not isinstance(node, ast.Expr):
            continue
        value = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in (
            "print", "display"
        ):
            found.update(dict.fromkeys(a.id for a in value.args if isinstance(a, ast.Name)))
        elif isinstance(value, ast.Name):
            found[value.id] = None
        elif isinstance(value, ast.Tuple):
            found.update(dict.fromkeys(e.id for e in value.elts if isinstance(e, ast.Name)))
    return tuple(found)


def _cell_diagnostics(cell: Cell, symbols: CellSymbols, path: str) -> list[Diagnostic]:
    found = [diagnostic(code, message, path=path, cell=cell, line=line,
                        hint="pass values in and out of functions explicitly")
             for code, line, message in symbols.warnings]
    for fact in symbols.facts:
        code = _FACT_WARNINGS.get(fact.kind)
        if code == "NB303":
            found.append(diagnostic(
                code, fact.message, path=path, cell=cell, line=fact.line,
                hint="the graph may miss dependencies: write the names out, or tag the cell skip",
            ))
        elif code == "NB307":
            found.append(diagnostic(
                code, "global random seed: random state does not flow from step to step, so "
                "draws in later steps differ from the notebook's", path=path, cell=cell,
                line=fact.line,
                hint="pass random_state=... or a numpy Generator where randomness is used",
            ))
    return found


def _statement(cell: int, node: ast.stmt) -> Statement:
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    span = Span(cell, start, node.end_lineno or node.lineno)
    if isinstance(node, ast.Import | ast.ImportFrom):
        return Statement(span, "import")
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return Statement(span, "function")
    if isinstance(node, ast.ClassDef):
        return Statement(span, "class")
    if isinstance(node, ast.Pass) or (
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    ):
        return Statement(span, "nothing")
    if (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
    ):
        return Statement(span, "call", root_name(node.value.func),
                         ast.unparse(node.value.func))
    return Statement(span, "other")


def _display_only(tree: ast.Module, facts: tuple[Fact, ...], calls: dict) -> bool:  # type: ignore[type-arg]
    """Every statement only shows a value: `df.head()`, `print(x)`, `plt.show()`, `df`."""
    if not tree.body:
        return False
    display_lines = {f.line for f in facts if f.kind == "display"}
    effect_lines = {f.line for f in facts if f.kind in ("write", "network", "exec")}
    for node in tree.body:
        if not isinstance(node, ast.Expr) or isinstance(node.value, ast.Constant):
            return False
        value = node.value
        if isinstance(value, ast.Call):
            lines = set(range(value.lineno, (value.end_lineno or value.lineno) + 1))
            if lines & effect_lines:
                return False
            if value.lineno in display_lines:
                continue
            if isinstance(value.func, ast.Attribute) and not _has_action(value, calls):
                continue
            return False
        if any(isinstance(n, ast.Call | ast.NamedExpr) for n in ast.walk(value)):
            return False
    return True


def _has_action(node: ast.Call, calls: dict) -> bool:  # type: ignore[type-arg]
    return any(key[0] == node.lineno for key in calls)


def _last_wins(parameters: list[Parameter]) -> list[Parameter]:
    by_name = {p.name: p for p in parameters}
    return list(by_name.values())
