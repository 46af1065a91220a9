"""What the analyzer says about each cell: an ordered stream of name events, plus facts.

The analyzer (stage 3) knows Python scoping but nothing about other cells; the graph stage (4)
replays the events in notebook order, with what earlier cells defined, to find reaching
definitions. Events are plain frozen data, so the graph stage never touches `ast`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
class FunctionInfo:
    """What calling a notebook function (or instantiating a class) does to notebook globals."""

    params: tuple[str, ...]  # positional parameter names, in order
    free_reads: tuple[str, ...]  # globals read when the body runs (late binding)
    free_mutations: tuple[str, ...] = ()  # globals the body may change in place
    global_writes: tuple[str, ...] = ()  # globals bound through a `global` statement
    mutated_params: tuple[str, ...] = ()  # parameters whose argument the body may change
    calls: tuple[CallSite, ...] = ()
    is_generator: bool = False


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


@dataclass(frozen=True)
class Read:
    name: str
    cell: int
    line: int
    soft: bool = False  # late-bound (lambda body): fine if bound later in the same step
    block: tuple[int, ...] = ()  # the conditional blocks (if/loop/try branches) it is in


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


@dataclass(frozen=True)
class Mutate:
    name: str
    cell: int
    line: int
    reason: str
    block: tuple[int, ...] = ()


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


Event = Read | Bind | Mutate | Link | Delete | Call | StarImport


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
    attribute chain as a statement: `pd.set_option(...)`, whose root is `root`) | "other".
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
