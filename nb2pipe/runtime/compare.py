"""Whether two values are the same: frames, arrays and floats with a tolerance, objects by
what they hold. Generated tests compare a step's values with the ones recorded from the notebook.
"""

import functools
import math
import re
import types
from collections.abc import Mapping
from typing import Any

from .values import Unrecorded, optional


def assert_same(actual: Any, expected: Any, where: str = "value", rtol: float = 1e-6,
                atol: float = 1e-9) -> None:
    """Raise AssertionError, naming the path to the difference, unless the values match."""
    _compare(actual, expected, where, rtol, atol, set())


def _compare(actual: Any, expected: Any, where: str, rtol: float, atol: float,
             seen: set[int]) -> None:
    if isinstance(expected, Unrecorded):
        return
    if id(expected) in seen:
        return
    seen.add(id(expected))
    pandas, numpy = optional("pandas"), optional("numpy")
    if isinstance(expected, dict):
        assert isinstance(actual, Mapping), (
            f"{where}: expected a dict, got {type(actual).__name__}")
        missing = sorted(set(expected) - set(actual), key=str)
        assert not missing, f"{where}: missing {missing}"
        for key in expected:
            _compare(actual[key], expected[key], f"{where}[{key!r}]", rtol, atol, seen)
        return
    if pandas is not None and isinstance(expected, pandas.DataFrame | pandas.Series | pandas.Index):
        checker = {pandas.DataFrame: pandas.testing.assert_frame_equal,
                   pandas.Series: pandas.testing.assert_series_equal}.get(type(expected))
        try:
            if checker is None:
                pandas.testing.assert_index_equal(actual, expected, exact=False)
            else:
                checker(actual, expected, check_exact=False, rtol=rtol, atol=atol)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None
        return
    if numpy is not None and isinstance(expected, numpy.ndarray):
        assert isinstance(actual, numpy.ndarray), f"{where}: expected an array"
        assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
        if expected.dtype.kind in "fc" and actual.dtype.kind in "fcib":
            numpy.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True,
                                          err_msg=where)
        elif expected.dtype.hasobject:
            for index, item in enumerate(expected.ravel()):
                _compare(actual.ravel()[index], item, f"{where}[{index}]", rtol, atol, seen)
        else:
            assert numpy.array_equal(actual, expected), f"{where}: arrays differ"
        return
    if isinstance(expected, float) or (numpy is not None and isinstance(expected, numpy.floating)):
        assert isinstance(actual, int | float) or (
            numpy is not None and isinstance(actual, numpy.number)), f"{where}: not a number"
        if math.isnan(expected):
            assert math.isnan(actual), f"{where}: {actual} is not NaN"
        else:
            assert math.isclose(actual, expected, rel_tol=rtol, abs_tol=atol), (
                f"{where}: {actual!r} != {expected!r}")
        return
    if isinstance(expected, list | tuple):
        assert type(actual) is type(expected), f"{where}: {type(actual).__name__}"
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _compare(a, e, f"{where}[{index}]", rtol, atol, seen)
        return
    if isinstance(expected, str | bytes | int | bool | type(None) | set | frozenset):
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
        return
    assert type(actual) is type(expected), (
        f"{where}: {type(actual).__name__} != {type(expected).__name__}")
    state = object_state(expected)
    if state is not None:
        _compare(object_state(actual), state, f"{where}<{type(expected).__name__}>", rtol,
                 atol, seen)
        return
    equal = actual == expected
    assert equal is True or (equal is not False and bool(equal)), f"{where}: values differ"


def object_state(value: Any) -> Any:
    """What an object holds (a fitted model's attributes), to compare it field by field.
    A type that says how it is pickled (`__reduce__`: a path, a pandas Index, a date) is what
    that gives: what its author says defines it, not its memos (a path's `_str`, `_hash`)."""
    kind = type(value)
    if (getattr(kind, "__reduce_ex__", None) is not object.__reduce_ex__
            or getattr(kind, "__reduce__", None) is not object.__reduce__):
        try:
            reduced = value.__reduce_ex__(4)
        except Exception:  # not picklable: what it holds, below
            reduced = None
        if isinstance(reduced, tuple) and len(reduced) >= 2:
            return _reduced_state(value, reduced)
    getter = getattr(value, "__getstate__", None)
    try:
        state = getter() if getter is not None else None
    except TypeError:
        state = None
    if isinstance(state, dict):
        return without_memos(value, state)
    if isinstance(state, tuple | list):
        return state
    if getattr(value, "__dict__", None):
        return without_memos(value, vars(value))
    if any("__eq__" in vars(kind) for kind in type(value).__mro__[:-1]):
        return None  # the type says how to compare itself
    try:  # an opaque object (a compiled extension type): compare what it pickles to
        reduced = value.__reduce_ex__(4)
    except Exception:  # not picklable either: nothing more to compare than its type
        return []
    return list(reduced[1:]) if isinstance(reduced, tuple) else []


def _reduced_state(value: Any, reduced: tuple[Any, ...]) -> list[Any]:
    """The arguments, state and items of a reduction, memos left out of the state."""
    held: list[Any] = [reduced[1]]
    state = reduced[2] if len(reduced) > 2 else None
    if isinstance(state, Mapping):
        state = without_memos(value, state)
    elif isinstance(state, tuple):  # (its __dict__, its slots); (dtype, data, its __dict__)
        # an attribute dict left empty without its memos is as if never there (pandas' arrays
        # give theirs only when it holds something)
        parts = (without_memos(value, part) if isinstance(part, Mapping) else part
                 for part in state)
        state = tuple(part for part in parts if not (isinstance(part, dict) and not part))
    held.append(state)
    held.extend(list(items) if items is not None else None for items in reduced[3:5])
    return held


# A private attribute named as a cache: `_cache` (where pandas' and statsmodels'
# `cache_readonly` keep what they computed), `_summary_cache`, `_cached_in_sample`; a switch
# (`_use_cache = True`) is not one.
_CACHE_NAME = re.compile(r"^_.*(?<![a-z])cached?(?![a-z])", re.IGNORECASE)
# Descriptors that are code, not memos: what a class's own attribute of these types is.
_CODE = (types.FunctionType, types.BuiltinFunctionType, staticmethod, classmethod,
         types.MethodDescriptorType, types.WrapperDescriptorType)


def without_memos(value: Any, state: Mapping[Any, Any]) -> dict[Any, Any]:
    """An object's state without what it memoised as it was read: two equal objects differ
    there by which of their attributes happened to be read before (a notebook reads a fitted
    model's `.bse` in a cell; a step given a copy of it may not). Memos are recognised by
    how Python and libraries make them, never by the object's type: a private attribute named
    as a cache (pandas' and statsmodels' `cache_readonly` keep theirs in `_cache`), an
    attribute that a non-data descriptor of its class (`functools.cached_property`) shadows
    with what it computed, and what the getter of one of its class's attributes stores on
    the instance as it computes (`self.het_scale = ...` inside a cached `cov_HC0`)."""
    kind: type = type(value)
    filled = _filled_by_getters(kind)
    return {name: held for name, held in state.items()
            if not (isinstance(name, str) and (
                (_CACHE_NAME.match(name) and not isinstance(held, bool))
                or name in filled or _memoising(kind, name)))}


def _memoising(kind: type, name: str) -> bool:
    """Whether a non-data descriptor other than a method of `kind` is named `name`."""
    for klass in kind.__mro__:
        if name in vars(klass):
            held = vars(klass)[name]
            return (isinstance(held, functools.cached_property) or (
                hasattr(type(held), "__get__") and not hasattr(type(held), "__set__")
                and not isinstance(held, _CODE)))
    return False


@functools.lru_cache(maxsize=1024)
def _filled_by_getters(kind: type) -> frozenset[str]:
    """The attributes that the getters of `kind`'s properties and cached attributes store
    on the instance: `self.name = ...` or `self.__dict__["name"] = ...` in their code."""
    found: set[str] = set()
    for klass in kind.__mro__:
        for held in list(vars(klass).values()):
            if isinstance(held, _CODE) or not hasattr(type(held), "__get__"):
                continue
            getter = getattr(held, "fget", None) or getattr(held, "func", None)
            if isinstance(getter, types.FunctionType):
                found |= _stored_on_first_argument(getter.__code__)
    return frozenset(found)


def _stored_on_first_argument(code: types.CodeType) -> set[str]:
    import dis

    if not code.co_argcount:
        return set()
    this = code.co_varnames[0]
    steps = list(dis.get_instructions(code))
    found: set[str] = set()
    for at, step in enumerate(steps):
        before = steps[max(at - 3, 0):at]
        if (step.opname == "STORE_ATTR" and before
                and before[-1].opname == "LOAD_FAST" and before[-1].argval == this):
            found.add(str(step.argval))
        elif (step.opname == "STORE_SUBSCR" and len(before) == 3
              and [b.opname for b in before] == ["LOAD_FAST", "LOAD_ATTR", "LOAD_CONST"]
              and before[0].argval == this and before[1].argval == "__dict__"
              and isinstance(before[2].argval, str)):
            found.add(before[2].argval)
    return found
