"""Generated projects, for real: their own tests pass (and can fail), they run in a fresh
environment made from their requirements.txt, and the flow computes what the notebook computes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import EXAMPLES, NOTEBOOKS, project_modules

from nb2pipe.convert import convert
from nb2pipe.runtime.compare import assert_same
from nb2pipe.runtime.values import load

pytestmark = pytest.mark.integration
EXAMPLE_NOTEBOOKS = sorted(EXAMPLES.glob("*/*.ipynb"))
# The notebooks whose meaning depends on in-place changes, aliases, late binding and magics.
SEMANTIC = ["mutation_inplace", "mutation_setitem", "mutation_append", "mutation_fit",
            "alias_simple", "alias_frames_loop", "alias_dict_model", "alias_function_argument",
            "alias_numpy_view",
            "aug_assign", "redefinition", "function_late_binding", "kale_tags", "magics",
            "linear_chain", "diamond", "imports_no_edge", "parameters_typed",
            "random_state_flow", "submodule_attribute"]
# Steps whose values are drawn before any seed: they differ from run to run, in the notebook too.
UNSEEDED = {"random_state_flow": {"before"}}


def converted(notebook: Path, tmp_path: Path, **options: Any) -> Path:
    folder = tmp_path / notebook.parent.name
    if not folder.exists():
        shutil.copytree(notebook.parent, folder,
                        ignore=shutil.ignore_patterns("*_pipeline", "*.graph.json"))
    output = folder / f"{notebook.stem}_pipeline"
    result = convert(folder / notebook.name, output, **options)
    assert result.ok
    return output


def pytest_in(project: Path, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTEST_"))}
    return subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                          capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize("notebook", EXAMPLE_NOTEBOOKS, ids=lambda p: p.stem)
def test_generated_tests_pass(notebook: Path, tmp_path: Path) -> None:
    result = pytest_in(converted(notebook, tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.parametrize("notebook", EXAMPLE_NOTEBOOKS, ids=lambda p: p.stem)
def test_recorded_tests_pass_and_catch_a_change(notebook: Path, tmp_path: Path) -> None:
    project = converted(notebook, tmp_path, record=True)
    result = pytest_in(project)
    assert result.returncode == 0, result.stdout[-3000:]
    # The recorded tests compare real values: a changed step must fail them.
    steps = project / "steps.py"
    text = steps.read_text()
    changed = text.replace("random_state=random_state", "random_state=random_state + 1", 1)
    assert changed != text
    steps.write_text(changed)
    result = pytest_in(project)
    assert result.returncode == 1 and "failed" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("notebook", EXAMPLE_NOTEBOOKS, ids=lambda p: p.stem)
def test_tests_pass_in_a_fresh_environment_from_requirements(notebook: Path,
                                                            tmp_path: Path) -> None:
    project = converted(notebook, tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              "-r", str(project / "requirements.txt")],
                             capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]
    result = pytest_in(project, python)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("name", SEMANTIC)
def test_flow_computes_what_the_notebook_computes(name: str, tmp_path: Path,
                                                  prefect_harness: None) -> None:
    """Record every step's values from a papermill run, then run the Prefect flow and compare."""
    project = converted(NOTEBOOKS / f"{name}.ipynb", tmp_path, record=True)
    manifest = __import__("json").loads((project / "pipeline.json").read_text())
    before = os.getcwd()
    try:
        with project_modules(project) as (_, flow):
            results = getattr(flow, manifest["flow"]["function"])()
    finally:
        os.chdir(before)
    assert set(results) == {s["name"] for s in manifest["steps"]}
    for step in manifest["steps"]:
        if step["name"] in UNSEEDED.get(name, ()):
            continue
        values = results[step["name"]]
        recorded = load(project / "tests" / "fixtures" / step["name"] / "outputs")
        assert set(recorded) == set(values), step["name"]
        for name in step["consumed_in_place"]:  # returned as the later step left them
            recorded.pop(name)
        assert_same(values, recorded, step["name"])


def test_the_generated_tests_of_a_view_changed_later_pass(tmp_path: Path) -> None:
    # The recorded inputs of `change` (the array and its view) are saved together, and the
    # chained test copies them together: the change reaches the array, as in the notebook.
    project = converted(NOTEBOOKS / "alias_numpy_view.ipynb", tmp_path, record=True)
    fixtures = project / "tests" / "fixtures"
    assert sorted(p.name for p in (fixtures / "change" / "inputs").iterdir()) == [
        "window.shared.pkl"]  # one file: the view and its array
    assert load(fixtures / "change" / "outputs")["x"][0, 0] == 99
    result = pytest_in(project)
    assert result.returncode == 0, result.stdout[-3000:]


def test_module_beside_the_notebook_is_imported_from_there(tmp_path: Path) -> None:
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    from support import write_notebook

    write_notebook(folder / "local.ipynb", "from helpers import double",
                   ("x = double(21)", "step:make"), ("y = x + 1", "step:use", "metrics"))
    project = tmp_path / "elsewhere" / "project"  # not beside the notebook
    assert convert(folder / "local.ipynb", project).ok
    assert "helpers" not in (project / "requirements.txt").read_text()  # the notebook's own code
    result = pytest_in(project)
    assert result.returncode == 0, result.stdout[-2000:]


def test_names_from_the_notebook_never_clash_with_generated_ones(tmp_path: Path,
                                                                prefect_harness: None) -> None:
    """A parameter `wait`, `name` or `_run`, a step `steps` that feeds another, steps
    `subprocess` and `display`: generated helpers are renamed around them, and `_run` (which
    Prefect refuses) is `run_` in the flow, with a warning."""
    from support import write_notebook

    from nb2pipe.execute import RunOptions, run_project
    from nb2pipe.prepare import prepare

    notebook = write_notebook(
        tmp_path / "clash.ipynb",
        ("wait = 2\n_run = 3\nsteps_total = 0\nname = 'n'\nfunction = 0", "parameters"),
        ("rows = [wait, _run, function]\nlabel = name * 2", "step:steps", "metrics"),
        ("echoed = !echo hi\ntotal = sum(rows) + steps_total", "step:subprocess"),
        ("shown = total * 2\ndisplay(shown)", "step:display", "metrics"),
        ("final = shown + len(echoed)", "step:result", "metrics"))
    result = convert(notebook, tmp_path / "project")
    assert result.ok
    renamed = [d for d in result.diagnostics if d.code == "NB113"]
    assert len(renamed) == 1 and "'_run' is 'run_' in the flow" in renamed[0].message
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                          cwd=tmp_path / "project", capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    before = os.getcwd()
    try:
        prepared = prepare(tmp_path / "project")
        run = run_project(prepared.project, RunOptions(
            parameters={"wait": 4, "_run": 1}, storage=str(tmp_path / "results")))
    finally:
        os.chdir(before)
    assert run.ok, run.error
    assert run.outputs["display"]["shown"] == 10 and run.outputs["steps"]["label"] == "nn"
    assert run.outputs["result"]["final"] == 11
