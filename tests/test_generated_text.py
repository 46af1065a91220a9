"""The generated code reads like code a person would commit: no line they would delete first."""

from __future__ import annotations

from support import graph_of

from nb2pipe.generate.flow_py import render_flow
from nb2pipe.generate.plan import make_plan
from nb2pipe.generate.steps_py import render_steps

PLOTTING = (
    ("import matplotlib.pyplot as plt\nimport numpy as np", ),
    ("xs = np.arange(5)\nplt.plot(xs, xs ** 2)", "step:draw"),
    ("plt.title('squares')\nys = xs * 2", ),
)


def steps_text(*specs: object) -> str:
    return render_steps(make_plan(graph_of(*specs))).text


def flow_text(*specs: object) -> str:
    return render_flow(make_plan(graph_of(*specs)))


def test_a_plotting_step_imports_pyplot_once_and_leaves_closing_figures_to_the_runtime() -> None:
    text = steps_text(*PLOTTING)
    assert text.count("import matplotlib.pyplot") == 1
    assert "import matplotlib.pyplot as plt" in text
    assert "close(" not in text


def test_a_last_call_known_to_return_none_is_not_wrapped_in_displayhook() -> None:
    text = steps_text(
        ("import matplotlib.pyplot as plt\nimport numpy as np\nimport seaborn as sns\n"
         "from numpy import random", ),
        ("xs = np.arange(5)\nplt.plot(xs, xs)\nplt.tight_layout()", "step:draw"),
        ("np.random.seed(0)", ),
        ("random.seed(1)", ),
        ("plt.style.use('default')", ),
        ("sns.set_theme()", ),
        ("plt.legend()", ),  # a Legend: Jupyter shows it
        ("plt.ion()", ),  # a context manager: shown
        ("xs.sort()", ),  # unknown: shown
    )
    for unwrapped in ("plt.tight_layout()", "np.random.seed(0)", "random.seed(1)",
                      "plt.style.use('default')", "sns.set_theme()"):
        assert f"\n    {unwrapped}\n" in text
    for shown in ("plt.legend()", "plt.ion()", "xs.sort()"):
        assert f"displayhook({shown})" in text


def test_a_module_name_the_notebook_also_binds_otherwise_keeps_displayhook() -> None:
    rebound = steps_text(
        ("import matplotlib.pyplot as plt\nimport os", ),
        ("class Fake:\n    def tight_layout(self):\n        return 1\n\nplt = Fake()",
         "step:fake"),
        ("plt.tight_layout()", ),
        ("os.makedirs = print\nx = 1", "step:patched"),
        ("os.makedirs('out')", ),
    )
    assert "displayhook(plt.tight_layout())" in rebound
    assert "displayhook(os.makedirs('out'))" in rebound


def test_a_task_names_its_step_once() -> None:
    flow = flow_text(("x = 1", "step:load"), ("y = x + 1", "step:clean", "metrics"))
    assert ('@step_task\ndef load() -> Values:\n    """Cell 1 of test.ipynb."""\n'
            "    return run_step(steps.load)\n") in flow
    assert ('@step_task\ndef clean(load: Values) -> Values:\n    """Cell 2 of test.ipynb."""\n'
            '    return run_step(steps.clean, x=load["x"])\n') in flow
    steps = steps_text(("x = 1", "step:load"))
    assert 'def load() -> dict[str, Any]:\n    """Cell 1: returns nothing."""\n' in steps


def test_a_task_whose_function_had_to_be_renamed_says_its_step() -> None:
    flow = flow_text(("x = 1", "step:wait"), ("y = x + 1", "step:flow", "metrics"))
    assert '@step_task(name="wait")\ndef wait_(' in flow
    assert '"""Step `wait`: cell 1 of test.ipynb."""' in flow


def test_step_parameters_have_the_types_of_their_literals_and_results_a_precise_type() -> None:
    text = steps_text(
        ("a = 1\nrate: float = 0.5\nlimit = None\nlayers = [1, 2]\n"
         "from typing import Optional\nmaybe: Optional[int] = None", "parameters"),
        ("y = a + rate + layers[0]\nz = (limit, maybe)", "step:load"),
        ("q = y * 2", "step:two", "metrics"))
    assert text.startswith('"""') and "\nfrom typing import Any\n" in text
    # Optional is the notebook's name, which steps.py does not import: left unannotated.
    assert ("def load(a: int, layers: list[int], limit: Any, maybe, rate: float) "
            "-> dict[str, Any]:") in text
    assert "def two(y) -> dict[str, Any]:" in text


def test_a_notebook_name_any_is_left_alone() -> None:
    text = steps_text(("n = 1", "parameters"), ("Any = n * 2", "step:load"))
    assert "from typing import Any as Any_\n" in text
    assert "def load(n: int) -> dict[str, Any_]:" in text


def test_a_long_signature_has_one_argument_a_line() -> None:
    names = [f"parameter_number_{i}" for i in range(6)]
    text = steps_text(("\n".join(f"{n} = {i}" for i, n in enumerate(names)), "parameters"),
                      (f"total = {' + '.join(names)}", "step:add"))
    assert ("def add(\n" + "".join(f"    {n}: int,\n" for n in names)
            + ") -> dict[str, Any]:\n") in text


def test_builtin_type_names_the_notebook_rebinds_stay_out_of_signatures() -> None:
    text = steps_text(("n = 1", "parameters"), ("from collections import OrderedDict as dict",),
                      ("int = 2\ntotal = n + int", "step:add"))
    assert "def add(n) -> dict:" in text
    assert "from typing import Any" not in text
