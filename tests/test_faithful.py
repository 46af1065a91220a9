"""Green check => the steps compute what the notebook computes: reproductions of notebooks that
checked clean and then failed or computed other values, each with the class of code it stands
for. Each notebook runs twice here (tests/semantics/harness.py): its cells in one namespace, as
a kernel runs them, and its generated steps with values handed over through the store, as
between processes; every value the notebook leaves behind is compared.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from semantics.harness import Outcome, compare, notebook, run_flow
from support import graph_of

from nb2pipe.generate.flow_py import render_flow
from nb2pipe.generate.last_value import shown_last_value
from nb2pipe.generate.plan import make_plan
from nb2pipe.generate.steps_py import render_steps
from nb2pipe.pipeline import notebook_graph


def steps(*sources: str) -> list[tuple[str, tuple[str, ...]]]:
    """Each source a cell, each cell a step of its own."""
    return [(source, (f"step:s{i}",)) for i, source in enumerate(sources, start=1)]


def assert_same_values(*sources: str) -> Outcome:
    outcome = compare(steps(*sources))
    assert outcome.kind == "ok", outcome
    return outcome


# -- 1. a cell's last value is shown as one value, whatever the expression ---------------------

LAST_VALUES = [
    "a, b", "Q1, Q3", "sum(d), max(d)", "x.real, x.imag", "(a), b", "a,", "*d, a",
    "a, \\\n    b", "(a,\n b)", "a, b  # both", "a if a else b", "lambda: a", "(y := a)",
    "(v for v in d)", "[v for v in d], {a: b}", "-a, not b", "a; b", "x = 1; a, b",
]


@pytest.mark.parametrize("last", LAST_VALUES)
def test_the_last_value_of_a_cell_is_shown_as_one_argument(last: str) -> None:
    code = f"a = 1\nb = 2\n{last}"
    shown = shown_last_value(code, set(), 1)
    tree = ast.parse(shown)
    [call] = [n for n in ast.walk(tree.body[-1]) if isinstance(n, ast.Call)
              and getattr(n.func, "id", "") == "displayhook"]
    original = ast.parse(code).body[-1]
    assert isinstance(original, ast.Expr) and len(call.args) == 1 and not call.keywords
    assert ast.dump(call.args[0]) == ast.dump(ast.parse(ast.unparse(original.value),
                                                        mode="eval").body)
    assert shown.count("\n") == code.count("\n")  # the same lines: errors name the cell's line


def test_a_bare_tuple_as_a_cells_last_line_runs() -> None:
    assert_same_values("a = 1\nb = 2\na, b", "d = [1, 2, 3]\nsum(d), max(d)",
                       "import numpy as np\nx = np.arange(4)\nx.min(), x.max()")


# -- 2. copy only what must be copied; say which value cannot be ------------------------------

# Pickled, so it crosses processes, but not copied (as an estimator holding a native handle).
UNCOPYABLE = ("class Encoder:\n"
              "    def __deepcopy__(self, memo):\n"
              "        raise TypeError('an Encoder cannot be copied')\n"
              "    def fit_transform(self, values):\n"
              "        return [v.upper() for v in values]")


def test_a_value_no_other_step_reads_is_not_copied() -> None:
    sources = ["towns = {'town': ['a', 'b', 'a']}", "n = len(towns)",
               f"{UNCOPYABLE}\nle = Encoder()", "towns['town'] = le.fit_transform(towns['town'])"]
    flow = render_flow(make_plan(notebook_graph(notebook(steps(*sources)))))
    assert "copied((s1[\"towns\"],), step=\"s4\", names=[\"towns\"])" in flow
    assert_same_values(*sources)


def test_a_value_that_cannot_be_copied_is_named_with_its_type_step_and_what_to_do() -> None:
    from nb2pipe.runtime.errors import StepError
    from nb2pipe.runtime.handoff import copied

    namespace: dict[str, object] = {}
    exec(UNCOPYABLE, namespace)
    encoder = namespace["Encoder"]()  # type: ignore[operator]
    with pytest.raises(StepError) as raised:
        copied(([1], encoder), step="s4", names=["towns", "le"])
    message = str(raised.value)
    assert "step 's4'" in message and "'le' (builtins.Encoder)" in message
    assert "cannot be copied (TypeError: an Encoder cannot be copied)" in message
    assert "Make or load it again in this step" in message
    assert raised.value.step == "s4" and raised.value.deterministic


# -- 3. a handler that catches NameError guards a missing name ---------------------------------

@pytest.mark.parametrize("handler", ["except Exception:", "except:", "except BaseException:",
                                     "except (ValueError, Exception):", "except NameError:",
                                     "except builtins.NameError:", "except (KeyError, NameError):"])
def test_a_handler_catching_name_error_guards_a_missing_name(handler: str) -> None:
    guarded = f"import builtins\ntry:\n    y = x\n{handler}\n    y = None"
    # never bound; bound by an earlier step and deleted by another; bound only later
    assert_same_values("x = 1\ndel x", guarded)
    assert_same_values("x = 1", "del x", guarded, "z = y")
    assert_same_values(guarded, "x = 2")


def test_a_handler_that_does_not_catch_name_error_leaves_it_an_error() -> None:
    graph = graph_of(("x = 1\ndel x", "step:a"),
                     ("try:\n    y = x\nexcept KeyError:\n    y = None", "step:b"))
    assert [d.code for d in graph.diagnostics] == ["NB201"]


# -- 8. `except E as err:` unbinds err when the handler ends ----------------------------------

def test_the_name_of_a_caught_exception_is_unbound_after_its_handler() -> None:
    handled = "try:\n    1 / 0\nexcept ZeroDivisionError as err:\n    message = str(err)"
    graph = graph_of((handled, "step:a"), ("print(err)", "step:b"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB201", 2, 1)]
    graph = graph_of((handled + "\nprint(err)", "step:a"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB201", 1, 5)]
    # a handler that did not run leaves the earlier value; the one that ran, what it set
    assert_same_values("err = 5", "try:\n    pass\nexcept KeyError as err:\n    pass\nkept = err",
                       handled, "again = message")


# -- 5. writing through a numpy view changes the array it views ---------------------------------

VIEWS = ["A.reshape((1, 10))", "A.ravel()", "A.T", "A.transpose()", "A[:, 1:3]", "A[0]",
         "A.view()", "np.asarray(A)", "np.reshape(A, (10,))", "np.transpose(A)", "A.squeeze()",
         "np.ravel(A)", "np.atleast_2d(A)", "np.flip(A)", "A.real", "A[...]"]
WRITES = ["B[0] = 5", "B += 1", "B.fill(7)", "np.add(B, 1, out=B)", "np.add.at(B, 0, 3)",
          "B.sort()", "np.copyto(B, 9)", "B[...] = B * 2", "np.random.default_rng(0).shuffle(B)"]


@pytest.mark.parametrize("view", VIEWS)
def test_a_write_through_a_view_changes_its_array(view: str) -> None:
    assert_same_values("import numpy as np\nA = np.arange(10).reshape(2, 5)", f"B = {view}",
                       "B[0, ...] = 5" if view != "A[0]" else "B[...] = 5", "C = A.copy()")


@pytest.mark.parametrize("write", WRITES)
def test_each_way_of_writing_into_a_view_changes_its_array(write: str) -> None:
    # `peek` reads B while `change` runs: the step that writes works on copies of both
    assert_same_values("import numpy as np\nA = np.arange(10.0)[::-1]", "B = A[2:8]",
                       "peek = float(B.sum())", write, "C = A.copy()\nD = B.copy()")


# -- 4. star imports bind what the installed module binds ---------------------------------------

@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder of installed modules, seen by this process and by the environment's Python."""
    from nb2pipe.analysis import star_names
    from nb2pipe.notebook import pylab

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.syspath_prepend(str(site))
    caches = (pylab.environment_names, star_names._names, pylab._table)
    for cache in caches:
        cache.cache_clear()
    yield site
    for cache in caches:
        cache.cache_clear()


def _step_code(graph_specs: list[tuple[str, str]]) -> tuple[list[str], str]:
    graph = graph_of(*graph_specs)
    from nb2pipe.generate.steps_py import render_steps

    return [d.message for d in graph.diagnostics], render_steps(make_plan(graph)).text


def test_a_star_import_of_numpy_binds_what_the_installed_numpy_binds(installed: Path) -> None:
    # numpy 1.26's names, as a stand-in: `bool` is not among them, `float_`, `NaN` are
    (installed / "numpy").mkdir()
    (installed / "numpy" / "__init__.py").write_text(
        "__version__ = '1.26.4'\n"
        "__all__ = ['float_', 'NaN'] + ['product']  # computed, as numpy's is\n"
        "float_ = float\nNaN = float('nan')\n"
        "def product(values):\n    return 6\n")
    problems, code = _step_code([("from numpy import *", "step:one"),
                                 ("z = bool(1)\nw = float_(2)\nm = NaN\np = product([2, 3])",
                                  "step:two")])
    assert problems == []
    assert "from numpy import float_, NaN, product" in code and "import bool" not in code


def test_a_star_import_binds_what_the_installed_module_binds(installed: Path) -> None:
    (installed / "shapes.py").write_text(
        "import math\n__all__ = [n for n in ('area', 'unit') if n]\n"
        "def area(r):\n    return math.pi * r * r\nunit = 'cm'\nhidden = 1\n")
    problems, code = _step_code([("from shapes import *", "step:one"),
                                 ("a = area(1.0)\nu = unit\nsize = len([1])", "step:two")])
    assert problems == [] and "from shapes import area, unit" in code
    problems, _ = _step_code([("from shapes import *", "step:one"), ("h = hidden", "step:two")])
    assert problems == ["name 'hidden' is used in step 'two' but never defined before it"]


def test_a_module_beside_the_notebook_is_never_imported_to_learn_its_names(
        installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nb2pipe.notebook.pylab import environment_names

    beside = tmp_path / "notebook"
    beside.mkdir()
    (beside / "helpers.py").write_text("open('ran', 'w').close()\n__all__ = ['x']\nx = 1\n")
    monkeypatch.chdir(beside)
    assert environment_names("helpers") is None
    assert not (beside / "ran").exists()


# -- 6. a class, function or module changed in a later step keeps the change ----------------

CHANGED_DEFINITIONS = [
    # (the definition, the change, what a later step reads)
    ("class Cfg:\n    lr = 0.1", "Cfg.lr = 0.5", "v = Cfg.lr"),
    ("class Cfg:\n    items = []", "Cfg.items.append(3)", "v = list(Cfg.items)"),
    ("class Cfg:\n    n = 1", "Cfg.n += 1", "v = Cfg.n"),
    ("class Cfg:\n    lr = 0.1", "setattr(Cfg, 'lr', 0.5)", "v = Cfg.lr"),
    ("class Cfg:\n    n = 0\n    @classmethod\n    def bump(cls):\n        cls.n += 1",
     "Cfg.bump()", "v = Cfg.n"),
    ("def f():\n    return 1", "f.calls = 3", "v = f.calls"),
    ("def f():\n    return 1", "f.__doc__ = 'one'", "v = f.__doc__"),
    ("class Cfg:\n    lr = 0.1\nCfg.lr = 0.7", "x = 1", "v = Cfg.lr"),  # in its own step
    ("class C:\n    k = 1\nc = C()", "C.k = 5", "v = c.k"),  # an instance sees its class
    ("def tune():\n    Cfg.lr = 0.9\nclass Cfg:\n    lr = 0.1", "tune()", "v = Cfg.lr"),
    ("import matplotlib as mpl\nw = mpl.rcParams['lines.linewidth']",
     "mpl.rcParams['lines.linewidth'] = 3.0", "v = mpl.rcParams['lines.linewidth']"),
    ("import pandas as pd\nr = pd.get_option('display.max_rows')",
     "pd.set_option('display.max_rows', 7)", "v = pd.get_option('display.max_rows')"),
]


@pytest.mark.parametrize("definition, change, read", CHANGED_DEFINITIONS)
def test_a_definition_changed_in_a_later_step_keeps_the_change(
        definition: str, change: str, read: str) -> None:
    assert_same_values(definition, change, read)


def test_a_value_made_of_a_class_reading_notebook_values_later_is_reported() -> None:
    graph = graph_of(("scale = 2", "step:a"),
                     ("class Cfg:\n    def scaled(self):\n        return scale", "step:b"),
                     ("Cfg.lr = 0.5", "step:c"), ("scale = 3\nv = Cfg().scaled()", "step:d"))
    [found] = graph.diagnostics
    assert (found.code, found.cell, found.line) == ("NB308", 2, 1)  # where it is defined
    assert found.hint == "pass scale to 'Cfg' as argument"


# -- 7. decorators run where the definition is, and may change their own state -------------

DECORATED = [
    ("REG = {}\ndef register(f):\n    REG[f.__name__] = f\n    return f",
     "@register\ndef g():\n    return 1", "n = len(REG)\nfirst = REG['g']()"),
    ("class App:\n    def __init__(self):\n        self.routes = {}\n"
     "    def route(self, path):\n        def add(f):\n            self.routes[path] = f\n"
     "            return f\n        return add\napp = App()",
     "@app.route('/')\ndef home():\n    return 'hi'", "n = len(app.routes)\npage = home()"),
    ("CALLS = []\ndef traced(f):\n    CALLS.append(f.__name__)\n    return f",
     "@traced\nclass Model:\n    size = 2", "n = len(CALLS)\nsize = Model.size"),
    ("def counted(f):\n    def inner(*a):\n        inner.calls += 1\n        return f(*a)\n"
     "    inner.calls = 0\n    return inner",
     "@counted\ndef double(x):\n    return 2 * x\ny = double(2)",
     "z = double(3)\nc = double.calls"),
]


@pytest.mark.parametrize("decorator, decorated, read", DECORATED)
def test_a_decorator_runs_once_where_the_definition_is(
        decorator: str, decorated: str, read: str) -> None:
    assert_same_values(decorator, decorated, read)


def test_a_step_of_definitions_that_changes_a_value_is_a_task() -> None:
    graph = graph_of(("REG = {}\ndef register(f):\n    REG[f.__name__] = f\n    return f",
                      "step:a"), ("@register\ndef g():\n    return 1", "step:b"),
                     ("n = len(REG)", "step:c"))
    assert [s.name for s in graph.steps] == ["a", "b", "c"]
    assert graph.step("c").inputs == (("REG", "b"),)


# -- 9. default arguments are evaluated when the definition runs ----------------------------

DEFINED_WITH = [
    ("def f(x, t=threshold):\n    return x + t", "r = f(0)"),
    ("def f(x, *, t=threshold):\n    return x + t", "r = f(0)"),
    ("f = lambda x, t=threshold: x + t", "r = f(0)"),
    ("class C:\n    k = threshold", "r = C.k"),
    ("def make(t):\n    return lambda: t\ndef f(g=make(threshold)):\n    return g()", "r = f()"),
]


@pytest.mark.parametrize("definition, use", DEFINED_WITH)
def test_what_a_definition_reads_is_read_when_it_is_defined(definition: str, use: str) -> None:
    assert_same_values("threshold = 1", definition, "threshold = 2", use)


def test_a_definition_whose_reads_do_not_change_stays_code() -> None:
    graph = graph_of(("threshold = 1", "step:a"),
                     ("def f(x, t=threshold):\n    return x + t", "step:b"),
                     ("r = f(0)", "step:c"))
    assert [s.name for s in graph.steps] == ["a", "c"]  # f is emitted where it is used
    assert graph.step("c").inputs == (("threshold", "a"),)


def test_a_default_changed_by_each_call_is_the_functions_state() -> None:
    assert_same_values("def add(x, seen=[]):\n    seen.append(x)\n    return len(seen)",
                       "a = add(1)", "b = add(2)")
    assert_same_values("def count():\n    n = 0\n    def inc():\n        nonlocal n\n"
                       "        n += 1\n        return n\n    return inc\nstep = count()",
                       "a = step()", "b = step()")


# -- found by the differential tester (tests/semantics) ----------------------------------------

def test_a_nested_function_binding_nonlocal_state_leaves_its_outer_function_alone() -> None:
    # `nonlocal count` in `inc` made `count` a global the outer function sets
    assert_same_values("x = 1", "def make():\n    count = 0\n    def inc(v):\n"
                       "        nonlocal count\n        count += v\n        return count\n"
                       "    return inc\nstep = make()", "a = step(2)", "b = step(3)")
    graph = graph_of(("def outer():\n    def inner():\n        y = 1\n        yield y\n"
                      "    return 2\nz = outer()", "step:a"), ("w = z + 1", "step:b"))
    assert graph.diagnostics == () and graph.step("b").inputs == (("z", "a"),)


def test_a_generator_object_passed_to_another_step_is_reported() -> None:
    graph = graph_of(("def numbers():\n    yield from range(5)\nit = numbers()", "step:a"),
                     ("first = next(it)", "step:b"))
    [found] = graph.diagnostics
    assert (found.code, found.cell, found.line) == ("NB304", 1, 3)
    assert "'it' (a generator, made by numbers())" in found.message
    assert compare(steps("def numbers():\n    yield from range(5)\nit = numbers()\n"
                         "first = next(it)")).kind == "ok"  # in one step: fine


@pytest.mark.parametrize("lazy", ["iter(xs)", "reversed(xs)", "enumerate(xs)", "zip(xs, xs)",
                                  "map(abs, xs)", "filter(None, xs)"])
def test_a_lazy_iterator_sees_a_later_change_of_what_it_iterates(lazy: str) -> None:
    assert_same_values("xs = [3, 6]", f"it = {lazy}", "xs.reverse()\nxs.append(1)",
                       "seen = list(it)")


@pytest.mark.parametrize("consume", ["a = list(it)", "a = sum(it)", "for v in it:\n    pass",
                                     "a = [v for v in it]", "a = next(it)", "a = max(*it)"])
def test_an_iterator_consumed_in_one_step_stays_consumed(consume: str) -> None:
    assert_same_values("xs = [1, 2, 3]\nit = iter(xs)", consume, "rest = list(it)")
    assert_same_values("it = (v * 2 for v in range(3))\n" + consume + "\nrest = list(it)")


def test_a_star_import_binds_again_the_names_it_binds() -> None:
    # numpy's names include `random`: after the star import, `random` is numpy.random
    assert_same_values("import random\nimport numpy as np", "np.random.seed(5)",
                       "from numpy import *\nr = int(sum(array([1, 2])))",
                       "draw = random.randint(0, 1000)")


def test_a_classmethod_that_changes_its_class_changes_it_wherever_it_is_called() -> None:
    counter = "class C:\n    made = 0\n    @classmethod\n    def count(cls):\n        cls.made += 1"
    assert_same_values(counter + "\nC.count()", "C.count()", "r = C.made")
    assert_same_values("L = [1]", counter, "def bump():\n    C.count()\n    L.append(2)",
                       "bump()", "r = C.made + len(L)")


def test_a_starred_value_shown_by_a_cell_hides_no_change_after_it() -> None:
    # tree-sitter read `*[1, 2],` together with the next statement: the in-place sort was lost
    assert_same_values("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 5]})", "*[1, 2],",
                       "df.sort_values('a', ascending=False, inplace=True)")
    assert_same_values("xs = [2, 1]", "*xs, 3\nxs.sort()", "n = xs[0]")


def test_an_input_read_late_by_a_lambda_and_changed_in_its_step_starts_as_given() -> None:
    # it was started as None ("bound on an earlier pass of a loop")
    assert_same_values("def set_g():\n    global g\n    g = 4\nset_g()",
                       "f = lambda x: x + g\ng *= 2\ny = f(1)")


@pytest.mark.parametrize("made", [
    "def ident(x):\n    return x\nb = ident(a)",
    "def first(x):\n    return x[0]\nb = first([a])",
    "class Box:\n    def __init__(self, x):\n        self.x = x\nbox = Box(a)\nb = box.x",
    "import copy\nb = copy.copy([a])[0]",
])
def test_what_a_notebook_function_returns_may_be_what_it_was_given(made: str) -> None:
    assert_same_values("a = [1]", made, "b.append(2)", "n = len(a)")


def test_an_object_of_a_notebook_class_travels_with_what_it_holds() -> None:
    assert_same_values("a = [1]", "class Box:\n    def __init__(self, x):\n"
                       "        self.x = x\nb = Box(a)", "b.x.append(2)", "n = len(a)")


def test_values_sharing_objects_through_several_steps_come_from_one() -> None:
    # box2 (from s1) and box3 (from s2) both hold L1: s3 takes them all from s2
    assert_same_values("L1 = list(range(4))\nbox2 = {'a': L1}", "box3 = [L1]",
                       "inner = box2['a']\ninner.extend([0])\nn = len(box3[0])")
    assert_same_values("xs = [3, 6]\nd = {'a': xs}", "it = iter(xs)",
                       "xs.reverse()\nxs.append(1)", "seen = list(it)")


def test_what_a_notebook_function_passes_on_may_be_what_it_was_given() -> None:
    assert_same_values("a = [1]", "def ident(x):\n    return x\ndef wrap(x):\n"
                       "    return ident(x)\nb = wrap(a)", "b.append(2)", "n = len(a)")


@pytest.mark.parametrize("make", [
    "def holder(x):\n    return lambda: x\nget = holder(a)",
    "def holder(x):\n    def get():\n        return x\n    return get\nget = holder(a)",
    "def holder(x):\n    return (lambda: x) if x else None\nget = holder(a)",
])
def test_a_function_a_notebook_function_makes_holds_what_it_was_given(make: str) -> None:
    # the closure keeps `a`: changed later, the closure sees the change
    assert_same_values("a = [1]", make, "a.append(2)", "n = len(get())")


def test_a_result_that_holds_no_argument_is_not_changed_with_it() -> None:
    # `total` returns a new number: changing L later leaves s alone, so s comes from where it
    # was made, not from the step that changes L
    graph = graph_of(("L = [1, 2]", "step:a"),
                     ("def total(xs):\n    return sum(xs)\ns = total(L)", "step:b"),
                     ("L.append(3)", "step:c"), ("t = s + len(L)", "step:d"))
    assert graph.step("c").inputs == (("L", "a"),)
    assert graph.step("d").inputs == (("L", "c"), ("s", "b"))
    assert_same_values("L = [1, 2]", "def total(xs):\n    return sum(xs)\ns = total(L)",
                       "L.append(3)", "t = s + len(L)")


# -- A name a function body reads that the notebook never binds --------------------------------

def test_a_method_that_is_always_overridden_may_read_a_name_never_bound() -> None:
    """Python looks a function's names up when it runs: a base method that raises a name the
    notebook never defines is no error while subclasses override it (the notebook runs)."""
    base = ("class Test:\n    def __init__(self, data):\n        self.actual = self.stat(data)\n"
            "    def stat(self, data):\n        raise UnimplementedMethodException()")
    sub = "class Mean(Test):\n    def stat(self, data):\n        return sum(data) / len(data)"
    graph = graph_of((base, "step:a"), (sub, "step:b"), ("t = Mean([1, 2, 3])", "step:c"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB309", 3, 1)]
    assert_same_values(base, sub, "t = Mean([1, 2, 3])\nvalue = t.actual")


def test_a_name_read_at_once_is_an_error_and_in_a_function_body_a_warning() -> None:
    """A top-level read fails where it stands; a function body's fails only on a call that
    reaches it, in the notebook as in the pipeline: a warning where the function is used."""
    graph = graph_of(("y = missing_name", "step:a"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB201", 1, 1)]
    graph = graph_of(("def f():\n    return missing_name", "step:a"), ("y = f()", "step:b"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB309", 2, 1)]


# -- handed-over values behave as the notebook's: layout, writability, alignment ----------------

@pytest.mark.parametrize("make", [
    "df.insert(0, 'const', 1.0)",  # a block of its own: `.values` is a copy of its own
    "df['const'] = 1.0",
    "df = pd.concat([df, df * 2], axis=1)",
])
def test_a_frame_handed_to_a_step_keeps_its_blocks(make: str) -> None:
    # the step writes into `df.values`: a writable copy in the notebook, so df is unchanged;
    # `peek` reads df meanwhile, so the step works on a copy, which must behave the same
    assert_same_values("import numpy as np\nimport pandas as pd\n"
                       "df = pd.DataFrame({'a': [1.0, 2.0], 'b': [3.0, 4.0]})", make,
                       "peek = float(df.sum().sum())",
                       "m = df.values\nm[:, 0] = 0.0\ntotal = float(m.sum())",
                       "after = float(df.sum().sum())")


def test_a_read_only_array_handed_to_a_step_stays_read_only() -> None:
    assert_same_values("import numpy as np\nA = np.arange(6.0)\nA.flags.writeable = False",
                       "peek = float(A.sum())",
                       "try:\n    A[0] = 9.0\n    wrote = True\nexcept ValueError:\n"
                       "    wrote = False\nw = A.flags.writeable",
                       "first = float(A[0])")


# -- A function handed on as a value reads globals bound after it was made ---------------------

# `P` is a value from its definition on (its annotations read `Space`, which a later cell binds
# again), and its body reads `number` and `favorable`, which later cells bind: Python looks them
# up when it runs, so every call, made after they are bound, finds them.
MADE_BEFORE_ITS_GLOBALS = [
    "Space = set",
    "def P(event, cases: Space):\n    return number(favorable(event, cases)) / number(cases)",
    "number = len\ndef favorable(event, cases):\n    return event & cases",
    "Space = list",
    "p = P({2, 4, 6}, {1, 2, 3, 4, 5, 6})",
    "def number(cases):\n    return 2 * len(cases)",
    "q = P({2, 4}, {1, 2, 3, 4})",
]


def test_a_function_value_finds_the_globals_bound_after_it_when_it_runs() -> None:
    graph = graph_of(*((source, f"step:s{i}")
                       for i, source in enumerate(MADE_BEFORE_ITS_GLOBALS, start=1)))
    assert not [d for d in graph.diagnostics if d.code == "NB201"], graph.diagnostics
    assert graph.step("s5").late_globals == (("P", ("favorable", "number")),)
    # after `number` is defined again, the call sees the new one (and `favorable` still)
    assert graph.step("s7").late_globals == (("P", ("favorable", "number")),)
    assert_same_values(*MADE_BEFORE_ITS_GLOBALS)


@pytest.mark.integration
def test_a_function_value_is_given_its_globals_by_the_real_flow(prefect_harness: None) -> None:
    """Through the project's flow.py and Prefect, every value through the store: the
    function arrives unpickled, and the runtime's with_globals gives it what it reads."""
    outcome = compare(steps(*MADE_BEFORE_ITS_GLOBALS), pipeline=run_flow)
    assert outcome.kind == "ok" and outcome.compared >= 2, outcome  # p and q


@pytest.mark.parametrize("later", ["late = late * 2", "late *= 2", "late = [late]"])
def test_a_function_value_reads_a_global_its_own_step_binds_after_it_as_it_is_later(
        later: str) -> None:
    """The function is a value (its default reads `n`, which changes) and its body reads
    `late`, bound after the `def` in the same cell. In that step the function closes over the
    step's variable; the notebook looks the global up when the function runs, after a later
    step bound it again: the step that calls it gives it `late` as it has it."""
    assert_same_values("n = 8", "def f(x, t=n):\n    return [x, t, late]\nlate = 8",
                       "n = n + 1", later, "r = f(2)")


@pytest.mark.integration
def test_a_closed_over_global_is_given_by_the_real_flow(prefect_harness: None) -> None:
    """Through flow.py and Prefect: the function arrives unpickled with its closure, and the
    step that calls it gives the closed-over name its own value."""
    outcome = compare(steps("n = 8", "def f(x, t=n):\n    return [x, t, late]\nlate = 8",
                            "n = n + 1", "late *= 2", "r = f(2)"), pipeline=run_flow)
    assert outcome.kind == "ok" and outcome.compared >= 2, outcome


def test_with_globals_gives_a_closed_over_name_a_cell_of_its_own() -> None:
    from nb2pipe.runtime.late_globals import with_globals

    def make() -> Any:
        late = 1

        def f() -> int:
            return late + other

        return f

    other = 10
    f = make()
    given = with_globals(f, late=5)
    assert (given(), f()) == (15, 11)  # the original keeps its own cell


def test_a_function_value_finds_a_function_a_later_cell_defines_anew() -> None:
    """Its body's `Fraction` is the import where it is made, the notebook's own function after
    a later cell defines one: each call finds the one the notebook has then."""
    assert_same_values("from fractions import Fraction\nSpace = set",
                       "def P(cases: Space):\n    return Fraction(len(cases), 4)",
                       "Space = list", "p = P({1, 2})",
                       "def Fraction(n, d):\n    return n / d", "q = P({1, 2})")


def test_a_function_value_called_before_its_global_is_bound_is_an_error() -> None:
    graph = graph_of(("Space = set", "step:a"),
                     ("def P(cases: Space):\n    return number(cases)", "step:b"),
                     ("Space = list", "step:c"), ("p = P({1})", "step:d"),
                     ("number = len", "step:e"))
    assert [(d.code, d.cell) for d in graph.diagnostics] == [("NB201", 4)]


def test_a_function_value_whose_global_its_caller_binds_first_is_a_warning() -> None:
    """The function is given its globals before the step's code runs: one the step binds
    itself before the call is not bound then, and check says so."""
    graph = graph_of(("Space = set", "step:a"),
                     ("def P(cases: Space):\n    return number(cases)", "step:b"),
                     ("Space = list", "step:c"), ("number = len\np = P({1})", "step:d"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB308", 4, 2)]


# -- Module state that steps share: one order, the notebook's ----------------------------------

def test_a_library_drawing_from_numpys_global_generator_carries_its_state() -> None:
    """scipy and statsmodels draw from numpy's global generator when given no seed: after
    `np.random.seed`, their calls read and leave the generator's state as the notebook does."""
    assert_same_values("import numpy as np\nfrom scipy import stats",
                       "np.random.seed(12345)",
                       "a = stats.norm.rvs(size=3)",
                       "b = np.random.randn(2)",
                       "c = stats.norm.rvs(size=2, random_state=1)\nd = stats.norm.rvs(size=2)")


def test_steps_calling_into_the_notebooks_own_module_keep_notebook_order() -> None:
    """A module beside the notebook (one the environment does not have) may keep state in its
    globals (a colour cycle): the steps that call into it run one after another, in notebook
    order, with no value between them; calls into installed modules impose no order."""
    graph = graph_of(("import helper_beside_the_notebook as hp\nimport json", "step:a"),
                     ("hp.Hist([1, 2])", "step:b"), ("x = json.dumps(1)", "step:c"),
                     ("from helper_beside_the_notebook import Pmf\np = Pmf([3])", "step:d"),
                     ("y = json.dumps(2)", "step:e"))
    assert graph.step("d").after == ("b",)
    assert graph.step("b").after == graph.step("c").after == graph.step("e").after == ()
    assert [(e.source, e.target) for e in graph.edges] == [("b", "d")]


# -- Strings a call evaluates in its caller's namespace -----------------------------------------

FRAME = ('import statsmodels.formula.api as smf\nimport pandas as pd\nimport numpy as np\n'
         'df = pd.DataFrame({"x": [1., 2, 3, 4, 5], "y": [2., 4.1, 6.2, 7.9, 10.1]})')


def test_a_formula_names_the_notebooks_function_and_modules_as_the_step_has_them() -> None:
    """patsy looks a formula's names up in the frame that calls the model: the step calling
    it must have `scaled` (which reads notebook data, so it is emitted in the step) and `np`;
    `x` and `y` are columns, never notebook names."""
    assert_same_values(FRAME, "factor = 3\ndef scaled(v):\n    return factor * v",
                       'res = smf.ols("y ~ scaled(x) + np.log(x)", data=df).fit()\n'
                       'params = res.params')


def test_a_formula_assigned_in_the_calling_cell_is_read_as_written_there() -> None:
    assert_same_values(FRAME, "factor = 3",
                       "def scaled(v):\n    return factor * v\n\n"
                       "formula = 'y ~ scaled(x)'\nres = smf.ols(formula=formula, data=df).fit()\n"
                       "params = res.params")


@pytest.mark.parametrize("call", ['df.query("x > @limit")', 'df.eval("x * @limit")',
                                  'pd.eval("df.x * limit")'])
def test_a_query_reads_the_callers_names_it_marks(call: str) -> None:
    assert_same_values(FRAME, "limit = 2", f"sub = {call}")


@pytest.mark.parametrize("call", ['smf.ols(formula, data=df)', 'smf.ols(f"y ~ {term}", df)',
                                  'df.query(condition)'])
def test_a_formula_or_query_built_at_run_time_is_a_warning(call: str) -> None:
    graph = graph_of((f"{FRAME}\nformula = 'y ~ x'\nterm = 'x'\ncondition = 'x > 1'",
                      "step:a"), (f"r = {call}", "step:b"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB310", 2, 1)]


def test_a_formula_inside_a_function_reads_no_column_as_a_global() -> None:
    graph = graph_of((FRAME, "step:a"),
                     ("def fit(frame):\n    return smf.ols('y ~ x', data=frame).fit()",
                      "step:b"), ("r = fit(df).params", "step:c"))
    assert graph.diagnostics == ()


def test_a_model_fitted_from_a_formula_naming_a_notebook_function_stays_in_its_step() -> None:
    """statsmodels evaluates a model's formula again when it is unpickled, in frames of its
    own: a model naming the notebook's function cannot reach another process. Check says so
    where another step reads it; read in the step that fits it, it needs no warning."""
    fitted = ("def double_it(v):\n    return 2 * v\n\n"
              "res = smf.ols('y ~ double_it(x)', data=df).fit()")
    outcome = compare(steps(FRAME, fitted, "params = res.params"))
    assert outcome.kind == "diagnosed" and outcome.detail.startswith("NB304 'res'"), outcome
    assert_same_values(FRAME, f"{fitted}\nparams = res.params", "p = params.iloc[1]")


# -- A library call's result may hold the objects passed in -----------------------------------

SKLEARN = ("from sklearn.pipeline import Pipeline\n"
           "from sklearn.preprocessing import StandardScaler\n"
           "from sklearn.linear_model import LinearRegression\n")


def test_fitting_a_library_pipeline_fits_the_estimators_it_was_given() -> None:
    """scikit-learn's Pipeline keeps its steps themselves (it does not clone them): fitting it
    fits `pre` in place, and a later step reading `pre` sees it fitted."""
    pytest.importorskip("sklearn")
    fit = ("clf = Pipeline([('pre', pre), ('m', LinearRegression())])\n"
           "clf.fit([[1.0], [2.0], [4.0]], [1, 2, 3])")
    graph = graph_of((SKLEARN + "pre = StandardScaler()", "step:a"), (fit, "step:b"),
                     ("m = pre.mean_", "step:c"))
    assert graph.step("c").inputs == (("pre", "b"),)
    assert_same_values(SKLEARN + "pre = StandardScaler()", fit, "m = pre.mean_")


def test_immutable_arguments_of_a_library_call_stay_where_they_are_made() -> None:
    """An int or a string given to a library call cannot be changed through its result:
    fitting the model does not make `depth` (a literal, or a flow parameter) its step's value."""
    pytest.importorskip("sklearn")
    train = ("from sklearn.tree import DecisionTreeRegressor\n"
             "tree = DecisionTreeRegressor(max_depth=depth, criterion=kind)\n"
             "tree.fit([[1.0], [2.0]], [1, 2])")
    graph = graph_of(("depth = 2\nkind = 'squared_error'", "step:a"), (train, "step:b"),
                     ("d = depth + len(kind)", "step:c"))
    assert graph.step("c").inputs == (("depth", "a"), ("kind", "a"))
    graph = graph_of(("depth = 2\nkind = 'squared_error'", "parameters"), (train, "step:b"),
                     ("d = depth + len(kind)", "step:c"))
    assert "b" not in {producer for _, producer in graph.step("c").inputs}


# -- `%%timeit` runs its body in a function of its own; `%%time` and `%%capture` do not --------

def test_what_a_timeit_cell_binds_stays_in_its_own_scope() -> None:
    """IPython compiles a `%%timeit` cell's setup and body into a function: a loop variable it
    binds does not reach the notebook, while what it reads, and changes in place, is the
    notebook's (the pipeline runs the body once)."""
    timed = ("%%timeit -n 1 -r 1\nu = numpy.ones(nx)\nfor i in range(80):\n    u[0] = i\n"
             "grid[0] = 5")
    outcome = assert_same_values("import numpy\nnx = 5\ni = -1\ngrid = [0, 0]", timed,
                                 "j = i + nx + grid[0]")
    assert outcome.compared >= 4
    graph = graph_of(("i = -1\ngrid = [0, 0]", "step:a"),
                     (timed.replace("numpy.ones(nx)", "[0]"), "step:b"), ("j = i + grid[0]",
                                                                         "step:c"))
    assert graph.step("c").inputs == (("grid", "b"), ("i", "a"))
    # two of them, the second reading what the first did not bind
    assert_same_values("i = -1", "%%timeit -n 1 -r 1\ni = 7", "total = i",
                       "%%timeit -n 1 -r 1\nj = i + 1", "k = i + total")


@pytest.mark.parametrize("timed", [
    "%%timeit -n 1 -r 1 k = 3\nxs[0] = k\ni = 7",  # the setup before the first statement
    "%%timeit -r 1 -n 1 k = 3\n# put k first\nxs[0] = k\ni = 7",  # on a comment line
    "%%timeit -n 1 -r 1 k = 3\nxs[0] = [\n    k][0]",  # before a statement of two lines
])
def test_the_setup_of_a_timeit_cell_runs_in_its_scope(timed: str) -> None:
    assert_same_values("i = -1\nk = -1\nxs = [0]", timed, "j = i + k + xs[0]")


def test_a_timeit_setup_that_cannot_come_first_is_reported() -> None:
    graph = graph_of(("xs = [0]", "step:a"),
                     ("%%timeit -n 1 k = 3\nfor v in xs:\n    k += v", "step:b"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB109", 2, 1)]


def test_a_timeit_line_that_binds_is_reported_and_one_that_does_not_runs() -> None:
    graph = graph_of(("def f():\n    return 2\nx = 1", "step:a"),
                     ("%timeit -n 1 x = f()\ny = x", "step:b"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB109", 2, 1)]
    assert_same_values("xs = [3, 1, 2]", "%timeit -n 1 -r 1 [v for v in xs]\nxs.sort()",
                       "first = xs[0]")


@pytest.mark.parametrize("cell", ["%%time\ni = 7\nprint(i)", "%%capture out\ni = 7\nprint(i)",
                                  "%time i = 7", "%%time\nfor i in range(8):\n    pass"])
def test_time_and_capture_run_their_code_in_the_notebook(cell: str) -> None:
    assert_same_values("i = -1", cell, "j = i")


def test_what_a_timeit_cell_reads_is_reported_on_its_lines() -> None:
    graph = graph_of(("x = 1", "step:a"), ("%%timeit\ny = undefined_name + x", "step:b"))
    assert [(d.code, d.cell, d.line) for d in graph.diagnostics] == [("NB309", 2, 1)]


def test_the_call_of_a_timeit_cells_function_is_not_shown_as_its_value() -> None:
    from nb2pipe.notebook.magics import transform

    code = transform("%%timeit\nx = 1\nx").code
    assert shown_last_value(code, set(), 1) == code  # IPython shows the timings, not a value


@pytest.mark.parametrize("made", [
    "import sklearn.pipeline\n"
    "pipe = sklearn.pipeline.Pipeline([('s', pre), ('m', LinearRegression())])",
    "from sklearn import pipeline as skp\npipe = skp.make_pipeline(pre, LinearRegression())",
    "pipe = Pipeline([('s', pre), ('m', LinearRegression())])",
])
def test_a_library_call_reached_through_an_attribute_holds_what_it_was_given(made: str) -> None:
    """`module.Class(...)`, `module.function(...)`: a call of a module's attribute may keep the
    objects passed in, as a call of an imported name may; fitting the result fits them."""
    pytest.importorskip("sklearn")
    fit = f"{made}\npipe.fit([[1.0], [2.0], [4.0]], [1, 2, 3])"
    assert_same_values(SKLEARN + "pre = StandardScaler()", fit, "m = pre.mean_")
    assert_same_values(SKLEARN + "pre = StandardScaler()",
                       made.replace("pipe = ", "pipe = (") + ")\\\n"
                       "    .fit([[1.0], [2.0], [4.0]], [1, 2, 3])", "m = pre.mean_")


@pytest.mark.parametrize("made", [
    "import types\nns = types.SimpleNamespace(items=box)\nheld = ns.items",
    "import collections\nheld = collections.ChainMap({}, {'k': box})['k']",
    "import functools\nheld = functools.reduce(lambda acc, v: v, [box], None)",
    "d = {}\nheld = d.setdefault('k', box)",
    "d = {'k': box}\nheld = d.get('k')",
    "d = {'k': box}\nheld = d.pop('k')",
    "boxes = [box]\nheld = boxes.pop()",
])
def test_what_a_call_returns_may_be_an_object_it_was_given(made: str) -> None:
    """By Python's semantics a call may return (an object holding) any mutable argument, or
    an item of its receiver: a later change through the result is a change of the argument."""
    assert_same_values("box = [1]", made, "held.append(2)", "n = len(box)")


@pytest.mark.parametrize("holder", [
    "import types\nns = types.SimpleNamespace(items=box)",
    "import argparse\nns = argparse.Namespace(items=box)",
])
def test_a_library_object_handed_over_keeps_holding_what_it_was_given(holder: str) -> None:
    """The object a library call made holds `box` itself: handed to a later step together with
    `box`, it still does, so a change through one is seen through the other."""
    assert_same_values("box = [1]", holder, "ns.items.append(2)", "n = len(box)")
    assert_same_values("box = [1]", holder, "box.append(2)", "n = len(ns.items)")


def test_a_library_pipeline_handed_over_fits_the_estimators_it_holds() -> None:
    pytest.importorskip("sklearn")
    assert_same_values(SKLEARN + "pre = StandardScaler()",
                       "from sklearn.pipeline import make_pipeline\n"
                       "pipe = make_pipeline(pre, LinearRegression())",
                       "pipe.fit([[1.0], [2.0], [4.0]], [1, 2, 3])", "m = pre.mean_")


def test_a_notebook_function_fitting_a_library_pipeline_fits_its_argument() -> None:
    """Inside a function too: what a library call returns may hold the parameter it was given,
    so fitting the result changes the caller's estimator."""
    pytest.importorskip("sklearn")
    train = ("from sklearn.pipeline import make_pipeline\n"
             "def train(scaler):\n"
             "    pipe = make_pipeline(scaler, LinearRegression())\n"
             "    pipe.fit([[1.0], [2.0], [4.0]], [1, 2, 3])")
    assert_same_values(SKLEARN + "pre = StandardScaler()", train, "train(pre)", "m = pre.mean_")


# -- A library call may change what it is given ----------------------------------------------

@pytest.mark.parametrize("change", [
    "import operator\noperator.setitem(box, 0, 9)",
    "from operator import iadd\niadd(box, [9])",
    "import operator as op\nop.setitem(meta, 'freq', 'D')",
])
def test_a_value_given_to_a_library_call_may_be_changed_by_it(change: str) -> None:
    """By Python's semantics a call may change any mutable object it is given (statsmodels
    sets `freq` on the index of a series it is given): a later step reads the value from
    the step that made the call, as the notebook does, and one before it does not see it."""
    assert_same_values("box = [1]\nmeta = {'freq': None}", "early = box[0] + len(meta)",
                       change, "n = box[-1]\nf = meta['freq']")


def test_a_library_known_to_leave_its_arguments_alone_changes_nothing() -> None:
    """numpy, pandas, matplotlib, scikit-learn, the standard library's pure modules: a value
    given to them stays where it was made (the graph is as before)."""
    graph = graph_of(("import numpy as np\nimport math\na = np.zeros(3)\nxs = [1.0]", "step:a"),
                     ("m = np.mean(a) + math.fsum(xs)\nprint(a)", "step:b"),
                     ("b = a + 1\nc = xs[0]", "step:c"))
    assert graph.step("c").inputs == (("a", "a"), ("xs", "a"))


@pytest.mark.parametrize("prep", [
    "def prep(d):\n    operator.setitem(d, 0, 9)\nprep(box)",
    "def prep(d):\n    iadd(d, [9])\n    return len(d)\nr = prep(box)",
    "def prep(d):\n    import operator as op\n    op.setitem(d, 0, 9)\nprep(d=box)",
    "def prep():\n    operator.setitem(box, 0, 9)\nprep()",
    "def prep(items):\n    for d in items:\n        operator.setitem(d, 0, 9)\nprep([box])",
    "def prep(d):\n    alias = d\n    [operator.setitem(v, 0, 9) for v in [alias]]\nprep(box)",
    "def hook(_):\n    operator.setitem(box, 0, 9)\nr = list(map(hook, [1]))",
])
def test_a_notebook_function_giving_a_value_to_a_library_call_changes_it(prep: str) -> None:
    """The library rule inside function bodies: a body that gives its parameter (or a global,
    through an alias, a loop, a comprehension; or is a callback) to a call that may change it
    changes the caller's value where the function is called."""
    assert_same_values("import operator\nfrom operator import iadd\nbox = [1]",
                       "early = box[0]", prep, "n = box[0]")


def test_a_notebook_function_giving_a_value_to_a_library_known_to_leave_it_alone() -> None:
    """The same rule: numpy, math and json leave what a function body gives them alone (no
    step changes `a` or `xs`; the last step takes them from the first)."""
    graph = graph_of(("import numpy as np\nimport math\na = np.zeros(3)\nxs = [1.0]", "step:a"),
                     ("def total(v):\n    import json\n    json.dumps(xs)\n"
                      "    return np.mean(v) + math.fsum(xs)", "step:b"),
                     ("m = total(a)", "step:c"), ("b = a + 1\nc = xs[0]", "step:d"))
    assert graph.step("d").inputs == (("a", "a"), ("xs", "a"))
    assert not any(step.mutates for step in graph.steps)


def test_a_name_bound_to_a_literal_is_changed_by_no_call() -> None:
    """`depth = 3` given to a notebook function that gives it to a library: an int cannot be
    changed in place, so no step changes it (no copy, no new producer)."""
    graph = graph_of(("import operator\ndepth = 3", "step:a"),
                     ("def describe(v):\n    return operator.index(v)", "step:b"),
                     ("r = describe(depth)", "step:c"), ("s = depth + r", "step:d"))
    assert not any(step.mutates for step in graph.steps)
    assert graph.step("d").inputs == (("depth", "a"), ("r", "c"))


@pytest.mark.parametrize("cells", [
    # a parameter named as a global bound to a literal is the argument, not the global
    ("n = 3\nbox = [1]", "def prep(n):\n    operator.setitem(n, 0, 9)", "early = box[0]",
     "prep(box)"),
    # a global the body gives is the object bound when the function is called
    ("box = 0", "def prep():\n    operator.setitem(box, 0, 9)", "box = [1]\nearly = box[0]",
     "prep()"),
])
def test_a_function_body_gives_what_its_names_are_when_it_runs(cells: tuple[str, ...]) -> None:
    assert_same_values("import operator", *cells, "last = box[0]")


def test_what_a_function_body_gives_a_library_is_decided_where_it_is_called() -> None:
    """Late binding: the callee is what its name is bound to when the function is called (a
    notebook function of the same name changes nothing here)."""
    graph = graph_of(("def grow(d, more):\n    return d + more\nbox = [1]", "step:a"),
                     ("def prep(d):\n    return grow(d, [9])", "step:b"),
                     ("r = prep(box)", "step:c"),
                     ("from operator import iadd as grow", "step:d"),
                     ("s = prep(box)", "step:e"), ("n = box[0]", "step:f"))
    assert "box" not in graph.step("c").mutates
    assert graph.step("f").inputs == (("box", "e"),)


def test_a_notebook_function_given_to_a_library_call_stays_code() -> None:
    graph = graph_of(("def loss(v):\n    return v * 2\nbox = [1]", "step:a"),
                     ("import operator\nr = operator.call(loss, 3)", "step:b"),
                     ("t = loss(4) + box[0]", "step:c"))
    assert graph.step("c").inputs == (("box", "a"),)
    assert "loss" not in graph.step("b").defines


def test_a_notebook_function_returning_a_library_call_may_return_what_it_was_given() -> None:
    pytest.importorskip("sklearn")
    make = ("import sklearn.pipeline\n"
            "def make(scaler):\n"
            "    return sklearn.pipeline.make_pipeline(scaler, LinearRegression())\n"
            "pipe = make(pre)")
    assert_same_values(SKLEARN + "pre = StandardScaler()", make,
                       "pipe.fit([[1.0], [2.0], [4.0]], [1, 2, 3])", "m = pre.mean_")


# -- Objects two values share, when the step that changes them binds a name again ------------

BOX = ("class Box:\n    def __init__(self, x):\n        self.x = x\n"
       "    def total(self):\n        return sum(self.x)")


@pytest.mark.parametrize("rebind", ["xs = xs + [2]", "xs = None", "del xs", "xs += (9,)"])
def test_a_change_through_a_shared_object_survives_the_name_being_bound_again(
        rebind: str) -> None:
    """`box` holds `xs`; a later step changes `xs` in place, then binds the name `xs` to
    something else. The change happened to the object `box` holds: the step must get `xs`
    and `box` as one handover (from the step that made them share), not as two copies."""
    assert_same_values("xs = [3, 5, 5]", f"{BOX}\nbox = Box(xs)",
                       f"def grow(v):\n    v.append(len(v))\ngrow(xs)\n{rebind}",
                       "t = box.total()")


def test_two_values_made_to_share_in_a_step_that_then_rebinds_one() -> None:
    assert_same_values("xs = [1]", "pair = [xs, xs]\nxs.append(2)\nxs = 'done'",
                       "n = len(pair[0]) + len(pair[1])")


# -- A name bound only when a condition holds, with no earlier value --------------------------

@pytest.mark.parametrize("condition", [
    "if r > 3:\n    m = r",                      # does not hold: m stays unbound
    "for v in []:\n    m = v",                   # a loop that does not run
    "while r > 3:\n    m = r\n    break",
    "try:\n    m = 1 // r\nexcept ZeroDivisionError:\n    pass",
])
def test_a_name_a_step_may_leave_unbound_is_handed_on_only_if_bound(condition: str) -> None:
    """`m` is returned by the step that binds it only conditionally (a later step takes it),
    and is unbound where the condition did not hold, as in the notebook: the step must not
    fail returning it, and the later step runs as the notebook's cell does."""
    assert_same_values("try:\n    r = 1 // 0\nexcept ZeroDivisionError:\n    r = 0",
                       condition, "r += 4",
                       "try:\n    t = m\nexcept NameError:\n    t = None\ns = r + 1")


def test_a_name_bound_when_the_condition_holds_is_handed_on() -> None:
    outcome = assert_same_values("r = 5", "if r > 3:\n    m = [r]", "m.append(1)\nr += 4",
                                 "n = len(m)")
    assert outcome.compared >= 2


def test_only_names_some_path_leaves_unbound_are_returned_guarded() -> None:
    """Bound on every path (both branches, a `try` and each handler): returned as they are.
    Bound on some paths only: `locals().get(name, UNBOUND)`."""
    sources = ["try:\n    a = 1 // 0\nexcept ZeroDivisionError:\n    a = 0\n"
               "if a:\n    b = 1\nelse:\n    b = 2\nif a:\n    c = 3\n"
               "for i in range(a):\n    d = i\n"
               "try:\n    e = 1\nexcept ValueError as err:\n    e = err",
               "f = (a, b, c, d, e)"]
    rendered = render_steps(make_plan(notebook_graph(notebook(steps(*sources))))).text
    returned = rendered.split("return {")[1].split("}")[0]
    assert '"a": a' in returned and '"b": b' in returned and '"e": e' in returned
    assert '"c": locals().get("c", UNBOUND)' in returned
    assert '"d": locals().get("d", UNBOUND)' in returned
    assert "from nb2pipe_runtime.unbound import UNBOUND" in rendered


def test_the_unbound_marker_is_one_object_in_every_process() -> None:
    import copy
    import pickle

    from nb2pipe.runtime.unbound import UNBOUND, Unbound, bound

    assert pickle.loads(pickle.dumps(UNBOUND)) is UNBOUND
    assert copy.deepcopy([UNBOUND])[0] is UNBOUND and Unbound() is UNBOUND
    assert bound({"a": 1, "m": UNBOUND}) == {"a": 1}
