"""StepGraph -> Plan: every decision the file generators share, made once.

Which code goes to module level (imports, `pd.set_option(...)`, functions and classes that read
no notebook data), which is emitted inside the steps that need it (functions that read notebook
globals, Kale `functions` cells), each step's signature, body lines with their cell and line, the
values it returns, and the inputs it must copy because it changes them in place while another
step reads the same value.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.machinery
import re
from dataclasses import dataclass, replace

from nb2pipe.generate.code import Namer, is_identifier
from nb2pipe.generate.step_code import (
    Line,
    StepCode,
    span_key,
    span_lines,
    uses_blas_threads,
    uses_pyplot,
)

__all__ = ["Line", "ModuleBlock", "Plan", "StepPlan", "content_hash", "make_plan"]
from nb2pipe.graph.resolve import NOTEBOOK_BUILTINS, NOTEBOOK_PROVIDED, qualified_import
from nb2pipe.model import (
    Bind,
    CodeEntity,
    Parameter,
    Read,
    Span,
    StepGraph,
    StepNode,
    StepOptions,
)
from nb2pipe.notebook.tags import suggest_identifier


@dataclass(frozen=True)
class StepPlan:
    name: str
    function: str  # in steps.py
    cells: tuple[int, ...]
    inputs: tuple[tuple[str, str], ...]  # (variable, producing step)
    parameters: tuple[str, ...]
    outputs: tuple[str, ...]  # what later steps take
    metrics: tuple[str, ...]
    arguments: tuple[str, ...]  # the function's: the inputs' variables and the parameters
    upstream: tuple[str, ...]  # the steps it takes values from
    returns: tuple[str, ...]  # outputs and metrics
    copied: tuple[str, ...]  # inputs changed in place that another step also reads
    after: tuple[str, ...]  # steps to wait for without data
    preamble: tuple[Line, ...]  # code from other cells this step needs, run first
    body: tuple[Line, ...]  # the step's cells, with `# cell N` comments
    options: StepOptions
    module_code: tuple[str, ...]  # keys of module-level code the step uses
    consumed_in_place: tuple[str, ...] = ()  # outputs a later step changes in place (no copy)
    pyplot: bool = False  # draws on pyplot's global figures: never at the same time as another
    blas: bool = False  # may change the BLAS thread setting: never beside another such step
    rebound: tuple[str, ...] = ()  # module-level names the function binds again first
    title: str | None = None  # the heading that started the step (its docstring says it)
    maybe_unbound: tuple[str, ...] = ()  # returned only when bound (see StepNode)
    unbound_inputs: tuple[str, ...] = ()  # arguments that may come as UNBOUND: unbound again


@dataclass(frozen=True)
class ModuleBlock:
    """Module-level code in steps.py: an import line, or a statement with its provenance."""

    key: str
    kind: str  # "import" | "setup" | "function" | "class"
    lines: tuple[Line, ...]
    module: str | None = None


@dataclass(frozen=True)
class Plan:
    graph: StepGraph
    notebook_name: str
    slug: str  # the flow's name
    steps: tuple[StepPlan, ...]  # notebook order
    order: tuple[str, ...]
    parameters: tuple[Parameter, ...]  # notebook order
    module: tuple[ModuleBlock, ...]  # steps.py module level, notebook order
    modules: tuple[str, ...]  # top-level modules the pipeline imports
    pip_requirements: tuple[str, ...]  # from %pip / !pip install
    # Names IPython gives a notebook (display, get_ipython) that the emitted code reads: steps.py
    # imports them from IPython, at module level.
    notebook_names: tuple[str, ...] = ()
    # Names read only in branches Python 3 never runs (`if sys.version_info < (3,):
    # unicode(s)`): the project's ruff settings count them as builtins.
    ruff_builtins: tuple[str, ...] = ()
    # Imports of the global generators whose state steps carry (`import random as ...`).
    random_imports: tuple[str, ...] = ()
    # Submodules the steps reach through a package's attribute (`xml.dom.minidom.parseString`
    # after `import xml`): in the notebook another cell, or a magic, imported them first.
    submodule_imports: tuple[str, ...] = ()

    @property
    def uses_display(self) -> bool:
        """Whether the steps need IPython (for `display` or `get_ipython`)."""
        return bool(self.notebook_names)

    def step(self, name: str) -> StepPlan:
        return next(s for s in self.steps if s.name == name)

    # Guarantees for the files generated from a plan:
    # - every name in a step's `after` and `upstream` is a step of `steps` (a step made only of
    #   definitions is code, not a task: `after:` it means after the tasks it comes after);
    # - a step's function binds, before its body runs, every name its body reads from module
    #   level and also binds itself (no UnboundLocalError), and every name a `nonlocal` in it
    #   refers to;
    # - the code of a step names nothing the step does not define, import or take as argument.


def make_plan(graph: StepGraph) -> Plan:
    return _Planner(graph).plan()


class _Planner:
    def __init__(self, graph: StepGraph) -> None:
        self.graph = graph
        self.cells = {c.index: c for c in graph.notebook.cells}
        self.task_cells = {c for s in graph.steps for c in s.cells}
        used = {(e.span, e.names) for s in graph.steps for e in s.code}
        self.used = [e for e in graph.code if (e.span, e.names) in used]
        self.hoisted = self._hoisted()
        self.random_modules = _random_modules(graph)
        self.plotting = {n.name for n in graph.steps if uses_pyplot(graph, n)}
        self.code = StepCode(graph, self.hoisted, {
            name: self.random_modules[generator][0] for name, generator in graph.random_states})

    # -- module level ------------------------------------------------------------------------

    def _hoisted(self) -> dict[tuple[Span, tuple[str, ...]], CodeEntity]:
        """Code that can live at module level: imports, their set-up calls, and functions or
        classes defined once that read nothing but module-level code (no notebook data)."""
        definitions: dict[str, int] = {}
        for entity in self.graph.code:
            # (an import of the same name counts: `def Fraction` after `from fractions import
            # Fraction` at module level would be the one every step sees)
            if entity.kind in ("function", "class", "import"):
                for name in entity.names:
                    definitions[name] = definitions.get(name, 0) + 1
        # An import that shadows a builtin (`from numpy import max`, as `%pylab` does) is only
        # in force after its cell: at module level it would change the cells before it too.
        hoisted = {(e.span, e.names): e for e in self.used if e.kind == "import" and e.text
                   and not any(n in NOTEBOOK_BUILTINS for n in e.names)}
        module_names = {n for e in hoisted.values() for n in e.names}
        changed = True
        while changed:
            changed = False
            for entity in self.used:
                key = (entity.span, entity.names)
                if key in hoisted or entity.kind not in ("setup", "function", "class"):
                    continue
                if entity.kind != "setup" and any(
                    definitions.get(n, 0) != 1 or n in self.graph.data_names for n in entity.names
                ):
                    continue
                if entity.function is not None and entity.function.global_writes:
                    continue  # its `global` statements must reach the step's own variables
                if entity.kind == "setup" and self._used_before(entity):
                    continue  # at module level it would change the steps before it too
                reads = set(entity.reads)
                if entity.function is not None:
                    reads |= set(entity.function.free_reads)
                reads -= set(entity.names)
                if all(r in module_names or r in NOTEBOOK_BUILTINS for r in reads):
                    hoisted[key] = entity
                    module_names.update(entity.names)
                    changed = True
        return hoisted

    def _used_before(self, setup: CodeEntity) -> bool:
        """Whether a step before `pd.set_option(...)` (or `plt.rcParams[k] = v`), or its own
        step in an earlier cell, uses the module it configures: there it is not configured."""
        module = setup.names[0]
        return any(min(node.cells) < setup.span.cell and any(
            module in e.names and e.kind == "import" for e in node.code)
            for node in self.graph.steps)

    def _module(self, steps: list[StepPlan]) -> tuple[ModuleBlock, ...]:
        """Module-level code, in notebook order. An import every user of which binds the name
        again in its own function (and so imports it there) is left out: it would be unused."""
        needed: set[str] = set()
        for step in steps:
            node = self.graph.step(step.name)
            for entity in node.code:
                if (entity.span, entity.names) in self.hoisted:
                    needed.update(set(entity.names) - set(step.rebound))
        for entity in self.hoisted.values():
            if entity.kind != "import":
                needed.update(entity.reads)
                if entity.function is not None:
                    needed.update(entity.function.free_reads)
                    needed.update(entity.function.inherits)
        blocks: dict[str, ModuleBlock] = {}
        order = {(e.span, e.names): i for i, e in enumerate(self.graph.code)}
        merged: dict[tuple[Span, str], list[str]] = {}  # `from m import a, b` stays one line
        for entity in sorted(self.hoisted.values(), key=lambda e: order[(e.span, e.names)]):
            if entity.kind == "import" and not set(entity.names) & needed:
                continue
            if entity.kind == "import" and entity.text:
                head, _, name = entity.text.partition(" import ")
                if head.startswith("from ") and "*" not in name:
                    names = merged.setdefault((entity.span, head), [])
                    names.append(name)
                    text = f"{head} import {', '.join(names)}"
                    key = f"{span_key(entity.span)} {head}"
                    blocks[key] = ModuleBlock(key, "import", (Line(text),), entity.module)
                else:
                    blocks.setdefault(entity.text, ModuleBlock(entity.text, "import",
                                                               (Line(entity.text),), entity.module))
                continue
            key = span_key(entity.span)
            if key not in blocks:
                lines = tuple(span_lines(self.cells, entity.span))
                blocks[key] = ModuleBlock(key, entity.kind, lines)
        imports = [b for b in blocks.values() if b.kind == "import"]
        rest = [b for b in blocks.values() if b.kind != "import"]
        return (*imports, *rest)

    # -- steps -------------------------------------------------------------------------------

    def plan(self) -> Plan:
        # Step functions share steps.py's module level with the imports it emits: the cells'
        # own, those their magics need (`!cmd` uses subprocess), display, sys and Path.
        implicit = {m for c in self.graph.notebook.cells for m in c.implicit_imports}
        names = Namer([*(n for e in self.hoisted.values() for n in e.names), *implicit,
                       "display", "sys", "Path"])
        # A step that changes an input in place works on a copy when another step reading the
        # same object may run at the same time (neither before it nor after it).
        made_by = {(node.name, variable): self.graph.holders(producer, variable)[-1]
                   for node in self.graph.steps for variable, producer in node.inputs}
        readers: dict[tuple[str, str], set[str]] = {}
        for (reader, variable), origin in made_by.items():
            readers.setdefault((origin, variable), set()).add(reader)

        def unordered(one: str, other: str) -> bool:
            later = self.graph.descendants
            return one != other and one not in later(other) and other not in later(one)

        concurrent = {(reader, variable): any(unordered(reader, other)
                                              for other in readers[(origin, variable)])
                      for (reader, variable), origin in made_by.items()}
        steps = []
        for node in self.graph.steps:
            wanted = node.name if is_identifier(node.name) else suggest_identifier(node.name)
            steps.append(self._step(node, names.claim(wanted, "_step" if wanted else "_"),
                                    concurrent))
        in_place: dict[str, set[str]] = {}  # by every step holding the changed object
        for step in steps:
            if not step.copied:
                for variable, producer in step.inputs:
                    if variable in self.graph.step(step.name).mutates:
                        for holder in self.graph.holders(producer, variable):
                            in_place.setdefault(holder, set()).add(variable)
        steps = [replace(s, consumed_in_place=tuple(sorted(in_place.get(s.name, ()))))
                 for s in steps]
        module = self._module(steps)
        emitted = {b.key for b in module}
        steps = [replace(s, module_code=tuple(k for k in s.module_code if k in emitted))
                 for s in steps]
        notebook = self.graph.notebook
        # Every import of the pipeline's cells, used or not: an import states a dependency.
        modules = sorted({(e.module or "").partition(".")[0] for e in self.graph.code
                          if e.kind == "import" and e.module and not e.module.startswith(".")}
                         - {""})
        pip = [r for c in self.graph.notebook.cells if c.index in self._pipeline_cells()
               for r in c.requirements]
        bound = set(self.graph.data_names) | {n for e in self.graph.code for n in e.names}
        read = self._emitted_reads(steps, module)
        # A notebook function emitted at module level that uses `display` gets IPython's, even
        # when a cell imports `display` too: that import is emitted inside a step only.
        provided = ((read & set(NOTEBOOK_PROVIDED)) - bound) | (
            (self._emitted_reads([], module) & set(NOTEBOOK_PROVIDED)) - _module_names(module))
        dead = {n for i in self._pipeline_cells() for n in self.graph.symbols[i].dead_reads}
        return Plan(
            graph=self.graph,
            notebook_name=notebook.path.name,
            slug=suggest_identifier(notebook.path.stem),
            steps=tuple(steps),
            order=self.graph.order,
            parameters=self.graph.parameters,
            module=module,
            modules=tuple(modules),
            pip_requirements=tuple(dict.fromkeys(pip)),
            notebook_names=tuple(sorted(provided)),
            ruff_builtins=tuple(sorted(dead - bound - NOTEBOOK_BUILTINS)),
            random_imports=self._random_imports(steps),
            submodule_imports=self._submodules(),
        )

    def _submodules(self) -> tuple[str, ...]:
        """`import a.b.c` for every `a.b(.c)` the pipeline's code reaches as an attribute of an
        imported module `a`, when `a.b` is a module: Python finds it there only if something
        imported it, as a magic (`%matplotlib` imports pyplot) or an earlier cell may have."""
        bound: dict[str, str] = {}  # name -> the module it is bound to
        for entity in self.graph.code:
            if entity.kind == "import" and entity.text and len(entity.names) == 1:
                name = entity.names[0]
                if name not in self.graph.data_names:
                    bound.setdefault(name, qualified_import(entity, name))
        if not bound:
            return ()
        pattern = re.compile(r"(?<![\w.])(" + "|".join(sorted(map(re.escape, bound))) +
                             r")((?:\.[A-Za-z_]\w*)+)")
        found: dict[str, None] = {}
        for index in sorted(self._pipeline_cells()):
            for match in pattern.finditer(self.cells[index].code):
                module = bound[match.group(1)]
                for part in match.group(2).split(".")[1:]:
                    if not _is_module(f"{module}.{part}"):
                        break
                    module = f"{module}.{part}"
                if module != bound[match.group(1)] and not module.startswith(_EAGER_PACKAGES):
                    found[module] = None
        return tuple(f"import {m}" for m in sorted(found))

    def _random_imports(self, steps: list[StepPlan]) -> tuple[str, ...]:
        carried = {v for s in steps for v in (*s.arguments, *s.returns)}
        return tuple(self.random_modules[generator][1] for name, generator
                     in self.graph.random_states if name in carried)

    def _pipeline_cells(self) -> set[int]:
        return set(self.graph.symbols)

    def _emitted_reads(self, steps: list[StepPlan], module: tuple[ModuleBlock, ...]) -> set[str]:
        """Names read by the code the project emits (the steps' lines, module-level code),
        including the globals of the functions and classes defined in it."""
        lines = {(line.cell, line.line) for step in steps
                 for line in (*step.preamble, *step.body) if line.cell is not None}
        lines |= {(line.cell, line.line) for block in module for line in block.lines
                  if line.cell is not None}
        found: set[str] = set()
        for cell in {c for c, _ in lines}:
            assert cell is not None
            for event in self.graph.symbols[cell].events:
                if (cell, event.line) not in lines:
                    continue
                if isinstance(event, Read):
                    found.add(event.name)
                elif isinstance(event, Bind) and event.code and event.code.function:
                    found.update(event.code.function.free_reads)
        for entity in self.used:
            if entity.kind in ("library", "setup"):
                found.update(entity.reads)
        return found

    def _step(self, node: StepNode, function: str,
              concurrent: dict[tuple[str, str], bool]) -> StepPlan:
        code = self.code.lines(node)
        # A step that changes a value another step also reads gets a copy. Every value it
        # changes is copied in the same `copied` call: they may share objects (`frames` holds
        # `train`), and one memo keeps the copies sharing them the same way.
        # Only what must be: a value another step reads meanwhile, and the values that may
        # share objects with it (from the same producer). A value no other step reads is
        # changed as it is: it may not even be copyable (an estimator holding a lock).
        mutated = [(v, producer) for v, producer in node.inputs if v in set(node.mutates)]
        sharing = {producer for v, producer in mutated if concurrent[(node.name, v)]}
        copied = tuple(sorted(v for v, producer in mutated if producer in sharing))
        module_code = tuple(sorted({_key(e) for e in node.code
                                    if (e.span, e.names) in self.hoisted}))
        plan = StepPlan(
            name=node.name, function=function, cells=node.cells, inputs=node.inputs,
            parameters=node.parameters, outputs=node.outputs, metrics=node.metrics,
            arguments=node.reads, upstream=node.upstream, returns=node.returns, copied=copied,
            after=tuple(a for a in node.after if a not in node.upstream),
            preamble=code.preamble, body=code.body, options=node.options,
            module_code=module_code, rebound=code.rebound, pyplot=node.name in self.plotting,
            blas=uses_blas_threads(node), title=node.title, maybe_unbound=node.maybe_unbound,
            unbound_inputs=node.unbound_inputs,
        )
        return plan

# Packages that import (or load on first use) their public submodules themselves.
_EAGER_PACKAGES = ("numpy.", "pandas.", "scipy.", "torch.", "tensorflow.")


@functools.cache
def _is_module(name: str) -> bool:
    """Whether `name` is an installed module, found without importing (running) anything."""
    top, *parts = name.split(".")
    try:
        spec = importlib.machinery.PathFinder.find_spec(top)
        for part in parts:
            if spec is None or not spec.submodule_search_locations:
                return False
            spec = importlib.machinery.PathFinder.find_spec(
                part, list(spec.submodule_search_locations))
    except (ImportError, ValueError):
        return False
    return spec is not None


def _random_modules(graph: StepGraph) -> dict[str, tuple[str, str]]:
    """generator -> (its module's name in steps.py, the import binding it), named so that no
    name of the notebook's can shadow it in a step."""
    taken = {e.name for s in graph.symbols.values() for e in s.events if isinstance(e, Bind)}
    names = Namer(taken)
    numpy = names.claim("numpy_random")
    python = names.claim("random_module")
    return {"numpy": (numpy, f"import numpy.random as {numpy}"),
            "random": (python, f"import random as {python}")}


def _key(entity: CodeEntity) -> str:
    if entity.kind == "import" and entity.text:
        head, _, name = entity.text.partition(" import ")
        return f"{span_key(entity.span)} {head}" if head.startswith("from ") else entity.text
    return span_key(entity.span)


def content_hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _module_names(module: tuple[ModuleBlock, ...]) -> set[str]:
    """The names steps.py's module-level imports bind."""
    found: set[str] = set()
    for block in module:
        if block.kind != "import":
            continue
        try:
            tree = ast.parse("\n".join(line.text for line in block.lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update((a.asname or a.name).partition(".")[0] for a in node.names)
    return found
