"""Stage 3, analyze: Split -> Analysis (per-cell symbols, parameters, per-cell diagnostics).

The only stage that touches `ast` and ast-grep nodes. It looks at one cell at a time; joining
cells into a graph is the next stage's work.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from nb2pipe.analysis.chains import root_name
from nb2pipe.analysis.parameters import read_parameters
from nb2pipe.analysis.parse import (
    Unparsed,
    deep_recursion,
    names_bound_in_text,
    parse_code,
    python2_notebook,
    segment,
    syntax_error,
)
from nb2pipe.analysis.rules import RuleResults, SpanKey, run_rules
from nb2pipe.analysis.visitor import Visitor
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
    StarImport,
    Statement,
)

_FACT_WARNINGS = {"exec": "NB303"}


@dataclass(frozen=True)
class Analysis:
    cells: dict[int, CellSymbols]  # by cell index
    parameters: tuple[Parameter, ...]
    diagnostics: tuple[Diagnostic, ...]
    skipped_names: dict[str, int]  # names bound in `skip` cells -> cell index, for hints
    # Names a cell that does not parse seems to bind -> its index: a later use of one is not
    # reported as undefined too (the parse error is the problem to fix).
    unparsed_names: dict[str, int] = field(default_factory=dict)
    python2: bool = False  # the notebook is Python 2 code (one NB112 says so)
    # The expression each code cell ends with (what IPython shows and keeps in `_`).
    last_expressions: dict[int, str] = field(default_factory=dict)


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
    unparsed: list[Unparsed] = []
    for cell in cells:
        parsed = parse_code(cell.code)
        if isinstance(parsed, ast.Module):
            trees[cell.index] = parsed
        else:
            unparsed.append(Unparsed(cell, *parsed))
    rules = run_rules([(c.index, _for_rules(c.code, trees[c.index]))
                       for c in cells if c.index in trees])
    parameters: list[Parameter] = []
    symbols: dict[int, CellSymbols] = {}
    selectors: set[str] = set()
    generators: set[str] = set()
    drawers: set[str] = set()
    iterators: set[str] = set()
    literals: set[str] = set()
    for cell in split.parameter_cells:
        if cell.index in trees:
            found, problems = read_parameters(cell, trees[cell.index], path)
            parameters.extend(found)
            diagnostics.extend(problems)
    for cell in cells:
        tree = trees.get(cell.index)
        if tree is None:
            symbols[cell.index] = CellSymbols(cell.index, ())
            continue
        try:
            symbols[cell.index] = _cell_symbols(cell, tree, rules, selectors, generators,
                                                   drawers, iterators, literals)
        except RecursionError:
            deep = _deep_cell(cell, tree, rules, selectors, generators, drawers, iterators,
                              literals)
            if isinstance(deep, Unparsed):
                symbols[cell.index] = CellSymbols(cell.index, ())
                unparsed.append(deep)
                continue
            symbols[cell.index] = deep
        diagnostics.extend(_cell_diagnostics(cell, symbols[cell.index], path))
    python2 = python2_notebook(notebook, unparsed, symbols)
    if python2 is not None:
        diagnostics.append(python2)
    else:
        diagnostics.extend(syntax_error(u, path) for u in unparsed)
    unparsed_names: dict[str, int] = {}
    for u in unparsed:
        for name in names_bound_in_text(u.cell.code):
            unparsed_names.setdefault(name, u.cell.index)
    skipped, skipped_trees = _skipped_names(split.skipped_cells)
    last_expressions = {
        index: segment(code, tree.body[-1].value)
        for index, code, tree in (
            *((c.index, c.code, trees[c.index]) for c in cells if c.index in trees),
            *skipped_trees,
        )
        if tree.body and isinstance(tree.body[-1], ast.Expr)
    }
    return Analysis(symbols, tuple(_last_wins(parameters)), tuple(diagnostics), skipped,
                    unparsed_names, python2 is not None, last_expressions)


def _for_rules(code: str, tree: ast.Module) -> str:
    """The cell's code as ast-grep's parser reads it right: an expression statement that
    starts with a starred item (`*names, last`, a cell's shown value) has its `*` blanked
    (same lines and columns), else tree-sitter reads it together with the next statement and
    the rules miss the calls there (`df.sort_values(..., inplace=True)`)."""
    starts = [(node.value.elts[0].lineno, node.value.elts[0].col_offset)
              for node in ast.walk(tree)
              if isinstance(node, ast.Expr) and isinstance(node.value, ast.Tuple)
              and node.value.elts and isinstance(node.value.elts[0], ast.Starred)]
    if not starts:
        return code
    lines = code.split("\n")
    for line, column in starts:
        text = lines[line - 1].encode()
        if text[column:column + 1] == b"*":
            lines[line - 1] = (text[:column] + b" " + text[column + 1:]).decode()
    return "\n".join(lines)


def _deep_cell(cell: Cell, tree: ast.Module, rules: RuleResults, selectors: set[str],
               generators: set[str], drawers: set[str],
               iterators: set[str], literals: set[str]) -> CellSymbols | Unparsed:
    """A cell too deep for the default recursion limit (a sum of a thousand terms is a
    thousand levels deep): analysed with more room when Python itself compiles it."""
    try:
        compile(cell.code, f"<cell {cell.index}>", "exec", dont_inherit=True)
    except (RecursionError, MemoryError, SyntaxError, ValueError):
        return Unparsed(cell, 1, "Python cannot compile the cell: an expression is nested "
                                  "too deeply (split it into several statements)")
    with deep_recursion():
        try:
            return _cell_symbols(cell, tree, rules, selectors, generators, drawers,
                                 iterators, literals)
        except RecursionError:
            return Unparsed(cell, 1, "the cell is nested too deeply to analyse")


def _skipped_names(cells: tuple[Cell, ...]
                   ) -> tuple[dict[str, int], list[tuple[int, str, ast.Module]]]:
    found: dict[str, int] = {}
    trees: list[tuple[int, str, ast.Module]] = []
    for cell in cells:
        tree = parse_code(cell.code)
        if not isinstance(tree, ast.Module):
            continue
        trees.append((cell.index, cell.code, tree))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                found.setdefault(node.id, cell.index)
    return found, trees


def _cell_symbols(cell: Cell, tree: ast.Module, rules: RuleResults, selectors: set[str],
                  generators: set[str], drawers: set[str],
                  iterators: set[str], literals: set[str]) -> CellSymbols:
    lines = cell.code.split("\n")
    visitor = Visitor(cell.index, lines, rules.calls.get(cell.index, {}), selectors, generators,
                      drawers, iterators, literals)
    scope = visitor.module(tree)
    implicit = tuple(
        Bind(bound, cell.index, 0, code=CodeEntity("import", (bound,), Span(cell.index, 0, 0),
                                                  module=module))
        for module in cell.implicit_imports
        for bound in [module.partition(".")[0]]
    )
    events = list(scope.events)
    for line, module in reversed(cell.star_imports):  # `%pylab`: where the magic was
        at = next((i for i, e in enumerate(events) if e.line > line), len(events))
        events.insert(at, StarImport(module, cell.index, line, Span(cell.index, line, line)))
    facts = tuple(rules.facts.get(cell.index, ()))
    lines_with_global = sorted({line for line, _ in visitor.global_statements})
    warnings = tuple(("NB302", line, "global statement: the function rebinds notebook globals")
                     for line in lines_with_global) + tuple(
        ("NB310", line, "the call evaluates a string built at run time (a formula or query) in "
         "the namespace that calls it: the names it reads cannot be known, so the step may "
         "lack them") for line in dict.fromkeys(visitor.unknown_strings))
    return CellSymbols(
        cell=cell.index,
        events=(*implicit, *events),
        facts=facts,
        statements=tuple(_statement(cell.index, node) for node in tree.body),
        display_only=_display_only(tree, facts, rules.calls.get(cell.index, {})),
        warnings=warnings,
        shown=_shown(tree),
        dead_reads=tuple(visitor.dead_reads),
        dead_global_reads=tuple(visitor.dead_global_reads),
        late_reads=tuple(scope.late_reads),
        global_statements=tuple((line, column, names) for (line, column), names
                                in sorted(visitor.global_statements.items())),
        module_globals=tuple(visitor.module_globals),
        formulas=tuple(visitor.formulas),
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


_HINTS = {
    "NB302": "pass values in and out of functions explicitly",
    "NB310": "write the string into the call, or assign it as a literal in the cell that "
             "calls (`formula = 'y ~ f(x)'`), so the names it reads are known",
}


def _cell_diagnostics(cell: Cell, symbols: CellSymbols, path: str) -> list[Diagnostic]:
    found = [diagnostic(code, message, path=path, cell=cell, line=line, hint=_HINTS[code])
             for code, line, message in symbols.warnings]
    for fact in symbols.facts:
        code = _FACT_WARNINGS.get(fact.kind)
        if code == "NB303":
            found.append(diagnostic(
                code, fact.message, path=path, cell=cell, line=fact.line,
                hint="the graph may miss dependencies: write the names out, or tag the cell skip",
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
    targets = (node.targets if isinstance(node, ast.Assign) else
               [node.target] if isinstance(node, ast.AugAssign) else [])
    roots = {root_name(t) if isinstance(t, ast.Attribute | ast.Subscript) else None
             for t in targets}
    if len(roots) == 1 and None not in roots:
        return Statement(span, "setting", roots.pop())  # `plt.rcParams["x"] = 1`
    return Statement(span, "other")


def _display_only(tree: ast.Module, facts: tuple[Fact, ...],
                  calls: dict[SpanKey, set[str]]) -> bool:
    """Every statement only shows a value: `df.head()`, `print(x)`, `plt.show()`, `df`."""
    if not tree.body:
        return False
    display_lines = {f.line for f in facts if f.kind == "display"}
    effect_lines = {f.line for f in facts if f.kind in ("write", "network", "exec")}
    for node in tree.body:
        if not isinstance(node, ast.Expr) or isinstance(node.value, ast.Constant):
            return False
        value = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and (
                value.func.id == "print"):
            return False  # printed text goes to the step's log, where people read it
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


def _has_action(node: ast.Call, calls: dict[SpanKey, set[str]]) -> bool:
    return any(key[0] == node.lineno for key in calls)


def _last_wins(parameters: list[Parameter]) -> list[Parameter]:
    by_name = {p.name: p for p in parameters}
    return list(by_name.values())
