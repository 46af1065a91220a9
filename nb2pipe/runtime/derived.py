"""Attributes a class's own methods compute from the instance alone and keep on it: memos a
plain method keeps under a plain name (`self.diagn = ...` in a results object's `summary()`,
`self._retain_cols = terms.columns` in `in_sample()`).

An object that has such an attribute and its copy that lacks it (or holds None there, the
"not computed yet" its constructor wrote) hold the same information: the attribute is a
function of the rest of the object, which the method recomputes whenever it is called. That
is what makes it a memo rather than a change, and it is decided from the class's code, never
from its name or its library's. An attribute is derived when every method of the class (its
constructor and unpickling aside, which run alike on every copy) that stores it, or changes
it in place:

- can be called with the instance alone (every other parameter has a default): a method that
  needs arguments (`fit(X, y)`) stores what it is given, which the rest of the object cannot
  give back;
- stores no value made from a parameter (`configure(level=5)` keeping `level`), from a
  global that is data rather than code, or from a closure's variable: information from
  outside the object;
- stores no value made from the attribute's own earlier value (`self.n = self.n + 1`, or
  `self.log.append(...)` without storing a fresh `self.log` first in the same method): a
  count of calls differs with the number of calls, a memo does not;
- and no method of the class stores attributes under names computed at run time
  (`setattr(self, name, v)`, `self.__dict__.update(...)`, `vars(self)`), where what it
  stores cannot be read from the code.

The data flow is read from the bytecode, linearly and without ever forgetting a taint, which
errs towards "not derived": such an attribute is then compared as before.
"""

from __future__ import annotations

import dis
import functools
import inspect
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# What runs alike on every copy of an object: what it stores is in both.
_CONSTRUCTION = frozenset(("__init__", "__new__", "__setstate__", "__init_subclass__",
                           "__post_init__", "__reduce__", "__reduce_ex__", "__getstate__"))
# Instructions after which the value an expression computed is kept, dropped or tested.
_ENDS = ("STORE_", "POP_TOP", "RETURN_", "POP_JUMP", "JUMP", "DELETE_")


@dataclass
class _Stores:
    """What the methods of a class store on their instance."""

    derived: set[str] = field(default_factory=set)  # stored only as a memo would be
    other: set[str] = field(default_factory=set)  # stored at least once otherwise
    dynamic: bool = False  # names computed at run time: anything may be stored


def derived_attributes(kind: type) -> frozenset[str]:
    """The attributes of `kind`'s instances that its methods only compute from the instance
    alone (see the module's docstring); empty when that cannot be read from its code."""
    return class_stores(kind)[0]


@functools.lru_cache(maxsize=1024)
def class_stores(kind: type) -> tuple[frozenset[str], frozenset[str]]:
    """(derived, stored): the attributes `kind`'s methods derive from the instance alone, and
    every attribute its methods store or change in place after construction (derived or
    not). Both empty when that cannot be read from its code."""
    stores = _Stores()
    try:
        for name, function in _methods(kind):
            if name in _CONSTRUCTION:
                continue
            _scan(function, _callable_alone(function), stores)
    except Exception:  # code this reading does not understand: nothing is known
        return frozenset(), frozenset()
    if stores.dynamic:
        return frozenset(), frozenset()
    return frozenset(stores.derived - stores.other), frozenset(stores.derived | stores.other)


def _methods(kind: type) -> Iterator[tuple[str, types.FunctionType]]:
    """The functions that run with an instance of `kind` as their first argument: methods,
    and the getters and setters of properties and memoising descriptors."""
    for klass in kind.__mro__:
        if klass is object:
            continue
        for name, held in list(vars(klass).items()):
            if isinstance(held, staticmethod | classmethod):
                continue
            for part in (held, getattr(held, "fget", None), getattr(held, "fset", None),
                         getattr(held, "fdel", None), getattr(held, "func", None)):
                while isinstance(part, types.FunctionType | functools.partial) and hasattr(
                        part, "__wrapped__"):
                    part = part.__wrapped__
                if isinstance(part, types.FunctionType):
                    yield name, part


def _callable_alone(function: types.FunctionType) -> bool:
    """Whether `function(instance)` is a complete call: every other parameter has a default."""
    try:
        parameters = list(inspect.signature(function).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    return all(p.default is not inspect.Parameter.empty
               or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


def _scan(function: types.FunctionType, alone: bool, stores: _Stores) -> None:
    code = function.__code__
    if not code.co_argcount:
        return
    this = code.co_varnames[0]
    _scan_code(code, this, set(code.co_varnames[1:_parameter_count(code)]), function,
               alone, stores, nested=False)


def _parameter_count(code: types.CodeType) -> int:
    return (code.co_argcount + code.co_kwonlyargcount
            + bool(code.co_flags & inspect.CO_VARARGS)
            + bool(code.co_flags & inspect.CO_VARKEYWORDS))


def _scan_code(code: types.CodeType, this: str, tainted: set[str],
               function: types.FunctionType, alone: bool, stores: _Stores,
               nested: bool) -> None:
    """One linear pass over `code`: which attributes of `this` it stores, and from what."""
    steps = list(dis.get_instructions(code))
    made_from: dict[str, set[str]] = {}  # a local -> the attributes of `this` it was made from
    stored_fresh: set[str] = set()  # stored whole earlier in this code
    from_instance: set[str] = set()  # locals made from the instance
    outside: list[tuple[int, int]] = []  # spans of code run or not on a test of outside data
    expression = _Expression()
    for at, step in enumerate(steps):
        name, value = step.opname, step.argval
        before = steps[at - 1] if at else None
        receiver = before is not None and _loads(before)[-1:] == [this]
        if _loads(step):
            for loaded in _loads(step):
                if loaded in tainted or (loaded in code.co_freevars and loaded != this
                                         and not nested):
                    expression.tainted = True  # a parameter, or an outer function's variable
                expression.locals.add(loaded)
                expression.instance += loaded == this
        elif name in ("LOAD_GLOBAL", "LOAD_NAME"):
            held = _global(function, str(value))
            if held is setattr or held is vars:
                expression.dynamic_call = True
            elif held is getattr or held is hasattr:
                expression.getter = True
            elif not _code_like(held):
                expression.tainted = True  # a global that is data: outside the instance
        elif name == "LOAD_CONST" and receiver and expression.getter and isinstance(value, str):
            expression.read.add(value)  # getattr(self, "n", 0)
        elif name in ("LOAD_ATTR", "LOAD_METHOD") and receiver:
            expression.read.add(str(value))
            if value in ("__dict__", "__setattr__"):
                expression.dynamic_call = True
        elif name == "STORE_ATTR" and receiver:
            # a whole value stored: from outside when made from it, or stored only on a test
            # of it (`if fast: self.mode = "fast"`)
            sources = expression.read | _union(made_from, expression.locals)
            inside = not expression.tainted and not _within(outside, step.offset)
            # and made from the instance (a constant, `self.fitted_ = True`, records that a
            # call happened: history, not a function of what the instance holds)
            made = expression.instance > 1 or bool(sources) or bool(
                expression.locals & from_instance)
            _store(stores, str(value), alone and inside and made and value not in sources)
            stored_fresh.add(str(value))
            expression = _Expression()
            continue
        if name == "DELETE_ATTR" and receiver:
            stores.other.add(str(value))  # `del self.x`: what is there depends on the calls
        elif name == "STORE_ATTR" and this in expression.locals and not (
                before is not None and before.opname in ("LOAD_ATTR", "LOAD_METHOD")):
            # onto an object this reading cannot place, which may be the instance
            stores.other.add(str(value))
        if expression.dynamic_call and (this in expression.locals) and name in (
                "POP_TOP", "STORE_SUBSCR", "STORE_FAST", "RETURN_VALUE"):
            constant = _constant_name_after(steps, at, this)
            if name == "STORE_SUBSCR" and constant is not None:  # self.__dict__["n"] = v
                _store(stores, constant, alone and not expression.tainted
                       and not _within(outside, step.offset))
            elif name != "STORE_FAST" or "__dict__" not in expression.read:
                stores.dynamic = True  # setattr(self, name, v), vars(self), __dict__.update
        if "JUMP" in name and expression.tainted and isinstance(value, int) and (
                value > step.offset):
            outside.append((step.offset, value))  # `if fast:` ... its `else:` below
            last = _jump_before(steps, value)
            if last is not None:
                outside.append((value, last))
        if name.startswith(_ENDS):
            if name in ("STORE_FAST", "STORE_DEREF"):
                if expression.tainted:
                    tainted.add(str(value))
                if expression.instance or expression.locals & from_instance:
                    from_instance.add(str(value))
                made_from.setdefault(str(value), set()).update(
                    expression.read | _union(made_from, expression.locals))
            elif name in ("POP_TOP", "STORE_SUBSCR", "DELETE_SUBSCR", "STORE_ATTR",
                          "DELETE_ATTR"):
                # a call or a write through what the expression read: it may have changed
                # any of it in place (`self.log.append(x)`, `self.counts[k] = v`); completing
                # a value this code stored whole before is a memo's filling-in, what it is
                # made from still counts
                for changed in expression.read - {"__dict__"}:
                    _store(stores, changed, alone and not expression.tainted
                           and changed in stored_fresh)
                if expression.tainted:
                    tainted.update(expression.locals - {this})
            expression = _Expression()
    for held in code.co_consts:  # nested functions and lambdas that see the instance
        if isinstance(held, types.CodeType) and this in held.co_freevars:
            _scan_code(held, this, tainted | set(held.co_varnames[:_parameter_count(held)]),
                       function, alone, stores, nested=True)


def _loads(step: Any) -> list[str]:
    """The local variables an instruction loads (Python 3.13 loads two in one)."""
    if not (step.opname.startswith("LOAD_FAST") or step.opname in ("LOAD_DEREF",
                                                                      "LOAD_CLOSURE")):
        return []
    value = step.argval
    return [str(v) for v in value] if isinstance(value, tuple) else [str(value)]


def _within(spans: list[tuple[int, int]], offset: int) -> bool:
    return any(start <= offset < end for start, end in spans)


def _jump_before(steps: list[Any], target: int) -> int | None:
    """Where the `else:` branch that starts at `target` ends: the forward jump that closes the
    `if` branch just before it."""
    previous = [s for s in steps if s.offset < target]
    if previous and previous[-1].opname.startswith("JUMP_FORWARD"):
        end = previous[-1].argval
        return end if isinstance(end, int) and end > target else None
    return None


_MISSING = object()


def _global(function: types.FunctionType, name: str) -> Any:
    import builtins

    held = function.__globals__.get(name, _MISSING)
    return getattr(builtins, name, _MISSING) if held is _MISSING else held


@dataclass
class _Expression:
    """What the instructions since the last kept, dropped or tested value loaded."""

    tainted: bool = False  # a parameter, a data global or a closure's variable
    read: set[str] = field(default_factory=set)  # attributes of the instance
    locals: set[str] = field(default_factory=set)
    dynamic_call: bool = False
    getter: bool = False  # getattr or hasattr loaded
    instance: int = 0  # how many times the instance itself was loaded


def _store(stores: _Stores, name: str, derived: bool) -> None:
    (stores.derived if derived else stores.other).add(name)


def _union(made_from: dict[str, set[str]], names: set[str]) -> set[str]:
    return set().union(*(made_from.get(name, set()) for name in names))


def _constant_name_after(steps: list[Any], at: int, this: str) -> str | None:
    """`n` in `self.__dict__["n"] = v`: the constant loaded just before the subscript store."""
    window = steps[max(at - 3, 0):at]
    if ([s.opname for s in window] == ["LOAD_FAST", "LOAD_ATTR", "LOAD_CONST"]
            and window[0].argval == this and window[1].argval == "__dict__"
            and isinstance(window[2].argval, str)):
        return str(window[2].argval)
    return None


def _code_like(held: Any) -> bool:
    """Whether a global is code (a module, a class, a function), not data that can change."""
    if held is _MISSING or held is None:
        return True
    return isinstance(held, type | types.ModuleType | types.FunctionType
                      | types.BuiltinFunctionType | functools.partial) or (
        callable(held) and not isinstance(held, list | dict | set))
