"""Check green => the generated steps run: each notebook that once checked clean and then
failed as a pipeline (or crashed convert) is converted here and its steps run, in order, with
the values the earlier steps returned. No Prefect: steps.py is plain Python.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import NOTEBOOKS, write_notebook

from nb2pipe.convert import convert
from nb2pipe.diagnostics import has_errors
from nb2pipe.pipeline import analyze_notebook

# warn_hidden_seed imports torch, which the tests' environment does not have.
CONVERTIBLE = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")
                     if not p.stem.startswith("error_")
                     and p.stem not in ("scoping", "warn_hidden_seed"))
SPLIT = {"split_headings": "headings", "split_cells": "cells"}


def project(name: str, tmp_path: Path) -> Path:
    """Convert a copy of the test notebook (its folder is where the steps run)."""
    folder = tmp_path / "notebook"
    folder.mkdir(parents=True, exist_ok=True)
    source = NOTEBOOKS / f"{name}.ipynb"
    (folder / source.name).write_bytes(source.read_bytes())
    output = tmp_path / "project"
    result = convert(folder / source.name, output, split=SPLIT.get(name, "tags"))
    assert result.ok, [d.message for d in result.diagnostics]
    return output


def run_steps(folder: Path, **parameters: Any) -> dict[str, dict[str, Any]]:
    """Every step function in pipeline order, each given what earlier steps returned."""
    manifest = json.loads((folder / "pipeline.json").read_text())
    spec = importlib.util.spec_from_file_location(f"steps_{abs(hash(folder))}", folder / "steps.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    before = os.getcwd()
    os.chdir(folder.parent / "notebook")
    sys.path.insert(0, str(folder))  # its nb2pipe_runtime, as `import steps` from there finds
    try:
        spec.loader.exec_module(module)
        defaults = {p["name"]: p["default"] for p in manifest["parameters"]}
        results: dict[str, dict[str, Any]] = {}
        by_name = {step["name"]: step for step in manifest["steps"]}
        for name in manifest["order"]:
            step = by_name[name]
            arguments = {i["name"]: results[i["from"]][i["name"]] for i in step["inputs"]}
            arguments.update({p: parameters.get(p, defaults[p]) for p in step["parameters"]})
            results[step["name"]] = getattr(module, step["function"])(**arguments)
    finally:
        os.chdir(before)
        sys.path.remove(str(folder))
    return results


def test_del_of_an_input_takes_it_as_input(tmp_path: Path) -> None:
    graph = analyze_notebook(NOTEBOOKS / "codegen_del_input.ipynb")
    assert ("train", "load") in graph.step("free").inputs
    results = run_steps(project("codegen_del_input", tmp_path))
    assert results["report"] == {} and results["summarise"]["total"] == 6


def test_name_read_then_rebound_in_one_step(tmp_path: Path) -> None:
    results = run_steps(project("codegen_rebind", tmp_path))
    assert results["count"]["Counter"]["a"] == 2
    folder = tmp_path / "project"
    assert results["shadow_module"] == {}
    text = (folder / "steps.py").read_text()
    assert "from builtins import sum" in text and "from collections import Counter" in text


def test_notebook_builtins_inside_functions(tmp_path: Path) -> None:
    folder = project("codegen_notebook_builtins", tmp_path)
    text = (folder / "steps.py").read_text()
    assert "from nb2pipe_runtime.capture import display" in text
    assert "from IPython import get_ipython" in text
    run_steps(folder)


def test_definition_unused_by_its_step_is_not_left_there(tmp_path: Path) -> None:
    folder = project("codegen_unused_definition", tmp_path)
    steps = (folder / "steps.py").read_text()
    define = steps[steps.index("def define"):steps.index("def configure")]
    assert "FACTOR" not in define  # the copy would name a global the step does not have
    results = run_steps(folder)
    assert results["define"]["base"] == 2


def test_after_a_step_made_only_of_definitions(tmp_path: Path) -> None:
    graph = analyze_notebook(NOTEBOOKS / "codegen_after_definitions.ipynb")
    assert [s.name for s in graph.steps] == ["prep", "evaluate", "kale_style"]
    assert graph.step("evaluate").after == ("prep",)  # through the definitions-only step
    assert graph.step("kale_style").after == ("prep",)
    results = run_steps(project("codegen_after_definitions", tmp_path))
    assert results["evaluate"]["z"] == 2


def test_functions_setting_globals_called_indirectly(tmp_path: Path) -> None:
    graph = analyze_notebook(NOTEBOOKS / "codegen_global.ipynb")
    assert not has_errors(graph.diagnostics)
    use = dict(graph.step("use").inputs)
    assert use == {"counter": "callback", "flag": "indirect", "marked": "indirect"}
    folder = project("codegen_global", tmp_path)
    assert "nonlocal counter" in (folder / "steps.py").read_text()
    results = run_steps(folder)
    assert results["callback"]["counter"] == 3
    assert results["indirect"] == {"flag": True, "marked": 1}


def test_output_history_is_an_error_with_a_hint() -> None:
    graph = analyze_notebook(NOTEBOOKS / "error_output_history.ipynb")
    found = {d.cell: d for d in graph.diagnostics if d.code == "NB204"}
    assert set(found) == {3, 4}
    assert found[3].line == 1 and "sorted(values)" in (found[3].hint or "")
    assert "cell 2" in (found[3].hint or "")


def test_notebook_with_no_task_is_refused_by_check(tmp_path: Path) -> None:
    graph = analyze_notebook(NOTEBOOKS / "error_nothing_runs.ipynb")
    assert [d.code for d in graph.diagnostics] == ["NB111"]
    result = convert(NOTEBOOKS / "error_nothing_runs.ipynb", tmp_path / "out")
    assert not result.ok and not (tmp_path / "out").exists()


def test_precision_cases_run(tmp_path: Path) -> None:
    results = run_steps(project("precision_inherit_loop", tmp_path / "a"))
    assert results["use"] == {} and results["loop"]["acc"] == 3
    results = run_steps(project("precision_python2_guards", tmp_path / "b"))
    assert results["text"]["ok"] is True
    results = run_steps(project("precision_pylab", tmp_path / "c"))
    assert results["compute"] == {}
    results = run_steps(project("precision_deep_expression", tmp_path / "d"))
    assert results["build"]["x"][:2] == [0, 1] and len(results["build"]["x"]) == 1001


def test_text_is_kept_as_written(tmp_path: Path) -> None:
    folder = project("text_characters", tmp_path)
    results = run_steps(folder)
    assert results["strings"] == {}
    spec = importlib.util.spec_from_file_location("text_steps", folder / "steps.py")
    assert spec and spec.loader
    steps = (folder / "steps.py").read_text(encoding="utf-8")
    assert "'a\u2028b\x0cc\x85d\x1ce'" in steps
    assert "f'find" not in steps and "'{print $1}'" in steps
    flow = (folder / "flow.py").read_text(encoding="utf-8")
    assert "\U0001F44B" in flow and "\\ud83d" not in flow


@pytest.mark.parametrize("name", CONVERTIBLE)
def test_steps_of_every_convertible_notebook_run(name: str, tmp_path: Path) -> None:
    """Every step runs, in the graph's order, on what earlier steps returned, and returns
    exactly the values the analysis says later steps take, and its metrics."""
    graph = analyze_notebook(NOTEBOOKS / f"{name}.ipynb", SPLIT.get(name, "tags"))
    results = run_steps(project(name, tmp_path))
    assert list(results) == list(graph.order)
    for node in graph.steps:
        assert set(results[node.name]) == {*node.outputs, *node.metrics}, node.name


# Each generated project passing its own ruff: tests/test_convert.py (all test notebooks).
IMPORT_EACH = """
import importlib, sys
for folder in sys.argv[1:]:
    sys.path.insert(0, folder)
    for name in ("steps", "flow", "cells"):
        sys.modules.pop(name, None)
    importlib.import_module("steps")
    importlib.import_module("flow")
    sys.path.remove(folder)
    print("imported", folder)
"""


@pytest.mark.integration
def test_every_generated_project_imports_steps_and_flow(tmp_path: Path) -> None:
    """`python -c "import steps, flow"` in each project (one process: Prefect imports once)."""
    folders = [str(project(name, tmp_path / name)) for name in CONVERTIBLE]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    imported = subprocess.run([sys.executable, "-c", IMPORT_EACH, *folders], capture_output=True,
                              text=True, env=env, timeout=900)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.count("imported ") == len(CONVERTIBLE)


def test_failure_classes_from_public_notebooks_run(tmp_path: Path) -> None:
    results = run_steps(project("precision_capture", tmp_path / "a"))
    assert results["quiet"]["captured"].stdout == "hi\n"  # captured, as IPython does
    results = run_steps(project("precision_leading_indent", tmp_path / "b"))
    assert results["indented"]["y"] == 2
    folder = project("precision_dead_code", tmp_path / "c")
    assert 'builtins = ["missing", "unused"]' in (folder / "pyproject.toml").read_text()
    assert run_steps(folder)["call"]["z"] == 1
    # A function whose default (and decorator) read names its own cell binds first: it stays
    # where the cell has it, not copied above the step's body (F821, NameError).
    results = run_steps(project("codegen_default_from_same_cell", tmp_path / "d"))
    assert results["model"]["y"] == 6
    # A notebook function at module level using `display`, which a later cell imports: the
    # module gets IPython's display too, not only the step with the import.
    folder = project("codegen_display_in_module_function", tmp_path / "e")
    assert "from IPython.display import display\n" in (folder / "steps.py").read_text()
    assert run_steps(folder)["one"]["a"] == 1
    # Values named `I` and `l` cross steps: flow.py's variables carry the notebook's names,
    # and the project's own ruff settings accept them there (E741).
    # An import inside a `try` that also computes: a later step gets the import, not a copy
    # of the whole statement (which re-ran the loop and read names the step lacks: F821).
    folder = project("codegen_import_in_computing_try", tmp_path / "g")
    assert (folder / "steps.py").read_text().count("for x in xs:") == 1
    assert run_steps(folder)["loop"]["status"] == {1: 2, 2: 4, 3: 6}
    # A cell that deletes names its own function and lambda read (kaggleScape script191):
    # the step runs, and the reads are marked for ruff, which reports them inside a function.
    folder = project("codegen_del_read_by_function", tmp_path / "h")
    assert (folder / "steps.py").read_text().count("# noqa: F821 (read where") == 2
    assert run_steps(folder)["rooms"]["rooms"] == [1, 22]
    # `if False:` reading a name another step binds (kaggleScape script613): no input for it,
    # and the read is marked for ruff, which would report it as undefined in the function.
    folder = project("codegen_dead_branch_reads_another_step", tmp_path / "i")
    assert (folder / "steps.py").read_text().count("# noqa: F821") == 1
    assert run_steps(folder)["report"]["score"] == 0.5
    folder = project("codegen_ambiguous_names", tmp_path / "f")
    assert "    I, = copied(" in (folder / "flow.py").read_text()
    assert run_steps(folder)["grow"]["l"] == 3


def _lint(notebook: Path) -> tuple[str, str]:
    """Convert `notebook`: its steps.py, and what ruff says of the project (empty: clean)."""
    output = notebook.parent / "project"
    assert convert(notebook, output).ok
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "-q", "."],
                          cwd=output, capture_output=True, text=True)
    return (output / "steps.py").read_text(), lint.stdout


def test_lint_marks_follow_what_python_runs(tmp_path: Path) -> None:
    # A read after `break` never runs, like one under `if False:`: no input for it, and inside
    # the step's function ruff reports it unless it is marked.
    (tmp_path / "a").mkdir()
    steps, lint = _lint(write_notebook(
        tmp_path / "a" / "dead.ipynb", ("x_trn = [1, 2, 3]", "step:train"),
        ("score = 0.5\nfor _ in range(1):\n    break\n    score = sum(x_trn)", "step:report")))
    assert "        score = sum(x_trn)  # noqa: F821 (read where it is not defined)\n" in steps
    assert lint == ""
    # A default argument is evaluated when `def` runs, before the `del`: nothing to mark.
    (tmp_path / "b").mkdir()
    steps, lint = _lint(write_notebook(
        tmp_path / "b" / "default.ipynb", ("import re", "step:a"),
        ("checker = re.compile('x')\ndef f(s, c=checker):\n    return c.search(s)\n"
         "hit = f('x') is not None\ndel checker, f", "step:b")))
    assert "noqa" not in steps and lint == ""


def test_run_script_and_dynamic_names_are_explained() -> None:
    graph = analyze_notebook(NOTEBOOKS / "error_run_script.ipynb")
    [found] = [d for d in graph.diagnostics if d.code == "NB203"]
    assert "%run helper.py" in found.message and found.hint == (
        "import it from the script: from helper import value")
    # `%%cython` binds the functions it compiles: their uses name the cell; other names
    # stay "never defined".
    graph = analyze_notebook(NOTEBOOKS / "error_cython_cell.ipynb")
    assert sorted((d.code, d.message) for d in graph.diagnostics if d.severity == "error") == [
        ("NB201", "name 'missing' is used in step 'use' but never defined before it"),
        ("NB203", "name 'cy_add' may come from the `%%cython` cell (cell 2), which the pipeline "
                  "leaves out")]
    graph = analyze_notebook(NOTEBOOKS / "error_dynamic_names.ipynb")
    # The notebook has `a` and `b` (locals() is the module's namespace): not "never defined".
    assert [d.code for d in graph.diagnostics] == ["NB303", "NB203", "NB203"]
    assert graph.diagnostics[1].message == (
        "name 'a' may be bound by exec(), globals(), locals() or vars() in cell 1, which the "
        "analysis cannot follow")


def _notebook_namespace(name: str) -> dict[str, Any]:
    """The notebook's code cells run in one namespace, in order, as a kernel runs them."""
    notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    namespace: dict[str, Any] = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), name, "exec"), namespace)
    return namespace


def test_global_random_state_flows_through_the_steps_in_notebook_order(tmp_path: Path) -> None:
    """Seeded in one step, drawn from in later ones (numpy, `random`, df.sample,
    train_test_split, a notebook function): the steps draw what the notebook draws."""
    import numpy as np

    graph = analyze_notebook(NOTEBOOKS / "random_state_flow.ipynb")
    assert dict(graph.random_states) == {"numpy_random_state": "numpy",
                                         "random_module_state": "random"}
    # the steps that seed or draw are chained; the one that does neither is not
    assert graph.step("draw").inputs == (("numpy_random_state", "seed"),
                                         ("random_module_state", "seed"))
    assert graph.step("independent").inputs == ()
    results = run_steps(project("random_state_flow", tmp_path))
    np.random.seed(0)  # the notebook's own run must not inherit the steps' state
    expected = _notebook_namespace("random_state_flow")
    later = results["later"]
    assert later["total"] == expected["total"]
    assert later["e"] == expected["e"] and np.array_equal(later["d"], expected["d"])
    assert results["sample"]["sampled"].equals(expected["sampled"])


def test_a_seed_is_an_event_in_notebook_order_not_setup_code(tmp_path: Path) -> None:
    """Drawn before the seed, in the notebook and in the step: the seed is not hoisted."""
    import numpy as np

    steps = (project("random_state_flow", tmp_path) / "steps.py").read_text()
    module_level = steps.split("\ndef ", 1)[0]
    assert "seed(" not in module_level
    np.random.seed(42)
    assert not np.array_equal(run_steps(tmp_path / "project")["before"]["a"],
                              np.random.rand(3))


def test_a_submodule_reached_through_its_package_is_imported(tmp_path: Path) -> None:
    """`import xml` then `xml.dom.minidom.parseString(...)` works in the notebook because
    another cell imported the submodule (and `%matplotlib inline` imports pyplot): the steps
    import them too. Run in a new process, where nothing imported them before."""
    folder = project("submodule_attribute", tmp_path)
    steps = (folder / "steps.py").read_text()
    assert "import xml.dom.minidom\n" in steps and "import matplotlib.pyplot\n" in steps
    script = ("import sys, steps\n"
              "assert 'xml.dom.minidom' in sys.modules\n"
              "print(steps.parse()['tag'], steps.backend())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("r {")


def test_a_failing_shell_command_does_not_fail_the_step(tmp_path: Path) -> None:
    """IPython ignores `!cmd`'s exit status: the cell goes on, and so does the step."""
    from support import write_notebook

    folder = tmp_path / "notebook"
    folder.mkdir()
    notebook = write_notebook(folder / "shell.ipynb",
                              ("!ls no-such-file-here\nfound = !ls no-such-file-either\nx = 1",
                               "step:a"),
                              ("y = x + len(found)", "step:b", "metrics"))
    assert convert(notebook, tmp_path / "project").ok
    assert run_steps(tmp_path / "project")["b"] == {"y": 1}


def test_a_library_object_holding_numpys_global_generator_draws_from_it_in_order(
        tmp_path: Path) -> None:
    """scipy's frozen distribution keeps numpy's global RandomState: `rv.rvs()` draws from
    the carried global stream, after the draws of the steps before it (no stream of its
    own, whether written as `bernoulli(...)` or `stats.norm(...)`)."""
    notebook = write_notebook(
        tmp_path / "frozen.ipynb",
        ("import numpy as np\nfrom scipy import stats\nfrom scipy.stats import bernoulli\n"
         "np.random.seed(0)", "step:setup"),
        ("rv = bernoulli(0.6)\nnormal = stats.norm(0, 1)", "step:make"),
        ("a = np.random.rand(3)", "step:draw"),
        ("r = rv.rvs(size=20)\nz = normal.rvs(size=3)", "step:use"),
        ("total = float(r.sum() + z.sum())", "step:sum"))
    graph = analyze_notebook(notebook)
    assert ("numpy_random_state", "draw") in graph.step("use").inputs
    folder = tmp_path / "project"
    assert convert(notebook, folder, split="tags").ok
    (tmp_path / "notebook").mkdir()
    results = run_steps(folder)
    import numpy as np
    from scipy.stats import bernoulli, norm

    np.random.seed(0)
    rv, normal = bernoulli(0.6), norm(0, 1)
    np.random.rand(3)
    r = rv.rvs(size=20)
    assert np.array_equal(results["use"]["r"], r)
    assert np.array_equal(results["use"]["z"], normal.rvs(size=3))
