"""A seeded generator of small notebooks made of the idioms real notebooks use.

Each idiom writes one statement (or a few) over the variables made so far, of the kinds it
needs: rebinding, in-place methods, aliasing through containers and numpy views, closures,
default arguments, decorators, classes and class attributes, globals, iterators and
generators, comprehensions and walrus, try/except, del, star imports, displays of every shape,
random state, pandas, matplotlib state and settings. A notebook is a list of cells of such
statements; `layouts` tags its cells into steps in several ways.

Everything is chosen by a `random.Random`: the same seed gives the same notebooks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

# The kinds of value a variable holds, which decide what an idiom may do with it.
INT, LIST, DICT, ARRAY, FRAME, NESTED, OBJ, CLS, FUNC, ITER, SET, TUPLE, TEXT, MAYBE = (
    "int", "list", "dict", "array", "frame", "nested", "obj", "cls", "func", "iter", "set",
    "tuple", "text", "maybe")

PRELUDE = ("import random\nimport collections\nimport functools\nimport operator\n"
           "import types\nimport numpy as np\nimport pandas as pd\n"
           "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")


@dataclass(frozen=True)
class Statement:
    idiom: str  # what it exercises, for grouping failures into classes
    code: str
    files: tuple[tuple[str, str], ...] = ()  # modules it needs beside the notebook


@dataclass
class Env:
    """The variables bound so far, by kind; names deleted (so missing)."""

    rng: random.Random
    kinds: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    counter: int = 0
    extra: dict[str, str] = field(default_factory=dict)  # per-variable facts (a class's attr)

    def new(self, prefix: str, kind: str) -> str:
        self.counter += 1
        name = f"{prefix}{self.counter}"
        self.kinds[name] = kind
        return name

    def pick(self, *kinds: str) -> str | None:
        found = sorted(n for n, k in self.kinds.items() if k in kinds)
        return self.rng.choice(found) if found else None

    def small(self) -> int:
        return self.rng.randint(1, 9)

    def int_expr(self) -> str:
        name = self.pick(INT)
        return f"{name} + {self.small()}" if name and self.rng.random() < 0.6 else str(
            self.small())


Idiom = Callable[[Env], "list[Statement] | None"]


def _s(idiom: str, code: str) -> list[Statement]:
    return [Statement(idiom, code)]


# -- plain values ---------------------------------------------------------------------------

def int_new(env: Env) -> list[Statement]:
    value = env.int_expr()
    return _s("int-new", f"{env.new('n', INT)} = {value}")


def int_rebind(env: Env) -> list[Statement] | None:
    name = env.pick(INT)
    if name is None:
        return None
    form = env.rng.choice([f"{name} = {name} + {env.small()}", f"{name} += {env.small()}",
                           f"{name} *= 2"])
    return _s("int-rebind", form)


def list_new(env: Env) -> list[Statement]:
    items = ", ".join(str(env.small()) for _ in range(env.rng.randint(2, 4)))
    form = env.rng.choice([f"[{items}]", f"list(range({env.small() + 1}))"])
    return _s("list-new", f"{env.new('L', LIST)} = {form}")


def list_inplace(env: Env) -> list[Statement] | None:
    name = env.pick(LIST)
    if name is None:
        return None
    form = env.rng.choice([f"{name}.append({env.int_expr()})", f"{name}.extend([1, 2])",
                           f"{name}.insert(0, {env.small()})", f"{name}.sort()",
                           f"{name}.reverse()", f"{name}[0] = {env.int_expr()}",
                           f"{name} += [{env.small()}]", f"{name}[1:2] = [7, 8]"])
    return _s("list-in-place", form)


def list_rebind(env: Env) -> list[Statement] | None:
    name = env.pick(LIST)
    if name is None:
        return None
    return _s("list-rebind", f"{name} = {name} + [{env.small()}]")


def alias(env: Env) -> list[Statement] | None:
    kind = env.rng.choice([LIST, DICT, ARRAY, FRAME, OBJ, SET])
    name = env.pick(kind)
    if name is None:
        return None
    return _s("alias", f"{env.new('b', kind)} = {name}")


def copy_of(env: Env) -> list[Statement] | None:
    name = env.pick(LIST, DICT, ARRAY, FRAME, SET)
    if name is None:
        return None
    kind = env.kinds[name]
    form = env.rng.choice([f"{name}.copy()", f"{name}.copy()"] + (
        [f"list({name})", f"{name}[:]"] if kind == LIST else []))
    return _s("copy", f"{env.new('c', kind)} = {form}")


def container(env: Env) -> list[Statement] | None:
    first, second = env.pick(LIST), env.pick(LIST)
    if first is None or second is None:
        return None
    if env.rng.random() < 0.5:
        return _s("container", f"{env.new('box', NESTED)} = [{first}, {second}]")
    name = env.new("box", NESTED)
    env.extra[name] = "dict"
    return _s("container", f"{name} = {{'a': {first}, 'b': {second}}}")


def container_change(env: Env) -> list[Statement] | None:
    name = env.pick(NESTED)
    if name is None or env.extra.get(name) == "objects":
        return None
    items = f"{name}.values()" if env.extra.get(name) == "dict" else name
    first = f"{name}['a']" if env.extra.get(name) == "dict" else f"{name}[0]"
    form = env.rng.choice([f"{first}.append({env.small()})",
                           f"for item in {items}:\n    item.append({env.small()})",
                           f"inner = {first}\ninner.extend([0])"])
    return _s("container-change", form)


def dict_new(env: Env) -> list[Statement]:
    return _s("dict-new", f"{env.new('d', DICT)} = {{'x': {env.small()}, 'y': {env.int_expr()}}}")


def dict_change(env: Env) -> list[Statement] | None:
    name = env.pick(DICT)
    if name is None:
        return None
    form = env.rng.choice([f"{name}['z'] = {env.int_expr()}", f"{name}.update(w={env.small()})",
                           f"{name}.setdefault('q', {env.small()})", f"{name}.pop('z', None)",
                           f"{name}['x'] += 1"])
    return _s("dict-change", form)


def set_idioms(env: Env) -> list[Statement]:
    name = env.pick(SET)
    if name is None or env.rng.random() < 0.4:
        return _s("set-new", f"{env.new('s', SET)} = {{{env.small()}, {env.small() + 10}}}")
    return _s("set-change", f"{name}.add({env.int_expr()})")


def tuple_aug(env: Env) -> list[Statement]:
    name = env.pick(TUPLE)
    if name is None:
        return _s("tuple-new", f"{env.new('t', TUPLE)} = (1, {env.small()})")
    other = env.new("t", TUPLE)
    return _s("tuple-rebind", f"{other} = {name}\n{other} += ({env.small()},)")


def text(env: Env) -> list[Statement]:
    count = env.pick(INT) or "2"
    return _s("text", f"{env.new('w', TEXT)} = 'ab' * min(abs({count}), 5)")


def delete(env: Env) -> list[Statement] | None:
    name = env.pick(INT, LIST, DICT, TEXT, SET, TUPLE)
    if name is None:
        return None
    del env.kinds[name]
    env.deleted.append(name)
    return _s("del", f"del {name}")


def conditional(env: Env) -> list[Statement] | None:
    name = env.pick(INT)
    if name is None:
        return None
    target = env.new("m", MAYBE)
    return _s("conditional-bind", f"if {name} > {env.small()}:\n    {target} = {name}")


def read(env: Env) -> list[Statement] | None:
    """A value computed from others: what makes effects visible as data."""
    name = env.pick(LIST, DICT, ARRAY, FRAME, NESTED, OBJ, SET, TUPLE, INT, TEXT)
    if name is None:
        return None
    kind = env.kinds[name]
    form = {
        LIST: f"sum({name}) + len({name})", DICT: f"sorted({name}.items())",
        ARRAY: f"float({name}.sum())", FRAME: f"float({name}['a'].sum()) + len({name}.columns)",
        NESTED: f"repr({name})", OBJ: f"{name}.total()", SET: f"sorted({name})",
        TUPLE: f"len({name})", INT: f"{name} * 3", TEXT: f"len({name})",
    }[kind]
    numeric = kind in (LIST, ARRAY, FRAME, OBJ, TUPLE, INT, TEXT)
    return _s("read", f"{env.new('r', INT if numeric else TEXT)} = {form}")


# -- numpy: views and writes ----------------------------------------------------------------

def array_new(env: Env) -> list[Statement]:
    form = env.rng.choice(["np.arange(12.0)", "np.arange(12).reshape(3, 4)",
                           "np.linspace(0, 1, 6)"])
    return _s("array-new", f"{env.new('a', ARRAY)} = {form}")


def view(env: Env) -> list[Statement] | None:
    name = env.pick(ARRAY)
    if name is None:
        return None
    form = env.rng.choice([f"{name}.reshape(-1)", f"{name}.ravel()", f"{name}.T",
                           f"{name}.transpose()", f"{name}[1:]", f"{name}[::2]",
                           f"np.asarray({name})", f"{name}.view()", f"{name}[...]",
                           f"np.reshape({name}, (-1,))", f"{name}.squeeze()"])
    return _s("view", f"{env.new('v', ARRAY)} = {form}")


def array_write(env: Env) -> list[Statement] | None:
    name = env.pick(ARRAY)
    if name is None:
        return None
    form = env.rng.choice([f"{name}[0] = {env.small()}", f"{name} += 1", f"{name} *= 2",
                           f"{name}.fill({env.small()})", f"{name}[...] = {name} * 2",
                           f"np.add({name}, 1, out={name})", f"{name}.sort()",
                           f"np.multiply({name}, 3, out={name})"])
    return _s("array-write", form)


# -- pandas ---------------------------------------------------------------------------------

def frame_new(env: Env) -> list[Statement]:
    return _s("frame-new", f"{env.new('df', FRAME)} = pd.DataFrame("
                           f"{{'a': [1, 2, {env.small()}], 'b': [4.0, 5.0, 6.0]}})")


def frame_change(env: Env) -> list[Statement] | None:
    name = env.pick(FRAME)
    if name is None:
        return None
    form = env.rng.choice([f"{name}['c'] = {name}['a'] * 2", f"{name}.loc[0, 'a'] = 10",
                           f"{name}['a'] = {name}['a'] + {env.small()}",
                           f"{name}.sort_values('a', ascending=False, inplace=True)",
                           f"{name}.rename(columns={{'b': 'b'}}, inplace=True)",
                           f"{name}.a = {name}.a * 2"])
    return _s("frame-change", form)


# -- functions, closures, decorators --------------------------------------------------------

def func_late(env: Env) -> list[Statement] | None:
    name = env.pick(INT)
    if name is None:
        return None
    fn = env.new("fn", FUNC)
    return _s("function-late-binding", f"def {fn}(x):\n    return x + {name}")


def func_default(env: Env) -> list[Statement] | None:
    name = env.pick(INT, LIST)
    if name is None:
        return None
    fn = env.new("fn", FUNC)
    reads = "len(t)" if env.kinds[name] == LIST else "t"
    return _s("function-default", f"def {fn}(x, t={name}):\n    return x + {reads}")


def func_reads_name_defined_nowhere(env: Env) -> list[Statement]:
    """A body reading a name no cell defines, on a branch no call takes: Python looks it up
    only when that line runs (check says NB309, a warning; both runs compute the same)."""
    argument = env.int_expr()
    fn = env.new("fn", FUNC)
    result = env.new("n", INT)
    return [Statement("name-defined-nowhere",
                      f"def {fn}(x):\n    if x is None:\n        return never_bound_{fn}\n"
                      f"    return x * 2"),
            Statement("name-defined-nowhere", f"{result} = {fn}({argument})")]


def func_value_reads_later_global(env: Env) -> list[Statement] | None:
    """A function made a value (its default reads a value changed later) whose body reads a
    global bound only after it is made: each call finds the global as the notebook has it."""
    name = env.pick(INT)
    if name is None:
        return None
    fn = env.new("fn", FUNC)
    late = env.new("late", INT)
    result = env.new("n", INT)
    return [Statement("function-value-late-global",
                      f"def {fn}(x, t={name}):\n    return x + t + {late}"),
            Statement("function-value-late-global", f"{late} = {env.small()}"),
            Statement("function-value-late-global", f"{name} = {name} + 1"),
            Statement("function-value-late-global", f"{result} = {fn}(1)")]


def func_mutable_default(env: Env) -> list[Statement]:
    fn = env.new("fn", FUNC)
    return _s("function-mutable-default",
              f"def {fn}(x, seen=[]):\n    seen.append(x)\n    return len(seen)")


def closure_counter(env: Env) -> list[Statement]:
    fn = env.new("fn", FUNC)
    return _s("closure-state", f"def make_{fn}():\n    count = 0\n    def inc(x):\n"
                               f"        nonlocal count\n        count += x\n"
                               f"        return count\n    return inc\n{fn} = make_{fn}()")


def lambda_value(env: Env) -> list[Statement] | None:
    name = env.pick(INT)
    if name is None:
        return None
    fn = env.new("fn", FUNC)
    form = env.rng.choice(["lambda x: x * 2", f"lambda x, k={name}: x + k",
                           f"lambda x: x + {name}"])
    return _s("lambda", f"{fn} = {form}")


def func_changes_argument(env: Env) -> list[Statement] | None:
    name = env.pick(LIST)
    if name is None:
        return None
    fn = env.new("fn", FUNC)
    return _s("function-changes-argument",
              f"def {fn}(xs):\n    xs.append(len(xs))\n    return len(xs)\n{fn}({name})")


def func_global(env: Env) -> list[Statement]:
    fn = env.new("fn", FUNC)
    target = f"g{env.counter}"
    env.kinds[target] = INT
    value = env.small()
    return _s("function-global", f"def set_{fn}():\n    global {target}\n    {target} = {value}\n"
                                 f"def {fn}(x):\n    return x\nset_{fn}()")


def func_attribute(env: Env) -> list[Statement] | None:
    fn = env.pick(FUNC)
    if fn is None or fn in env.extra:
        return None
    env.extra[fn] = "calls"
    return _s("function-attribute", f"{fn}.calls = {env.small()}")


def func_attribute_change(env: Env) -> list[Statement] | None:
    fn = next((n for n, v in sorted(env.extra.items()) if v == "calls" and n in env.kinds),
              None)
    if fn is None:
        return None
    return _s("function-attribute", f"{fn}.calls += 1\n{env.new('r', INT)} = {fn}.calls")


def call(env: Env) -> list[Statement] | None:
    fn = env.pick(FUNC)
    if fn is None:
        return None
    return _s("call", f"{env.new('r', INT)} = {fn}({env.int_expr()})")


def registry(env: Env) -> list[Statement]:
    reg = env.new("REG", DICT)
    fn = env.new("fn", FUNC)
    return [Statement("decorator-registers",
                      f"{reg} = {{'x': 0, 'y': 0}}\ndef register_{reg}(f):\n"
                      f"    {reg}[f.__name__] = 1\n    return f"),
            Statement("decorator-registers",
                      f"@register_{reg}\ndef {fn}(x):\n    return x + 1")]


def counting_decorator(env: Env) -> list[Statement]:
    fn = env.new("fn", FUNC)
    env.extra[fn] = "counted"
    return _s("decorator-state", f"def counted_{fn}(f):\n    def inner(x):\n"
                                 f"        inner.calls += 1\n        return f(x)\n"
                                 f"    inner.calls = 0\n    return inner\n"
                                 f"@counted_{fn}\ndef {fn}(x):\n    return x * 2")


def counted_read(env: Env) -> list[Statement] | None:
    fn = next((n for n, v in sorted(env.extra.items()) if v == "counted" and n in env.kinds),
              None)
    if fn is None:
        return None
    return _s("decorator-state", f"{env.new('r', INT)} = {fn}.calls")


def func_returns_argument(env: Env) -> list[Statement] | None:
    name = env.pick(LIST)
    if name is None:
        return None
    fn = env.new("fn", FUNC)
    form = env.rng.choice([(f"def {fn}(x):\n    return x", f"{fn}({name})"),
                           (f"def {fn}(xs):\n    return xs[0]", f"{fn}([{name}])")])
    return _s("function-returns-argument",
              f"{form[0]}\n{env.new('b', LIST)} = {form[1]}")


def holder(env: Env) -> list[Statement] | None:
    name = env.pick(LIST)
    if name is None:
        return None
    box = env.new("box", OBJ)
    env.extra[box] = "holder"
    return _s("object-holds", f"class Box_{box}:\n    def __init__(self, x):\n"
                              f"        self.x = x\n    def total(self):\n"
                              f"        return sum(self.x)\n{box} = Box_{box}({name})")


def holder_change(env: Env) -> list[Statement] | None:
    box = next((n for n, v in sorted(env.extra.items()) if v == "holder" and n in env.kinds),
               None)
    if box is None:
        return None
    return _s("object-holds", f"{box}.x.append({env.small()})")


def objects_in_container(env: Env) -> list[Statement] | None:
    first, second = env.pick(OBJ), env.pick(OBJ)
    if first is None or second is None or env.extra.get(first) or env.extra.get(second):
        return None
    group = env.new("objs", NESTED)
    env.extra[group] = "objects"
    return _s("objects-in-container", f"{group} = [{first}, {second}]\nfor item in {group}:\n"
                                      f"    item.bump()")


def func_changes_object(env: Env) -> list[Statement] | None:
    name = env.pick(OBJ)
    if name is None or env.extra.get(name):
        return None
    fn = env.new("fn", FUNC)
    return _s("function-changes-object", f"def reset_{fn}(o):\n    o.v = 0\n"
                                         f"def {fn}(x):\n    return x\nreset_{fn}({name})")


def shallow_copy(env: Env) -> list[Statement] | None:
    name = env.pick(NESTED)
    if name is None or env.extra.get(name) in ("dict", "objects"):
        return None
    copy = env.new("box", NESTED)
    return _s("shallow-copy", f"import copy\n{copy} = copy.copy({name})")


def library_holds(env: Env) -> list[Statement] | None:
    """What a library call returns holds what it was given, reached through a module."""
    name = env.pick(LIST)
    if name is None:
        return None
    held = env.new("h", LIST)
    form = env.rng.choice([f"types.SimpleNamespace(x={name}).x",
                           f"collections.ChainMap({{}}, {{'k': {name}}})['k']",
                           f"functools.reduce(lambda acc, v: v, [{name}], None)",
                           f"{{'k': {name}}}.get('k')"])
    return _s("library-holds", f"{held} = {form}")


def library_changes(env: Env) -> list[Statement] | None:
    """A library call changes a mutable object it is given."""
    name = env.pick(LIST)
    if name is None:
        return None
    form = env.rng.choice([f"operator.setitem({name}, 0, {env.int_expr()})",
                           f"operator.iadd({name}, [{env.small()}])"])
    return _s("library-changes", form)


# A module beside the notebook whose functions change what they are given (nothing tells the
# analysis so: only that it is no library known to leave its arguments alone).
OWN_MODULE = ("own_inplace.py",
              "def grow(xs):\n    xs.append(len(xs))\n\n\n"
              "class Wrap:\n    def __init__(self, xs):\n        self.xs = xs\n\n"
              "    def grow(self):\n        self.xs.append(-1)\n")

# How a notebook function gives a list to a library call: (label, definition, call) with
# {fn} the function and {xs} the list. The control calls (numpy, the standard library's pure
# modules) leave it alone, and must not count as changing it.
GIVEN_TO_LIBRARY: tuple[tuple[str, str, str], ...] = (
    ("parameter", "import own_inplace\ndef {fn}(xs):\n    own_inplace.grow(xs)\n"
                  "    return len(xs)", "{fn}({xs})"),
    ("imported-name", "from own_inplace import grow\ndef {fn}(xs):\n    grow(xs)", "{fn}({xs})"),
    ("imported-in-body", "def {fn}(xs):\n    import own_inplace as lib\n    lib.grow(xs)",
     "{fn}({xs})"),
    ("global", "import own_inplace\ndef {fn}():\n    own_inplace.grow({xs})", "{fn}()"),
    ("held-by-result", "import own_inplace\ndef {fn}(xs):\n    w = own_inplace.Wrap(xs)\n"
                       "    w.grow()", "{fn}({xs})"),
    ("method-of-result", "import own_inplace\ndef {fn}(xs):\n    own_inplace.Wrap(xs).grow()",
     "{fn}({xs})"),
    ("nested-function", "import own_inplace\ndef {fn}(xs):\n    def inner():\n"
                        "        own_inplace.grow(xs)\n    inner()", "{fn}({xs})"),
)
LEFT_ALONE_BY_LIBRARY: tuple[tuple[str, str, str], ...] = (
    ("numpy", "def {fn}(xs):\n    return int(np.sum(xs)) + len(np.asarray(xs))", "{fn}({xs})"),
    ("statistics", "import statistics\ndef {fn}():\n    return statistics.median({xs})",
     "{fn}()"),
    ("json", "import json\ndef {fn}(xs):\n    return len(json.dumps(xs))", "{fn}({xs})"),
)


def func_gives_to_library(env: Env) -> list[Statement] | None:
    """A notebook function gives its parameter, or a global, to a call of a module beside the
    notebook that changes it in place; or to a library known to leave it alone."""
    name = env.pick(LIST)
    if name is None:
        return None
    fn = env.new("fn", FUNC)
    changes = env.rng.random() < 0.7
    _, define, use = env.rng.choice(GIVEN_TO_LIBRARY if changes else LEFT_ALONE_BY_LIBRARY)
    code = f"{define}\n{env.new('r', MAYBE)} = {use}".format(fn=fn, xs=name)
    return [Statement("function-gives-to-library", code, (OWN_MODULE,) if changes else ())]


# -- classes --------------------------------------------------------------------------------

def class_new(env: Env) -> list[Statement]:
    cls = env.new("C", CLS)
    return _s("class-new", f"class {cls}:\n    k = {env.small()}\n    made = 0\n"
                           f"    def __init__(self, v):\n        self.v = v\n"
                           f"    def bump(self):\n        self.v += 1\n"
                           f"    def total(self):\n        return self.v + {cls}.k\n"
                           f"    @classmethod\n    def count(cls):\n        cls.made += 1")


def instance(env: Env) -> list[Statement] | None:
    cls = env.pick(CLS)
    if cls is None:
        return None
    return _s("instance", f"{env.new('o', OBJ)} = {cls}({env.int_expr()})")


def object_change(env: Env) -> list[Statement] | None:
    name = env.pick(OBJ)
    if name is None:
        return None
    form = env.rng.choice([f"{name}.bump()", f"{name}.v = {env.int_expr()}",
                           f"{name}.v += 2", f"setattr({name}, 'v', 5)"])
    return _s("object-change", form)


def class_change(env: Env) -> list[Statement] | None:
    cls = env.pick(CLS)
    if cls is None:
        return None
    form = env.rng.choice([f"{cls}.k = {env.int_expr()}", f"{cls}.k += 1", f"{cls}.count()",
                           f"setattr({cls}, 'k', {env.small()})"])
    return _s("class-attribute", form)


def class_read(env: Env) -> list[Statement] | None:
    cls = env.pick(CLS)
    if cls is None:
        return None
    return _s("class-attribute", f"{env.new('r', INT)} = {cls}.k + {cls}.made")


# -- iterators, generators, comprehensions, walrus ------------------------------------------

def iterator(env: Env) -> list[Statement] | None:
    name = env.pick(LIST)
    if name is None:
        return None
    form = env.rng.choice([f"iter({name})", f"iter(list({name}))"])
    return _s("iterator", f"{env.new('it', ITER)} = {form}")


def generator(env: Env) -> list[Statement]:
    name = env.new("it", ITER)
    form = env.rng.choice([f"def gen_{name}():\n    yield from range(5)\n{name} = gen_{name}()",
                           f"{name} = (v * 2 for v in range(5))",
                           f"{name} = map(abs, [-1, -2, 3])"])
    return _s("generator", form)


def advance(env: Env) -> list[Statement] | None:
    name = env.pick(ITER)
    if name is None:
        return None
    return _s("next", f"{env.new('r', INT)} = next({name}, -1)")


def comprehension(env: Env) -> list[Statement] | None:
    name = env.pick(LIST)
    if name is None:
        return None
    walrus = env.new("y", INT)
    form = env.rng.choice([
        (f"{env.new('L', LIST)} = [v * 2 for v in {name}]\n{walrus} = 0", "comprehension"),
        (f"{env.new('L', LIST)} = [({walrus} := v) + 1 for v in {name}]", "walrus"),
        (f"if ({walrus} := len({name})) > 2:\n    {name}.append({walrus})", "walrus"),
        (f"{env.new('d', DICT)} = {{'x': 0, 'y': sum(v for v in {name})}}\n{walrus} = 1",
         "comprehension"),
    ])
    return _s(form[1], form[0])


# -- try/except -----------------------------------------------------------------------------

def try_except(env: Env) -> list[Statement]:
    target = env.new("r", INT)
    missing = env.rng.choice([*env.deleted, "never_bound"]) if env.deleted else "never_bound"
    present = env.pick(INT) or "1"
    handler = env.rng.choice(["except NameError:", "except Exception:", "except:",
                              "except (KeyError, NameError):", "except BaseException:"])
    form = env.rng.choice([
        (f"try:\n    {target} = {missing}\n{handler}\n    {target} = -1", "try-missing-name"),
        (f"try:\n    {target} = {present}\n{handler}\n    {target} = -1", "try-present-name"),
        (f"try:\n    {target} = {{}}['k']\nexcept KeyError as err:\n    {target} = len(str(err))",
         "try-except-as"),
        (f"try:\n    {target} = 1 // 0\nexcept ZeroDivisionError:\n    {target} = 0",
         "try-except"),
    ])
    return _s(form[1], form[0])


# -- star imports, random state, matplotlib -------------------------------------------------

def star_import(env: Env) -> list[Statement]:
    target = env.new("r", INT)
    form = env.rng.choice([
        (f"from math import *\n{target} = floor(sqrt(16) + pi)", "star-import"),
        (f"from numpy import *\n{target} = int(sum(array([1, 2, 3])))", "star-import"),
        (f"from statistics import *\n{target} = int(median([3, 1, 2]))", "star-import"),
    ])
    return _s(form[1], form[0])


def random_state(env: Env) -> list[Statement]:
    target = env.new("r", INT)
    form = env.rng.choice([
        (f"np.random.seed({env.small()})", "seed"),
        (f"random.seed({env.small()})", "seed"),
        (f"{target} = int(np.random.randint(0, 1000))", "draw"),
        (f"{target} = random.randint(0, 1000)", "draw"),
        (f"rng_{target} = np.random.default_rng({env.small()})\n"
         f"{target} = int(rng_{target}.integers(1000))", "generator-object"),
    ])
    if form[1] == "seed":
        del env.kinds[target]
    lists = env.pick(LIST)
    if lists is not None and env.rng.random() < 0.2:
        return _s("draw", f"random.shuffle({lists})")
    return _s(form[1], form[0])


def plotting(env: Env) -> list[Statement] | None:
    target = env.new("r", INT)
    data = env.pick(LIST) or "[1, 2, 3]"
    form = env.rng.choice([
        (f"fig_{target}, ax_{target} = plt.subplots()\nax_{target}.plot({data})\n"
         f"{target} = len(ax_{target}.lines)", "matplotlib-objects"),
        (f"plt.plot({data})\n{target} = len(plt.gcf().axes)", "matplotlib-state"),
        (f"{target} = len(plt.get_fignums())", "matplotlib-state"),
        (f"plt.rcParams['lines.linewidth'] = {env.small()}", "matplotlib-settings"),
        (f"{target} = int(plt.rcParams['lines.linewidth'])", "matplotlib-settings"),
        (f"np.set_printoptions(precision={env.small()})", "library-settings"),
        (f"{target} = len(str(np.array([1 / 3])))", "library-settings"),
        (f"pd.set_option('display.max_rows', {env.small() + 10})", "library-settings"),
        (f"{target} = pd.get_option('display.max_rows')", "library-settings"),
    ])
    if f"{target} =" not in form[0]:
        del env.kinds[target]
    return _s(form[1], form[0])


def display(env: Env) -> list[Statement] | None:
    """A cell's last line, shown: every shape of expression."""
    name = env.pick(INT) or "1"
    items = env.pick(LIST) or "[1, 2]"
    frame = env.pick(FRAME)
    forms = [name, f"{name}, {items}", f"({name}, {name})", f"{items}[0], {items}[-1]",
             f"len({items}), sum({items})", f"*{items},", f"{name} if {name} else 0",
             f"{name};", f"print({name})", f"{items}", f"{name},",
             f"{name}, \\\n    {name}"]
    if frame:
        forms += [f"{frame}.head()", f"{frame}.shape, {frame}['a'].sum()"]
    return _s("display", env.rng.choice(forms))


def global_statement(env: Env) -> list[Statement] | None:
    name = env.pick(INT)
    if name is None:
        return None
    return _s("global-at-top", f"global {name}\n{name} = {name} + 1")


IDIOMS: tuple[tuple[Idiom, float], ...] = (
    (int_new, 3), (int_rebind, 2), (list_new, 3), (list_inplace, 3), (list_rebind, 1),
    (alias, 3), (copy_of, 1), (container, 2), (container_change, 2), (dict_new, 2),
    (dict_change, 2), (set_idioms, 1), (tuple_aug, 1), (text, 1), (delete, 1),
    (conditional, 0.5), (read, 5), (array_new, 2), (view, 3), (array_write, 3),
    (frame_new, 1.5), (frame_change, 2), (func_late, 1.5), (func_default, 1.5),
    (func_mutable_default, 1), (closure_counter, 1), (lambda_value, 1),
    (func_changes_argument, 1), (func_global, 1), (func_attribute, 0.7),
    (func_attribute_change, 1), (call, 4), (registry, 0.7), (counting_decorator, 0.7),
    (counted_read, 1), (class_new, 1.5), (instance, 2), (object_change, 2), (class_change, 2),
    (class_read, 2), (iterator, 1), (generator, 0.7), (advance, 2), (comprehension, 1.5),
    (try_except, 1.5), (star_import, 0.7), (random_state, 2), (plotting, 1.5),
    (display, 3), (global_statement, 0.5), (func_returns_argument, 1), (holder, 1),
    (holder_change, 1.5), (objects_in_container, 1), (func_changes_object, 1),
    (shallow_copy, 0.7), (func_reads_name_defined_nowhere, 0.7),
    (func_value_reads_later_global, 0.7), (library_holds, 1), (library_changes, 1),
    (func_gives_to_library, 1),
)


def statements(rng: random.Random, count: int) -> list[Statement]:
    env = Env(rng)
    found: list[Statement] = []
    functions, weights = zip(*IDIOMS, strict=True)
    while len(found) < count:
        made = rng.choices(functions, weights)[0](env)
        if made:
            found.extend(made)
    return found


Cells = list[list[Statement]]


def notebook_cells(rng: random.Random) -> Cells:
    """3 to 8 cells of 1 to 3 statements (a display only ends a cell), the imports first."""
    body = statements(rng, rng.randint(4, 14))
    cells: Cells = [[Statement("prelude", PRELUDE)]]
    current: list[Statement] = []
    for statement in body:
        current.append(statement)
        if statement.idiom == "display" or len(current) >= rng.randint(1, 3):
            cells.append(current)
            current = []
    if current:
        cells.append(current)
    return cells


def source(cell: list[Statement]) -> str:
    return "\n".join(s.code for s in cell)


def layouts(cells: Cells, rng: random.Random) -> dict[str, list[tuple[str, ...]]]:
    """Ways to tag the cells into steps: each cell a step; groups of neighbouring cells; the
    first cells untagged (an implicit first step)."""
    count = len(cells)
    each = [(f"step:s{i}",) for i in range(count)]
    groups: list[tuple[str, ...]] = []
    for i in range(count):
        groups.append((f"step:g{i}",) if i == 0 or rng.random() < 0.45 else ())
    untagged = [() if i < 2 else (f"step:u{i}",) for i in range(count)]
    return {"each-cell": each, "grouped": groups, "untagged-start": untagged}
