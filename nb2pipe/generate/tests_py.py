"""Plan -> the generated project's tests/: every step function, and the whole flow.

Without recorded values, the step functions run in pipeline order on the default parameters
and must return what later steps need. With `--record`, each step must reproduce, from the
inputs recorded while the notebook ran, the outputs recorded then (floats with a tolerance).
"""

from __future__ import annotations

from nb2pipe.escape import docstring_text
from nb2pipe.generate.code import literal
from nb2pipe.generate.flow_py import flow_names
from nb2pipe.generate.plan import Plan

CONFTEST = '''"""Test set-up: Prefect runs on a temporary database in a throwaway PREFECT_HOME."""

import os
import tempfile

import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))
# Results and cached values of test runs stay out of the user's cache.
os.environ.setdefault("NB2PIPE_CACHE_DIR", tempfile.mkdtemp(prefix="nb2pipe-cache-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (it takes seconds to start, and
    more than Prefect's default 30 on a busy machine)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(autouse=True)
def restore_working_directory():
    """Steps run in the notebook's folder; put the test's own folder back afterwards."""
    before = os.getcwd()
    yield
    os.chdir(before)
'''


def render_tests(plan: Plan, recorded: bool) -> dict[str, str]:
    files = {"tests/conftest.py": CONFTEST, "tests/test_flow.py": _flow_test(plan, recorded)}
    files["tests/test_steps.py"] = _recorded_steps(plan) if recorded else _chained_steps(plan)
    return files


def _pipeline_table(plan: Plan) -> list[str]:
    lines = ["PIPELINE = {"]
    for name in plan.order:
        step = plan.step(name)
        inputs = ", ".join(f"{literal(v)}: {literal(p)}" for v, p in step.inputs)
        lines.extend([
            f"    {literal(name)}: {{",
            f"        \"function\": steps.{step.function},",
            f"        \"inputs\": {{{inputs}}},  # argument: the step it comes from",
            f"        \"parameters\": {literal(list(step.parameters))},",
            f"        \"returns\": {literal(list(step.returns))},",
            f"        \"after\": {literal(list(step.after))},",
            "    },",
        ])
    lines.append("}")
    return lines


def _chained_steps(plan: Plan) -> str:
    defaults = ", ".join(f"{literal(p.name)}: {literal(p.default)}" for p in plan.parameters)
    lines = [
        f'"""Every step of {docstring_text(plan.notebook_name)}, run in pipeline order on the '
        'default parameters.',
        "",
        "The same wiring as flow.py, without Prefect (it is not even imported): each step gets",
        "copies of the values it reads and must return exactly the values later steps need.",
        '"""',
        "",
        "import os",
        "",
        "import pytest",
        "",
        "import steps",
        "from nb2pipe_runtime.handoff import copied",
        "from nb2pipe_runtime.project import workdir",
        "",
        f"PARAMETERS = {{{defaults}}}",
        *_pipeline_table(plan),
        "",
        "",
        '@pytest.fixture(scope="module")',
        "def run():",
        '    """Runs a step once (and first the steps it depends on); returns its values."""',
        "    done = {}",
        "",
        "    def run_step(name):",
        "        if name not in done:",
        "            step = PIPELINE[name]",
        "            for earlier in step[\"after\"]:",
        "                run_step(earlier)",
        "            # Copies, in one go: values sharing objects still share them.",
        "            arguments = copied({",
        "                variable: run_step(producer)[variable]",
        "                for variable, producer in step[\"inputs\"].items()",
        "            })",
        "            arguments.update({p: PARAMETERS[p] for p in step[\"parameters\"]})",
        "            os.chdir(workdir())",
        "            done[name] = step[\"function\"](**arguments)",
        "        return done[name]",
        "",
        "    return run_step",
        "",
        "",
        "@pytest.mark.parametrize(\"name\", list(PIPELINE))",
        "def test_step_returns_what_later_steps_need(run, name):",
        "    assert sorted(run(name)) == PIPELINE[name][\"returns\"]",
    ]
    return "\n".join(lines) + "\n"


def _recorded_steps(plan: Plan) -> str:
    lines = [
        f'"""Every step of {docstring_text(plan.notebook_name)} reproduces what the notebook '
        'computed.',
        "",
        "tests/fixtures/STEP/inputs holds the values the step read while the notebook ran,",
        "tests/fixtures/STEP/outputs the values it left for later steps (`nb2pipe convert",
        "--record`). Floats are compared with a tolerance.",
        '"""',
        "",
        "import os",
        "from pathlib import Path",
        "",
        "import pytest",
        "",
        "import steps",
        "from nb2pipe_runtime import compare, values",
        "from nb2pipe_runtime.project import workdir",
        "",
        "FIXTURES = Path(__file__).parent / \"fixtures\"",
        *_pipeline_table(plan),
        "",
        "",
        "@pytest.mark.parametrize(\"name\", list(PIPELINE))",
        "def test_step_reproduces_the_notebook(name):",
        "    arguments = values.load(FIXTURES / name / \"inputs\")",
        "    expected = values.load(FIXTURES / name / \"outputs\")",
        "    os.chdir(workdir())",
        "    result = PIPELINE[name][\"function\"](**arguments)",
        "    assert sorted(result) == PIPELINE[name][\"returns\"]",
        "    compare.assert_same(result, expected, name)",
    ]
    return "\n".join(lines) + "\n"


def _flow_test(plan: Plan, recorded: bool) -> str:
    names = flow_names(plan)
    returns = ", ".join(f"{literal(s.name)}: {literal(list(s.returns))}" for s in plan.steps)
    in_place = {s.name: list(s.consumed_in_place) for s in plan.steps if s.consumed_in_place}
    lines = [
        f'"""The whole flow of {docstring_text(plan.notebook_name)} on its default parameters, '
        'under Prefect."""',
        "",
    ]
    if recorded:
        lines.extend(["from pathlib import Path", ""])
    lines.append(f"from flow import {names.flow}")
    if recorded:
        lines.append("from nb2pipe_runtime import compare, values")
    lines.extend(["", f"RETURNS = {{{returns}}}"])
    if recorded:
        lines.extend([
            'FIXTURES = Path(__file__).parent / "fixtures"',
            "# Values a later step changes in place: the flow returns them changed, so they are",
            "# compared where they are made, in test_steps.py.",
            f"CHANGED_LATER = {literal(in_place)}",
        ])
    lines.extend([
        "",
        "",
        "def test_flow_completes_on_default_parameters(prefect_harness):",
        f"    results = {names.flow}()",
        "    assert {step: sorted(values) for step, values in results.items()} == RETURNS",
    ])
    if recorded:
        lines.extend([
            "    for step, computed in results.items():",
            "        expected = values.load(FIXTURES / step / \"outputs\")",
            "        for name in CHANGED_LATER.get(step, []):",
            "            expected.pop(name, None)",
            "        compare.assert_same(dict(computed), expected, step)",
        ])
    return "\n".join(lines) + "\n"
