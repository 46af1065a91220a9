"""What one step's function holds: the code it needs from other cells (its preamble) and its
own cells' lines (its body), such that it runs as the cells do in the notebook.

In a function, a name bound anywhere is local everywhere, and `global` reaches the module, not
the function; the notebook's cells share one namespace. So, before its body, a step's function
binds what the body reads from module level and then binds again; `global` becomes `nonlocal`;
a loop that reads a name bound on an earlier pass finds it bound; and a definition the step does
not run is left out (it is emitted where it runs, with the globals it reads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nb2pipe.generate.last_value import imported_modules, shown_last_value
from nb2pipe.graph.resolve import NOTEBOOK_BUILTINS, NOTEBOOK_PROVIDED
from nb2pipe.model import Bind, Cell, CodeEntity, Delete, Read, Span, StepGraph, StepNode


@dataclass(frozen=True)
class Line:
    """A line of generated code and where it came from (cell index, line in cell)."""

    text: str
    cell: int | None = None
    line: int | None = None


@dataclass(frozen=True)
class StepLines:
    preamble: tuple[Line, ...]  # code from other cells, and bindings the body needs first
    body: tuple[Line, ...]  # the step's own cells, with `# cell N` comments
    rebound: tuple[str, ...]  # module-level names the function binds again before its body


class StepCode:
    def __init__(self, graph: StepGraph,
                 hoisted: dict[tuple[Span, tuple[str, ...]], CodeEntity],
                 random_modules: dict[str, str] | None = None) -> None:
        self.graph = graph
        self.hoisted = hoisted  # code at module level
        # variable carrying a global generator's state -> that generator's module in steps.py
        self.random_modules = random_modules or {}
        self.cells = {c.index: c for c in graph.notebook.cells}
        self.modules = imported_modules(graph)  # names that can only be these modules

    def lines(self, node: StepNode) -> StepLines:
        own = set(node.cells)
        removed, needed = self._needed(node)
        preamble: list[Line] = []
        seen: set[str] = set()
        provided: set[str] = set()  # names the preamble binds
        for entity in node.code:
            key_of = (entity.span, entity.names)
            single = entity.kind == "import" and entity.text is not None
            if key_of in self.hoisted or key_of not in needed or entity.span.start == 0:
                continue  # module level (the magic rewrite's imports too), or not run here
            if entity.span.cell in own and not single:
                continue  # in the body
            key = entity.text if single and entity.text else span_key(entity.span)
            if key in seen:
                continue
            seen.add(key)
            preamble.append(Line(f"# from cell {entity.span.cell}"))
            if single and entity.text:  # one name of an import (or of `%pylab`)
                preamble.append(Line(entity.text))
            else:
                preamble.extend(span_lines(self.cells, entity.span))
            provided.update(entity.names)
        body = self._body(node, removed)
        own_bound = self._bound(node, removed)
        bound = own_bound | provided
        rebound = self._rebound(node, bound - provided, removed)
        preamble[:0] = [line for _, lines in rebound for line in lines]
        preamble, body = self._nonlocal(preamble), self._nonlocal(body)
        arguments = {v for v, _ in node.inputs} | set(node.parameters)
        available = bound | arguments | {n for n, _ in rebound}
        # (an argument is bound from the start, even when the body binds it again)
        preamble[:0] = [*self._declarations(preamble + body, available),
                        *self._carried(node, removed, (available - own_bound) | arguments,
                                       own_bound)]
        preamble.extend(self._late_globals(node, available | self._module_level()))
        restore, capture = self._random_state(node)
        preamble[:0] = restore
        body.extend(capture)
        return StepLines(tuple(preamble), tuple(body),
                         tuple(name for name, _ in rebound if name))

    def _late_globals(self, node: StepNode, available: set[str]) -> list[Line]:
        """Functions taken as values whose bodies read globals bound after they were made:
        each is given them, as the step has them, before the step's code runs."""
        lines: list[Line] = []
        for function, names in node.late_globals:
            given = [n for n in names if n in available]
            if function not in available or not given:
                continue
            if not lines:
                lines.append(Line("# globals these functions read when they run, as the "
                                  "notebook has them here"))
            arguments = ", ".join(f"{n}={n}" for n in given)
            lines.append(Line(f"{function} = with_globals({function}, {arguments})"))
        return lines

    def _module_level(self) -> set[str]:
        return {n for entity in self.hoisted.values() for n in entity.names}

    def _random_state(self, node: StepNode) -> tuple[list[Line], list[Line]]:
        """A global generator's state as the notebook has it when the step starts (set before
        its code runs), and as the step leaves it (taken after), for the next step."""
        restore: list[Line] = []
        capture: list[Line] = []
        for name, module in sorted(self.random_modules.items()):
            numpy = module.startswith("numpy")
            if name in {v for v, _ in node.inputs}:
                if not restore:
                    restore.append(Line("# the global random state, as the notebook has it here"))
                setter = "set_state" if numpy else "setstate"
                restore.append(Line(f"{module}.{setter}({name})"))
            if name in node.outputs:
                if not capture:
                    capture.append(Line("# the global random state, as the step leaves it"))
                capture.append(Line(f"{name} = {module}.{'get_state' if numpy else 'getstate'}()"))
        return restore, capture

    def _needed(self, node: StepNode
                ) -> tuple[set[tuple[int, int]], set[tuple[Span, tuple[str, ...]]]]:
        """The lines of the step's own cells that are not its body, and the code the step runs.

        Not the body: code that lives at module level, imports (emitted where used), and
        definitions the step does not run (emitted where they are used; left here they would
        name globals the step does not have). The code the step runs: what its kept lines
        read, then what that code reads in turn (function globals, decorators, base classes).
        """
        fixed: set[tuple[int, int]] = set()
        statements = {s.span for index in node.cells for s in self.graph.symbols[index].statements}
        for entity in self.hoisted.values():
            # An import inside a statement that also computes stays in it (the statement is
            # the step's code); it is also at module level for the steps that use the name.
            if entity.span.cell in node.cells and entity.span in statements:
                fixed.update(lines_of(entity.span))
        definitions: dict[tuple[Span, tuple[str, ...]], Span] = {}
        values: list[CodeEntity] = []  # definitions that are values made here: they stay
        for index in node.cells:
            symbols = self.graph.symbols[index]
            spans = {s.span for s in symbols.statements}
            for statement in symbols.statements:
                if statement.shape == "import":
                    fixed.update(lines_of(statement.span))
            for event in symbols.events:
                defined = event.code if isinstance(event, Bind) else None
                if (defined is not None and defined.kind in ("function", "class")
                        and defined.span in spans):
                    if set(defined.names) & node_values(self.graph, node):
                        values.append(defined)
                    else:
                        definitions[(defined.span, defined.names)] = defined.span
        by_name: dict[str, list[CodeEntity]] = {}
        for entity in node.code:
            for name in entity.names:
                by_name.setdefault(name, []).append(entity)
        late = [n for v in values if v.function is not None
                for n in (*v.function.free_reads, *v.function.inherits)]
        late.extend(n for _, names in node.late_globals for n in names)  # given to functions
        needed: set[tuple[Span, tuple[str, ...]]] = set()
        while True:
            removed = set(fixed)
            for key, span in definitions.items():
                if key not in needed:
                    removed.update(lines_of(span))
            queue = [*late, *(event.name for index in node.cells
                              for event in self.graph.symbols[index].events
                              if isinstance(event, Read) and event.line > 0
                              and (index, event.line) not in removed)]
            found: set[tuple[Span, tuple[str, ...]]] = set()
            while queue:
                for entity in by_name.get(queue.pop(), ()):
                    key = (entity.span, entity.names)
                    if key in found:
                        continue
                    found.add(key)
                    if entity.function is not None:
                        queue.extend((*entity.function.free_reads, *entity.function.inherits))
                    if entity.span.cell not in node.cells or entity.kind in ("library", "setup"):
                        queue.extend(entity.reads)
            if found <= needed:
                return removed, needed
            needed |= found

    def _body(self, node: StepNode, removed: set[tuple[int, int]]) -> list[Line]:
        lines: list[Line] = []
        for index in node.cells:
            cell = self.cells[index]
            code = shown_last_value(cell.code, removed, index, self.modules)
            kept = [Line(text, index, n) for n, text in enumerate(code.split("\n"), start=1)
                    if (index, n) not in removed]
            while kept and not kept[-1].text.strip():
                kept.pop()
            while kept and not kept[0].text.strip():
                kept.pop(0)
            if kept:
                lines.append(Line(f"# cell {index}"))
                lines.extend(kept)
        return lines

    def _bound(self, node: StepNode, removed: set[tuple[int, int]]) -> set[str]:
        """Names the step's body binds (so, in its function, local variables)."""
        return {event.name for index in node.cells for event in self.graph.symbols[index].events
                if isinstance(event, Bind | Delete) and event.line > 0
                and (index, event.line) not in removed}

    def _rebound(self, node: StepNode, bound: set[str], removed: set[tuple[int, int]]
                 ) -> list[tuple[str, list[Line]]]:
        """`from collections import Counter` ... `Counter = Counter(text)`: in a function, a
        name bound anywhere in the body is local everywhere in it, so the body would read it
        before it is bound. The function first binds it to what module level holds."""
        found: list[tuple[str, list[Line]]] = []
        for name in node.module_reads:
            if name not in bound:
                continue
            entities = [e for e in node.code if name in e.names]
            if entities and all(e.span.cell in node.cells
                                and e.kind in ("function", "class", "import")
                                and (e.span.cell, e.span.start) not in removed
                                for e in entities):
                # Only the body's own `def`/`class` (or an import it keeps) binds it, where it
                # stands: a copy above would run decorators and defaults before the names they
                # read exist.
                continue
            entity = next((e for e in node.code if name in e.names), None)
            if entity is not None and entity.kind == "import" and entity.text:
                found.append((name, [Line(entity.text)]))
            elif entity is not None and entity.span.start > 0:
                found.append((name, [Line(f"# from cell {entity.span.cell}"),
                                     *span_lines(self.cells, entity.span)]))
            elif name in NOTEBOOK_PROVIDED:
                found.append((name, [Line(NOTEBOOK_PROVIDED[name])]))
            elif name in NOTEBOOK_BUILTINS:
                found.append((name, [Line(f"from builtins import {name}")]))
        if found:
            found.insert(0, ("", [Line("# names the cells below read before binding them again")]))
        return found

    def _nonlocal(self, lines: list[Line]) -> list[Line]:
        """`global x` in a function defined inside a step's function: the notebook's global
        `x` is that function's variable, so it becomes `nonlocal x` (same line). At a cell's
        top level `global x` does nothing, so there it becomes `pass`."""
        out: list[Line] = []
        for line in lines:
            edits = [(column, column + 6, "nonlocal") for at, column, _ in
                     self._globals(line.cell) if at == line.line]
            symbols = self.graph.symbols.get(line.cell) if line.cell is not None else None
            edits += [(start, end, "pass") for at, start, end in
                      (symbols.module_globals if symbols else ()) if at == line.line]
            text = line.text.encode()
            for start, end, replacement in sorted(edits, reverse=True):
                if text[start:start + 6] == b"global":
                    text = text[:start] + replacement.encode() + text[end:]
            out.append(Line(text.decode(), line.cell, line.line) if edits else line)
        return out

    def _globals(self, cell: int | None) -> tuple[tuple[int, int, tuple[str, ...]], ...]:
        if cell is None or cell not in self.graph.symbols:
            return ()
        return self.graph.symbols[cell].global_statements

    def _declarations(self, lines: list[Line], bound: set[str]) -> list[Line]:
        """`nonlocal x` needs `x` bound in the step's function: when nothing else binds it
        there (the notebook creates it through the `global` statement), it starts as None."""
        emitted = {(line.cell, line.line) for line in lines if line.cell is not None}
        names = {name for cell in {c for c, _ in emitted}
                 for at, _, found in self._globals(cell) if (cell, at) in emitted
                 for name in found}
        return [Line(f"{name} = None  # set through `global {name}` by a function below")
                for name in sorted(names - bound)]

    def _carried(self, node: StepNode, removed: set[tuple[int, int]], available: set[str],
                 own_bound: set[str]) -> list[Line]:
        """`for i in ...: if i: acc += i else: acc = i`: a name a loop reads before binding it
        (on an earlier pass). In a function that is a read before any assignment, which linters
        reject: it starts as None (in the notebook the binding runs first)."""
        bound: set[str] = set(available)
        carried: list[str] = []
        for index in node.cells:
            for event in self.graph.symbols[index].events:
                if event.line == 0 or (index, event.line) in removed:
                    continue
                if isinstance(event, Bind | Delete):
                    bound.add(event.name)
                elif (isinstance(event, Read) and event.soft and not event.optional
                      and event.name not in bound and event.name not in carried
                      and event.name in own_bound):
                    carried.append(event.name)
        return [Line(f"{name} = None  # bound on an earlier pass of the loop that reads it")
                for name in carried]


def node_values(graph: StepGraph, node: StepNode) -> set[str]:
    """Names of definitions that are values where the step makes them (a class changed in
    place, a function whose defaults read notebook data): data, not code to emit elsewhere."""
    return set(node.defines) & graph.data_names


def span_lines(cells: dict[int, Cell], span: Span) -> list[Line]:
    code = cells[span.cell].code.split("\n")
    return [Line(code[n - 1], span.cell, n) for n in range(span.start, span.end + 1)]


def lines_of(span: Span) -> set[tuple[int, int]]:
    return {(span.cell, n) for n in range(span.start, span.end + 1)}


_PLOTTING_MODULES = ("matplotlib", "seaborn", "pylab", "plotnine", "pandas.plotting")
_PLOT_CALL = re.compile(r"\.(plot|hist|boxplot|scatter_matrix|imshow)\b")


def uses_pyplot(graph: StepGraph, node: StepNode) -> bool:
    """Whether the step may draw on pyplot's global figures: it uses a plotting library, or
    calls a pandas plotting method (which imports pyplot)."""
    for entity in node.code:
        module = entity.module or ""
        if entity.kind == "import" and module.startswith(_PLOTTING_MODULES):
            return True
    cells = {c.index: c.code for c in graph.notebook.cells}
    return any(_PLOT_CALL.search(cells[i]) for i in node.cells)


# Libraries that set the maths library's thread count for the whole process while they run
# (scikit-learn's KMeans limits OpenBLAS to one thread): a step running beside one would round
# differently from the notebook, where cells run one at a time.
_BLAS_MODULES = ("sklearn", "scipy", "statsmodels", "xgboost", "lightgbm", "umap", "hdbscan")


def uses_blas_threads(node: StepNode) -> bool:
    """Whether the step calls a library that changes the process's BLAS thread setting."""
    return any(e.kind == "import" and (e.module or "").partition(".")[0] in _BLAS_MODULES
               for e in node.code)


def span_key(span: Span) -> str:
    return f"cell {span.cell} lines {span.start}-{span.end}"
