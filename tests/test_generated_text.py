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
    assert 'def load() -> dict:\n    """Cell 1: returns nothing."""\n' in steps


def test_a_task_whose_function_had_to_be_renamed_says_its_step() -> None:
    flow = flow_text(("x = 1", "step:wait"), ("y = x + 1", "step:flow", "metrics"))
    assert '@step_task(name="wait")\ndef wait_(' in flow
    assert '"""Step `wait`: cell 1 of test.ipynb."""' in flow
