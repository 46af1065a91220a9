"""Why a step cannot have a name it reads: the diagnostic saying where the name comes from (a
later cell, a skipped cell, `import *`, `%run`, exec, IPython's history) and what to do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from nb2pipe.analysis import Analysis
from nb2pipe.analysis.parse import PYTHON2_BUILTINS
from nb2pipe.analysis.star_names import star_names
from nb2pipe.diagnostics import close_match, diagnostic
from nb2pipe.model import Bind, Cell, CellSymbols, Diagnostic, Notebook, Split, StarImport

if TYPE_CHECKING:
    from nb2pipe.graph.state import StepState, _Binding

# IPython's input and output history: a pipeline step has none.
OUTPUT_HISTORY = re.compile(r"^(_{1,3}|_\d+|_i+|_i\d+|_oh|_ih|_dh|In|Out)$")


class Explanations:
    """The resolver's reports; it sets these attributes."""

    notebook: Notebook
    analysis: Analysis
    path: str
    cells: dict[int, Cell]
    bindings: dict[str, _Binding]
    deleted: dict[str, tuple[str, int, int]]
    star_imports: list[tuple[StarImport, str | None]]
    binders: dict[str, tuple[str, int]]
    parameter_names: set[str]
    diagnostics: list[Diagnostic]

    def _undefined(self, state: StepState, name: str, cell_index: int, line: int,
                   late: bool = False) -> None:
        """`late`: read by a function body when it runs, which may be never."""
        cell = self.cells[cell_index]
        unparsed = self.analysis.unparsed_names.get(name)
        if unparsed is not None and unparsed < cell_index:
            return  # bound by a cell that does not parse: that cell's error is the one to fix
        if self.analysis.python2 and name in PYTHON2_BUILTINS:
            return  # part of the one "Python 2 notebook" error
        if OUTPUT_HISTORY.match(name):
            self._output_history(state, name, cell, line)
            return
        for star, _ in self.star_imports:
            if star.cell > cell_index:
                continue
            if star.module.startswith("%%"):
                if not re.search(rf"\b{re.escape(name)}\b", self.cells[star.cell].source):
                    continue  # not one of the names the compiled cell can define
                self._report("NB203", f"name '{name}' may come from the `{star.module}` cell "
                             f"(cell {star.cell}), which the pipeline leaves out", cell, line,
                             f"build the {star.module[2:].capitalize()} code as a module and "
                             f"import {name} from it")
            elif star.module.startswith("%run"):
                script = star.module.split()[-1] if len(star.module.split()) > 1 else "?"
                module = Path(script).stem if script.endswith(".py") else None
                self._report("NB203", f"name '{name}' may come from `{star.module}` (cell "
                             f"{star.cell}), whose names the pipeline does not have",
                             cell, line, f"import it from the script: from {module} import "
                             f"{name}" if module and module.isidentifier() else
                             "copy the script's code into a cell")
            elif star_names(star.module) is not None:
                continue  # its names are known, and this is not one of them
            else:
                self._report("NB203", f"name '{name}' may come from `from {star.module} import "
                             f"*` (cell {star.cell}), which the analysis cannot see into",
                             cell, line, f"import it by name: from {star.module} import {name}")
            return
        dynamic = self._dynamic_binding(cell_index)
        later = self.binders.get(name)
        if later is not None and later[1] > cell_index:
            where, at = later
            hint = (f"'{name}' is first defined in {where} (cell {at}), after this cell: move the "
                    "definition up, or this code down")
        elif name in self.analysis.skipped_names:
            at = self.analysis.skipped_names[name]
            hint = (f"'{name}' is defined in cell {at}, which is tagged skip: untag it or define "
                    "it in a step")
        elif dynamic is not None:
            # The notebook may well have the name: "never defined" would be false.
            self._report("NB203", f"name '{name}' may be bound by exec(), globals(), locals() "
                         f"or vars() in cell {dynamic}, which the analysis cannot follow", cell,
                         line, f"assign '{name}' by name (`{name} = ...`) where it is made")
            return
        elif late:
            # Bound nowhere in the notebook: Python looks the name up only when the function
            # runs, so a call that reaches it fails in the notebook as in the pipeline, and a
            # notebook that runs made none (a base class's method that subclasses override).
            self._report("NB309", f"name '{name}', read inside a function or class this line "
                         "uses, is defined nowhere in the notebook: a call that reaches it raises "
                         "NameError, in the notebook as in the pipeline", cell, line,
                         "define it, or import it, before the function is called")
            return
        else:
            known = [*self.bindings, *state.local, *self.parameter_names]
            guess = close_match(name, known)
            hint = (f"did you mean '{guess}'?" if guess else
                    "define it in an earlier step, or add it to the parameters cell")
        self._report("NB201", f"name '{name}' is used in step '{state.step.name}' but never "
                     "defined before it", cell, line, hint)

    def _dynamic_binding(self, before: int) -> int | None:
        """The last cell up to `before` that may bind names dynamically (exec, globals())."""
        found = [i for i, symbols in self.analysis.cells.items() if i <= before
                 and any(f.kind == "exec" for f in symbols.facts)]
        return max(found) if found else None

    def _output_history(self, state: StepState, name: str, cell: Cell, line: int) -> None:
        shown = last_shown(self.notebook, self.analysis, cell.index) if name == "_" else None
        if shown is not None:
            where, expression = shown
            hint = (f"'{name}' is what cell {where} showed last ({expression[:60]}): assign it "
                    f"there, e.g. `result = {expression[:60]}`, and use `result` here")
        else:
            hint = "assign the value you need to a name where it is computed, and use that name"
        what = {"In": "IPython's input history", "Out": "IPython's output history"}.get(
            name, "IPython's input history" if name.startswith("_i") else
            "IPython's output history")
        self._report("NB204", f"'{name}' is {what}, which only exists in an interactive "
                     f"session; step '{state.step.name}' would fail with NameError", cell, line,
                     hint)

    def _check_deleted(self, state: StepState, name: str, cell_index: int, line: int) -> None:
        deleted = self.deleted.get(name)
        if deleted is None:
            return
        step, del_cell, del_line = deleted
        producer = self.bindings[name].step
        self._report("NB301", f"step '{state.step.name}' uses '{name}', which step '{step}' "
                     f"deletes (cell {del_cell}, line {del_line}); the pipeline passes the value "
                     f"from '{producer}', but the notebook run top to bottom would fail",
                     self.cells[cell_index], line, "remove the del, or move it after the last use")

    def _report(self, code: str, message: str, cell: Cell, line: int | None,
                hint: str | None) -> None:
        self.diagnostics.append(diagnostic(code, message, path=self.path, cell=cell, line=line,
                                           hint=hint))


def last_shown(notebook: Notebook, analysis: Analysis, before: int) -> tuple[int, str] | None:
    """The code cell before `before` that `_` reads the output of, with the expression it
    ends with; None when that cell ends in a statement (or does not parse)."""
    for cell in reversed(notebook.cells[: before - 1]):
        if cell.is_code and cell.code.strip():
            expression = analysis.last_expressions.get(cell.index)
            return (cell.index, expression) if expression is not None else None
    return None


def first_binders(split: Split, analysis: Analysis) -> dict[str, tuple[str, int]]:
    """Where each name is first bound, for the hint of an undefined-name error."""
    found: dict[str, tuple[str, int]] = {}
    for step in split.steps:
        for cell in step.cells:
            for event in analysis.cells.get(cell.index, CellSymbols(0, ())).events:
                if isinstance(event, Bind) and event.name not in found:
                    found[event.name] = (f"step '{step.name}'", cell.index)
    return found
