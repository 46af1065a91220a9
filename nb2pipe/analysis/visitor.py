"""Stage 3, analyze: walk one cell's `ast` in evaluation order and tell its scope what happens.

Values are evaluated before targets; function bodies are summarised for late binding; aliases
(`b = a`, `[train, test]`, `for df in frames`, `models["rf"]`) are reported so a change through one
name reaches the objects the others refer to.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable, Sequence

from nb2pipe.analysis.aliases import held_calls, selects, sources
from nb2pipe.analysis.bindings import function_locals, is_generator, loop_bound_names
from nb2pipe.analysis.chains import dotted, root_name
from nb2pipe.analysis.evaluated import evaluated
from nb2pipe.analysis.randomness import DRAWING_CLASSES
from nb2pipe.analysis.rules import MUTATING_METHODS, SpanKey
from nb2pipe.analysis.scopes import (
    ClassScope,
    ComprehensionScope,
    FunctionScope,
    HeldCalls,
    ModuleScope,
    Names,
    Scope,
)
from nb2pipe.analysis.versions import static_test
from nb2pipe.model import RandomCall, Span


class Visitor:
    def __init__(self, cell: int, lines: Sequence[str], calls: dict[SpanKey, set[str]],
                 selectors: set[str] | None = None, generators: set[str] | None = None,
                 drawers: set[str] | None = None, iterators: set[str] | None = None,
                 literals: set[str] | None = None) -> None:
        self.cell = cell
        self.lines = lines
        self.calls = calls
        # `global` statements inside functions: (line, UTF-8 column, names)
        self.global_statements: dict[tuple[int, int], tuple[str, ...]] = {}
        self.dead_reads: dict[str, None] = {}  # names read in branches Python 3 never runs
        self.dead_global_reads: dict[tuple[str, int], None] = {}  # of globals: (name, line)
        self.module_globals: list[tuple[int, int, int]] = []  # top-level `global` statements
        # lines of calls evaluating a string built at run time (a formula, a query)
        self.unknown_strings: list[int] = []
        self.formulas: list[tuple[int, tuple[str, ...]]] = []  # (line, names) of formulas
        self.tree = ast.Module(body=[], type_ignores=[])
        # Names bound to boolean masks or lists of labels, in notebook order (shared by the
        # cells): `df[mask]` and `df[columns]` are new objects, not parts of `df`.
        self.selectors: set[str] = selectors if selectors is not None else set()
        # Names bound to random generators (`rng = np.random.default_rng(0)`), shared the same
        # way: any method call on one draws from it, which changes it.
        self.generators: set[str] = generators if generators is not None else set()
        # Names bound to estimators made without `random_state` (`KMeans(3)`): using one draws
        # from numpy's global generator.
        self.drawers: set[str] = drawers if drawers is not None else set()
        # Names bound to lazy iterators (`it = iter(xs)`, `(v for v in xs)`), shared the same
        # way: a call given one, or a loop over one, consumes it, which changes it.
        self.iterators: set[str] = iterators if iterators is not None else set()
        # Names bound to immutable literals (`k = 5`, `name = "a"`), shared the same way: an
        # object a call returns cannot hold them in a way a change through it could reach.
        self.literals: set[str] = literals if literals is not None else set()
        self._statement: dict[type, Callable[[ast.AST, Scope], None]] = {
            ast.FunctionDef: self._function_def,
            ast.AsyncFunctionDef: self._function_def,
            ast.ClassDef: self._class_def,
            ast.Assign: self._assign,
            ast.AugAssign: self._aug_assign,
            ast.AnnAssign: self._ann_assign,
            ast.For: self._for,
            ast.AsyncFor: self._for,
            ast.While: self._while,
            ast.If: self._if,
            ast.With: self._with,
            ast.AsyncWith: self._with,
            ast.Try: self._try,
            ast.Match: self._match,
            ast.Import: self._import,
            ast.ImportFrom: self._import_from,
            ast.Delete: self._delete,
            ast.Global: self._global,
            ast.Nonlocal: self._global,
            ast.Return: self._return,
        }
        if hasattr(ast, "TryStar"):
            self._statement[ast.TryStar] = self._try
        if hasattr(ast, "TypeAlias"):  # Python 3.12+: `type Vec = list[float]`
            self._statement[ast.TypeAlias] = self._type_alias

    # -- module level ------------------------------------------------------------------------

    def module(self, tree: ast.Module) -> ModuleScope:
        scope = ModuleScope(self.cell)
        self.tree = tree
        for node in tree.body:
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
            scope.statement_span = Span(self.cell, start, node.end_lineno or node.lineno)
            scope.statement_reads = []
            scope.import_guard = _guards_imports(node)
            self.statement(node, scope)
        return scope

    # -- statements --------------------------------------------------------------------------

    def statements(self, body: Sequence[ast.stmt], scope: Scope) -> None:
        for at, node in enumerate(body):
            self.statement(node, scope)
            if isinstance(node, ast.Return | ast.Raise | ast.Continue | ast.Break):
                for dead in body[at + 1:]:  # never runs: what it reads is no use
                    self._dead(dead, scope)
                return

    def statement(self, node: ast.stmt, scope: Scope) -> None:
        handler = self._statement.get(type(node))
        if handler is not None:
            handler(node, scope)
            return
        for child in ast.iter_child_nodes(node):  # Expr, Return, Raise, Assert, ...
            if isinstance(child, ast.expr):
                self.expr(child, scope)

    def _branch(self, scope: Scope, *bodies: Sequence[ast.stmt]) -> None:
        """Each body is a branch that may or may not run: its own conditional block."""
        for body in bodies:
            if body:
                scope.enter_block()
                self.statements(body, scope)
                scope.leave_block()

    def _function_def(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for expr in (*node.decorator_list, *_defaults(node.args)):
            self.expr(expr, scope)
        annotations = _type_param_scope(node, scope)
        for expr in _annotations(node):
            self.expr(expr, annotations)
        body = self.function_scope(node.args, node.body, scope, _type_params(node))
        body.is_generator = is_generator(node)
        body.mutable_defaults = _mutable_defaults(node.args)
        self.statements(node.body, body)
        if body.is_generator or _makes_closures(node.body):
            # the generator or the function it makes keeps the call's frame: all it was given
            body.returns(body.params)
        scope.define(node.name, node, "function", body.info())
        self._decorate(node, scope)

    def _decorate(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                  scope: Scope) -> None:
        """`@register`: the decorator is called with the new function when the definition runs
        (what it changes is changed there, once)."""
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Name):
                scope.call(decorator.id, ((node.name,),), (), decorator.lineno)

    def function_scope(self, args: ast.arguments, body: Sequence[ast.AST], parent: Scope,
                       type_params: Names = ()) -> FunctionScope:
        params = tuple(a.arg for a in (*args.posonlyargs, *args.args))
        extra = [a.arg for a in (*args.kwonlyargs, args.vararg, args.kwarg) if a is not None]
        extra.extend(type_params)  # PEP 695: `def f[T](a: T)` binds T for its own scope
        local_names, global_names = function_locals(body)
        if global_names:
            for part in body:
                for n in ast.walk(part):
                    if isinstance(n, ast.Global):
                        self.global_statements[(n.lineno, n.col_offset)] = tuple(n.names)
        return FunctionScope(
            parent=parent,
            params=(*params, *extra),
            local_names=frozenset((*params, *extra, *local_names)),
            global_names=frozenset(global_names),
        )

    def _class_def(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.ClassDef)
        for expr in node.decorator_list:
            self.expr(expr, scope)
        outer = _type_param_scope(node, scope)
        bases: list[str] = []
        for base in node.bases:
            if isinstance(base, ast.Name):
                # Naming a base class runs none of its methods: what they read is read when
                # the new class is used (its info inherits theirs), not here.
                outer.load(base.id, base.lineno, reference=True)
                bases.append(base.id)
            else:
                self.expr(base, outer)
        for keyword in node.keywords:
            self.expr(keyword.value, outer)
        body = ClassScope(outer, tuple(bases))
        body.local.update(_type_params(node))
        self.statements(node.body, body)
        scope.define(node.name, node, "class", body.info())
        self._decorate(node, scope)

    def _type_alias(self, node: ast.AST, scope: Scope) -> None:
        """`type Vec = list[T]` (3.12+): binds Vec; the value is evaluated lazily, when used."""
        name = getattr(node, "name", None)
        value = getattr(node, "value", None)
        if not isinstance(name, ast.Name) or not isinstance(value, ast.expr):
            return
        lazy = FunctionScope(parent=scope, params=(),
                             local_names=frozenset(_type_params(node)))
        self.expr(value, lazy)
        assert isinstance(node, ast.stmt)
        scope.define(name.id, node, "class", lazy.info())

    def _assign(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.Assign)
        self.expr(node.value, scope)
        for target in node.targets:
            self.target(target, scope, node.value)

    def _aug_assign(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.AugAssign)
        target = node.target
        if isinstance(target, ast.Name):
            scope.load(target.id, node.lineno)
            self.expr(node.value, scope)
            scope.mutate(target.id, node.lineno, "augmented assignment")
            scope.store(target.id, node.lineno, keep=True)
            return
        self.expr(target, scope)
        self.expr(node.value, scope)
        root = root_name(target)
        if root:
            scope.mutate(root, node.lineno, "augmented assignment")

    def _ann_assign(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.AnnAssign)
        if isinstance(scope, ModuleScope | ClassScope):
            self.expr(node.annotation, scope)  # evaluated at run time outside functions
        if node.value is not None:
            self.expr(node.value, scope)
            self.target(node.target, scope, node.value)

    def _for(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.For | ast.AsyncFor)
        self.expr(node.iter, scope)
        self._consume(node.iter, scope)
        scope.enter_block()
        self.target(node.target, scope, None, self.sources(node.iter))
        scope.enter_loop(loop_bound_names(node.body))
        self.statements(node.body, scope)
        scope.leave_loop()
        scope.leave_block()
        self._branch(scope, node.orelse)

    def _while(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.While)
        self.expr(node.test, scope)
        scope.enter_loop(loop_bound_names(node.body))
        self._branch(scope, node.body)
        scope.leave_loop()
        self._branch(scope, node.orelse)

    def _if(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.If)
        self.expr(node.test, scope)
        known = static_test(node.test)
        if known is None:
            self._branch(scope, node.body, node.orelse)
            return
        # `if sys.version_info < (3,): s = unicode(s)`: one branch never runs on Python 3.
        live, dead = (node.body, node.orelse) if known else (node.orelse, node.body)
        for child in dead:
            self._dead(child, scope)
        self.statements(live, scope)

    def _dead(self, node: ast.stmt, scope: Scope) -> None:
        """A statement that never runs: the names it reads are no input of anything."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                self.dead_reads[sub.id] = None
                if scope.is_global(sub.id):
                    self.dead_global_reads[(sub.id, sub.lineno)] = None

    def _with(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.With | ast.AsyncWith)
        for item in node.items:
            self.expr(item.context_expr, scope)
            if item.optional_vars is not None:
                self.target(item.optional_vars, scope, None, self.sources(item.context_expr))
        self.statements(node.body, scope)

    def _try(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.Try)
        guarded = any(_catches_name_error(h.type) for h in node.handlers)
        if guarded:  # `try: unicode` / `except NameError: unicode = str`
            scope.enter_guard()
        self._branch(scope, node.body)
        if guarded:
            scope.leave_guard()
        for handler in node.handlers:
            scope.enter_block()
            if handler.type is not None:
                self.expr(handler.type, scope)
            if handler.name:
                scope.store(handler.name, handler.lineno)
            self.statements(handler.body, scope)
            if handler.name:  # Python ends the handler with `err = None; del err`
                end = handler.end_lineno or handler.lineno
                scope.store(handler.name, end)
                scope.delete(handler.name, end)
            scope.leave_block()
        self._branch(scope, node.orelse)
        self.statements(node.finalbody, scope)

    def _match(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.Match)
        self.expr(node.subject, scope)
        shared = self.sources(node.subject)
        for case in node.cases:
            scope.enter_block()
            for sub in ast.walk(case.pattern):
                if isinstance(sub, ast.MatchValue | ast.MatchClass):
                    self.expr(sub.value if isinstance(sub, ast.MatchValue) else sub.cls, scope)
                name = getattr(sub, "name", None) or getattr(sub, "rest", None)
                if name:
                    scope.store(name, case.pattern.lineno, shared)
            if case.guard is not None:
                self.expr(case.guard, scope)
            self.statements(case.body, scope)
            scope.leave_block()

    def _import(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.Import)
        for alias in node.names:
            bound = alias.asname or alias.name.partition(".")[0]
            text = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
            scope.define(bound, node, "import", None, alias.name, text)

    def _import_from(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.ImportFrom)
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name == "*":
                scope.star_import(module, node)
            else:
                text = f"from {module} import {alias.name}"
                text += f" as {alias.asname}" if alias.asname else ""
                scope.define(alias.asname or alias.name, node, "import", None, module, text)

    def _delete(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.Delete)
        for target in node.targets:
            for leaf in _flatten(target):
                if isinstance(leaf, ast.Name):
                    scope.delete(leaf.id, node.lineno)
                else:
                    self.expr(leaf, scope)
                    root = root_name(leaf)
                    if root:
                        scope.mutate(root, node.lineno, "del of an item or attribute")

    def _return(self, node: ast.AST, scope: Scope) -> None:
        assert isinstance(node, ast.Return)
        if node.value is not None:
            self.expr(node.value, scope)
            if isinstance(scope, FunctionScope):
                # `return sklearn.pipeline.make_pipeline(x)`: a module's function may give
                # back what it was given (a method of a local value is assumed not to)
                held = [n for callee, names in held_calls(node.value, self.selectors)
                        if "." in callee and not scope.is_local(callee.partition(".")[0])
                        for n in names]
                scope.returns((*self.sources(node.value), *_passed_on(node.value), *held))

    def _global(self, node: ast.AST, scope: Scope) -> None:
        # In a function: handled when its locals are collected. At a cell's top level it does
        # nothing, but in a step's function it would: noted, so the generated code drops it.
        if isinstance(scope, ModuleScope) and isinstance(node, ast.Global):
            self.module_globals.append((node.lineno, node.col_offset, node.end_col_offset or 0))

    # -- assignment targets ------------------------------------------------------------------

    def target(self, node: ast.expr, scope: Scope, value: ast.expr | None,
               shared: Names | None = None, held: HeldCalls | None = None) -> None:
        if shared is None:
            shared = self.sources(value) if value is not None else ()
        if held is None:
            held = self._held_calls(value)
        if isinstance(node, ast.Name):
            if isinstance(scope, ModuleScope):
                selector = value is not None and selects(value, self.selectors)
                for known, belongs in ((self.selectors, selector),
                                       (self.generators, _makes_generator(value)),
                                       (self.drawers, _makes_drawer(value)),
                                       (self.iterators, _makes_iterator(value)),
                                       (self.literals, _immutable_literal(value))):
                    if belongs:
                        known.add(node.id)
                    else:
                        known.discard(node.id)
            made_by = dotted(value.func) if isinstance(value, ast.Call) else None
            scope.store(node.id, node.lineno, shared, made_by=made_by, call_args=held)
        elif isinstance(node, ast.Tuple | ast.List):
            pairs = (
                isinstance(value, ast.Tuple | ast.List)
                and len(value.elts) == len(node.elts)
                and not any(isinstance(e, ast.Starred) for e in (*value.elts, *node.elts))
            )
            for i, element in enumerate(node.elts):
                if pairs:
                    assert isinstance(value, ast.Tuple | ast.List)
                    self.target(element, scope, value.elts[i])
                else:
                    self.target(element, scope, None, shared, held)
        elif isinstance(node, ast.Starred):
            self.target(node.value, scope, None, shared, held)
        elif isinstance(node, ast.Attribute | ast.Subscript):
            self.expr(node.value, scope)
            if isinstance(node, ast.Subscript):
                self.expr(node.slice, scope)
            root = root_name(node)
            if root:
                scope.link(root, shared, node.lineno)
                kind = "attribute" if isinstance(node, ast.Attribute) else "item"
                scope.mutate(root, node.lineno, f"{kind} assignment")

    # -- expressions -------------------------------------------------------------------------

    def expr(self, node: ast.expr, scope: Scope) -> None:
        kind = type(node)
        if kind is ast.Name:
            assert isinstance(node, ast.Name)
            if isinstance(node.ctx, ast.Load):
                scope.load(node.id, node.lineno)
        elif kind is ast.Call:
            assert isinstance(node, ast.Call)
            self._call(node, scope)
        elif kind is ast.Constant:
            return
        elif kind is ast.Lambda:
            assert isinstance(node, ast.Lambda)
            for default in _defaults(node.args):
                self.expr(default, scope)
            body = self.function_scope(node.args, [node.body], scope)
            self.expr(node.body, body)
            body.returns((*self.sources(node.body), *_passed_on(node.body)))
            if _makes_closures([node.body]):
                body.returns(body.params)
            scope.absorb(body.info(), node.lineno)
        elif kind in _COMPREHENSIONS:
            self._comprehension(node, scope)
        elif kind is ast.NamedExpr:
            assert isinstance(node, ast.NamedExpr)
            self.expr(node.value, scope)
            scope.walrus_scope().store(node.target.id, node.lineno, self.sources(node.value))
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, scope)
                elif isinstance(child, ast.keyword):
                    self.expr(child.value, scope)

    def _call(self, node: ast.Call, scope: Scope) -> None:
        self.expr(node.func, scope)
        for arg in node.args:
            self.expr(arg, scope)
        for keyword in node.keywords:
            self.expr(keyword.value, scope)
        if isinstance(node.func, ast.Name):
            scope.call(
                node.func.id,
                tuple(self._changeable(self.sources(a), scope) for a in node.args),
                tuple((k.arg or "**", self._changeable(self.sources(k.value), scope))
                      for k in node.keywords),
                node.lineno,
            )
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            # `Counter.bump()`: a method of what the name is; the resolver knows whether that
            # is a class whose classmethod changes it
            scope.call(f"{node.func.value.id}.{node.func.attr}", (), (), node.lineno)
        if isinstance(node.func, ast.Attribute):
            drawn = root_name(node.func.value)
            if drawn in self.generators:
                scope.mutate(drawn, node.lineno, f".{node.func.attr}() draws from the generator")
            elif drawn in self.drawers and isinstance(node.func.value, ast.Name):
                scope.random_call(RandomCall(f"{drawn}.{node.func.attr}", (), self.cell,
                                             node.lineno, via=drawn))
        self._random_call(node, scope)
        self._evaluated(node, scope)
        self._writes_into(node, scope)
        self._given(node, scope)
        for arg in (*node.args, *(k.value for k in node.keywords)):
            self._consume(arg, scope)
        actions = self.calls.get(self._span(node)) if self.calls else None
        if not actions:
            return
        receiver = root_name(node.func.value) if isinstance(node.func, ast.Attribute) else None
        if receiver and "mutate" in actions:
            method = node.func.attr if isinstance(node.func, ast.Attribute) else "call"
            # `Tools.mark()` as a statement: assumed to change Tools, not known to
            assumed = isinstance(node.func, ast.Attribute) and isinstance(
                node.func.value, ast.Name) and not re.match(MUTATING_METHODS, method)
            scope.mutate(receiver, node.lineno, f".{method}() changes it in place", assumed)
        elif (isinstance(node.func, ast.Attribute) and "mutate" in actions
              and re.match(MUTATING_METHODS, node.func.attr)):
            # `Pipeline([("s", scaler)]).fit(X)`: a change of what a call returned is a change
            # of what it was given, if it gives that back
            for callee, names in self._held_calls(node.func.value):
                for name in names:
                    scope.mutate(name, node.lineno, f".{node.func.attr}() changes what "
                                 f"{callee or 'a call'} was given", via=callee)
        if receiver and "store" in actions:
            stored: tuple[str, ...] = ()
            for arg in (*node.args, *(k.value for k in node.keywords)):
                stored += self.sources(arg)
            scope.link(receiver, stored, node.lineno)
        if "mutate-argument" in actions and node.args:
            target = root_name(node.args[0])
            if target:
                scope.mutate(target, node.lineno, "changed in place by the call")

    def _evaluated(self, node: ast.Call, scope: Scope) -> None:
        """A formula or query string the call evaluates in the caller's namespace: its names
        are read here (a formula's may be columns instead: reads that may find nothing)."""
        found = evaluated(node, lambda name: _string_bound(self.tree, name, node.lineno))
        if found is None:
            return
        if not found.literal:
            self.unknown_strings.append(node.lineno)
            return
        if found.formula and isinstance(scope, ModuleScope):
            self.formulas.append((node.lineno, found.optional))
        for name in found.required:
            scope.load(name, node.lineno)
        if found.optional and isinstance(scope, ModuleScope):
            # (in a function body they would be globals it must find when called, and a
            # column is found nowhere: only `@name`s are the caller's for certain there)
            scope.enter_guard()
            for name in found.optional:
                scope.load(name, node.lineno)
            scope.leave_guard()

    def _consume(self, node: ast.expr, scope: Scope) -> None:
        """`list(it)`, `for x in it:`: an iterator given to a call or looped over is consumed."""
        if isinstance(node, ast.Starred):
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.iterators:
            scope.mutate(node.id, node.lineno, "consumed")

    def _writes_into(self, node: ast.Call, scope: Scope) -> None:
        """numpy's `out=` (`np.add(a, 1, out=a)`), `np.add.at(a, i, 1)`, `rng.shuffle(a)`:
        the call writes into an array it is given."""
        targets = [k.value for k in node.keywords if k.arg == "out"]
        func = node.func
        if isinstance(func, ast.Attribute) and node.args and (
                func.attr in _WRITES_FIRST_ARGUMENT
                or (func.attr == "at" and isinstance(func.value, ast.Attribute))):
            targets.append(node.args[0])
        for target in targets:
            for leaf in _flatten(target):
                root = root_name(leaf)
                if root:
                    scope.mutate(root, node.lineno, "written into by the call")

    def _given(self, node: ast.Call, scope: Scope) -> None:
        """`sm.tsa.SARIMAX(y)`, `operator.setitem(d, k, v)`: a call may change the mutable
        objects it is given; the resolver knows whether the callee is a library's that may."""
        callee = dotted(node.func)
        if callee is None:
            return
        for arg in (*node.args, *(k.value for k in node.keywords)):
            for name in self._changeable(self.sources(arg), scope):
                scope.mutate(name, node.lineno, f"given to {callee}(), which may change it",
                             given_to=callee)

    def _changeable(self, names: Names, scope: Scope) -> Names:
        """The names a call running here may change in place: not those bound to immutable
        literals (`size = 5`) when the call runs now. In a function body the names are its
        own, or globals as bound when it is called, which may be other objects by then."""
        outer: Scope | None = scope
        while outer is not None:
            if isinstance(outer, FunctionScope):
                return names
            outer = outer.parent
        return tuple(n for n in names if n not in self.literals)

    def _random_call(self, node: ast.Call, scope: Scope) -> None:
        """A call that may seed or draw from a global generator: the resolver decides."""
        callee = dotted(node.func)
        if callee is None:
            return
        # Every call of a dotted name may reach a module's hidden state: a generator's
        # (`np.random.rand`, a library drawing from numpy's), or the module-level state of the
        # notebook's own module beside it (`thinkplot.Hist`); what the name is bound to
        # decides, in the resolver.
        keywords = tuple(k.arg for k in node.keywords if k.arg)
        scope.random_call(RandomCall(callee, keywords, self.cell, node.lineno))

    def _comprehension(self, node: ast.expr, scope: Scope) -> None:
        generators: list[ast.comprehension] = getattr(node, "generators")  # noqa: B009
        inner = ComprehensionScope(scope)
        for i, generator in enumerate(generators):
            self.expr(generator.iter, scope if i == 0 else inner)
            if i == 0:
                self._consume(generator.iter, scope)
            self.target(generator.target, inner, None, self.sources(generator.iter))
            for condition in generator.ifs:
                self.expr(condition, inner)
        for part in ("elt", "key", "value"):
            child = getattr(node, part, None)
            if child is not None:
                self.expr(child, inner)

    def sources(self, node: ast.expr | None) -> Names:
        return sources(node, self.selectors)

    def _held_calls(self, value: ast.expr | None) -> HeldCalls:
        """The calls whose results `value` may be or hold, each with its mutable arguments
        (a name bound to an immutable literal cannot be changed through a result)."""
        found = []
        for callee, names in held_calls(value, self.selectors):
            mutable = tuple(n for n in names if n not in self.literals)
            if mutable:
                found.append((callee, mutable))
        return tuple(found)

    def _span(self, node: ast.expr) -> SpanKey:
        end_line = node.end_lineno or node.lineno
        return (
            node.lineno,
            self._column(node.lineno, node.col_offset),
            end_line,
            self._column(end_line, node.end_col_offset or 0),
        )

    def _column(self, line: int, byte_offset: int) -> int:
        """ast counts UTF-8 bytes, ast-grep counts characters."""
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        if text.isascii():
            return byte_offset
        return len(text.encode()[:byte_offset].decode(errors="ignore"))


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

_BUILTINS = frozenset(dir(builtins))


def _passed_on(value: ast.expr) -> Names:
    """Names given to a call of a name that is not a builtin (`return wrap(x)`): what it
    returns may hold them."""
    found: dict[str, None] = {}
    for node in ast.walk(value):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id not in _BUILTINS):
            for arg in (*node.args, *(k.value for k in node.keywords)):
                found.update(dict.fromkeys(sources(arg)))
    return tuple(found)


def _makes_closures(body: Sequence[ast.AST]) -> bool:
    """Whether a body defines a function, lambda or class, which may keep its variables."""
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef)
               for part in body for node in ast.walk(part))

# Methods that change the array passed first (on any receiver: `rng.shuffle(a)`).
_WRITES_FIRST_ARGUMENT = frozenset(("shuffle",))


# Calls that make a random generator object (numpy, random, torch).
_GENERATOR_MAKERS = frozenset(("default_rng", "RandomState", "Generator", "Random",
                               "PCG64", "MT19937", "Philox", "SFC64"))


def _makes_generator(value: ast.expr | None) -> bool:
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in _GENERATOR_MAKERS


def _immutable_literal(value: ast.expr | None) -> bool:
    """`5`, `-1.5`, `"a"`, `None`, `(1, "b")`: a value nothing can change."""
    if isinstance(value, ast.Constant):
        return True
    if isinstance(value, ast.UnaryOp):
        return _immutable_literal(value.operand)
    if isinstance(value, ast.Tuple):
        return all(_immutable_literal(e) for e in value.elts)
    return False


# Builtins that make lazy iterators over what they are given.
_ITERATOR_MAKERS = frozenset(("iter", "reversed", "enumerate", "zip", "map", "filter"))


def _makes_iterator(value: ast.expr | None) -> bool:
    """`iter(xs)`, `zip(a, b)`, `(v * 2 for v in xs)`: consumed as it is used."""
    return isinstance(value, ast.GeneratorExp) or (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
        and value.func.id in _ITERATOR_MAKERS)


def _makes_drawer(value: ast.expr | None) -> bool:
    """`KMeans(3)`, `RandomForestClassifier()`: made without `random_state`."""
    if not isinstance(value, ast.Call):
        return False
    callee = dotted(value.func)
    return (callee is not None and callee.rpartition(".")[2] in DRAWING_CLASSES
            and not any(k.arg == "random_state" for k in value.keywords))


def _string_bound(tree: ast.Module, name: str, before: int) -> str | None:
    """The string literal the cell's top level last binds `name` to before line `before`
    (`formula = "y ~ x"`, then `smf.ols(formula, df)`); None when the last binding before it
    is anything else, or there is none in the cell."""
    found: str | None = None
    for node in tree.body:
        if node.lineno >= before:
            break
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and child.id == name and isinstance(
                    child.ctx, ast.Store):
                value = node.value if isinstance(node, ast.Assign) and len(
                    node.targets) == 1 and node.targets[0] is child else None
                found = value.value if isinstance(value, ast.Constant) and isinstance(
                    value.value, str) else None
    return found


def _flatten(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.Tuple | ast.List):
        return [leaf for element in node.elts for leaf in _flatten(element)]
    return [node]


def _mutable_defaults(args: ast.arguments) -> frozenset[str]:
    """Parameters whose default is an object made once, when the definition runs, that the
    body could change (`seen=[]`, `cache={}`, `model=Model()`): not a constant."""
    positional = [*args.posonlyargs, *args.args]
    pairs = [*zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True),
             *((a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
               if d is not None)]
    return frozenset(a.arg for a, d in pairs if not _constant(d))


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple):
        return all(_constant(e) for e in node.elts)
    return isinstance(node, ast.UnaryOp) and _constant(node.operand)


def _defaults(args: ast.arguments) -> list[ast.expr]:
    return [*args.defaults, *(d for d in args.kw_defaults if d is not None)]


def _annotations(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    args = node.args
    every = (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg)
    found = [a.annotation for a in every if a is not None and a.annotation is not None]
    return [*found, node.returns] if node.returns is not None else found


def _type_params(node: ast.AST) -> Names:
    """PEP 695 type parameters (`def f[T]`, `class C[T]`, `type A[T] = ...`), 3.12+."""
    return tuple(name for p in getattr(node, "type_params", ())
                 if isinstance(name := getattr(p, "name", None), str))


def _type_param_scope(node: ast.AST, scope: Scope) -> Scope:
    """Annotations and bases of a generic definition see its type parameters."""
    names = _type_params(node)
    if not names:
        return scope
    inner = ComprehensionScope(scope)
    for name in names:
        inner.aliases[name] = ()
    return inner


# NameError and the classes above it: a handler naming one catches a missing name.
_CATCHES_NAME_ERROR = frozenset(("NameError", "UnboundLocalError", "Exception", "BaseException"))


def _catches_name_error(handler: ast.expr | None) -> bool:
    """`except NameError`, `except Exception`, `except BaseException`, a bare `except:` (alone
    or in a tuple, `builtins.` or not): a name missing in the `try` body is handled."""
    if handler is None:
        return True
    if isinstance(handler, ast.Tuple):
        return any(_catches_name_error(e) for e in handler.elts)
    name = handler.attr if isinstance(handler, ast.Attribute) else getattr(handler, "id", None)
    return name in _CATCHES_NAME_ERROR


_GUARD_BODY = (ast.Import, ast.ImportFrom, ast.Pass, ast.Global)


def _guards_imports(node: ast.stmt) -> bool:
    """`try: import x / except ImportError: ...`, `if PY2: import a / else: import b`, `with
    warnings.catch_warnings(): import x`: a statement whose bodies only import (and set flags),
    so it is the code to emit for the names it imports. A `try` whose body also computes
    (a training loop under `try: from tqdm import trange`) is not: its import alone is."""
    if isinstance(node, _GUARD_BODY):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign):
        return isinstance(node.value, ast.Constant)
    if isinstance(node, ast.Expr):  # warnings.filterwarnings(...) next to the import
        return isinstance(node.value, ast.Constant | ast.Call)
    if isinstance(node, ast.Try) or (hasattr(ast, "TryStar") and isinstance(node, ast.TryStar)):
        return all(_guards_imports(n) for n in (*node.body, *node.orelse, *node.finalbody))
    if isinstance(node, ast.If):
        return all(_guards_imports(n) for n in (*node.body, *node.orelse))
    if isinstance(node, ast.With):
        return all(_guards_imports(n) for n in node.body)
    return False
