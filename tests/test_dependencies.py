"""Dependency inference: the producer of each name a step uses is the last earlier step that
defined or changed it. Each test states one rule of the analysis (README, "What the analysis
knows") on a tiny notebook."""

from __future__ import annotations

import sys

import pytest
from support import codes, edges, graph_of


def test_linear_chain() -> None:
    g = graph_of(("a = 1", "step:one"), ("b = a + 1", "step:two"), ("c = b + 1", "step:three"))
    assert edges(g) == {("one", "two", ("a",)), ("two", "three", ("b",))}
    assert g.order == ("one", "two", "three")


def test_independent_steps_have_no_edge() -> None:
    g = graph_of(("a = 1", "step:src"), ("b = a", "step:left"), ("c = a", "step:right"),
                 ("d = b + c", "step:join"))
    assert ("left", "right", ()) not in edges(g) and ("right", "left", ()) not in edges(g)
    assert {e[:2] for e in edges(g)} == {("src", "left"), ("src", "right"), ("left", "join"),
                                         ("right", "join")}


def test_consumer_takes_latest_earlier_producer() -> None:
    g = graph_of(("x = 1", "step:first"), ("x = 2", "step:second"), ("y = x", "step:third"))
    assert edges(g) == {("second", "third", ("x",))}


def test_value_is_read_before_target_is_bound() -> None:
    g = graph_of(("x = 1", "step:first"), ("x = x + 1", "step:second"), ("y = x", "step:third"))
    assert edges(g) == {("first", "second", ("x",)), ("second", "third", ("x",))}


def test_aug_assign_is_a_use_and_a_new_definition() -> None:
    g = graph_of(("n = 0", "step:init"), ("n += 1", "step:bump"), ("m = n", "step:use"))
    assert edges(g) == {("init", "bump", ("n",)), ("bump", "use", ("n",))}


def test_inplace_mutations_make_the_mutating_step_the_producer() -> None:
    for change in ("df.dropna(inplace=True)", "df['c'] = 1", "df.loc[0, 'c'] = 2",
                   "del df['c']", "df.attrs = {}", "df.update(other)"):
        g = graph_of("import pandas as pd", ("df = pd.DataFrame()\nother = df", "step:load"),
                     (change, "step:change"), ("n = len(df)", "step:use"))
        assert ("change", "use", ("df",)) in edges(g), change
        assert ("load", "use", ("df",)) not in edges(g), change


def test_known_mutating_methods_and_functions() -> None:
    for change in ("items.append(3)", "items.sort()", "y = items.pop()", "random.shuffle(items)",
                   "heapq.heapify(items)", "items.extend([4])"):
        g = graph_of("import random\nimport heapq", ("items = [2, 1]", "step:make"),
                     (change, "step:change"), ("n = len(items)", "step:use"))
        assert ("change", "use", ("items",)) in edges(g), change


def test_fit_mutates_the_model_not_the_data() -> None:
    g = graph_of(("model = Model()\nX = [1]\ny = [2]", "step:setup"),
                 ("model.fit(X, y)", "step:train"),
                 ("p = model.predict(X)", "step:predict"), "class Model: ...")
    assert ("train", "predict", ("model",)) in edges(g)
    assert ("setup", "predict", ("X",)) in edges(g)


def test_display_methods_do_not_mutate() -> None:
    g = graph_of(("df = make()", "step:load"), ("df.head()\ndf.describe()", "step:look"),
                 ("n = len(df)", "step:use"), "def make(): return []")
    assert ("load", "use", ("df",)) in edges(g)


def test_unknown_method_call_as_statement_is_assumed_to_mutate() -> None:
    g = graph_of(("conn = make()", "step:open"), ("conn.commit()", "step:commit"),
                 ("c = conn", "step:use"), "def make(): return []")
    assert ("commit", "use", ("conn",)) in edges(g)


def test_mutation_through_simple_alias() -> None:
    g = graph_of(("a = [1]", "step:create"), ("b = a\nb.append(2)", "step:alias"),
                 ("total = sum(a)", "step:use"))
    assert ("alias", "use", ("a",)) in edges(g)


def test_mutation_through_list_of_frames_in_a_loop() -> None:
    g = graph_of(("train = {}\ntest = {}", "step:load"), ("frames = [train, test]", "step:group"),
                 ("for f in frames:\n    f['x'] = 1", "step:engineer"),
                 ("a = train", "step:use_train"), ("b = test", "step:use_test"))
    assert ("engineer", "use_train", ("train",)) in edges(g)
    assert ("engineer", "use_test", ("test",)) in edges(g)


def test_mutation_through_container_filled_by_append() -> None:
    g = graph_of(("train = {}\nframes = []\nframes.append(train)", "step:load"),
                 ("for f in frames:\n    f['x'] = 1", "step:engineer"), ("a = train", "step:use"))
    assert ("engineer", "use", ("train",)) in edges(g)


def test_mutation_through_comprehension_variable() -> None:
    g = graph_of(("train = []\ntest = []", "step:load"),
                 ("_ = [d.append(1) for d in (train, test)]", "step:engineer"),
                 ("a = train", "step:use"))
    assert ("engineer", "use", ("train",)) in edges(g)


def test_model_taken_out_of_a_dict_and_fitted() -> None:
    g = graph_of(("models = {'rf': make()}", "step:setup"),
                 ("model = models['rf']\nmodel.fit([1], [2])", "step:train"),
                 ("m = models", "step:use"), "def make(): return []")
    assert ("train", "use", ("models",)) in edges(g)


def test_function_that_mutates_its_argument() -> None:
    g = graph_of("def clean(frame):\n    frame.dropna(inplace=True)",
                 ("df = make()", "step:load"), ("clean(df)", "step:clean"),
                 ("n = len(df)", "step:use"), "def make(): return []")
    assert ("clean", "use", ("df",)) in edges(g)


def test_function_mutating_through_nested_call() -> None:
    g = graph_of("def inner(x):\n    x.append(1)\ndef outer(y):\n    inner(y)",
                 ("data = []", "step:load"), ("outer(data)", "step:change"),
                 ("n = len(data)", "step:use"))
    assert ("change", "use", ("data",)) in edges(g)


def test_copy_breaks_the_alias() -> None:
    g = graph_of(("a = [1]", "step:create"), ("b = a.copy()\nb.append(2)", "step:copy"),
                 ("n = len(a)", "step:use"))
    assert ("create", "use", ("a",)) in edges(g)
    assert all(e[1] != "use" or e[0] != "copy" for e in edges(g))


def test_rebinding_breaks_the_alias() -> None:
    g = graph_of(("a = [1]", "step:create"), ("b = a\nb = [2]\nb.append(3)", "step:rebind"),
                 ("n = len(a)", "step:use"))
    assert ("create", "use", ("a",)) in edges(g)


def test_function_reads_global_when_called() -> None:
    g = graph_of(("def f():\n    return LIMIT * 2", "step:define"), ("LIMIT = 5", "step:config"),
                 ("value = f()", "step:call"))
    assert edges(g) == {("config", "call", ("LIMIT",))}
    assert [s.name for s in g.steps] == ["config", "call"]  # a step of only code is not a task
    assert [e.names for e in g.step("call").code] == [("f",)]


def test_functions_and_imports_are_code_not_data() -> None:
    g = graph_of("import numpy as np\ndef helper(v):\n    return np.sqrt(v)",
                 ("a = helper(4)", "step:one"), ("b = np.ones(2)", "step:two"))
    assert edges(g) == set()
    assert {n for e in g.step("one").code for n in e.names} == {"helper", "np"}


def test_transitive_function_globals() -> None:
    g = graph_of("def inner():\n    return SCALE\ndef outer():\n    return inner() + 1",
                 ("SCALE = 3", "step:config"), ("v = outer()", "step:call"))
    assert edges(g) == {("config", "call", ("SCALE",))}


def test_lambda_body_is_late_bound() -> None:
    g = graph_of(("f = lambda: later\nlater = 1\nvalue = f()", "step:only"))
    assert "NB201" not in codes(g)


def test_comprehension_and_lambda_variables_do_not_leak() -> None:
    g = graph_of(("xs = [1]\nys = [x for x in xs]\ng = lambda n: n", "step:one"),
                 ("z = x + n", "step:two"))
    assert codes(g).count("NB201") == 2
    assert "x" not in g.step("one").defines and "n" not in g.step("one").defines


def test_class_body_reads_now_methods_later() -> None:
    g = graph_of(("SIZE = 2", "step:config"),
                 ("class Box:\n    size = SIZE\n    def area(self):\n        return SIDE",
                  "step:define"),
                 ("SIDE = 3\nb = Box().area()", "step:use"))
    assert [s.name for s in g.steps] == ["config", "use"]  # a class alone is code, not a task
    assert edges(g) == {("config", "use", ("SIZE",))}  # its body runs again where it is emitted
    assert [e.names for e in g.step("use").code] == [("Box",)]


def test_conditional_definition_passes_the_old_value_on() -> None:
    g = graph_of(("x = 1", "step:first"), ("if flag:\n    x = 2", "step:maybe"),
                 ("y = x", "step:use"), ("flag = True", "parameters"))
    assert ("first", "maybe", ("x",)) in edges(g)
    assert ("maybe", "use", ("x",)) in edges(g)


def test_walrus_with_and_except_bind() -> None:
    g = graph_of(("if (n := 3) > 1:\n    pass\nwith ctx() as handle:\n    pass\n"
                  "try:\n    pass\nexcept Exception as err:\n    pass", "step:one"),
                 ("a = n\nb = handle", "step:two"), "def ctx(): ...")
    assert ("one", "two", ("handle", "n")) in edges(g)


def test_import_dotted_binds_the_package() -> None:
    g = graph_of(("import os.path\np = os.path.join('a', 'b')", "step:one"))
    assert "os" in g.step("one").defines and "NB201" not in codes(g)


def test_parameters_are_inputs_not_edges() -> None:
    g = graph_of(("rate = 0.5\nname = 'x'", "parameters"), ("a = rate * 2", "step:one"),
                 ("b = name", "step:two"))
    assert edges(g) == set()
    assert g.step("one").parameters == ("rate",) and g.step("two").parameters == ("name",)


def test_step_gets_only_the_parameters_it_uses() -> None:
    g = graph_of(("a = 1\nb = 2\nc = 3", "parameters"), ("x = a", "step:one"),
                 ("y = b + c", "step:two"))
    assert g.step("one").parameters == ("a",)
    assert g.step("two").parameters == ("b", "c")


def test_after_adds_an_ordering_edge_without_variables() -> None:
    g = graph_of(("a = 1", "step:one"), ("b = 2", "step:two", "after:one"))
    assert edges(g) == {("one", "two", ())}


def test_module_setup_call_travels_with_the_module() -> None:
    g = graph_of("import pandas as pd\npd.set_option('display.width', 100)",
                 ("df = pd.DataFrame()", "step:one"))
    assert [e.kind for e in g.step("one").code] == ["import", "setup"]
    assert [s.name for s in g.steps] == ["one"]


def test_cells_before_first_step_form_an_implicit_step() -> None:
    g = graph_of("data = [1, 2]", ("total = sum(data)", "step:sum"))
    assert [s.name for s in g.steps] == ["test", "sum"]
    assert edges(g) == {("test", "sum", ("data",))}


def test_skip_cells_are_transparent() -> None:
    g = graph_of(("a = 1", "step:one"), ("print(a)", "skip"), "b = a + 1", ("c = b", "step:two"))
    assert g.step("one").cells == (1, 3)
    assert edges(g) == {("one", "two", ("b",))}


def test_consecutive_cells_with_the_same_step_tag_join() -> None:
    g = graph_of(("a = 1", "block:one"), ("b = a", "block:one"), ("c = b", "step:two"))
    assert g.step("one").cells == (1, 2) and "NB102" not in codes(g)


def test_metrics_are_published_by_the_step_that_computes_them() -> None:
    g = graph_of(("acc = 0.9", "step:train"), ("loss = 0.1\nprint(acc)", "step:report", "metrics"))
    assert g.step("train").metrics == ("acc",)
    assert g.step("report").metrics == ("loss",)


def test_only_configuration_calls_travel_with_their_module() -> None:
    g = graph_of("import os, time, warnings\nimport pandas as pd\n"
                 "warnings.filterwarnings('ignore')\npd.set_option('display.width', 100)",
                 ("time.sleep(0)\nos.makedirs('out', exist_ok=True)\ndf = pd.DataFrame()",
                  "step:one"))
    setup = [e.span.start for e in g.code if e.kind == "setup"]
    assert setup == [3, 4]  # filterwarnings and set_option; sleep and makedirs act in the step


def test_reused_loop_variable_does_not_chain_independent_steps() -> None:
    g = graph_of(("rows = [1, 2]", "step:load"),
                 ("total = 0\nfor _ in rows:\n    total += 1", "step:count"),
                 ("seen = []\nfor _ in rows:\n    seen.append(_)", "step:collect"),
                 ("out = (total, seen)", "step:join"))
    assert edges(g) == {("load", "count", ("rows",)), ("load", "collect", ("rows",)),
                        ("count", "join", ("total",)), ("collect", "join", ("seen",))}


def test_maybe_rebound_value_read_later_flows_through_the_loop_step() -> None:
    g = graph_of(("item = 'none'\nrows = []", "step:load"),
                 ("for item in rows:\n    pass", "step:scan"), ("last = item", "step:use"))
    assert ("load", "scan", ("item", "rows")) in edges(g)  # the old item may survive the loop
    assert ("scan", "use", ("item",)) in edges(g)


# -- precision: what real notebooks do that must not be reported as an error ---------------------

def test_del_of_an_earlier_value_is_a_use_of_it() -> None:
    g = graph_of(("train = [1]", "step:load"), ("del train", "step:free"))
    assert g.step("free").inputs == (("train", "load"),)
    g = graph_of(("orders = [1]\ntrain = [2]", "step:load"), ("del [orders, train]", "step:free"))
    assert g.step("free").inputs == (("orders", "load"), ("train", "load"))


def test_global_set_by_a_callback_is_defined_by_the_calling_step() -> None:
    g = graph_of("def hook(i):\n    global seen\n    seen = i",
                 ("xs = list(map(hook, range(3)))", "step:run"), ("last = seen", "step:use"))
    assert "NB201" not in codes(g)
    assert ("run", "use", ("seen",)) in edges(g)


def test_global_set_through_another_function_or_a_static_method() -> None:
    g = graph_of("def set_flag():\n    global flag\n    flag = 1\ndef outer():\n    set_flag()\n"
                 "class Tools:\n    @staticmethod\n    def mark():\n        global marked\n"
                 "        marked = 1\n    @classmethod\n    def again(cls):\n        outer()",
                 ("outer()\nTools.mark()", "step:call"), ("both = (flag, marked)", "step:use"))
    assert "NB201" not in codes(g)
    assert ("call", "use", ("flag", "marked")) in edges(g)


def test_a_subclass_is_not_charged_with_its_base_class_globals() -> None:
    g = graph_of("class T:\n    def m(self):\n        return LIMIT",
                 ("class D(T):\n    pass\n\nready = 1", "step:define"),
                 ("LIMIT = 2", "step:config"), ("v = D().m()", "step:use"))
    assert "NB201" not in codes(g)
    assert ("config", "use", ("LIMIT",)) in edges(g)  # using D runs T's methods


def test_name_bound_on_an_earlier_loop_pass() -> None:
    g = graph_of(("for i in range(3):\n    if i:\n        acc += i\n    else:\n        acc = i\n"
                  "n = 0\nwhile n < 2:\n    if n:\n        last = prev\n    prev = n\n    n += 1",
                  "step:loop"), ("final = (acc, last)", "step:use"))
    assert "NB201" not in codes(g)
    assert ("loop", "use", ("acc", "last")) in edges(g)


def test_name_never_bound_in_the_loop_is_still_an_error() -> None:
    for loop in ("for i in range(3):\n    acc += i", "for i in range(3):\n    acc = acc + i",
                 "while True:\n    acc += 1\n    break"):
        assert codes(graph_of((loop, "step:loop"))) == ["NB201"], loop


def test_python2_builtins_behind_a_version_check() -> None:
    g = graph_of("import sys, six",
                 ("s = 'a'\nif sys.version_info < (3, 0):\n    s = unicode(s)\n"
                  "if sys.version_info[0] == 2:\n    r = xrange(3)\nelse:\n    r = range(3)\n"
                  "if six.PY2:\n    t = long(1)\n"
                  "if sys.version_info.major >= 3:\n    u = 1\nelse:\n    u = raw_input()\n"
                  "try:\n    basestring\nexcept NameError:\n    basestring = str\n"
                  "def text(v):\n    if sys.version_info < (3,):\n        return unicode(v)\n"
                  "    return str(v)\nw = text(1)", "step:one"))
    assert codes(g) == []
    assert set(g.symbols[2].dead_reads) >= {"unicode", "xrange", "long", "raw_input"}


def test_reads_that_never_run_or_run_late_have_their_lines() -> None:
    """What steps.py marks for ruff comes from here: reads of globals in code Python 3 never
    runs (a dead branch, after `break`), and the globals a cell's functions and lambdas read
    when called, each with its line; not a function's own names, nor a default argument,
    which runs with the `def`."""
    g = graph_of(("a = b = c = 1", "step:one"),
                 ("for i in range(2):\n    break\n    print(a)\n"
                  "if False:\n    print(b)\n"
                  "def f(x, d=c):\n    if False:\n        return x + i\n    y = 2\n"
                  "    return lambda: y + a + d\n"
                  "g = lambda: [a for a in range(b)]\n", "step:two"))
    symbols = g.symbols[2]
    assert symbols.dead_global_reads == (("print", 3), ("a", 3), ("print", 5), ("b", 5),
                                         ("i", 8))
    assert symbols.late_reads == (("a", 10), ("range", 11), ("b", 11))


def test_version_checks_that_differ_between_python_3_versions_are_not_static() -> None:
    g = graph_of("import sys", ("if sys.version_info >= (3, 8):\n    x = 1\nelse:\n    x = nope",
                                "step:one"))
    assert codes(g) == ["NB201"]


def test_name_error_guard_outside_a_handler_is_still_reported() -> None:
    g = graph_of(("try:\n    x = missing\nexcept ValueError:\n    x = 0", "step:one"))
    assert codes(g) == ["NB201"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="PEP 695 syntax needs Python 3.12")
def test_pep_695_type_aliases_and_parameters() -> None:
    g = graph_of(("type Vec = list[float]\ndef first[T](items: list[T]) -> T:\n"
                  "    return items[0]\nclass Box[T]:\n    def get(self) -> T: ...\n"
                  "v: Vec = [1.0]\nx = first(v)", "step:one"))
    assert codes(g) == []
    assert "Vec" in g.step("one").defines


def test_selections_make_new_objects_not_aliases() -> None:
    for select in ("df[mask]", "df[cols]", "df[['a']]", "df[df.a > 1]", "df.loc[mask]",
                   "df.iloc[:2]", "df.query('a > 1')", "df.copy()", "df[~mask]",
                   "df[df.a.isin([1])]", "df[(df.a > 1) & (df.a < 3)]"):
        g = graph_of(("df = make()\nmask = df.a > 1\ncols = ['a']", "step:load"),
                     (f"sub = {select}\nsub['c'] = 1", "step:select"),
                     ("n = len(df)", "step:use"), "def make(): ...")
        assert ("load", "use", ("df",)) in edges(g), select
        assert "df" not in g.step("select").mutates, select


def test_items_of_containers_stay_aliases() -> None:
    for take in ("models['rf']", "models[key]", "models[0]", "models.rf"):
        g = graph_of(("models = make()\nkey = 'rf'", "step:load"),
                     (f"m = {take}\nm.fit(1)", "step:fit"), ("n = models", "step:use"),
                     "def make(): ...")
        assert ("fit", "use", ("models",)) in edges(g), take


def test_setattr_changes_the_object() -> None:
    g = graph_of(("box = make()", "step:load"), ("setattr(box, 'v', 1)", "step:tag"),
                 ("v = box.v", "step:use"), "def make(): ...")
    assert ("tag", "use", ("box",)) in edges(g)


def test_del_then_bound_again_is_not_a_use_of_a_deleted_name() -> None:
    g = graph_of(("x = 1", "step:first"), ("del x", "step:drop"), ("x = 2", "step:again"),
                 ("y = x", "step:use"))
    assert "NB301" not in codes(g)
    assert ("again", "use", ("x",)) in edges(g)


def test_name_read_then_rebound_is_read_from_module_level() -> None:
    g = graph_of("from collections import Counter",
                 ("Counter = Counter('abca')\nsum = sum([1])", "step:count"))
    assert g.step("count").module_reads == ("Counter", "sum")


def test_kale_empty_block_tag_continues_the_block_above() -> None:
    g = graph_of(("a = 1", "block:load"), ("b = a", "block:"), ("c = b", "block:use"))
    assert g.step("load").cells == (1, 2) and codes(g) == []


def test_after_a_definitions_only_step_means_after_what_it_follows() -> None:
    g = graph_of(("a = 1", "step:prep"), ("def f():\n    return 1", "step:defs", "after:prep"),
                 ("z = f()", "step:use", "after:defs"))
    assert g.step("use").after == ("prep",)
    assert ("prep", "use", ()) in edges(g)


def test_pylab_names_are_imports() -> None:
    g = graph_of("%pylab inline", ("xs = linspace(0, 1, 3)\nm = max(xs)\nplt.plot(xs)",
                                   "step:plot"))
    assert codes(g) == []
    texts = {e.text for e in g.step("plot").code}
    assert texts == {"from numpy import linspace", "from numpy import max",
                     "import matplotlib.pyplot as plt"}


def test_numpy_star_import_is_known_name_by_name() -> None:
    g = graph_of(("from numpy import *\nxs = arange(3)", "step:one"))
    assert codes(g) == []
    assert "from numpy import arange" in {e.text for e in g.step("one").code}


def test_star_import_names_whose_value_is_none_are_known() -> None:
    # numpy.newaxis is None: it is still a name `from numpy import *` binds, not a builtin.
    g = graph_of(("from numpy import *\nxs = arange(3)[:, newaxis]", "step:one"))
    assert codes(g) == []
    assert "from numpy import newaxis" in {e.text for e in g.step("one").code}


def test_output_history_is_reported() -> None:
    g = graph_of(("x = 1", "step:one"), "x + 1", ("y = _ * 2\nz = _3 + Out[2]", "step:two"))
    assert [c for c in codes(g) if c != "NB306"] == ["NB204", "NB204", "NB204"]


def test_underscore_bound_by_the_notebook_is_an_ordinary_name() -> None:
    g = graph_of(("_, b = (1, 2)", "step:one"), ("y = _ + b", "step:two"))
    assert codes(g) == []


def test_deep_expression_is_analysed() -> None:
    g = graph_of(("x = [0]" + "+[1]" * 1500, "step:one"), ("n = len(x)", "step:two"))
    assert codes(g) == [] and ("one", "two", ("x",)) in edges(g)


def test_expression_too_deep_for_python_is_a_clean_diagnostic() -> None:
    g = graph_of(("x = [0]" + "+[1]" * 30000, "step:one"), ("y = 1", "step:two"))
    assert codes(g) == ["NB108"]
    assert "nested too deeply" in g.diagnostics[0].message


def test_global_set_by_a_function_a_static_method_calls() -> None:
    g = graph_of("def setup():\n    global AXIS\n    AXIS = 3",
                 "class B:\n    @staticmethod\n    def build():\n        setup()\n"
                 "        return AXIS",
                 ("m = B.build()\nprint(AXIS)", "step:use"))
    assert "NB201" not in codes(g)


def test_print_only_cell_is_not_display_only() -> None:
    g = graph_of(("x = 1", "step:one"), "print(x)", "x")
    assert codes(g) == ["NB306"]  # the bare `x` shows nothing anywhere; print reaches the log
    assert g.diagnostics[0].cell == 3


def test_code_after_return_is_not_read() -> None:
    g = graph_of("def f():\n    return 1\n    return missing", ("z = f()", "step:one"))
    assert codes(g) == []


def test_drawing_from_a_generator_or_an_iterator_changes_it() -> None:
    g = graph_of("import numpy as np", ("rng = np.random.default_rng(1)\nit = iter([1, 2])",
                                        "step:make"),
                 ("a = rng.integers(0, 9)\nx = next(it)", "step:one"),
                 ("b = rng.normal()\ny = next(it)", "step:two"))
    assert ("one", "two", ("it", "rng")) in edges(g)


def test_names_of_star_imports_are_imported_one_by_one() -> None:
    g = graph_of("from math import *", ("y = sin(pi / 2)", "step:one"))
    assert codes(g) == []
    assert {e.text for e in g.step("one").code} == {"from math import pi",
                                                   "from math import sin"}
    g = graph_of("from math import *\nfrom notebook_helpers import *", ("y = sin(1)", "step:one"))
    assert codes(g) == ["NB203"]  # the later star import may bind `sin` too


def test_type_parameters_are_not_globals_as_the_312_parser_gives_them() -> None:
    """`def first[T](items: list[T]) -> T` and `class Box[T]`, built as Python 3.12's parser
    builds them (a `type_params` list), on any Python."""
    import ast
    from types import SimpleNamespace

    from nb2pipe.analysis.visitor import Visitor
    from nb2pipe.model import Read

    tree = ast.parse("def first(items: list[T]) -> T:\n    return items[0]\n"
                     "class Box(Base[T]):\n    def get(self) -> T:\n        return T\n")
    for node in tree.body:
        setattr(node, "type_params", [SimpleNamespace(name="T")])  # noqa: B010 - 3.12 field
    scope = Visitor(1, [], {}).module(tree)
    reads = {e.name for e in scope.events if isinstance(e, Read)}
    assert "T" not in reads and "Base" in reads
