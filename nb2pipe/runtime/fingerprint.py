"""Fingerprints: small, comparable summaries of values, for `nb2pipe verify`.

A content hash of what a value holds (frames and arrays rounded to 9 decimals, so float noise
does not count), the number itself for floats, or why it cannot be summarised. Objects are
walked structurally: pickle's bytes depend on which parts happen to be shared in memory.

In the notebook's kernel, verify's inserted cells write them (`write_fingerprints`,
`write_final`); in the pipeline, the hook `Fingerprints` writes each step's.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import sys
from typing import Any

from .calls import Hook, StepCall, StepFunction
from .compare import object_state
from .final import call_keeping_locals
from .unbound import bound
from .values import optional

DRAWINGS = ("matplotlib",)  # packages whose objects are not fingerprinted


def fingerprint(value: Any) -> dict[str, Any]:
    """A small, comparable summary of a value: a content hash (frames and arrays rounded to
    9 decimals, so float noise does not count), the number itself for floats, or why not."""
    import hashlib

    pandas, numpy = optional("pandas"), optional("numpy")
    try:
        if isinstance(value, bool | int | str | type(None)):
            return {"kind": "exact", "value": repr(value)[:200],
                    "hash": hashlib.sha256(repr(value).encode()).hexdigest()}
        if isinstance(value, float) or (numpy is not None and isinstance(value, numpy.floating)):
            return {"kind": "float", "value": float(value)}
        if pandas is not None and isinstance(value, pandas.DataFrame | pandas.Series):
            rounded = value.round(9) if _numeric(value) else value
            labels = list(value.columns) if isinstance(value, pandas.DataFrame) else [value.name]
            digest = hashlib.sha256(repr((labels, [str(t) for t in _dtypes(value)])).encode())
            digest.update(pandas.util.hash_pandas_object(rounded, index=True).values.tobytes())
            return {"kind": "hash", "hash": digest.hexdigest(), "shape": list(value.shape)}
        if numpy is not None and isinstance(value, numpy.ndarray) and not value.dtype.hasobject:
            data = numpy.round(value, 9) if value.dtype.kind in "fc" else value
            digest = hashlib.sha256(f"{value.dtype}{value.shape}".encode())
            digest.update(numpy.ascontiguousarray(data).tobytes())
            return {"kind": "hash", "hash": digest.hexdigest(), "shape": list(value.shape)}
        digest = hashlib.sha256()
        walk = _Walk(digest, pandas, numpy)
        walk.add(value)
    except Exception as exc:  # an object that cannot be walked or pickled
        return {"kind": "skip", "reason": f"{type(exc).__name__}: {exc}"[:200]}
    found: dict[str, Any] = {"kind": "hash", "hash": digest.hexdigest()}
    if walk.fields and len(walk.fields) <= MAX_FIELDS:
        walk.fields[""][0] = found["hash"][:16]
        found["fields"] = walk.fields
    return found


# An object's attributes are hashed one by one, down to this many objects deep, and the hash of
# each is kept (`fields`, by path: ".results.diagn"), so verify can say which attributes two
# values differ in (execute/differences.py); a value with more than MAX_FIELDS keeps none.
SPLIT_DEPTH = 3
MAX_FIELDS = 2000


class _Walk:
    """Hashes what an object holds, walked structurally: pickle's bytes depend on which parts
    happen to be shared in memory, so an object and its copy read back from disk differ."""

    MAX_NODES = 1_000_000

    def __init__(self, digest: Any, pandas: Any, numpy: Any) -> None:
        self.digest, self.pandas, self.numpy = digest, pandas, numpy
        self.active: set[int] = set()  # the containers being walked: a cycle stops here
        self.nodes = 0
        self.named: dict[str, dict[int, str]] = {}  # by module: its objects' names, by id
        # path -> [hash (16 hex digits), flags(, type)]: "o" an object hashed attribute by
        # attribute (each of its attributes is here; its type follows), "d" an attribute its
        # class derives from the rest of the object (runtime/derived.py), "s" one its methods
        # store or change after construction, "n" None
        self.fields: dict[str, list[str]] = {}
        self.path: str | None = ""  # where the value being walked is, while it is recorded
        self.depth = 0

    def add(self, value: Any) -> None:
        pandas, numpy, digest = self.pandas, self.numpy, self.digest
        self.nodes += 1
        if self.nodes > self.MAX_NODES:
            raise ValueError("too large to fingerprint")
        if value is None or isinstance(value, bool | int | str | bytes):
            digest.update(f"{type(value).__name__}:{value!r};".encode())
            return
        if isinstance(value, float) or (numpy is not None and isinstance(value, numpy.floating)):
            digest.update(f"float:{round(float(value), 9)!r};".encode())
            return
        if numpy is not None and isinstance(value, numpy.generic):
            self.add(value.item())
            return
        if numpy is not None and isinstance(value, numpy.dtype):
            digest.update(f"dtype:{value.descr if value.fields else value.str};".encode())
            return
        if isinstance(value, type | type(len) | type(optional) | type(os)):
            digest.update(f"code:{code_name(value)};".encode())
            if getattr(value, "__module__", None) in NOTEBOOK_MODULES:
                self._state_of_code(value)  # the notebook's own: what it holds can change
            return
        if pandas is not None and isinstance(value, pandas.DataFrame | pandas.Series) or (
                numpy is not None and isinstance(value, numpy.ndarray)
                and not value.dtype.hasobject):
            digest.update(f"{fingerprint(value)['hash']};".encode())
            return
        shared = self._library_name(value)
        if shared is not None:  # `scipy.stats.t` in a fitted result: shared, not held
            digest.update(f"shared:{shared};".encode())
            return
        if id(value) in self.active:
            digest.update(b"cycle;")
            return
        self.active.add(id(value))
        path = self.path
        try:
            items = self._items(value)
            self.path = None  # what a container holds, or a state not split, is not recorded
            for item in items:
                self.add(item)
        finally:
            self.active.discard(id(value))
            self.path = path

    def _library_name(self, value: Any) -> str | None:
        """`module.name` when `value` is an object a library's module holds by name (its
        type's module: `scipy.stats.t`, numpy's global RandomState): a value holding it
        refers to state the whole program shares, which later cells change (drawing from the
        global generator), so its name is what the value holds, as for functions. Never the
        notebook's own objects."""
        module_name = getattr(type(value), "__module__", None)
        if not isinstance(module_name, str) or module_name in NOTEBOOK_MODULES:
            return None
        if module_name not in self.named:
            module = sys.modules.get(module_name)
            found: dict[int, str] = {}
            for name, held in sorted(getattr(module, "__dict__", {}).items(), reverse=True):
                if not isinstance(held, type | type(os)) and type(held).__module__ == module_name:
                    found[id(held)] = f"{module_name}.{name}"
            self.named[module_name] = found
        return self.named[module_name].get(id(value))

    def _state_of_code(self, value: Any) -> None:
        """A class's own attributes that are data (`lr = 0.1`), a function's defaults and
        attributes (`f.calls`): what a later cell may change."""
        if id(value) in self.active:
            return
        self.active.add(id(value))
        try:
            if isinstance(value, type):
                held = {k: v for k, v in vars(value).items()
                        if not (k.startswith("__") and k.endswith("__")) and not callable(v)
                        and not isinstance(v, staticmethod | classmethod | property)}
            else:
                held = {"__defaults__": getattr(value, "__defaults__", None),
                        "__kwdefaults__": getattr(value, "__kwdefaults__", None),
                        **(getattr(value, "__dict__", None) or {})}
            self.add(dict(sorted(held.items())))
        finally:
            self.active.discard(id(value))

    def _items(self, value: Any) -> Any:
        """What a container or an object holds, in a stable order (its header hashed)."""
        if self.numpy is not None and isinstance(value, self.numpy.ndarray):  # of objects
            self.digest.update(f"objects{value.shape};".encode())
            return value.ravel().tolist()
        if isinstance(value, list | tuple):
            self.digest.update(f"{type(value).__name__}{len(value)};".encode())
            return value
        if isinstance(value, dict):
            self.digest.update(f"dict{len(value)};".encode())
            return sorted(value.items(), key=lambda item: repr(item[0]))
        if isinstance(value, set | frozenset):
            self.digest.update(f"set{len(value)};".encode())
            return sorted(fingerprint(item).get("hash", "") for item in value)
        kind = type(value)
        if kind.__module__.partition(".")[0] in DRAWINGS:
            # Its state is a web of transforms, callbacks and back-references (walking it
            # took seconds per figure before giving up) that holds ids of this process.
            raise ValueError(f"a {kind.__module__.partition('.')[0]} {kind.__qualname__}: "
                             "drawings are not compared")
        self.digest.update(f"{code_name(kind)}:".encode())
        state = object_state(value)
        if state is None:  # the type compares itself: its pickle is its identity
            self.digest.update(pickle.dumps(value, protocol=4))
            return []
        if isinstance(state, dict) and self.path is not None and self.depth < SPLIT_DEPTH and all(
                isinstance(name, str) and "." not in name for name in state):
            self._by_attribute(kind, state, self.path)
            return []
        return [state]

    def _by_attribute(self, kind: type, state: dict[str, Any], path: str) -> None:
        """Hash each attribute on its own, keeping its hash under its path; the object's hash
        is made of their names and hashes, so two objects whose recorded attributes agree are
        the same, and where they differ the attributes say why."""
        import hashlib

        from .derived import class_stores

        self.fields[path] = ["", "o", code_name(kind)]
        derived, stored = class_stores(kind)
        outer, self.depth = self.digest, self.depth + 1
        try:
            for name, held in sorted(state.items()):
                self.digest, self.path = hashlib.sha256(), f"{path}.{name}"
                self.add(held)
                flags = ("d" if name in derived else "") + ("s" if name in stored else "") + (
                    "n" if held is None else "")
                entry = self.fields.setdefault(self.path, ["", ""])  # "o" when split
                entry[0], entry[1] = self.digest.hexdigest()[:16], entry[1] + flags
                outer.update(f"{name}={self.digest.hexdigest()};".encode())
        finally:
            self.digest, self.path, self.depth = outer, path, self.depth - 1


# The notebook's own code: its kernel's `__main__`, or the project's steps.py.
NOTEBOOK_MODULES = frozenset(("__main__", "steps"))


def code_name(value: Any) -> str:
    """A class's or function's name as the notebook would give it: `pandas.DataFrame`, and
    for the notebook's own code just its name (a kernel defines it in `__main__`, steps.py
    inside a step's function: `clean.<locals>.Scaler`)."""
    name = str(getattr(value, "__qualname__", getattr(value, "__name__", "")))
    module = getattr(value, "__module__", "") or ""
    if module in NOTEBOOK_MODULES:
        return name.rpartition("<locals>.")[2]
    return f"{module}.{name}"


def _numeric(value: Any) -> bool:
    """Whether rounding applies: a Series of numbers, or a frame with any number column."""
    dtypes = _dtypes(value)
    return any(getattr(t, "kind", "") in "fc" for t in dtypes)


def _dtypes(value: Any) -> list[Any]:
    dtypes = getattr(value, "dtypes", None)
    return list(dtypes) if dtypes is not None and hasattr(dtypes, "__iter__") else [value.dtype]


def same_fingerprint(a: dict[str, Any], b: dict[str, Any], rtol: float = 1e-6,
                     atol: float = 1e-9) -> bool:
    if a["kind"] != b["kind"]:
        return False
    if a["kind"] == "float":
        return (math.isnan(a["value"]) and math.isnan(b["value"])) or math.isclose(
            a["value"], b["value"], rel_tol=rtol, abs_tol=atol)
    return bool(a.get("hash") == b.get("hash"))


# What IPython puts in a notebook's namespace, and what nb2pipe's own cells add: not values
# of the notebook's.
_SESSION = re.compile(r"^(_+|_i+|_i?\d+|_[dio]h|In|Out|exit|quit|get_ipython|open|"
                      r"_nb2pipe\w*|__\w+__)$")


def uninitialised_memory(mark: int) -> None:
    """Make what numpy's `empty` and `empty_like` return hold the byte `mark` wherever it is
    not written (inside the kernel, before the notebook's first cell). Their memory is
    uninitialised: what a value reads from it is no value of the notebook's, and two runs
    side by side may agree on it by chance (memory just freed, the OS's zeros) where the
    pipeline's process does not. Each of verify's notebook runs marks it with another byte,
    so a value made from it differs between the two, as unseeded randomness does, and is
    left out and named, while one that fills what it allocates is compared."""
    try:
        import numpy
    except ImportError:
        return
    _MARK[0] = mark
    for name in ("empty", "empty_like"):
        allocate = getattr(numpy, name)
        if not getattr(allocate, "_nb2pipe_marked", False):
            setattr(numpy, name, _marked(numpy, allocate))


_MARK = [0]  # the byte uninitialised memory holds in this run


def _marked(numpy: Any, allocate: Any) -> Any:
    def marked(*args: Any, **kwargs: Any) -> Any:
        made = allocate(*args, **kwargs)
        if isinstance(made, numpy.ndarray) and not made.dtype.hasobject and made.size:
            # (an F-ordered array's transpose is C-ordered: both are one block of bytes)
            flat = made if made.flags.c_contiguous else made.T
            if flat.flags.c_contiguous:
                flat.reshape(-1).view(numpy.uint8).fill(_MARK[0])
        return made

    marked._nb2pipe_marked = True  # type: ignore[attr-defined]
    marked.__doc__, marked.__name__ = allocate.__doc__, allocate.__name__
    return marked


def write_final(path: str, namespace: dict[str, Any], leave_out: list[str]) -> None:
    """Fingerprint every value the notebook holds as its run ends (inside the kernel): what
    its cells leave behind, modules aside."""
    names = sorted(n for n, v in namespace.items() if not _SESSION.match(n)
                   and n not in leave_out and not isinstance(v, type(os)))
    write_fingerprints(path, "", "final", names, namespace)


def write_fingerprints(path: str, step: str, kind: str, names: list[str],
                       namespace: dict[str, Any]) -> None:
    """Append one JSON line per name present in `namespace` (used inside the kernel); a name
    a step left unbound (UNBOUND) is not present."""
    present = bound(namespace)
    with open(path, "a", encoding="utf-8") as handle:
        for name in names:
            if name in present:
                handle.write(json.dumps({"step": step, "kind": kind, "name": name,
                                         "fingerprint": fingerprint(present[name])}) + "\n")


class Fingerprints(Hook):
    """`nb2pipe verify`: each step's inputs, outputs and what its cells leave behind (its
    function's locals as it returns), appended to the file `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.left: dict[str, Any] = {}

    def before(self, call: StepCall) -> None:
        write_fingerprints(self.path, call.step, "inputs", sorted(call.arguments),
                           call.arguments)
        call.function = self._keeping_locals(call.function)

    def after(self, call: StepCall) -> None:
        write_fingerprints(self.path, call.step, "outputs", sorted(call.outputs), call.outputs)
        write_fingerprints(self.path, call.step, "final", sorted(self.left), self.left)

    def _keeping_locals(self, function: StepFunction) -> StepFunction:
        def call(**arguments: Any) -> dict[str, Any]:
            result, found = call_keeping_locals(function, arguments)
            self.left.update(found)
            return result

        return call
