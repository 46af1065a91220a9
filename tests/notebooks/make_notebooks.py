"""Writes the test notebooks in this folder: one small notebook per behaviour.

Run `python tests/notebooks/make_notebooks.py` after editing a case; `tests/test_golden.py` checks
the committed .ipynb files match these specs, and each notebook's expected graph beside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def code(source: str, *tags: str) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "tags": list(tags)}


def md(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "source": source, "tags": []}


CASES: dict[str, list[dict[str, Any]]] = {
    # -- graph shapes -----------------------------------------------------------------------
    "linear_chain": [
        md("# A linear chain"),
        code("import pandas as pd"),
        code("df = pd.DataFrame({'a': [1, 2, 3]})", "step:load"),
        code("doubled = df * 2", "step:double"),
        code("total = int(doubled['a'].sum())\nprint(total)", "step:report"),
    ],
    "diamond": [
        code("values = list(range(10))", "step:source"),
        code("evens = [v for v in values if v % 2 == 0]", "step:left"),
        code("odds = [v for v in values if v % 2]", "step:right"),
        code("merged = sorted(evens + odds)", "step:join"),
    ],
    "redefinition": [
        code("x = 1", "step:first"),
        code("x = 10\ny = 2", "step:second"),
        code("z = x + y", "step:third"),
    ],
    "aug_assign": [
        code("counter = 0", "step:init"),
        code("counter += 1", "step:bump"),
        code("result = counter * 2", "step:use"),
    ],
    # -- in-place changes in a later step ---------------------------------------------------
    "mutation_inplace": [
        code("import pandas as pd"),
        code("df = pd.DataFrame({'a': [1.0, None, 3.0]})", "step:load"),
        code("df.dropna(inplace=True)", "step:clean"),
        code("n = len(df)", "step:count"),
    ],
    "mutation_setitem": [
        code("import pandas as pd"),
        code("df = pd.DataFrame({'a': [1, 2]})", "step:load"),
        code("df['b'] = df['a'] * 2", "step:features"),
        code("total = int(df['b'].sum())", "step:report"),
    ],
    "mutation_append": [
        code("items = [1, 2]", "step:create"),
        code("items.append(3)", "step:extend"),
        code("size = len(items)", "step:measure"),
    ],
    "mutation_fit": [
        code("from sklearn.linear_model import LinearRegression"),
        code("X = [[0.0], [1.0], [2.0]]\ny = [0.0, 1.0, 2.0]\nmodel = LinearRegression()",
             "step:setup"),
        code("model.fit(X, y)", "step:train"),
        code("prediction = float(model.predict([[3.0]])[0])", "step:predict"),
    ],
    # -- in-place changes through another name ---------------------------------------------
    "alias_simple": [
        code("a = [1]", "step:create"),
        code("b = a\nb.append(2)", "step:change_through_alias"),
        code("total = sum(a)", "step:use_original"),
    ],
    "alias_frames_loop": [
        code("import pandas as pd"),
        code("train = pd.DataFrame({'x': [1, 2]})\ntest = pd.DataFrame({'x': [3]})", "step:load"),
        code("frames = [train, test]", "step:group"),
        code("for frame in frames:\n    frame['x2'] = frame['x'] ** 2", "step:engineer"),
        code("train_size = len(train.columns)", "step:use_train"),
        code("test_size = len(test.columns)", "step:use_test"),
    ],
    "alias_dict_model": [
        code("from sklearn.linear_model import LinearRegression"),
        code("models = {'lr': LinearRegression()}\nX = [[0.0], [1.0]]\ny = [0.0, 1.0]",
             "step:setup"),
        code("model = models['lr']\nmodel.fit(X, y)", "step:train"),
        code("coefficient = float(models['lr'].coef_[0])", "step:inspect"),
    ],
    "alias_function_argument": [
        code("def add_flag(frame):\n    frame['flag'] = 1"),
        code("import pandas as pd\ndf = pd.DataFrame({'a': [1]})", "step:load"),
        code("add_flag(df)", "step:flag"),
        code("columns = list(df.columns)", "step:use"),
    ],
    # A numpy view changed in a later step changes its array (PDSH 02.02); `peek` reads the
    # view while `change` may run, so `change` gets copies, which must stay a view and its array.
    "alias_numpy_view": [
        code("import numpy as np\nx = np.arange(12).reshape(3, 4)", "step:make"),
        code("window = x[:2, :2]", "step:view"),
        code("peek = int(window.sum())", "step:peek"),
        code("window[0, 0] = 99", "step:change"),
        code("corner = int(x[0, 0])", "step:read_array"),
    ],
    # -- definitions that are values, not code to emit again -------------------------------
    # A class changed in place in a later step: from there on the class is a value.
    "value_class_attribute": [
        code("class Cfg:\n    lr = 0.1", "step:define"),
        code("Cfg.lr = 0.5", "step:tune"),
        code("v = Cfg.lr", "step:use"),
    ],
    # A decorator that registers runs once, where the definition is, and changes REG there.
    "value_decorator_registers": [
        code("REG = {}\n\ndef register(f):\n    REG[f.__name__] = f\n    return f",
             "step:registry"),
        code("@register\ndef g():\n    return 1", "step:define"),
        code("n = len(REG)\nfirst = REG['g']()", "step:use"),
    ],
    # A default argument is evaluated when the function is defined (threshold is 1 there).
    "value_default_argument": [
        code("threshold = 1", "step:first"),
        code("def f(x, t=threshold):\n    return x + t", "step:define"),
        code("threshold = 2", "step:change"),
        code("r = f(0)", "step:use"),
    ],
    # A default list changed by each call: the function's state, carried as a value.
    "value_mutable_default": [
        code("def add(x, seen=[]):\n    seen.append(x)\n    return len(seen)", "step:define"),
        code("a = add(1)", "step:once"),
        code("b = add(2)", "step:twice"),
    ],
    # -- deletion, functions, scoping -------------------------------------------------------
    "del_name": [
        code("data = [1, 2, 3]", "step:load"),
        code("total = sum(data)\ndel data", "step:summarise"),
        code("again = len(data)", "step:reuse"),
    ],
    "function_late_binding": [
        code("def scaled(v):\n    return v * FACTOR", "step:define"),
        code("FACTOR = 3", "step:configure"),
        code("result = scaled(2)", "step:call"),
    ],
    "scoping": [
        code("xs = [1, 2, 3]", "step:data"),
        code(
            "squares = [x * x for x in xs]\n"
            "pairs = {k: v for k, v in zip(xs, squares)}\n"
            "double = lambda n: n * 2\n"
            "doubled = list(map(double, xs))\n"
            "if (count := len(xs)) > 2:\n"
            "    big = True\n"
            "try:\n"
            "    risky = 1 / 0\n"
            "except ZeroDivisionError as error:\n"
            "    message = str(error)\n"
            "with open(__import__('os').devnull) as handle:\n"
            "    empty = handle.read()\n"
            "import os.path\n"
            "class Box:\n"
            "    size = len(xs)\n"
            "    def area(self):\n"
            "        return self.size * SIDE\n",
            "step:compute",
        ),
        code("SIDE = 4\narea = Box().area()", "step:use_class"),
        code("leak = x", "step:no_leak"),
    ],
    "imports_no_edge": [
        code("import numpy as np", "step:setup"),
        code("a = np.arange(3)", "step:make"),
        code("b = np.ones(3)", "step:other"),
        code("c = a + b", "step:combine"),
    ],
    "magics": [
        code("%matplotlib inline\n!pip install -q tqdm==4.66.0\nimport math"),
        code("%%time\nvalues = [math.sqrt(i) for i in range(5)]", "step:compute"),
        code("files = !ls\n%time total = sum(values)\ncount = len(files)", "step:summarise"),
    ],
    "parameters_typed": [
        code('rate: float = 0.5  # learning rate\nname = "run"\nlayers = [1, 2]\n'
             'debug = False\nlimit = None\nsettings = {"a": 1}', "parameters"),
        code("scaled = rate * 2\nlabel = name.upper()", "step:use"),
        code("depth = len(layers)", "step:other"),
    ],
    "after_edge": [
        code("open('marker.txt', 'w').write('x')", "step:write"),
        code("text = open('marker.txt').read()", "step:read", "after:write"),
    ],
    "kale_tags": [
        code("import math", "imports"),
        code("def area(r):\n    return math.pi * r * r", "functions"),
        code("radius = 2.0", "pipeline-parameters"),
        code("a = area(radius)", "block:compute"),
        code("b = a * 2", "block:double", "prev:compute"),
        code("print(a)", "skip"),
        code("c = b + 1", "step:finish", "prev:double"),
        code("c", "pipeline-metrics"),
    ],
    "split_headings": [
        md("# Load"),
        code("data = [3, 1, 2]"),
        md("## Sort the data"),
        code("ordered = sorted(data)"),
        md("### a minor heading, not a step"),
        code("first = ordered[0]"),
        md("## Report"),
        code("print(first)"),
    ],
    "split_cells": [
        code("a = 1"),
        code("b = 2"),
        code("c = a + b", "step:named"),
    ],
    # -- errors -----------------------------------------------------------------------------
    "error_undefined": [
        code("x = 1", "step:first"),
        code("y = x + missing", "step:second"),
        code("z = later_value", "step:third"),
        code("later_value = 1", "step:fourth"),
    ],
    "error_cycle": [
        code("a = 1", "step:one", "after:two"),
        code("b = a + 1", "step:two"),
    ],
    "error_step_names": [
        code("a = 1", "step:load-data"),
        code("b = 2", "step:train"),
        code("c = 3", "step:class"),
        code("d = 4", "step:train"),
    ],
    "error_import_star": [
        code("from notebook_helpers import *", "step:setup"),
        code("value = sqrt(4)", "step:use"),
    ],
    "precision_draws": [
        code("import numpy as np\nrng = np.random.default_rng(42)\nit = iter([2, 4, 6])",
             "step:make"),
        code("a = rng.integers(0, 10, 4)\nfirst = next(it)", "step:draw"),
        code("b = rng.integers(0, 10, 4)\nsecond = next(it)", "step:draw_again"),
    ],
    "precision_star_imports": [
        code("from math import *\nfrom collections import *"),
        code("y = sin(pi / 2)\ncounts = Counter('abca')\nz = pow(2, 3)", "step:use"),
    ],
    "error_syntax": [
        code("a = 1", "step:ok"),
        code("b = (a +\nc = 2", "step:broken"),
    ],
    "error_tags": [
        code("a = 1", "stpe:first"),
        code("b = 2", "step:second", "after:frist"),
        code("c = 3", "step:third", "retries:many", "timeout:-5"),
    ],
    "error_parameters": [
        code("ok = 1\ncomputed = ok + 1\nfrom_call = len('abc')\n_private = 2", "parameters"),
        code("use = ok", "step:use"),
    ],
    # -- warnings ---------------------------------------------------------------------------
    "warn_global_exec": [
        code("count = 0\ndef bump():\n    global count\n    count += 1", "step:setup"),
        code("bump()\nexec('hidden = 1')", "step:run"),
        code("total = count", "step:use"),
    ],
    "warn_unserializable": [
        code("handle = open(__import__('os').devnull)\nlines = (l for l in range(3))",
             "step:open"),
        code("content = handle.read()\nfirst = next(lines)", "step:read"),
    ],
    "warn_file_handoff": [
        code("import pandas as pd"),
        code("pd.DataFrame({'a': [1]}).to_csv('shared.csv')", "step:writer"),
        code("df = pd.read_csv('shared.csv')", "step:reader"),
    ],
    "warn_display_seed": [
        code("import numpy as np\nnp.random.seed(0)"),
        code("values = np.random.rand(3)", "step:draw"),
        code("values", ),
        code("more = np.random.rand(3)", "step:draw_more"),
    ],
    # A library's hidden generator cannot be carried (torch is not installed here: check only).
    "warn_hidden_seed": [
        code("import torch\nimport numpy as np"),
        code("torch.manual_seed(0)\nnp.random.seed(0)", "step:seed"),
        code("values = np.random.rand(3)", "step:draw"),
    ],
    # Cfg is a value from its definition on (cell 3 changes it in place): its method reads
    # `scale` as step `define` has it, not as the notebook has it when `use` calls it.
    "warn_value_reads_later": [
        code("scale = 2", "step:config"),
        code("class Cfg:\n    lr = 0.1\n\n    def scaled(self):\n        return self.lr * scale",
             "step:define"),
        code("Cfg.lr = 0.5", "step:tune"),
        code("scale = 3\nv = Cfg().scaled()", "step:use"),
    ],
    # A base class's method reads a name the notebook never defines; subclasses override it,
    # so the notebook runs, and so does the pipeline: Python looks the name up only on a call.
    "warn_name_defined_nowhere": [
        code("class Test:\n    def __init__(self, data):\n        self.actual = self.stat(data)\n\n"
             "    def stat(self, data):\n        raise UnimplementedMethodException()",
             "step:base"),
        code("class Mean(Test):\n    def stat(self, data):\n        return sum(data) / len(data)",
             "step:mean"),
        code("t = Mean([1, 2, 3])\nactual = t.actual", "step:use"),
    ],
    # A query built at run time: pandas looks its `@names` up in the calling step, which may
    # lack them; nothing says which (formulas for patsy alike: tests/test_faithful.py).
    "warn_query_built_at_run_time": [
        code("import pandas as pd\n"
             "df = pd.DataFrame({'x': [1.0, 2.0, 3.0], 'y': [2.0, 4.0, 6.5]})\nterm = 'x'",
             "step:load"),
        code("big = df.query(f'{term} > 1')", "step:select"),
    ],
    "warn_magic_empty_step": [
        code("a = 1", "step:first"),
        code("%%sql\nselect 1", "step:query"),
        code("b = a", "step:empty"),
    ],
    # -- random state, as the notebook has it --------------------------------------------------
    "random_state_flow": [
        code("import random\nimport numpy as np\nimport pandas as pd\n"
             "from sklearn.model_selection import train_test_split"),
        code("a = np.random.rand(3)", "step:before"),  # unseeded: the seed comes after it
        code("np.random.seed(42)\nrandom.seed(7)\nb = np.random.rand(3) + 0 * a", "step:seed"),
        code("c = np.random.randint(0, 1000, 5)\npick = random.choice(range(100))", "step:draw"),
        code("words = ['x', 'y']", "step:independent"),
        code("df = pd.DataFrame({'v': range(20)})\nsampled = df.sample(5)\n"
             "train, test = train_test_split(df)", "step:sample"),
        code("def noise(n):\n    return np.random.normal(size=n)", "step:helpers"),
        code("d = noise(3)\ne = random.random()\nwords2 = words * 2\n"
             "total = float(b.sum() + c.sum() + pick + d.sum() + e + sampled['v'].sum()"
             " + train['v'].sum())\nprint(total)", "step:later", "metrics"),
    ],
    # -- submodules reached through a package's attribute --------------------------------------
    "submodule_attribute": [
        code("%matplotlib inline\nimport xml"),
        code("import xml.dom.minidom as md"),
        code("tag = xml.dom.minidom.parseString('<r>1</r>').documentElement.tagName",
             "step:parse", "metrics"),
        code("import matplotlib\nbackend_known = bool(matplotlib.pyplot.get_backend())",
             "step:backend", "metrics"),
    ],
    # -- check green => the generated steps run ---------------------------------------------
    "codegen_del_input": [
        code("import gc"),
        code("train = [1, 2, 3]", "step:load"),
        code("total = sum(train)", "step:summarise"),
        code("del train\ngc.collect()", "step:free"),
        code("done = total + 1", "step:report"),
    ],
    "codegen_del_read_by_function": [
        code("import re"),
        code("full = ['room 1', 'room 22']", "step:load"),
        code("checker = re.compile('([0-9]+)')\ndef num(x):\n    return int(checker.search(x)"
             ".group(1))\nlookup = lambda x: checker.search(x) is not None\n"
             "rooms = [num(x) for x in full if lookup(x)]\ndel checker, num, lookup",
             "step:rooms"),
        code("total = sum(rooms)", "step:count"),
    ],
    "codegen_dead_branch_reads_another_step": [
        code("x_trn = [1, 2, 3]", "step:train"),
        code("score = 0.5\nif False:\n    # kept for later: score on the training set\n"
             "    score = sum(x_trn) / len(x_trn)", "step:report", "metrics"),
    ],
    "codegen_rebind": [
        code("from collections import Counter\nimport math"),
        code("Counter = Counter('abca')", "step:count"),
        code("top = Counter.most_common(1)[0][0]", "step:use"),
        code("sum = sum([1, 2, 3])\nfrom math import sqrt\nsqrt = sqrt(16.0)", "step:shadow"),
        code("math = math.floor(2.5)\nboth = (sum, sqrt, math)", "step:shadow_module"),
    ],
    "codegen_notebook_builtins": [
        code("def show(value):\n    display(value)\n    return get_ipython()"),
        code("shell = show(3)\ninside = shell is None", "step:call"),
    ],
    "codegen_unused_definition": [
        code("def scaled(v):\n    return v * FACTOR\n\nbase = 2", "step:define"),
        code("FACTOR = 3", "step:configure"),
        code("result = scaled(base)", "step:call"),
    ],
    "codegen_after_definitions": [
        code("prepared = 1", "step:prep"),
        code("def f():\n    return 1", "step:train", "after:prep"),
        code("z = f() + 1", "step:evaluate", "after:train"),
        code("w = z * 2", "block:kale_style", "prev:train"),
    ],
    "codegen_global": [
        code("counter = 0", "step:init"),
        code("def hook(i):\n    global counter\n    counter += i\n\n"
             "def set_flag():\n    global flag\n    flag = True\n\n"
             "def outer():\n    set_flag()\n\n"
             "class Tools:\n    @staticmethod\n    def mark():\n        global marked\n"
             "        marked = 1"),
        code("calls = list(map(hook, range(3)))", "step:callback"),
        code("outer()\nTools.mark()", "step:indirect"),
        code("total = counter\nboth = (flag, marked)", "step:use"),
    ],
    "error_output_history": [
        code("values = [3, 1, 2]", "step:load"),
        code("sorted(values)", "skip"),
        code("first = _[0]", "step:use_last"),
        code("again = Out[2]", "step:use_out"),
    ],
    "error_nothing_runs": [
        code("import math", "step:setup"),
        code("def area(r):\n    return math.pi * r * r", "step:define"),
    ],
    # -- no false errors --------------------------------------------------------------------
    "precision_inherit_loop": [
        code("class Base:\n    v = 2\n\n    def scale(self):\n        return self.v * FACTOR"),
        code("class Child(Base):\n    pass\n\nready = True", "step:define"),
        code("FACTOR = 3", "step:configure"),
        code("value = Child().scale()", "step:use"),
        code("for i in range(3):\n    if i:\n        acc += i\n    else:\n        acc = i",
             "step:loop"),
        code("final = acc", "step:after_loop"),
    ],
    "precision_python2_guards": [
        code("import sys"),
        code("s = 'abc'\nif sys.version_info < (3, 0):\n    s = unicode(s)\n"
             "if sys.version_info[0] == 2:\n    line = raw_input()\nelse:\n    line = ''\n"
             "try:\n    basestring\nexcept NameError:\n    basestring = str\n"
             "ok = isinstance(s, basestring)", "step:text"),
        code("result = (ok, line)", "step:use"),
    ],
    "precision_pylab": [
        code("%pylab inline"),
        code("xs = linspace(0, 1, 5)\nmiddle = float(median(xs))\nfigure = plt.figure()\n"
             "plt.close(figure)\nbiggest = float(max(xs))\ncolumn = xs[:, newaxis]",
             "step:compute"),
    ],
    "precision_selection": [
        code("import pandas as pd"),
        code("df = pd.DataFrame({'a': [1, 2, 3], 'b': [4, 5, 6]})\n"
             "class Box:\n    pass\n\nbox = Box()", "step:load"),
        code("mask = df['a'] > 1\nsub = df[mask].copy()\ncolumns = ['a']\n"
             "narrow = df[columns]\nrows = df.loc[df['a'] > 1]\nfirst = df.iloc[:2]\n"
             "queried = df.query('a > 1')\ncopied = df.copy()\nsub['c'] = 1\n"
             "copied['h'] = 6", "step:select"),
        code("setattr(box, 'v', 1)", "step:tag"),
        code("n = len(df.columns)\nv = box.v", "step:use"),
    ],
    "precision_del_rebound": [
        code("x = 1", "step:first"),
        code("del x", "step:drop"),
        code("x = 2", "step:again"),
        code("print(x)", "step:show"),
    ],
    "precision_deep_expression": [
        code("x = [0]" + "+[1]" * 1000, "step:build"),
        code("n = len(x)", "step:count"),
    ],
    "kale_empty_block": [
        code("a = 1", "block:load"),
        code("b = a + 1", "block:"),
        code("c = b", "block:use", "prev:load"),
    ],
    "error_python2": [
        code("import math"),
        code("print 'hello'\nvalue = 1", "step:greet"),
        code("for i in xrange(3):\n    print i", "step:loop"),
        code("total = value + 1\nevens = list(xrange(0, 4, 2))", "step:use"),
    ],
    "warn_magic_space": [
        code("% matplotlib inline\nx = 1", "step:setup"),
        code("y = x + 1", "step:use"),
    ],
    # -- failure classes found on public notebooks ------------------------------------------
    "precision_capture": [
        code("%%capture captured\nprint('hi')\nvalue = 2", "step:quiet"),
        code("text = captured.stdout\ndoubled = value * 2", "step:use"),
    ],
    "precision_leading_indent": [
        code(" x = 1\n y = x + 1", "step:indented"),
        code(" def f(v):\n    return v * 2\n z = f(y)", "step:deeper"),
    ],
    "precision_dead_code": [
        code("def f():\n    return 1\n    return missing"),
        code("z = f()\nfor i in range(2):\n    continue\n    unused(i)", "step:call"),
        code("print(z + 1)", "step:show"),
    ],
    "codegen_default_from_same_cell": [
        code("import functools", "step:setup"),
        code("scale = 3\n\n@functools.lru_cache\ndef f(v=scale):\n    return v * 2\n\n"
             "y = f()", "step:model"),
        code("print(y + 1)", "step:show"),
    ],
    "codegen_display_in_module_function": [
        code("def show(value):\n    display(value)\n    return value", "step:helpers"),
        code("a = show(1)", "step:one"),
        code("from IPython.display import display\nb = show(a + 1)\ndisplay(b)", "step:two"),
    ],
    "codegen_ambiguous_names": [
        code("I = [1, 2]", "step:make"),
        code("first = len(I)", "step:peek"),
        code("I.append(3)\nl = len(I)", "step:grow"),
        code("total = l + first", "step:use"),
    ],
    "codegen_import_in_computing_try": [
        code("xs = [1, 2, 3]", "step:data"),
        code("try:\n    from collections import OrderedDict\n    status = OrderedDict()\n"
             "    for x in xs:\n        status[x] = x * 2\nexcept ImportError:\n"
             "    status = {}", "step:loop"),
        code("table = OrderedDict(a=1)\nn = len(status) + len(table)\nprint(n)", "step:later"),
    ],
    "error_run_script": [
        code("%run helper.py", "step:setup"),
        code("total = value + 1", "step:use"),
    ],
    "error_python2_builtins": [
        code("from functools import reduce\nfile = 'data.csv'", "step:setup"),
        code("total = reduce(lambda a, b: a + b, xrange(4))\nname = unicode(file)", "step:use"),
    ],
    "error_cython_cell": [
        code("%load_ext Cython", "step:setup"),
        code("%%cython\ncpdef int cy_add(int a, int b):\n    return a + b", "step:compile"),
        code("total = cy_add(1, 2) + missing", "step:use"),
    ],
    "error_dynamic_names": [
        code("for name in ['a', 'b']:\n    locals()[name] = len(name)", "step:make"),
        code("total = a + b", "step:use"),
    ],
    # -- text as written --------------------------------------------------------------------
    "text_characters": [
        code("greeting = 'hi \U0001F44B'", "parameters"),
        code("text = 'a\u2028b\x0cc\x85d\x1ce'  # note\u2028 \x0c here\n"
             "!find . -name no_such_file_here -exec rm {} \\;\n"
             "words = !echo one two | awk '{print $1}'\n"
             "size = len(text)\nfirst = words[0]\nloud = greeting.upper()", "step:strings"),
    ],
}
CASES["warn_magic_empty_step"][2]["tags"] = ["step:empty", "skip"]
# Notebook metadata other than the default Python 3 kernel.
METADATA: dict[str, dict[str, Any]] = {
    "error_python2": {
        "kernelspec": {"display_name": "Python 2", "language": "python", "name": "python2"},
        "language_info": {"name": "python", "version": "2.7.18"},
    },
    "error_python2_builtins": {
        "kernelspec": {"display_name": "Python 2", "language": "python", "name": "python2"},
        "language_info": {"name": "python", "version": "2.7.18"},
    },
}


def notebook(cells: list[dict[str, Any]], metadata: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    return {
        "cells": [
            {
                "cell_type": c["cell_type"],
                "id": f"c{i:02d}",
                "metadata": {"tags": c["tags"]} if c["tags"] else {},
                "source": c["source"].splitlines(keepends=True),
                **({"execution_count": None, "outputs": []} if c["cell_type"] == "code" else {}),
            }
            for i, c in enumerate(cells, start=1)
        ],
        "metadata": metadata or {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(name: str) -> str:
    document = notebook(CASES[name], METADATA.get(name))
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    for name in CASES:
        (HERE / f"{name}.ipynb").write_text(render(name), encoding="utf-8")
    print(f"wrote {len(CASES)} notebooks to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
