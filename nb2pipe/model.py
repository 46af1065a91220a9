"""The data model: the frozen dataclasses every stage takes and returns.

read -> Notebook -> split -> Split -> analyze -> CellSymbols per cell -> graph -> StepGraph

The analyzer (which alone knows Python scoping) describes each cell as an ordered stream of name
events plus facts; the graph stage replays the events in notebook order to find reaching
definitions, so it never touches `ast`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

_NEWLINE = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    r"""The physical lines of Python source, as the compiler counts them.

    Only `\n`, `\r\n` and `\r` end a line; `str.splitlines()` also splits on form feeds, U+2028
    and other characters a string literal or comment may hold, which would change the code.
    """
    return _NEWLINE.split(text)


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"  # worth knowing, nothing to fix: shown on request (`check --show-info`)


@dataclass(frozen=True)
class Diagnostic:
    """One finding about the notebook, located as a person sees it in JupyterLab."""

    code: str
    severity: Severity
    message: str
    path: str
    cell: int | None = None  # 1-based position in the notebook, markdown cells counted
    cell_id: str | None = None
    line: int | None = None  # 1-based line within the cell
    hint: str | None = None

    def sort_key(self) -> tuple[int, int, str, str]:
        return (self.cell or 0, self.line or 0, self.code, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "cell": self.cell,
            "cell_id": self.cell_id,
            "line": self.line,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Cell:
    """A notebook cell; `code` is `source` with IPython syntax made plain Python, line for line."""

    index: int  # 1-based position in the notebook, markdown cells counted
    id: str
    cell_type: str  # "code" | "markdown" | "raw"
    source: str
    tags: tuple[str, ...] = ()
    code: str = ""
    requirements: tuple[str, ...] = ()  # from `%pip install` / `!pip install`
    implicit_imports: tuple[str, ...] = ()  # modules the rewritten magics use (subprocess, ...)
    json_line: int | None = None  # line of the cell's first source line in the .ipynb file
    execution_count: int | None = None  # the `In [N]` of the saved notebook
    # Namespaces a magic fills as `from MODULE import *` would (`%pylab`): (line, module).
    star_imports: tuple[tuple[int, str], ...] = ()

    @property
    def is_code(self) -> bool:
        return self.cell_type == "code"


@dataclass(frozen=True)
class Notebook:
    path: Path
    cells: tuple[Cell, ...]
    kernel_name: str = "python3"
    language: str = "python"
    nbformat: tuple[int, int] = (4, 5)
    python_major: int | None = None  # from the kernelspec / language_info, when they say

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.is_code)

    @property
    def display_path(self) -> str:
        return str(self.path)


class CellRole(str, Enum):
    """What a cell contributes to the pipeline, decided by its tags."""

    STEP = "step"  # ordinary code, part of the enclosing step
    SKIP = "skip"  # not part of the pipeline; transparent for grouping
    PARAMETERS = "parameters"  # papermill parameters: literal assignments
    LIBRARY = "library"  # Kale `imports` / `functions`: code emitted where needed


@dataclass(frozen=True)
class StepOptions:
    retries: int = 0
    timeout: float | None = None
    cache: bool = True
    # What the step needs of the Dask worker it runs on (tags cpu:N, memory:SIZE, gpu:N):
    # (("CPU", 2.0), ("MEMORY", 4e9)), Dask resource names, memory in bytes.
    resources: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Step:
    """Cells grouped into one unit of the pipeline (the output of `split`)."""

    name: str
    cells: tuple[Cell, ...]  # the code cells that run as this step, in order
    after: tuple[str, ...] = ()
    options: StepOptions = field(default_factory=StepOptions)
    metrics_cells: tuple[int, ...] = ()  # indexes of cells tagged `metrics`
    first_cell: int = 0  # index of the cell that starts the step
    implicit: bool = False
    title: str | None = None  # the markdown heading that started it (--split headings)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # a Python annotation, e.g. "int", "list[str]", "str | None"
    default: Any  # a JSON-compatible literal
    help: str | None
    cell: int
    line: int
    source: str  # the default as written, e.g. "0.25"


@dataclass(frozen=True)
class Split:
    """The result of splitting: steps plus the cells with special roles."""

    steps: tuple[Step, ...]
    parameter_cells: tuple[Cell, ...]
    library_cells: tuple[Cell, ...]
    skipped_cells: tuple[Cell, ...]
    metrics_cells: tuple[Cell, ...]
    diagnostics: tuple[Diagnostic, ...]


# What the analyzer says about each cell.

CodeKind = Literal["import", "function", "class", "library", "setup"]


@dataclass(frozen=True)
class Span:
    """Lines `start`..`end` (1-based, inclusive) of one cell's code."""

    cell: int
    start: int
    end: int


@dataclass(frozen=True)
class CallSite:
    """A call to a plain name inside a function body, with each argument's possible roots."""

    callee: str
    args: tuple[tuple[str, ...], ...]
    kwargs: tuple[tuple[str, tuple[str, ...]], ...]
    line: int


@dataclass(frozen=True)
class GivenCall:
    """A parameter or global a function body gives to a call that may change what it is given
    (`somelib.normalise(d)`): whether it does is decided where the function is called, by what
    the callee is bound to there (or by `module`, when the body imports the callee itself)."""

    name: str
    callee: str
    module: str | None = None


@dataclass(frozen=True)
class FunctionInfo:
    """What calling a notebook function (or instantiating a class) does to notebook globals."""

    params: tuple[str, ...]  # positional parameter names, in order
    free_reads: tuple[str, ...]  # globals read when the body runs (late binding)
    free_mutations: tuple[str, ...] = ()  # globals the body may change in place
    global_writes: tuple[str, ...] = ()  # globals bound through a `global` statement
    mutated_params: tuple[str, ...] = ()  # parameters whose argument the body may change
    calls: tuple[CallSite, ...] = ()
    is_generator: bool = False
    inherits: tuple[str, ...] = ()  # for a class: its base classes named by a plain name
    random_calls: tuple[RandomCall, ...] = ()  # seeds and draws of global generators
    # Calling it changes the function object itself: its body changes a default argument's
    # value in place (`def add(x, seen=[]): seen.append(x)`); for a class, a classmethod
    # changes the class (`cls.count += 1`).
    stateful: bool = False
    # The functions it makes keep state between calls: they change its variables (`nonlocal`)
    # or their own attributes (a decorator counting calls).
    closes_over_state: bool = False
    # What it returns may be (or hold) what it was given: `return xs`, `return frame[col]`
    returns_arguments: bool = False
    # Parameters and globals it gives to calls that may change them (a library's, a module's
    # beside the notebook): changed where it is called, unless the callee leaves them alone.
    given: tuple[GivenCall, ...] = ()


@dataclass(frozen=True)
class CodeEntity:
    """A top-level statement that is code, not data: emitted where it is needed."""

    kind: CodeKind
    names: tuple[str, ...]
    span: Span
    reads: tuple[str, ...] = ()  # names the statement itself reads when it runs
    function: FunctionInfo | None = None  # for def/class: what a call reads and changes
    module: str | None = None  # for imports
    text: str | None = None  # for imports: one statement binding just `names`
    # For def/class: the names its decorators start from (`register`, `app` of `@app.get()`);
    # a decorator runs once, where the definition is, and may change what it starts from.
    decorators: tuple[str, ...] = ()


@dataclass(frozen=True)
class Read:
    name: str
    cell: int
    line: int
    soft: bool = False  # late-bound (lambda body, loop-carried): fine if bound later in the step
    block: tuple[int, ...] = ()  # the conditional blocks (if/loop/try branches) it is in
    optional: bool = False  # inside `try` with `except NameError`: fine if never bound
    reference: bool = False  # the object is named, not run (a base class): no late reads


@dataclass(frozen=True)
class Bind:
    name: str
    cell: int
    line: int
    aliases: tuple[str, ...] = ()  # names whose objects the new value may share
    conditional: bool = False  # inside if/for/while/try: the old value may survive
    code: CodeEntity | None = None
    keep_aliases: bool = False  # `x += ...` rebinds x to (possibly) the same object
    block: tuple[int, ...] = ()
    made_by: str | None = None  # `x = Name(...)`, `x = m.f(...)`: an instance refers to its class
    # `x = f(a, b)`, `x = m.f([a]).fit(b)`: each call whose result x may be or hold, with the
    # names its arguments may share objects with (literals left out). When the callee may
    # give back what it was given (the notebook's function returning `xs`, a class keeping
    # `self.data = data`, anything imported), x may hold them.
    call_args: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Mutate:
    name: str
    cell: int
    line: int
    reason: str
    block: tuple[int, ...] = ()
    # Assumed, not known: a method called as a statement (`Tools.mark()`) may change it.
    maybe: bool = False
    # Changed through what a call of `via` returned (`Pipeline([("s", s)]).fit(X)` changes s):
    # only if that call may give back what it was given.
    via: str | None = None
    # Given to a call of `given_to` (`sm.tsa.filters.hpfilter(y)`), which may change what it
    # is given: unless the callee is known to leave its arguments alone.
    given_to: str | None = None


@dataclass(frozen=True)
class Link:
    """`container.append(x)`, `container[k] = x`: container may now hold x's objects."""

    name: str
    sources: tuple[str, ...]
    cell: int
    line: int


@dataclass(frozen=True)
class Delete:
    name: str
    cell: int
    line: int


@dataclass(frozen=True)
class Call:
    name: str
    cell: int
    line: int
    args: tuple[tuple[str, ...], ...]
    kwargs: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class StarImport:
    module: str
    cell: int
    line: int
    span: Span


@dataclass(frozen=True)
class RandomCall:
    """A call that may seed or draw from a global random generator (`np.random.seed(0)`,
    `random.choice(xs)`, `train_test_split(X, y)`, `model.fit(X)` on an estimator made without
    `random_state`). The resolver, which knows what the names are bound to, decides."""

    callee: str  # dotted, as written: "np.random.rand", "rand", "df.sample"
    keywords: tuple[str, ...]  # keyword arguments given (`random_state` makes a call fixed)
    cell: int
    line: int
    via: str | None = None  # an object made without `random_state`, drawing when used


Event = Read | Bind | Mutate | Link | Delete | Call | StarImport | RandomCall


@dataclass(frozen=True)
class Fact:
    """A pattern-shaped fact found by an ast-grep rule."""

    rule: str
    kind: str  # "read" | "write" | "display" | "exec" | "seed" | "network" | "unserializable"
    cell: int
    line: int
    message: str
    name: str | None = None  # the variable involved, when the rule binds one
    path: str | None = None  # the file path, when it is a string literal


@dataclass(frozen=True)
class Statement:
    """A top-level statement: its lines and shape.

    shape: "import" | "function" | "class" | "nothing" (pass, docstring) | "call" (a call on an
    attribute chain as a statement: `pd.set_option(...)`, whose root is `root`) | "setting"
    (an assignment to attributes or items of `root`: `plt.rcParams["x"] = 1`) | "other".
    """

    span: Span
    shape: str
    root: str | None = None
    callee: str | None = None  # for "call": the dotted name called, e.g. "pd.set_option"


@dataclass(frozen=True)
class CellSymbols:
    cell: int
    events: tuple[Event, ...]
    facts: tuple[Fact, ...] = ()
    statements: tuple[Statement, ...] = ()
    display_only: bool = False
    shown: tuple[str, ...] = ()  # names shown bare or printed: metrics in a `metrics` cell
    parse_error: tuple[int, str] | None = None  # (line, message)
    warnings: tuple[tuple[str, int, str], ...] = field(default_factory=tuple)  # (code, line, msg)
    dead_reads: tuple[str, ...] = ()  # names read only in branches Python 3 never runs
    # Of those, the reads of notebook globals (no function or comprehension around binds the
    # name), and the globals its functions and lambdas read when called: (name, line) each.
    dead_global_reads: tuple[tuple[str, int], ...] = ()
    late_reads: tuple[tuple[str, int], ...] = ()
    # `global` statements inside functions: (line, UTF-8 column, names). Inside a step's
    # function they become `nonlocal`: the notebook's globals are that function's locals.
    global_statements: tuple[tuple[int, int, tuple[str, ...]], ...] = ()
    # `global` statements at a cell's top level, which do nothing there: (line, start, end).
    module_globals: tuple[tuple[int, int, int], ...] = ()
    # Calls fitting a model from a patsy formula at the cell's top level: (line, the names the
    # formula reads). statsmodels evaluates the formula again when such a model is unpickled.
    formulas: tuple[tuple[int, tuple[str, ...]], ...] = ()


# The step graph.

@dataclass(frozen=True)
class StepNode:
    name: str
    cells: tuple[int, ...]
    uses: tuple[str, ...]  # names read before being bound in the step (not builtins)
    defines: tuple[str, ...]  # names bound or changed at the step's top level
    mutates: tuple[str, ...]  # names from outside the step that it changes in place
    inputs: tuple[tuple[str, str], ...]  # (variable, producing step)
    parameters: tuple[str, ...]  # flow parameters the step reads
    outputs: tuple[str, ...]  # variables later steps take from this step
    code: tuple[CodeEntity, ...]  # code defined elsewhere that the step needs, notebook order
    after: tuple[str, ...]
    options: StepOptions
    metrics: tuple[str, ...]  # values this step publishes as metrics
    first_cell: int
    title: str | None  # the heading that started the step, when a heading did
    # Names the step reads from module level (imports, functions, builtins) before it binds
    # them itself: as one function's body, it must bind them first (else UnboundLocalError).
    module_reads: tuple[str, ...] = ()
    # Functions the step takes as values whose bodies read globals bound only after they were
    # made (Python looks those up when the body runs): (function, the globals), given to the
    # function before the step's code runs.
    late_globals: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # What it returns that it binds only conditionally, with no earlier value: unbound when
    # the condition does not hold (`if r > 3: m = r`), so returned only if bound.
    maybe_unbound: tuple[str, ...] = ()
    # Inputs the producing step may have left unbound (it returned UNBOUND for them).
    unbound_inputs: tuple[str, ...] = ()

    @property
    def reads(self) -> tuple[str, ...]:
        """What the step's function takes: the variables of its inputs and its parameters."""
        return tuple(sorted({*(variable for variable, _ in self.inputs), *self.parameters}))

    @property
    def returns(self) -> tuple[str, ...]:
        """What the step's function returns: what later steps take from it, and its metrics."""
        return tuple(sorted({*self.outputs, *self.metrics}))

    @property
    def upstream(self) -> tuple[str, ...]:
        """The steps it takes values from."""
        return tuple(sorted({producer for _, producer in self.inputs}))

    def producer(self, variable: str) -> str | None:
        """The step it takes `variable` from; None when `variable` is not one of its inputs."""
        return dict(self.inputs).get(variable)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    variables: tuple[str, ...]


@dataclass(frozen=True)
class StepGraph:
    notebook: Notebook
    steps: tuple[StepNode, ...]  # notebook order
    edges: tuple[Edge, ...]  # sorted by (source, target)
    parameters: tuple[Parameter, ...]  # notebook order
    order: tuple[str, ...]  # a topological order (notebook order among independent steps)
    diagnostics: tuple[Diagnostic, ...]
    symbols: dict[int, CellSymbols]  # by cell index, for code generation
    code: tuple[CodeEntity, ...] = ()  # every code entity of the pipeline, notebook order
    data_names: frozenset[str] = frozenset()  # names ever bound to data (or a parameter)
    # The global random generators the notebook seeds, carried from step to step as values:
    # (variable, generator) with generator "random" (the module) or "numpy" (np.random).
    random_states: tuple[tuple[str, str], ...] = ()

    def step(self, name: str) -> StepNode:
        return next(s for s in self.steps if s.name == name)

    # Queries, each computed once per graph (the dataclass is frozen, so they never go stale).

    def consumers(self, step: str, variable: str) -> tuple[str, ...]:
        """The steps that take `variable` from `step`, in notebook order."""
        return self._consumers.get((step, variable), ())

    def holders(self, step: str, variable: str) -> tuple[str, ...]:
        """`step`, then the step it took `variable` from, and so on back to the step that made
        it: a step that passes on what it was given (an alias, a value it changed in place)
        hands on the very object its producer made."""
        chain = [step]
        while (earlier := self._inputs.get(chain[-1], {}).get(variable)) and earlier not in chain:
            chain.append(earlier)
        return tuple(chain)

    def descendants(self, step: str) -> frozenset[str]:
        """Every step that runs after `step`, through data and `after:` edges."""
        return self._descendants[step]

    def ancestors(self, step: str) -> frozenset[str]:
        """Every step that runs before `step`, through data and `after:` edges."""
        return self._ancestors[step]

    def cycle_edges(self) -> tuple[tuple[str, str], ...]:
        """The edges that lie on a dependency cycle: their source is reachable from their
        target (both ends in one strongly connected part of the graph)."""
        return tuple(sorted((e.source, e.target) for e in self.edges
                            if e.source == e.target or e.source in self._descendants[e.target]))

    @cached_property
    def _inputs(self) -> dict[str, dict[str, str]]:
        return {node.name: dict(node.inputs) for node in self.steps}

    @cached_property
    def _consumers(self) -> dict[tuple[str, str], tuple[str, ...]]:
        found: dict[tuple[str, str], list[str]] = {}
        for node in self.steps:
            for variable, producer in node.inputs:
                found.setdefault((producer, variable), []).append(node.name)
        return {key: tuple(names) for key, names in found.items()}

    @cached_property
    def _descendants(self) -> dict[str, frozenset[str]]:
        return _reachable(self._names, ((e.source, e.target) for e in self.edges))

    @cached_property
    def _ancestors(self) -> dict[str, frozenset[str]]:
        return _reachable(self._names, ((e.target, e.source) for e in self.edges))

    @cached_property
    def _names(self) -> tuple[str, ...]:
        return (*(s.name for s in self.steps),
                *(n for e in self.edges for n in (e.source, e.target)))


def _reachable(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """Node -> the nodes reachable from it along `edges` (itself only through a cycle)."""
    following: dict[str, list[str]] = {node: [] for node in nodes}
    for source, target in edges:
        following[source].append(target)
    return {node: _reach(node, following) for node in following}


def _reach(start: str, following: Mapping[str, list[str]]) -> frozenset[str]:
    seen: set[str] = set()
    stack = list(following[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(following[node])
    return frozenset(seen)
