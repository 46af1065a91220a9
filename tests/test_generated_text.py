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
