"""Which names a value may share objects with: `b = a`, `[train, test]`, `models["rf"]` do;
`df[mask]`, `df[["a", "b"]]`, `df.loc[...]` and `df.copy()` make new objects."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Sequence

from nb2pipe.analysis.chains import dotted

Names = tuple[str, ...]
# `x = f(a, [b])`: a call whose result x may be or hold, with the names given to it; the callee
# is its dotted name ("" when it is not one: a method of a value a call made).
HeldCall = tuple[str, Names]

# Methods that return their receiver: `model = clf.fit(X, y)` makes `model` another name for clf.
RETURNS_SELF = frozenset(("fit", "partial_fit", "set_params", "set_output", "to", "train", "eval",
                          "requires_grad_", "compile"))


def sources(node: ast.expr | None, selectors: set[str] | frozenset[str] = frozenset()) -> Names:
    """Names whose objects the value of `node` may be, or contain.

    `frame[mask]`, `frame[["a", "b"]]`, `frame.loc[...]` and `frame.iloc[...]` select into a new
    object; `models["rf"]` or `frames[i]` is one of the objects the container holds.
    """
    if node is None:
        return ()
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Subscript) and _new_selection(node, selectors):
        return ()
    if isinstance(node, ast.Attribute | ast.Subscript | ast.Starred | ast.NamedExpr | ast.Await):
        return sources(node.value, selectors)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return _union(node.elts, selectors)
    if isinstance(node, ast.Dict):
        return _union([v for v in node.values if v is not None], selectors)
    if isinstance(node, ast.IfExp):
        return _union([node.body, node.orelse], selectors)
    if isinstance(node, ast.BoolOp):
        return _union(node.values, selectors)
    if isinstance(node, ast.Call):
        return _call_sources(node, selectors)
    return ()


def _call_sources(node: ast.Call, selectors: set[str] | frozenset[str]) -> Names:
    """`clf.fit(X, y)` is clf; `a.reshape(2, 5)`, `a.T`, `np.asarray(a)` share a's memory."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    found: list[ast.expr] = []
    if isinstance(func, ast.Attribute) and (name in RETURNS_SELF or name in VIEW_METHODS):
        found.append(func.value)
    if name in VIEW_FUNCTIONS and node.args:
        found.append(node.args[0])
    if isinstance(func, ast.Name) and name in LAZY_FUNCTIONS | CHOOSING_FUNCTIONS:
        found.extend(node.args)  # `it = iter(xs)` then `xs.reverse()`: it sees the change
    if isinstance(func, ast.Attribute) and name in ITEM_METHODS:
        found.append(func.value)  # `d.get("k")`, `xs.pop()`: an object the receiver holds
        found.extend(node.args[1:2])  # the default given: `d.setdefault("k", box)` is box
    if isinstance(func, ast.Attribute) and name in LIVE_VIEW_METHODS:
        found.append(func.value)
    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and (func.value.id, name) == ("copy", "copy") and node.args):
        found.append(node.args[0])  # a shallow copy holds the same items
    return _union(found, selectors)


# numpy methods and functions whose result is a view of their receiver's (or first argument's)
# memory: writing through the view writes into the array it views, and the other way round.
# (Attributes such as `a.T`, `a.real`, `a.flat`, `df.values` are parts of their object anyway.)
VIEW_METHODS = frozenset(("reshape", "ravel", "transpose", "view", "swapaxes", "squeeze",
                          "diagonal", "to_numpy", "numpy", "__array__"))
VIEW_FUNCTIONS = frozenset((
    "asarray", "asanyarray", "ascontiguousarray", "asfortranarray", "reshape", "ravel",
    "transpose", "permute_dims", "matrix_transpose", "squeeze", "swapaxes", "moveaxis",
    "rollaxis", "expand_dims", "atleast_1d", "atleast_2d", "atleast_3d", "flip", "fliplr",
    "flipud", "rot90", "real", "imag", "diagonal", "broadcast_to", "as_strided", "frombuffer",
    "from_numpy", "from_dlpack",
))

# Lazy iterators and live views over their arguments (or receiver): what they yield is read
# from those when they are consumed, so a later change of one shows through.
LAZY_FUNCTIONS = frozenset(("iter", "reversed", "enumerate", "zip", "map", "filter",
                            "memoryview"))
LIVE_VIEW_METHODS = frozenset(("keys", "values", "items"))
# Builtins returning one of the objects they are given (or an item of one): `max(boxes)`.
CHOOSING_FUNCTIONS = frozenset(("max", "min", "getattr", "vars"))
# Methods returning an object their receiver holds (or the default they are given).
ITEM_METHODS = frozenset(("get", "pop", "popitem", "setdefault", "popleft", "__getitem__"))


def held_calls(node: ast.expr | None, selectors: set[str] | frozenset[str] = frozenset()
               ) -> tuple[HeldCall, ...]:
    """The calls whose results the value of `node` may be or contain, along the same paths as
    `sources`, each with the names its arguments may share objects with. Whether a call's
    result holds its arguments is the callee's to say (the resolver knows what it is bound
    to): `pd.concat([a, b])`, `Pipeline([("s", scaler)])` may; `len(a)` does not."""
    if node is None or isinstance(node, ast.Name | ast.Constant):
        return ()
    if isinstance(node, ast.Subscript) and _new_selection(node, selectors):
        return ()
    if isinstance(node, ast.Attribute | ast.Subscript | ast.Starred | ast.NamedExpr | ast.Await):
        return held_calls(node.value, selectors)
    parts: list[ast.expr] = []
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        parts = list(node.elts)
    elif isinstance(node, ast.Dict):
        parts = [v for v in node.values if v is not None]
    elif isinstance(node, ast.IfExp):
        parts = [node.body, node.orelse]
    elif isinstance(node, ast.BoolOp):
        parts = list(node.values)
    elif not isinstance(node, ast.Call):
        return ()
    found: dict[HeldCall, None] = {}
    if isinstance(node, ast.Call):
        func = node.func
        given = [*node.args, *(k.value for k in node.keywords)]
        names = _union(given, selectors)
        if names:
            found[(dotted(func) or "", names)] = None
        if isinstance(func, ast.Name) and func.id in _BUILTINS:
            given = given if func.id in LAZY_FUNCTIONS | CHOOSING_FUNCTIONS else []
        parts = given  # `pd.concat([make(a)])` may hold what `make(a)` holds
        if isinstance(func, ast.Attribute) and func.attr in _RECEIVER_RESULTS:
            parts.append(func.value)  # `Pipeline([("s", s)]).fit(X)` is the Pipeline
    for part in parts:
        found.update(dict.fromkeys(held_calls(part, selectors)))
    return tuple(found)


_BUILTINS = frozenset(dir(builtins))
_RECEIVER_RESULTS = RETURNS_SELF | VIEW_METHODS | LIVE_VIEW_METHODS | ITEM_METHODS


def _union(nodes: Sequence[ast.expr], selectors: set[str] | frozenset[str]) -> Names:
    found: dict[str, None] = {}
    for node in nodes:
        found.update(dict.fromkeys(sources(node, selectors)))
    return tuple(found)


# Accessors whose subscript selects rows or columns into a new object.
_SELECTING_ACCESSORS = frozenset(("loc", "iloc"))
# Methods returning a boolean mask: `df[df.a.isin(x)]` selects rows.
_MASK_METHODS = frozenset(("isin", "isna", "isnull", "notna", "notnull", "between", "duplicated",
                           "contains", "startswith", "endswith", "match", "eq", "ne", "lt",
                           "le", "gt", "ge"))


def _new_selection(node: ast.Subscript, selectors: set[str] | frozenset[str]) -> bool:
    """Whether `x[...]` builds a new object: a boolean mask, a list of labels, `.loc`/`.iloc`."""
    if isinstance(node.value, ast.Attribute) and node.value.attr in _SELECTING_ACCESSORS:
        return True
    key = node.slice
    if isinstance(key, ast.Name):
        return key.id in selectors
    return selects(key, selectors)


def selects(value: ast.expr, selectors: set[str] | frozenset[str]) -> bool:
    """A value that, used as a key, selects many items: a mask or a list of labels."""
    if isinstance(value, ast.Name):
        return value.id in selectors
    if isinstance(value, ast.List | ast.ListComp):
        return True
    if isinstance(value, ast.Compare):
        return True
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Invert):
        return True
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitAnd | ast.BitOr | ast.BitXor):
        return True
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        return value.func.attr in _MASK_METHODS
    return False
