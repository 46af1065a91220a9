"""Scopes for the visitor: what a load, store or in-place change of a name means in each.

The notebook's top level turns them into events; a function body turns them into a summary of
what calling it reads and changes (late binding); comprehensions, lambdas and class bodies are
resolved against the scope around them, as Python does.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

from nb2pipe.analysis.aliases import HeldCall
from nb2pipe.model import (
    Bind,
    Call,
    CallSite,
    CodeEntity,
    CodeKind,
    Delete,
    Event,
    FunctionInfo,
    GivenCall,
    Link,
    Mutate,
    RandomCall,
    Read,
    Span,
    StarImport,
)

Names = tuple[str, ...]
HeldCalls = tuple[HeldCall, ...]
_BUILTINS = frozenset(dir(builtins))


class Scope:
    def __init__(self, parent: Scope | None) -> None:
        self.parent = parent

    def load(self, name: str, line: int, soft: bool = False, reference: bool = False) -> None:
        raise NotImplementedError

    def store(self, name: str, line: int, aliases: Names = (), keep: bool = False,
              made_by: str | None = None, call_args: HeldCalls = ()) -> None:
        raise NotImplementedError

    def mutate(self, name: str, line: int, reason: str, maybe: bool = False,
               via: str | None = None, given_to: str | None = None) -> None:
        raise NotImplementedError

    def link(self, name: str, sources: Names, line: int) -> None:
        raise NotImplementedError

    def delete(self, name: str, line: int) -> None:
        raise NotImplementedError

    def call(self, name: str, args: tuple[Names, ...], kwargs: tuple[tuple[str, Names], ...],
             line: int) -> None:
        raise NotImplementedError

    def define(self, name: str, node: ast.stmt, kind: CodeKind, info: FunctionInfo | None,
               module: str | None = None, text: str | None = None) -> None:
        """A def, class or import bound in this scope."""
        self.store(name, node.lineno)
        if info is not None:
            self.absorb(info, node.lineno)

    def star_import(self, module: str, node: ast.stmt) -> None:
        pass

    def late_read(self, name: str, line: int) -> None:
        """A function or lambda inside this scope reads `name`, not its own, when called."""
        if self.parent is not None:
            self.parent.late_read(name, line)

    def is_global(self, name: str) -> bool:
        """Whether `name` read here is the notebook's global (no scope in between binds it)."""
        return self.parent is None or self.parent.is_global(name)

    def random_call(self, call: RandomCall) -> None:
        """A call that may seed or draw from a global generator."""
        if self.parent is not None:
            self.parent.random_call(call)

    def absorb(self, info: FunctionInfo, line: int) -> None:
        """A nested function's free names are reads of this scope (conservatively, at once)."""
        for name in info.free_reads:
            self.load(name, line, soft=True)
        for name in info.free_mutations:
            self.mutate(name, line, "changed by a nested function")
        for given in info.given:
            self.give(given, line)
        for call in info.random_calls:
            self.random_call(call)

    def give(self, given: GivenCall, line: int) -> None:
        """A nested function gives one of this scope's names to a call that may change it."""
        self.mutate(given.name, line, f"given to {given.callee}() by a nested function",
                    given_to=given.callee)

    def walrus_scope(self) -> Scope:
        return self

    def enter_block(self) -> None:
        """A conditional block starts (an if/else branch, a loop body, a try clause)."""

    def leave_block(self) -> None:
        pass

    def enter_loop(self, bound: frozenset[str]) -> None:
        """A loop body starts; it binds `bound`, so a read of one of them may see the value an
        earlier iteration bound."""

    def leave_loop(self) -> None:
        pass

    def enter_guard(self) -> None:
        """A `try` body whose handlers catch NameError starts: a missing name is expected."""

    def leave_guard(self) -> None:
        pass


class ModuleScope(Scope):
    """The notebook's top level, one cell at a time: emits events."""

    def __init__(self, cell: int) -> None:
        super().__init__(None)
        self.cell = cell
        self.events: list[Event] = []
        self.block: tuple[int, ...] = ()  # conditional blocks we are in, outermost first
        self.blocks_opened = 0
        self.statement_span = Span(cell, 1, 1)
        self.statement_reads: list[str] = []
        self.import_guard = False  # the statement only guards imports (`try: import x ...`)
        self.loops: list[frozenset[str]] = []  # names bound by each enclosing loop body
        self.guards = 0
        self.late_reads: dict[tuple[str, int], None] = {}  # (name, line), in order

    def late_read(self, name: str, line: int) -> None:
        self.late_reads[(name, line)] = None

    def load(self, name: str, line: int, soft: bool = False, reference: bool = False) -> None:
        carried = any(name in bound for bound in self.loops)
        self.events.append(Read(name, self.cell, line, soft or carried, self.block,
                                optional=self.guards > 0, reference=reference))
        self.statement_reads.append(name)

    def store(self, name: str, line: int, aliases: Names = (), keep: bool = False,
              made_by: str | None = None, call_args: HeldCalls = ()) -> None:
        self.events.append(Bind(name, self.cell, line, aliases, bool(self.block),
                                keep_aliases=keep, block=self.block, made_by=made_by,
                                call_args=call_args))

    def mutate(self, name: str, line: int, reason: str, maybe: bool = False,
               via: str | None = None, given_to: str | None = None) -> None:
        self.events.append(Mutate(name, self.cell, line, reason, self.block, maybe, via,
                                  given_to))

    def link(self, name: str, sources: Names, line: int) -> None:
        if sources:
            self.events.append(Link(name, sources, self.cell, line))

    def delete(self, name: str, line: int) -> None:
        self.events.append(Delete(name, self.cell, line))

    def call(self, name: str, args: tuple[Names, ...], kwargs: tuple[tuple[str, Names], ...],
             line: int) -> None:
        self.events.append(Call(name, self.cell, line, args, kwargs))

    def define(self, name: str, node: ast.stmt, kind: CodeKind, info: FunctionInfo | None,
               module: str | None = None, text: str | None = None) -> None:
        reads = tuple(dict.fromkeys(self.statement_reads))
        decorators = tuple(dict.fromkeys(
            root for d in getattr(node, "decorator_list", ()) if (root := _decorator_root(d))))
        span = self.statement_span
        if kind == "import" and (self.block or node.lineno != span.start):
            if self.import_guard:
                text = None  # inside try/if guarding imports: the whole statement is the code
            else:  # inside a statement that computes: the import line alone is
                span = Span(self.cell, node.lineno, node.end_lineno or node.lineno)
        entity = CodeEntity(kind, (name,), span, reads, info, module, text, decorators)
        self.events.append(Bind(name, self.cell, node.lineno, (), bool(self.block), entity,
                                block=self.block))

    def star_import(self, module: str, node: ast.stmt) -> None:
        self.events.append(StarImport(module, self.cell, node.lineno, self.statement_span))

    def random_call(self, call: RandomCall) -> None:
        self.events.append(call)

    def enter_block(self) -> None:
        self.blocks_opened += 1
        self.block = (*self.block, self.blocks_opened)

    def leave_block(self) -> None:
        self.block = self.block[:-1]

    def enter_loop(self, bound: frozenset[str]) -> None:
        self.loops.append(bound)

    def leave_loop(self) -> None:
        self.loops.pop()

    def enter_guard(self) -> None:
        self.guards += 1

    def leave_guard(self) -> None:
        self.guards -= 1


@dataclass
class FunctionScope(Scope):
    """A function or lambda body: builds a FunctionInfo, emits nothing."""

    parent: Scope | None
    params: Names
    local_names: frozenset[str]
    global_names: frozenset[str] = frozenset()
    free: dict[str, None] = field(default_factory=dict)
    free_mutations: dict[str, None] = field(default_factory=dict)
    global_writes: dict[str, None] = field(default_factory=dict)
    mutated_params: dict[str, None] = field(default_factory=dict)
    calls: list[CallSite] = field(default_factory=list)
    aliases: dict[str, set[str]] = field(default_factory=dict)
    is_generator: bool = False
    random_calls: list[RandomCall] = field(default_factory=list)
    mutable_defaults: frozenset[str] = frozenset()  # parameters whose default is not constant
    closes_over_state: bool = False  # a function it makes changes this one's variables
    returned: set[str] = field(default_factory=set)  # parameters what it returns may hold
    given: dict[GivenCall, None] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # imported in the body: its module

    def returns(self, names: Names) -> None:
        self.returned.update(n for n in self.resolve(names) if n in self.params)

    def absorb(self, info: FunctionInfo, line: int) -> None:
        super().absorb(info, line)
        if any(self._is_local(n) for n in (*info.free_mutations, *info.global_writes)):
            # `inner.calls += 1`, `nonlocal count; count += 1`: what it returns keeps state
            self.closes_over_state = True

    def random_call(self, call: RandomCall) -> None:
        root = call.callee.partition(".")[0]
        if not self._is_local(root):  # `rng.choice(...)` on a parameter is not global state
            self.random_calls.append(call)

    def _is_local(self, name: str) -> bool:
        return name in self.local_names and name not in self.global_names

    def is_local(self, name: str) -> bool:
        """A name of this function's own (a parameter, an assignment), not a global."""
        return self._is_local(name)

    def load(self, name: str, line: int, soft: bool = False, reference: bool = False) -> None:
        if not self._is_local(name):
            self.free[name] = None
            if not soft and self.parent is not None:  # soft: a nested function's, already told
                self.parent.late_read(name, line)

    def late_read(self, name: str, line: int) -> None:
        if not self._is_local(name) and self.parent is not None:
            self.parent.late_read(name, line)

    def is_global(self, name: str) -> bool:
        return not self._is_local(name) and super().is_global(name)

    def store(self, name: str, line: int, aliases: Names = (), keep: bool = False,
              made_by: str | None = None, call_args: HeldCalls = ()) -> None:
        if name in self.global_names:
            self.global_writes[name] = None
        elif not keep:
            # what a call returns may hold what it was given (only a builtin's is known not to)
            given = tuple(n for callee, names in call_args if callee not in _BUILTINS
                          for n in names)
            self.aliases[name] = set(self.resolve((*aliases, *given)))

    def resolve(self, names: Names) -> Names:
        """The parameters and globals that local names may refer to."""
        found: dict[str, None] = {}
        for name in names:
            if name in self.aliases:
                found.update(dict.fromkeys(sorted(self.aliases[name])))
            elif name in self.params or not self._is_local(name):
                found[name] = None
        return tuple(found)

    def define(self, name: str, node: ast.stmt, kind: CodeKind, info: FunctionInfo | None,
               module: str | None = None, text: str | None = None) -> None:
        super().define(name, node, kind, info, module, text)
        if kind == "import" and module is not None and self._is_local(name):
            self.imports[name] = module
        else:
            self.imports.pop(name, None)

    def mutate(self, name: str, line: int, reason: str, maybe: bool = False,
               via: str | None = None, given_to: str | None = None) -> None:
        if given_to is not None:
            self.give(GivenCall(name, given_to), line)
            return
        for target in self.resolve((name,)):
            if target in self.params and target not in self.global_names:
                self.mutated_params[target] = None
            elif not self._is_local(target):
                self.free_mutations[target] = None

    def give(self, given: GivenCall, line: int) -> None:
        """Whether a call changes what it is given is the callee's to say, where the function
        is called (the resolver's rule for the notebook's own calls): kept in the summary for
        the parameters and globals the name may refer to. A callee that is a local value (a
        method of one, a parameter called) is not a library's, as at the top level."""
        module = given.module
        root = given.callee.partition(".")[0]
        if module is None and self._is_local(root):
            module = self.imports.get(root)
            if module is None:
                return
        for target in self.resolve((given.name,)):  # parameters and globals
            self.given[GivenCall(target, given.callee, module)] = None

    def link(self, name: str, sources: Names, line: int) -> None:
        if self._is_local(name) and name not in self.params:
            self.aliases.setdefault(name, set()).update(self.resolve(sources))

    def delete(self, name: str, line: int) -> None:
        pass

    def call(self, name: str, args: tuple[Names, ...], kwargs: tuple[tuple[str, Names], ...],
             line: int) -> None:
        self.calls.append(CallSite(
            name,
            tuple(self.resolve(a) for a in args),
            tuple((k, self.resolve(v)) for k, v in kwargs),
            line,
        ))

    def info(self) -> FunctionInfo:
        return FunctionInfo(
            params=self.params,
            free_reads=tuple(self.free),
            free_mutations=tuple(self.free_mutations),
            global_writes=tuple(self.global_writes),
            mutated_params=tuple(self.mutated_params),
            calls=tuple(self.calls),
            is_generator=self.is_generator,
            random_calls=tuple(self.random_calls),
            stateful=bool(self.mutable_defaults & set(self.mutated_params)),
            closes_over_state=self.closes_over_state,
            returns_arguments=bool(self.returned),
            given=tuple(self.given),
        )


class ComprehensionScope(Scope):
    """Loop targets are local; everything else is the enclosing scope's."""

    def __init__(self, parent: Scope) -> None:
        super().__init__(parent)
        self.parent: Scope = parent
        self.aliases: dict[str, Names] = {}

    def _outer(self, names: Names) -> Names:
        found: dict[str, None] = {}
        for name in names:
            found.update(dict.fromkeys(self.aliases.get(name, (name,))))
        return tuple(found)

    def load(self, name: str, line: int, soft: bool = False, reference: bool = False) -> None:
        if name not in self.aliases:
            self.parent.load(name, line, soft, reference)

    def late_read(self, name: str, line: int) -> None:
        if name not in self.aliases:
            self.parent.late_read(name, line)

    def is_global(self, name: str) -> bool:
        return name not in self.aliases and self.parent.is_global(name)

    def store(self, name: str, line: int, aliases: Names = (), keep: bool = False,
              made_by: str | None = None, call_args: HeldCalls = ()) -> None:
        self.aliases[name] = self._outer(aliases)

    def mutate(self, name: str, line: int, reason: str, maybe: bool = False,
               via: str | None = None, given_to: str | None = None) -> None:
        for target in self._outer((name,)):
            self.parent.mutate(target, line, reason, maybe, via, given_to)

    def link(self, name: str, sources: Names, line: int) -> None:
        for target in self._outer((name,)):
            self.parent.link(target, self._outer(sources), line)

    def delete(self, name: str, line: int) -> None:
        pass

    def call(self, name: str, args: tuple[Names, ...], kwargs: tuple[tuple[str, Names], ...],
             line: int) -> None:
        if name not in self.aliases:
            self.parent.call(
                name, tuple(self._outer(a) for a in args),
                tuple((k, self._outer(v)) for k, v in kwargs), line,
            )

    def walrus_scope(self) -> Scope:
        return self.parent.walrus_scope()


class ClassScope(Scope):
    """A class body runs at once; its methods run later, when the class is used."""

    def __init__(self, parent: Scope, bases: Names = ()) -> None:
        super().__init__(parent)
        self.parent: Scope = parent
        self.local: set[str] = set()
        self.methods: list[FunctionInfo] = []
        self.bases = bases
        self.changes_itself = False

    def load(self, name: str, line: int, soft: bool = False, reference: bool = False) -> None:
        if name not in self.local:
            self.parent.load(name, line, soft, reference)

    def store(self, name: str, line: int, aliases: Names = (), keep: bool = False,
              made_by: str | None = None, call_args: HeldCalls = ()) -> None:
        self.local.add(name)

    def mutate(self, name: str, line: int, reason: str, maybe: bool = False,
               via: str | None = None, given_to: str | None = None) -> None:
        if name not in self.local:
            self.parent.mutate(name, line, reason, maybe, via, given_to)

    def link(self, name: str, sources: Names, line: int) -> None:
        pass

    def delete(self, name: str, line: int) -> None:
        self.local.discard(name)

    def call(self, name: str, args: tuple[Names, ...], kwargs: tuple[tuple[str, Names], ...],
             line: int) -> None:
        if name not in self.local:
            self.parent.call(name, args, kwargs, line)

    def define(self, name: str, node: ast.stmt, kind: CodeKind, info: FunctionInfo | None,
               module: str | None = None, text: str | None = None) -> None:
        self.local.add(name)
        if info is not None:
            self.methods.append(info)
            decorators = {_decorator_root(d) for d in getattr(node, "decorator_list", ())}
            if "classmethod" in decorators and info.params and (
                    info.params[0] in info.mutated_params):
                self.changes_itself = True  # `cls.count += 1`: calling it changes the class

    def info(self) -> FunctionInfo:
        """Using the class may run any method (its own or a base class's): the union of what
        they read and change."""
        free: dict[str, None] = {}
        mutations: dict[str, None] = {}
        writes: dict[str, None] = {}
        calls: list[CallSite] = []
        random_calls: list[RandomCall] = []
        given: dict[GivenCall, None] = {}
        for method in self.methods:
            # (what a method gives to a library of its own parameters is, like what it
            # changes of them, not known per call of the class)
            given.update((g, None) for g in method.given if g.name not in method.params)
            random_calls.extend(method.random_calls)
            free.update(dict.fromkeys(method.free_reads))  # methods do not see class names
            mutations.update(dict.fromkeys(method.free_mutations))
            writes.update(dict.fromkeys(method.global_writes))
            calls.extend(method.calls)
        return FunctionInfo(params=(), free_reads=tuple(free), free_mutations=tuple(mutations),
                            global_writes=tuple(writes), calls=tuple(calls),
                            inherits=self.bases, random_calls=tuple(random_calls),
                            stateful=self.changes_itself, given=tuple(given))


def _decorator_root(node: ast.expr) -> str | None:
    """`@register` -> register, `@app.get("/")` -> app, `@functools.cache` -> functools."""
    while isinstance(node, ast.Call | ast.Attribute | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None
