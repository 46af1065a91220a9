"""Globals a notebook function looks up when it runs, given to it where a step calls it.

A function the pipeline hands from step to step as a value was made before some of the
globals its body reads were bound (`def P(e): return number(e)`, then `number = len` in a
later cell). In the notebook its body finds them in the one namespace all cells share; a step
gives them to it, as the step has them, before the step's code runs.
"""

from __future__ import annotations

import types
from typing import Any


def with_globals(function: Any, /, **names: Any) -> Any:
    """`function` reading `names` as globals: the same code, defaults, closure and attributes
    (its `__dict__` is shared, so attributes set through either are seen by both), with its
    globals and `names` as the globals it runs with. A name the function closes over (made
    inside the step that binds it, where the notebook's global is the step's variable) gets
    a cell of its own holding the given value. Anything but a plain function is returned as
    it is."""
    if not isinstance(function, types.FunctionType):
        return function
    closure = function.__closure__
    if closure is not None:
        closure = tuple(types.CellType(names[free]) if free in names else cell
                        for free, cell in zip(function.__code__.co_freevars, closure,
                                              strict=True))
    made = types.FunctionType(function.__code__, {**function.__globals__, **names},
                              function.__name__, function.__defaults__, closure)
    made.__kwdefaults__ = function.__kwdefaults__
    made.__qualname__ = function.__qualname__
    made.__module__ = function.__module__
    made.__doc__ = function.__doc__
    made.__annotations__ = function.__annotations__
    made.__dict__ = function.__dict__
    return made
