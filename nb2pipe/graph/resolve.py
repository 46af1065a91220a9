"""Stage 4a, resolve: every cell's events, replayed in notebook order -> each step's state.

The producer of a name a step uses is the last earlier step that defined or changed it (reaching
definitions); a change through an alias changes what the alias may refer to; code (imports,
functions, classes) is never data: a step that uses it gets the code, and a function's globals
become inputs of the step that calls it.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nb2pipe.analysis import Analysis
from nb2pipe.analysis.randomness import SEED_NAMES, Effect, classify, hidden_hint
from nb2pipe.analysis.star_names import star_names
from nb2pipe.graph.definitions import DefinitionValues
from nb2pipe.graph.explain import Explanations, first_binders
from nb2pipe.graph.state import StepState, _Binding
from nb2pipe.model import (
    Bind,
    Call,
    CellSymbols,
    CodeEntity,
    Delete,
    Diagnostic,
    Event,
    FunctionInfo,
    Link,
    Mutate,
    Notebook,
    RandomCall,
    Read,
    Span,
    Split,
    StarImport,
    Statement,
)
from nb2pipe.notebook.pylab import import_for
from nb2pipe.notebook.pylab import known as known_namespace

# Calls that configure a module for everything after them (display, warnings, plotting style,
# logging): emitted with the module's import, wherever it is used. Never a random seed: a seed
# is an event in notebook order (the draws before it do not see it).
SETUP_CALLS = re.compile(
    r"(^|\.)(set_option|set_printoptions|filterwarnings|simplefilter|set_theme|set_style|"
    r"set_context|set_palette|set_config|basicConfig|"
    r"init_notebook_mode|set_float32_matmul_precision|set_verbosity|disable_warnings|"
    r"style\.use|matplotlib\.use|rcParams\.update|rc)$"
)
# Names a notebook has without defining them: Python's builtins, and what IPython adds. The
# generated steps import IPython's own (NOTEBOOK_PROVIDED) where code uses them.
NOTEBOOK_PROVIDED = {
    "display": "from nb2pipe_runtime.capture import display",
    "get_ipython": "from IPython import get_ipython",
}
NOTEBOOK_BUILTINS = frozenset((*dir(builtins), *NOTEBOOK_PROVIDED, "exit", "quit"))
# Top-level packages whose functions and classes leave the objects they are given as they
# were: what they change is what they are known to change (`np.random.shuffle(a)`, `out=`,
# in analysis/rules.py and analysis/visitor.py). A call into any other package (or a module
# beside the notebook) may change a mutable argument, as Python allows.
LEAVE_ARGUMENTS_ALONE = frozenset((
    "numpy", "pandas", "polars", "pyarrow", "scipy", "sklearn", "matplotlib", "seaborn",
    "plotly", "bokeh", "altair", "IPython", "ipywidgets", "tqdm", "math", "cmath",
    "statistics", "decimal", "fractions", "numbers", "random", "json", "csv", "re", "string",
    "textwrap", "unicodedata", "difflib", "pprint", "reprlib", "os", "sys", "pathlib", "glob",
    "shutil", "io", "time", "datetime", "calendar", "zoneinfo", "itertools", "functools",
    "collections", "copy", "pickle", "joblib", "hashlib", "base64", "uuid", "typing",
    "dataclasses", "enum", "warnings", "logging", "inspect", "types", "contextlib", "abc",
    "struct", "zipfile", "tarfile", "gzip", "urllib", "requests", "platform", "locale",
))


@dataclass
class Resolution:
    states: list[StepState]  # notebook order, code-only steps included
    diagnostics: list[Diagnostic]
    code: tuple[CodeEntity, ...]  # every code entity, notebook order
    data_names: frozenset[str]
    random_states: tuple[tuple[str, str], ...] = ()  # (variable, generator) carried
    # Definitions that read other values where they are used than where they are defined.
    conflicts: dict[tuple[Span, tuple[str, ...]], str] = field(default_factory=dict)


class Resolver(Explanations, DefinitionValues):
    def __init__(self, notebook: Notebook, split: Split, analysis: Analysis,
                 values: Mapping[tuple[Span, tuple[str, ...]], str] | None = None) -> None:
        self.notebook = notebook
        self.split = split
        self.analysis = analysis
        self.path = notebook.display_path
        self.cells = {c.index: c for c in notebook.cells}
        self.bindings: dict[str, _Binding] = {}
        self.groups: dict[str, set[str]] = {}
        self.deleted: dict[str, tuple[str, int, int]] = {}
        self.star_imports: list[tuple[StarImport, str | None]] = []
        self.namespaces: list[StarImport] = []  # star imports and `%pylab`, notebook order
        self.states: list[StepState] = []
        self.by_name: dict[str, StepState] = {}
        self.position: dict[str, int] = {}  # a step's place in notebook order
        self.metric_owner: dict[str, list[str]] = {}
        self.diagnostics: list[Diagnostic] = [*split.diagnostics, *analysis.diagnostics]
        self.parameter_names = {p.name for p in analysis.parameters}
        self.binders = first_binders(split, analysis)
        self.entities: dict[tuple[Span, tuple[str, ...]], CodeEntity] = {}
        self.data_names: set[str] = set(self.parameter_names)
        # The global random state of `random` and of numpy, carried as values in notebook
        # order through the steps that seed or draw, once the notebook seeds one.
        self.seeded = _seeds(analysis)
        self.random_names = _random_names(analysis)
        self.hidden_seeds: set[tuple[int, int]] = set()
        # Definitions that are values (changed in place, or reading data when defined)
        self.value_classes: set[str] = set()  # classes among them
        self.instances: dict[str, set[str]] = {}  # class -> names bound to its instances
        self.fixed_reads: set[tuple[str, Span]] = set()  # NB308 reported
        # names bound to generator objects: (cell, line, generator function)
        self.generator_values: dict[str, tuple[int, int, str]] = {}
        # Values a library made holding numpy's global generator (`rv = stats.norm(0, 1)`:
        # scipy's frozen distribution keeps the global RandomState): their methods draw.
        self.global_drawers: set[str] = set()
        self.unpicklable_reported: set[tuple[str, str]] = set()
        # A def or class runs again where it is emitted: what its definition reads (defaults,
        # decorators, a class body) as bound where it is defined; one that would read other
        # values where it is used is a conflict, and a value from its definition on.
        self.definition_reads: dict[tuple[Span, tuple[str, ...]],
                                    dict[str, tuple[int, int] | None]] = {}
        self.values = values or {}
        self.joined: dict[str, str] = {}  # name -> the step where it last joined an alias group
        # A function made a value (it is handed on as an object) whose body reads globals that
        # are bound only after it is made: Python looks them up when it runs, so each step that
        # takes the function must have them (value name -> names).
        self.late_globals: dict[str, dict[str, None]] = {}
        self.late_reported: set[tuple[str, str]] = set()  # (value, step) NB308 reported
        self.code_globals: dict[str, dict[str, tuple[int, int]]] = {}
        # The notebook's own modules (beside it) -> the last step that called into one.
        self.module_touched: dict[str, str] = {}
        self.star_names: dict[str, frozenset[str] | None] = {}  # module -> names `*` binds
        self.environment: dict[str, bool] = {}  # top-level module -> whether installed
        # values fitted from a formula naming the notebook's code: name -> (cell, line, name)
        self.formula_values: dict[str, tuple[int, int, str]] = {}
        self.conflicts: dict[tuple[Span, tuple[str, ...]], str] = {}  # and why

    # -- driver ------------------------------------------------------------------------------

    def run(self) -> Resolution:
        owner: dict[int, tuple[str, StepState | None]] = {}
        for cell in self.split.parameter_cells:
            owner[cell.index] = ("parameters", None)
        for cell in self.split.library_cells:
            owner[cell.index] = ("library", None)
        last_cell: dict[int, int] = {}
        for step in self.split.steps:
            state = StepState(step)
            self.position[step.name] = len(self.states)
            self.states.append(state)
            self.by_name[step.name] = state
            for cell in step.cells:
                owner[cell.index] = ("step", state)
            if step.cells:
                last_cell[id(state)] = step.cells[-1].index
        metrics_cells = {c.index for c in self.split.metrics_cells}
        for index in sorted(owner):
            role, owning = owner[index]
            symbols = self.analysis.cells.get(index)
            if symbols is None:
                continue
            if owning is None:
                self._declarations(symbols, role)
                continue
            self._step_cell(owning, symbols, index in metrics_cells)
            if last_cell.get(id(owning)) == index:
                self._finish(owning)
        # stable: names of one statement keep their order (`from m import b, a`)
        code = tuple(sorted(self.entities.values(), key=lambda e: (e.span.cell, e.span.start)))
        carried = tuple((name, generator) for generator, name in self.random_names.items()
                        if name in self.data_names)
        return Resolution(self.states, self.diagnostics, code, frozenset(self.data_names),
                          carried, {k: v for k, v in self.conflicts.items()
                                    if k not in self.values})

    # -- parameters and library cells --------------------------------------------------------

    def _declarations(self, symbols: CellSymbols, role: str) -> None:
        """Parameter cells bind parameters; Kale `imports`/`functions` cells bind code."""
        statements = [s.span for s in symbols.statements]
        reads: dict[Span, list[str]] = {}
        for event in symbols.events:
            span = _statement_at(statements, event.line) if event.line else None
            if isinstance(event, Read) and span is not None:
                reads.setdefault(span, []).append(event.name)
            if isinstance(event, StarImport):
                self._star_import(event, None, None)
            if not isinstance(event, Bind):
                continue
            if event.code is not None:
                self._unlink(event.name)
                self.bindings[event.name] = _Binding("code", None, event.code, symbols.cell,
                                                     bound=(event.cell, event.line))
                self.entities[(event.code.span, event.code.names)] = event.code
            elif role == "parameters" and event.name in self.parameter_names:
                self._unlink(event.name)
                self.bindings[event.name] = _Binding("param", None, None, symbols.cell,
                                                     bound=(event.cell, event.line))
            elif role == "library" and span is not None:
                entity = CodeEntity("library", (event.name,), span,
                                    tuple(dict.fromkeys(reads.get(span, []))))
                self.bindings[event.name] = _Binding("code", None, entity, symbols.cell)
                self.entities[(entity.span, entity.names)] = entity

    # -- step cells --------------------------------------------------------------------------

    def _step_cell(self, state: StepState, symbols: CellSymbols, metrics: bool) -> None:
        for statement, events in _by_statement(symbols):
            if statement is not None and self._setup(state, statement, events):
                continue
            if statement is None or statement.shape not in ("import", "function", "class",
                                                            "nothing"):
                state.code_only = state.code_only and statement is None
            for event in events:
                self._event(state, event)
            if statement is not None:
                self._formula_values(state, symbols, statement, events)
        if symbols.display_only and not metrics:
            cell = self.cells[symbols.cell]
            self._report("NB306", f"cell {cell.index} only displays values; in the pipeline "
                         "it runs for the run's HTML report, where its output is shown",
                         cell, 1, "tag it `skip` to leave it out of the pipeline and the "
                         "report (it still runs in Jupyter)")
        if metrics:
            bound = [e.name for e in symbols.events if isinstance(e, Bind) and e.code is None]
            for name in dict.fromkeys((*bound, *symbols.shown)):
                self._metric(state, name)

    def _event(self, state: StepState, event: Event) -> None:
        if isinstance(event, Read):
            self._read(state, event.name, event.cell, event.line, event.soft, set(), event.block,
                       optional=event.optional, reference=event.reference)
        elif isinstance(event, Bind):
            self._bind(state, event)
        elif isinstance(event, Mutate):
            if event.via is not None and not self._may_return_arguments(state, event.via):
                return
            if event.given_to is not None and not self._may_change_arguments(
                    state, event.name, event.given_to):
                return
            self._mutate(state, event.name, event.cell, event.line, event.block,
                         definite=not event.maybe)
        elif isinstance(event, Link):
            self._link(event.name, event.sources, state.step.name)
        elif isinstance(event, Delete):
            if event.name not in state.local:
                # `del train` of a value from an earlier step: the step must have it to delete
                # it (as one function's body, it would otherwise raise UnboundLocalError).
                self._read(state, event.name, event.cell, event.line, False, set())
            state.local.pop(event.name, None)
            state.deleted[event.name] = (event.cell, event.line)
            self._unlink(event.name)
        elif isinstance(event, Call):
            self._call(state, event)
        elif isinstance(event, StarImport):
            self._star_import(event, state.step.name, state)
        elif isinstance(event, RandomCall):
            self._random_call(state, event, event.cell, event.line)

    def _random_call(self, state: StepState, call: RandomCall, cell: int, line: int) -> None:
        """A seed or a draw of a global generator: the generator's state is a value that the
        step reads (a draw, or a seed after earlier draws) and leaves for the next."""
        root, _, rest = call.callee.partition(".")
        binding = state.local.get(root) or self.bindings.get(root)
        found_hidden: str | None = None
        if call.via is not None:  # an estimator made without `random_state`, used
            if binding is None or binding.kind != "data":
                return
            effects: tuple[Effect, ...] = (Effect("numpy", False),)
        else:
            entity = binding.entity if binding is not None else self._from_namespace(root)
            if binding is not None and binding.kind != "code":
                if rest and root in self.global_drawers:
                    qualified = "numpy.random.random"  # `rv.rvs()`: the global it holds
                elif rest.rpartition(".")[2] != "sample" or "random_state" in call.keywords:
                    return
                else:
                    qualified = "numpy.random.sample"  # `df.sample(...)`: numpy's global one
            elif entity is not None and entity.kind == "import":
                qualified = qualified_import(entity, root) + (f".{rest}" if rest else "")
                self._module_state(state, qualified)
            else:
                return
            classified = classify(qualified, call.keywords)
            effects, found_hidden = classified.effects, classified.hidden
        if found_hidden is not None and (cell, line) not in self.hidden_seeds:
            self.hidden_seeds.add((cell, line))
            self._report("NB307", f"global random seed of {found_hidden}: its random state "
                         "does not flow from step to step, so draws in later steps differ from "
                         "the notebook's", self.cells[cell], line, hidden_hint(found_hidden))
        if not self.seeded:
            return  # unseeded: every run draws other numbers anyway; steps stay independent
        for effect in effects:
            name = self.random_names[effect.generator]
            if name in state.local or name in self.bindings:
                # the step starts from the state the notebook has here (a seed after earlier
                # draws too: the draws come first) and leaves a new one; the old is not changed
                self._read(state, name, cell, line, False, set())
            self._bind(state, Bind(name, cell, line))

    def _module_state(self, state: StepState, qualified: str) -> None:
        """A call into a module the environment does not have, so the notebook's own (a .py
        beside it): it may use and change the module's globals (a counter, a colour cycle).
        In the notebook, cells change that state one after another; in the pipeline, the steps
        that call into the module keep that order (they run in one process, one at a time)."""
        module = qualified.partition(".")[0]
        if module and module not in self.environment:
            self.environment[module] = in_environment(module)
        if not module or self.environment[module]:
            return
        last = self.module_touched.get(module)
        if last is not None and last != state.step.name:
            state.after_state[last] = None
        self.module_touched[module] = state.step.name

    def _formula_values(self, state: StepState, symbols: CellSymbols, statement: Statement,
                        events: list[Event]) -> None:
        """`mod = smf.glm("y ~ double_it(x)", data=df).fit()`: statsmodels keeps the formula
        and evaluates it again when the model is unpickled, looking `double_it` up in frames
        of its own: a value that cannot reach another process (NB304 where one reads it)."""
        span = statement.span
        code = [n for line, names in symbols.formulas if span.start <= line <= span.end
                for n in names if self._is_notebook_code(state, n)]
        if not code:
            return
        for event in events:
            if isinstance(event, Bind) and event.code is None and event.name in state.local:
                self.formula_values[event.name] = (event.cell, event.line, code[0])

    def _is_notebook_code(self, state: StepState, name: str) -> bool:
        binding = state.local.get(name) or self.bindings.get(name)
        entity = binding.entity if binding is not None else None
        return entity is not None and entity.kind in ("function", "class", "library")

    def _star_import(self, event: StarImport, step: str | None,
                     state: StepState | None) -> None:
        """`from m import *`, `%pylab`, `%run script.py`: the names each binds are imported one
        by one where they are used, when they can be known; otherwise using one is NB203.
        A name bound before that it binds is bound again (`import random` then `from numpy
        import *`: `random` is numpy's)."""
        if not event.module.startswith(("%run", "%%")):
            self.namespaces.append(event)
        if not known_namespace(event.module):
            self.star_imports.append((event, step))
        bound = {*self.bindings, *(state.local if state else {})}
        for name in sorted(bound):
            entity = self._from_namespace(name)
            if entity is None or entity.span != event.span:
                continue  # not one it binds (or its names cannot be known)
            binding = _Binding("code", step, entity, event.cell, bound=(event.cell, event.line))
            if state is not None:
                state.local[name] = binding
                state.defines[name] = None
            else:
                self.bindings[name] = binding
            self._unlink(name)

    def _setup(self, state: StepState, statement: Statement, events: list[Event]) -> bool:
        """`pd.set_option(...)`, `warnings.filterwarnings(...)`: configuration of an imported
        module. It is code: it goes wherever the module does, and is not a reason for a task.
        Only calls in the SETUP_CALLS table count: `time.sleep(1)` or `os.makedirs(p)` act."""
        if statement.root is None:
            return False
        if statement.shape == "call":
            if not statement.callee or not SETUP_CALLS.search(statement.callee):
                return False
        elif statement.shape != "setting":  # `plt.rcParams["x"] = 1`, `pd.options.a = 2`
            return False
        root = state.local.get(statement.root) or self.bindings.get(statement.root)
        if root is None or root.entity is None or root.entity.kind != "import":
            return False
        reads: list[str] = []
        for event in events:
            if isinstance(event, Read):
                binding = state.local.get(event.name) or self.bindings.get(event.name)
                if not (event.name in NOTEBOOK_BUILTINS or (binding and binding.kind == "code")):
                    return False
                reads.append(event.name)
            elif isinstance(event, RandomCall):
                if event.callee.partition(".")[0] not in (statement.root, *reads):
                    return False
            elif not (isinstance(event, Mutate | Call | Link)
                      and event.name.partition(".")[0] in (statement.root, *reads)):
                return False
        entity = CodeEntity("setup", (statement.root,), statement.span,
                            tuple(dict.fromkeys(reads)))
        root.setup.append(entity)
        self.entities[(entity.span, entity.names)] = entity
        for event in events:
            if isinstance(event, Read):
                self._read(state, event.name, event.cell, event.line, False, set())
        return True

    def _read(self, state: StepState, name: str, cell: int, line: int, soft: bool,
              seen: set[tuple[Span, tuple[str, ...]]], block: tuple[int, ...] = (), *,
              optional: bool = False, reference: bool = False, direct: bool = True,
              owner: str | None = None) -> None:
        """`direct`: read by the step's own code (not inside a function it uses);
        `reference`: the object is named, not run (a base class): its late reads wait;
        `owner`: a global read by the body of the function `owner` made a value here."""
        local = state.local.get(name)
        if local is not None:
            if local.entity is not None and local.kind == "code":
                state.code.setdefault((local.entity.span, local.entity.names), local.entity)
                if direct:
                    state.module_reads[name] = None  # the plan may hoist the definition
                if not reference:
                    self._expand(state, local.entity, cell, line, seen)
                    self._maybe_called(state, name, cell, line)
            self._demand(state, name, block)
            return
        binding = self.bindings.get(name)
        if optional and (name in state.deleted or name in self.deleted):
            binding = None  # deleted: the `try` finds it missing, as the notebook does
        if binding is None:
            provided = self._from_namespace(name)
            if provided is not None:
                state.code.setdefault((provided.span, provided.names), provided)
                if direct:
                    state.module_reads[name] = None
            elif name in NOTEBOOK_BUILTINS:
                if direct:
                    state.module_reads[name] = None
            elif optional:
                pass  # `try: name ... except NameError`: the notebook expects it may be missing
            elif soft:
                state.soft.append((name, cell, line, owner))
            else:
                self._undefined(state, name, cell, line)
            return
        state.uses[name] = None
        if binding.kind == "param":
            state.parameters[name] = None
        elif binding.kind == "data":
            assert binding.step is not None
            state.inputs[name] = binding.step
            state.shared_at_read.setdefault(name, set()).update(self.groups.get(name, ()))
            self._demand(self.by_name[binding.step], name)
            self._check_deleted(state, name, cell, line)
            self._check_generator(state, name, binding.step)
            self._check_formula_value(state, name, binding.step)
            self._late_globals(state, name, cell, line, seen)
        elif binding.entity is not None:
            if direct:
                state.module_reads[name] = None
            for entity in (binding.entity, *binding.setup):
                if entity.span.start > 0:  # imports added by the magic transform are local
                    state.code.setdefault((entity.span, entity.names), entity)
                if not reference:
                    self._expand(state, entity, cell, line, seen)
            if not reference:
                self._maybe_called(state, name, cell, line)

    def _late_globals(self, state: StepState, name: str, cell: int, line: int,
                      seen: set[tuple[Span, tuple[str, ...]]]) -> None:
        """`name` is a function made a value before the globals its body reads were bound:
        the step reads them where it reads the function (it may call it), and gives them to
        the function before its code runs. A name the step binds itself first is not there
        yet then: the function would see the value the step starts with."""
        late = dict(self.late_globals.get(name, {}))
        for read, where in self.code_globals.get(name, {}).items():
            if self._bound(state, read) != where:  # `def Fraction(n, d)` after the import
                late[read] = None
        if not late:
            return
        own = [n for n in late if n in state.local and n not in state.inputs
               and n not in state.parameters]
        for global_name in late:
            self._read(state, global_name, cell, line, True, seen, direct=False)
            if global_name not in own:
                state.late_globals.setdefault(name, {})[global_name] = None
        key = (name, state.step.name)
        if own and key not in self.late_reported:
            self.late_reported.add(key)
            names = ", ".join(repr(n) for n in own)
            self._report("NB308", f"'{name}' is a value made before {names} "
                         f"{'were' if len(own) > 1 else 'was'} bound, and its code reads "
                         f"{'them' if len(own) > 1 else 'it'} when it runs; step "
                         f"'{state.step.name}' binds {'them' if len(own) > 1 else 'it'} before "
                         f"using '{name}', which the pipeline cannot give the function there",
                         self.cells[cell], line, f"bind {names} in an earlier step, or pass "
                         f"{'them' if len(own) > 1 else 'it'} to '{name}' as "
                         f"argument{'s' if len(own) > 1 else ''}")

    def _from_namespace(self, name: str) -> CodeEntity | None:
        """The import binding `name` as the last star import (or `%pylab`) that binds it did;
        None when no earlier one does, or one whose names cannot be known comes first."""
        for star in reversed(self.namespaces):
            if known_namespace(star.module):
                text = import_for(star.module, name)
            else:
                if star.module not in self.star_names:  # parsing a module is slow: once
                    self.star_names[star.module] = star_names(star.module)
                names = self.star_names[star.module]
                if names is None:
                    return None
                text = f"from {star.module} import {name}" if name in names else None
            if text is None:
                continue
            key = (star.span, (name,))
            if key not in self.entities:
                module = text.split()[1]
                self.entities[key] = CodeEntity("import", (name,), star.span, module=module,
                                                text=text)
            return self.entities[key]
        return None

    def _maybe_called(self, state: StepState, name: str, cell: int, line: int) -> None:
        """A function named without being called here (`map(hook, xs)`, `df.apply(f)`, a
        callback, a static method through its class) may be called by whatever receives it:
        what it changes and the globals it sets count for this step too."""
        info = self._function(state, name)
        if info is not None and (info.global_writes or info.free_mutations or info.calls
                                 or info.inherits or info.given):
            self._apply(state, name, (), {}, cell, line, set())

    def _demand(self, state: StepState, name: str, block: tuple[int, ...] | None = None) -> None:
        """`name` is read from `state`'s step: a value it only maybe rebound is now needed, so
        the earlier value becomes an input of that step (and so on, back along the chain).
        `block`: a read in the step itself; inside the block that rebound it, it sees the new
        value."""
        found = state.passthrough.get(name)
        if found is None:
            return
        old, bound_in = found
        if block is not None and block[:len(bound_in)] == bound_in:
            return
        del state.passthrough[name]
        state.uses[name] = None
        if old.kind == "param":
            state.parameters[name] = None
        elif old.kind == "data" and old.step is not None:
            state.inputs[name] = old.step
            self._demand(self.by_name[old.step], name)

    def _expand(self, state: StepState, entity: CodeEntity, cell: int, line: int,
                seen: set[tuple[Span, tuple[str, ...]]], owner: str | None = None) -> None:
        """Code runs where it is used: its own reads, and a function's globals, happen here.
        `owner`: the function is made a value here, under that name."""
        if (entity.span, entity.names) in seen:
            return
        seen.add((entity.span, entity.names))
        names: list[str] = []
        if entity.span.cell != cell or entity.kind in ("library", "setup"):
            names.extend(entity.reads)  # decorators, defaults: they run again where emitted
            known = self.definition_reads.get((entity.span, entity.names))
            changed = [n for n, b in (known or {}).items() if self._bound(state, n) != b]
            if changed:
                # They would read other values than where the definition is: it must be a
                # value made there (a second pass of the resolver makes it one).
                self.conflicts.setdefault((entity.span, entity.names), (
                    f"its definition reads {', '.join(repr(n) for n in changed)}, which "
                    f"{'change' if len(changed) > 1 else 'changes'} before step "
                    f"'{state.step.name}' uses it"))
        own: set[str] = set()
        if entity.function is not None:
            names.extend(entity.function.free_reads)
            names.extend(entity.function.inherits)  # a base class's methods run as its own
            if owner is not None and entity.kind == "function":
                own = set(entity.function.free_reads)
        for name in dict.fromkeys(names):
            self._read(state, name, cell, line, True, seen, direct=False,
                       owner=owner if name in own else None)

    def _bind(self, state: StepState, event: Bind) -> None:
        name = event.name
        if event.conditional and name not in state.local:
            old = self.bindings.get(name)
            if old is not None and old.kind != "code":  # the old value may survive
                state.passthrough[name] = (old, event.block)
            elif old is None:  # or nothing: the name may be left unbound
                state.maybe_unbound[name] = None
        elif not event.conditional:
            state.passthrough.pop(name, None)
            state.maybe_unbound.pop(name, None)
        state.deleted.pop(name, None)
        state.defines[name] = None
        self._forget_instance(name)
        self.late_globals.pop(name, None)
        self.code_globals.pop(name, None)
        self.formula_values.pop(name, None)
        if event.code is not None:
            self.entities[(event.code.span, event.code.names)] = event.code
            self._unlink(name)
            why = self._made_as_value(state, event.code)
            for decorator in event.code.decorators:  # `@app.get("/")` registers with app
                binding = state.local.get(decorator) or self.bindings.get(decorator)
                if binding is not None and binding.kind == "data":
                    self._mutate(state, decorator, event.cell, event.line)
            if why is None:
                state.local[name] = _Binding("code", state.step.name, event.code, event.cell,
                                             bound=(event.cell, event.line))
                self.definition_reads[(event.code.span, event.code.names)] = {
                    n: self._bound(state, n) for n in event.code.reads}
            else:
                self._becomes_value(state, name, event.code, event.cell, event.line, why,
                                    (event.cell, event.line))
            return
        self.data_names.add(name)
        state.code_only = False
        state.local[name] = _Binding("data", state.step.name, None, event.cell,
                                     bound=(event.cell, event.line))
        if event.made_by is not None and self._is_class(state, event.made_by):
            self.instances.setdefault(event.made_by, set()).add(name)
        if event.made_by is not None and self._holds_global_generator(state, event.made_by):
            self.global_drawers.add(name)
        else:
            self.global_drawers.discard(name)
        info = self._function(state, event.made_by) if event.made_by else None
        if info is not None and info.is_generator:
            self.generator_values[name] = (event.cell, event.line, event.made_by or "")
        else:
            self.generator_values.pop(name, None)
        if not event.keep_aliases:
            self._unlink(name)
            self._link(name, event.aliases, state.step.name)
            for callee, given in event.call_args:
                if self._may_return_arguments(state, callee):
                    held = [a for a in given if not self._immutable(state, a)]
                    self._link(name, tuple(held), state.step.name)  # what it returns

    def _mutate(self, state: StepState, name: str, cell: int, line: int,
                block: tuple[int, ...] = (), definite: bool = True) -> None:
        if not definite:  # `Counter.bump()`: known to change Counter if a classmethod does
            info = self._function(state, name)
            definite = info is not None and info.stateful
        changed = definite and self._changed_definition(state, name, cell, line)
        # An instance refers to its class: a class changed changes what its instances see.
        targets = {name, *self.groups.get(name, ()), *(self.instances.get(name, ())
                                                        if changed else ())}
        for target in sorted(targets):
            local = state.local.get(target)
            if local is not None:
                if local.kind == "data":
                    state.defines[target] = None
                    self._demand(state, target, block)
                continue
            binding = self.bindings.get(target)
            if binding is None or binding.kind == "code":
                continue  # modules and functions are code; undefined names are reported on read
            self._read(state, target, cell, line, False, set())
            state.code_only = False
            state.local[target] = _Binding("data", state.step.name, binding.entity, cell,
                                           bound=binding.bound)
            state.defines[target] = None
            state.mutates[target] = None

    def _call(self, state: StepState, event: Call) -> None:
        kwargs = dict(event.kwargs)
        binding = state.local.get(event.name) or self.bindings.get(event.name)
        if (binding is not None and binding.kind == "data"
                and event.name not in self.value_classes):
            # A value called (a closure keeping a count, an object with __call__) may change
            # what it holds: `step()` in two steps gives 1 and 2.
            self._mutate(state, event.name, event.cell, event.line)
        self._apply(state, event.name, event.args, kwargs, event.cell, event.line, set())

    def _apply(self, state: StepState, callee: str, args: tuple[tuple[str, ...], ...],
               kwargs: dict[str, tuple[str, ...]], cell: int, line: int, seen: set[str]) -> None:
        """What calling a notebook function does to its arguments and to globals."""
        receiver, dot, _ = callee.partition(".")
        if dot:  # a method of a class whose classmethod changes it: calling it may
            owner = self._function(state, receiver)
            if owner is not None and owner.stateful and self._is_class(state, receiver):
                self._mutate(state, receiver, cell, line)
            return
        info = self._function(state, callee)
        if info is None or callee in seen:
            return
        seen = seen | {callee}
        if info.stateful or self._wrapped_with_state(state, callee):
            # `def add(x, seen=[])`, a decorator counting calls: each call changes it
            self._mutate(state, callee, cell, line)
        bound = {
            p: args[i] if i < len(args) else kwargs.get(p, ()) for i, p in enumerate(info.params)
        }
        for param in info.mutated_params:
            for root in bound.get(param, ()):
                self._mutate(state, root, cell, line)
        for name in info.free_mutations:
            self._mutate(state, name, cell, line)
        for given in info.given:  # `def prep(d): somelib.normalise(d)`, then `prep(data)`
            for root in bound.get(given.name, ()) if given.name in info.params else (
                    given.name,):
                if self._may_change_arguments(state, root, given.callee, given.module):
                    self._mutate(state, root, cell, line)
        for random_call in info.random_calls:
            self._random_call(state, random_call, cell, line)
        for name in info.global_writes:
            # Set through `global` when the function runs, which it may not (a callback): the
            # earlier value may survive, as after a conditional assignment.
            self._bind(state, Bind(name, cell, line, conditional=True))
        for base in info.inherits:
            self._apply(state, base, args, kwargs, cell, line, seen)
        for site in info.calls:
            actual = tuple(_substitute(a, bound) for a in site.args)
            named = {k: _substitute(v, bound) for k, v in site.kwargs}
            self._apply(state, site.callee, actual, named, cell, line, seen)

    def _function(self, state: StepState, name: str) -> FunctionInfo | None:
        binding = state.local.get(name) or self.bindings.get(name)
        if binding is None or binding.entity is None:
            return None
        return binding.entity.function

    def _metric(self, state: StepState, name: str) -> None:
        if name in state.local and state.local[name].kind == "data":
            state.metrics[name] = None
            return
        binding = self.bindings.get(name)
        if binding is not None and binding.kind == "data" and binding.step:
            producer = next(s for s in self.states if s.step.name == binding.step)
            producer.metrics[name] = None

    def _finish(self, state: StepState) -> None:
        self._share_holder(state)
        for name, cell, line, owner in state.soft:
            if (owner is not None and name in state.local and state.local[name].kind == "data"
                    and state.local.get(owner) is not None):
                # Bound after the function was made, in this step: in the step it closes over
                # the variable, as it stands when the step ends; the notebook looks the global
                # up when the function runs. The steps that take the function give it theirs.
                self.late_globals.setdefault(owner, {})[name] = None
                continue
            if name in state.local or name in self.bindings:
                continue
            if owner is not None and state.local.get(owner) is not None:
                # The function's body looks the name up when it runs: the steps that take
                # the function have it, or say why not (`_late_globals`).
                self.late_globals.setdefault(owner, {})[name] = None
                continue
            self._undefined(state, name, cell, line, late=True)
        for name, binding in state.local.items():
            self.bindings[name] = binding
            self.deleted.pop(name, None)  # bound again: an earlier `del` no longer matters
        for name, (cell, line) in state.deleted.items():
            if name in self.bindings and self.bindings[name].kind == "data":
                self.deleted[name] = (state.step.name, cell, line)

    # -- aliases -----------------------------------------------------------------------------

    def _may_return_arguments(self, state: StepState, name: str) -> bool:
        """Whether calling `name` may give back what it was given: a notebook function
        returning a parameter (or part of one), an instance holding it, or anything imported:
        a library's result may hold the objects passed in (scikit-learn's `Pipeline(steps)`
        keeps the estimators themselves, and fitting it fits them in place), whether named
        or reached through a module (`sklearn.pipeline.Pipeline(steps)`, `pd.concat(frames)`)
        or a class of the notebook's (`Box.make(x)`). A method of a value is assumed to give
        back a new object, unless it is known to give back one it holds (`d.get(k)`, see
        analysis/aliases.py)."""
        root, dot, _ = name.partition(".")
        binding = state.local.get(root) or self.bindings.get(root)
        if dot:
            return binding is not None and binding.kind == "code"
        if binding is not None and binding.entity is not None and binding.entity.kind == "import":
            return True
        info = self._function(state, name)
        return info is not None and (info.returns_arguments or self._is_class(state, name))

    def _holds_global_generator(self, state: StepState, callee: str) -> bool:
        """Whether what calling `callee` makes may hold numpy's global generator: a call into
        a library that draws from it when given no generator of its own (scipy, statsmodels;
        the keywords of the call are not known here, so a seed given to it still counts)."""
        root, _, rest = callee.partition(".")
        binding = state.local.get(root) or self.bindings.get(root)
        if binding is None or binding.kind != "code" or binding.entity is None or (
                binding.entity.kind != "import"):
            return False
        qualified = qualified_import(binding.entity, root) + (f".{rest}" if rest else "")
        return any(e.generator == "numpy" and not e.seeds
                   for e in classify(qualified, ()).effects)

    def _may_change_arguments(self, state: StepState, name: str, callee: str,
                              module: str | None = None) -> bool:
        """Whether a call of `callee` may change the value `name` it is given: a function or
        class of a library not known to leave its arguments alone (statsmodels sets `freq` on
        the index of a series it is given; `operator.setitem` sets an item), or of a module
        beside the notebook. Builtins, the notebook's own functions (their bodies say what
        they change) and methods of values (their names say: analysis/rules.py) are not
        this; nor are the notebook's functions and classes given as callbacks (code).
        The same rule for a call in a function body, where the function is called: the
        callee as bound there, or `module` when the body imports it itself."""
        given = state.local.get(name) or self.bindings.get(name)
        if given is None or given.kind != "data":
            return False
        if module is None:
            root = callee.partition(".")[0]
            binding = state.local.get(root) or self.bindings.get(root)
            if binding is None or binding.entity is None or binding.entity.kind != "import":
                return False
            module = binding.entity.module or ""
        return module.partition(".")[0] not in LEAVE_ARGUMENTS_ALONE

    def _immutable(self, state: StepState, name: str) -> bool:
        """A flow parameter: a literal no call can change. (Names bound to immutable literals
        in code cells are left out of `call_args` by the analysis.)"""
        binding = state.local.get(name) or self.bindings.get(name)
        return binding is not None and binding.kind == "param"

    def _share_holder(self, state: StepState) -> None:
        """Two inputs that may share objects (`frames = [train, test]` in one step, both read
        in a later one) must come from one producer: values from two steps arrive as two
        copies when they cross processes, and a change made through one would miss the other.
        The step that made the alias read the older value, so it passes that value on too;
        when it did not read it (`box3 = [L1]` there, while `box2` holds `L1` too), it is
        given it, to pass on with what it made."""
        def sharing(name: str) -> set[str]:
            return self.groups.get(name, set()) | state.shared_at_read.get(name, set())

        changed = True
        while changed:
            changed = False
            for name, producer in list(state.inputs.items()):
                for other in sorted(sharing(name)):
                    holder = state.inputs.get(other)
                    if holder is None or holder == producer:
                        continue
                    if self.position[holder] < self.position[producer]:
                        continue
                    held = self.by_name[holder]
                    if held.inputs.get(name) is None and (
                            name in held.local or name in held.deleted
                            or self.joined.get(other) != holder
                            or not set(state.mutates) & {name, *sharing(name)}):
                        # the holder binds it again (not the value read here); the two started
                        # sharing elsewhere (`models = {"a": a, "b": b}` here); or nothing
                        # changes them here (two copies read alike)
                        continue
                    if held.inputs.get(name) is None:
                        held.inputs[name] = producer
                        held.uses[name] = None
                        self._demand(self.by_name[producer], name)
                    if held.inputs.get(name) == producer:
                        state.inputs[name] = holder
                        changed = True
                        break

    def _link(self, name: str, sources: Iterable[str], step: str | None = None) -> None:
        for source in sources:
            if source == name:
                continue
            if step is not None:  # where the two started sharing objects
                self.joined[name] = self.joined[source] = step
            group = {name, source, *self.groups.get(name, ()), *self.groups.get(source, ())}
            for member in group:
                self.groups[member] = group - {member}

    def _unlink(self, name: str) -> None:
        for other in self.groups.pop(name, ()):
            self.groups.get(other, set()).discard(name)


def _by_statement(symbols: CellSymbols) -> list[tuple[Statement | None, list[Event]]]:
    """Events grouped by the top-level statement they happen in (implicit imports first)."""
    groups: list[tuple[Statement | None, list[Event]]] = [(None, [])]
    statements = iter(symbols.statements)
    current: Statement | None = None
    for event in symbols.events:
        if event.line == 0:
            groups[0][1].append(event)
            continue
        while current is None or event.line > current.span.end:
            current = next(statements, None)
            if current is None:
                groups[0][1].append(event)
                break
            groups.append((current, []))
        else:
            groups[-1][1].append(event)
    return [g for g in groups if g[1]]


def _seeds(analysis: Analysis) -> bool:
    """Whether the notebook seeds a global generator anywhere (a function it defines may)."""
    def seeds(calls: Iterable[RandomCall]) -> bool:
        return any(c.callee.rpartition(".")[2] in SEED_NAMES for c in calls)

    for symbols in analysis.cells.values():
        if seeds(e for e in symbols.events if isinstance(e, RandomCall)):
            return True
        for event in symbols.events:
            if isinstance(event, Bind) and event.code and event.code.function and seeds(
                    event.code.function.random_calls):
                return True
    return False


def _random_names(analysis: Analysis) -> dict[str, str]:
    """The variables carrying each generator's state: names the notebook does not use."""
    used = {e.name for s in analysis.cells.values() for e in s.events
            if isinstance(e, Read | Bind)}
    found = {}
    for generator, name in (("random", "random_module_state"), ("numpy", "numpy_random_state")):
        while name in used:
            name += "_"
        found[generator] = name
    return found


_USUAL_ALIASES = {"np": "numpy", "rnd": "random"}


def qualified_import(entity: CodeEntity, name: str) -> str:
    """The module path an import binds `name` to: `import numpy as np` -> "numpy",
    `from numpy import random as r` -> "numpy.random"."""
    text = entity.text or ""
    if text.startswith("import "):
        target, _, alias = text[len("import "):].partition(" as ")
        return target.strip() if alias else target.strip().partition(".")[0]
    if text.startswith("from "):
        module, _, imported = text[len("from "):].partition(" import ")
        return f"{module.strip()}.{imported.partition(' as ')[0].strip()}"
    module = entity.module or ""
    if not module or module.partition(".")[0] == name:
        return module.partition(".")[0] if module.partition(".")[0] == name else module
    return _USUAL_ALIASES.get(name, f"{module}.{name}")


def in_environment(module: str) -> bool:
    """Whether the environment has the top-level module `module` (built in, the standard
    library, or installed), found without importing it and without looking in the current
    folder: a module beside the notebook is the notebook's own."""
    if module in sys.builtin_module_names or module in sys.stdlib_module_names:
        return True
    here = {"", os.getcwd()}
    try:
        return importlib.machinery.PathFinder.find_spec(
            module, [p for p in sys.path if p not in here]) is not None
    except (ImportError, ValueError):
        return False


def _statement_at(spans: list[Span], line: int) -> Span | None:
    return next((s for s in spans if s.start <= line <= s.end), None)


def _substitute(names: tuple[str, ...], bound: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for name in names:
        found.update(dict.fromkeys(bound.get(name, (name,))))
    return tuple(found)
