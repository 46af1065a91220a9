"""Whether two values are the same: frames, arrays and floats with a tolerance, objects by
what they hold. Generated tests compare a step's values with the ones recorded from the notebook.
"""

import math
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
    """What an object holds (a fitted model's attributes), to compare it field by field."""
    getter = getattr(value, "__getstate__", None)
    try:
        state = getter() if getter is not None else None
    except TypeError:
        state = None
    if isinstance(state, dict | tuple | list):
        return state
    if getattr(value, "__dict__", None):
        return dict(vars(value))
    if any("__eq__" in vars(kind) for kind in type(value).__mro__[:-1]):
        return None  # the type says how to compare itself
    try:  # an opaque object (a compiled extension type): compare what it pickles to
        reduced = value.__reduce_ex__(4)
    except Exception:  # not picklable either: nothing more to compare than its type
        return []
    return list(reduced[1:]) if isinstance(reduced, tuple) else []
