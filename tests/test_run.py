"""nb2pipe run and verify, for real: Prefect runs, papermill kernels, the three runners."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import EXAMPLES, NOTEBOOKS, as_from_a_terminal, write_notebook

from nb2pipe.execute import RunOptions, run_project
from nb2pipe.execute.engine import RunResult
from nb2pipe.prepare import prepare

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def keep_cwd() -> Iterator[None]:
    before = os.getcwd()
    yield
    os.chdir(before)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """The cache folder of the tests' runs: converted projects, results and cached values."""
    return tmp_path / "cache"


def run(notebook: Path, store: Path, **options: Any) -> RunResult:
    prepared = prepare(notebook, cache=store)
    return run_project(prepared.project, RunOptions(storage=str(store / "results"), **options))


def states(result: RunResult) -> dict[str, str]:
    return {name: report.state for name, report in result.steps.items()}


def value(result: RunResult, step: str, name: str) -> Any:
    return result.outputs[step][name]


CHAIN = [
    ('size = 3  # rows\nscale = 2.0\nlabel = "x"', "parameters"),
    ("import json\nrows = list(range(size))", "step:load"),
    ("scaled = [r * scale for r in rows]", "step:scale"),
    ("tagged = f'{label}:{len(rows)}'", "step:tag"),
    ("total = sum(scaled)\nsummary = json.dumps({'total': total, 'tag': tagged})", "step:report",
     "metrics"),
]


def test_second_run_runs_nothing_and_parameters_rerun_only_their_steps(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "chain.ipynb", *CHAIN)
    first = run(notebook, store)
    assert first.ok and set(states(first).values()) == {"completed"}
    assert value(first, "report", "total") == 6.0
    again = run(notebook, store)
    assert states(again) == {n: "cached" for n in ("load", "scale", "tag", "report")}
    changed = run(notebook, store, parameters={"scale": 3.0})
    assert states(changed) == {"load": "cached", "scale": "completed", "tag": "cached",
                               "report": "completed"}
    assert value(changed, "report", "total") == 9.0
    label = run(notebook, store, parameters={"label": "y"})
    assert states(label) == {"load": "cached", "scale": "cached", "tag": "completed",
                             "report": "completed"}
    forced = run(notebook, store, cache=False)
    assert set(states(forced).values()) == {"completed"}


def test_editing_a_cell_reruns_that_step_and_what_follows(tmp_path: Path, store: Path,
                                                         prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "chain.ipynb", *CHAIN)
    assert run(notebook, store).ok
    edited = list(CHAIN)
    edited[3] = ("tagged = f'{label}-{len(rows)}'", "step:tag")
    write_notebook(notebook, *edited)
    result = run(notebook, store)
    assert states(result) == {"load": "cached", "scale": "cached", "tag": "completed",
                              "report": "completed"}
    assert json.loads(value(result, "report", "summary"))["tag"] == "x-3"


def test_failing_cell_names_notebook_cell_line_and_error(tmp_path: Path, store: Path,
                                                        prefect_harness: None) -> None:
    notebook = write_notebook(
        tmp_path / "broken.ipynb",
        ("data = {'a': 1}", "step:load"),
        ("x = data['a']\ny = data['missing']", "step:lookup"),
        ("z = x * 2", "step:use"),
        ("w = len(data)", "step:independent"),
    )
    result = run(notebook, store)
    assert not result.ok
    report = result.steps["lookup"]
    assert report.state == "failed" and (report.cell, report.line) == (2, 2)
    assert report.error is not None
    assert report.error.startswith("broken.ipynb: cell 2, line 2 (step 'lookup'): KeyError")
    assert "y = data['missing']" in report.error
    assert states(result)["independent"] == "completed"  # does not need the failed step
    assert states(result)["use"] == "skipped"


FLAKY = """import os
attempts = int(open('attempts.txt').read()) + 1 if os.path.exists('attempts.txt') else 1
open('attempts.txt', 'w').write(str(attempts))
if attempts < 3:
    raise {error}('not yet')
done = attempts"""


def test_transient_errors_are_retried(tmp_path: Path, store: Path,
                                      prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "flaky.ipynb",
                              (FLAKY.format(error="ConnectionError"), "step:fetch", "retries:3",
                               "metrics"))
    result = run(notebook, store)
    assert result.ok and value(result, "fetch", "done") == 3
    assert (tmp_path / "attempts.txt").read_text() == "3"


def test_deterministic_errors_are_not_retried(tmp_path: Path, store: Path,
                                             prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "bug.ipynb",
                              (FLAKY.format(error="ValueError"), "step:fetch", "retries:3"))
    result = run(notebook, store)
    assert not result.ok and "ValueError: not yet" in (result.steps["fetch"].error or "")
    assert (tmp_path / "attempts.txt").read_text() == "1"


def test_timeout_fails_the_step_when_it_expires(tmp_path: Path, store: Path,
                                                prefect_harness: None) -> None:
    import time

    # Python code is interrupted at the timeout; a single long call into C is not (a thread
    # cannot be stopped from outside), so the step loops in Python.
    notebook = write_notebook(tmp_path / "slow.ipynb", (
        "import time\nfor _ in range(200):\n    time.sleep(0.05)\nx = 1", "step:slow", "timeout:1"))
    reported: dict[str, float] = {}
    start = time.perf_counter()
    prepared = prepare(notebook, cache=store)
    result = run_project(prepared.project, RunOptions(storage=str(store / "results")),
                         lambda r: reported.setdefault(r.state, time.perf_counter() - start))
    assert states(result) == {"slow": "failed"}
    assert "timeout" in (result.steps["slow"].error or "")
    assert reported["failed"] < 6  # the loop alone would take 10 s


@pytest.mark.parametrize("runner", ["process", "dask"])
def test_runners_give_the_same_results(runner: str, tmp_path: Path, store: Path,
                                       prefect_harness: None) -> None:
    shutil.copytree(EXAMPLES / "kale_wine", tmp_path / "kale_wine",
                    ignore=shutil.ignore_patterns("*_pipeline", "*.graph.json"))
    notebook = tmp_path / "kale_wine" / "kale_wine.ipynb"
    threads = run(notebook, store, cache=False)
    other = run(notebook, store, cache=False, runner=runner)
    assert threads.ok and other.ok, other.error
    for step in threads.outputs:
        for name in threads.outputs[step]:
            mine, theirs = value(threads, step, name), value(other, step, name)
            from nb2pipe.runtime.compare import assert_same

            assert_same(theirs, mine, f"{step}.{name}")


def test_independent_steps_run_on_different_dask_workers(tmp_path: Path, store: Path,
                                                         prefect_harness: None) -> None:
    notebook = write_notebook(
        tmp_path / "pids.ipynb",
        ("import os, time\nstart = 1", "step:start"),
        ("time.sleep(1)\nleft = os.getpid()", "step:left"),
        ("time.sleep(1)\nright = os.getpid()", "step:right"),
        ("pids = {left, right, start}", "step:join"),
    )
    result = run(notebook, store, cache=False, runner="dask")
    assert result.ok, result.error
    assert value(result, "left", "left") != value(result, "right", "right")
    assert os.getpid() not in (value(result, "left", "left"), value(result, "right", "right"))


def test_notebook_mode_keeps_each_executed_step_notebook(tmp_path: Path, store: Path,
                                                         prefect_harness: None) -> None:
    notebook = write_notebook(
        tmp_path / "plots.ipynb",
        ("n = 5", "parameters"),
        ("%matplotlib inline\nimport matplotlib.pyplot as plt\nvalues = list(range(n))",
         "step:make"),
        ("plt.plot(values)\nplt.show()\ntotal = sum(values)", "step:plot"),
        ("report = f'{total}!'", "step:report", "metrics"),
    )
    result = run(notebook, store, mode="notebook", run_dir=str(tmp_path / "run"),
                 parameters={"n": 4})
    assert result.ok, result.error
    assert value(result, "report", "report") == "6!"
    executed = json.loads((tmp_path / "run" / "notebooks" / "plot.ipynb").read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert result.steps["plot"].notebook == str(tmp_path / "run" / "notebooks" / "plot.ipynb")


def test_notebook_mode_failure_names_the_cell(tmp_path: Path, store: Path,
                                             prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "nbfail.ipynb", ("a = 1", "step:one"),
                              ("b = a + 1\nc = b / 0", "step:two"))
    result = run(notebook, store, mode="notebook", run_dir=str(tmp_path / "run"))
    report = result.steps["two"]
    assert report.state == "failed" and (report.cell, report.line) == (2, 2)
    assert "ZeroDivisionError" in (report.error or "")


def cli(*args: str, cwd: Path | None = None, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NB2PIPE_CACHE_DIR": str(cache)}  # PREFECT_API_URL: the session's
    return subprocess.run([sys.executable, "-m", "nb2pipe", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def test_cli_run_prints_progress_metrics_and_exit_codes(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "chain.ipynb", *CHAIN)
    done = cli("run", str(notebook), "-p", "size", "4", cache=tmp_path / "c")
    assert done.returncode == 0, done.stderr
    assert "  scale   done" in done.stdout.replace("   ", "  ") or " done " in done.stdout
    assert "report.total = 12.0" in done.stdout and "Prefect start-up" in done.stdout
    bad = cli("run", str(notebook), "-p", "sise", "4", cache=tmp_path / "c")
    assert bad.returncode == 2 and "did you mean 'size'" in bad.stderr
    events = cli("run", str(notebook), "--progress", "jsonl", cache=tmp_path / "c")
    lines = [json.loads(line) for line in events.stdout.splitlines() if line.startswith("{")]
    assert lines[-1] == {"event": "finished", "state": "completed", "error": None}
    assert {e["step"] for e in lines if e["event"] == "step"} == {"load", "scale", "tag",
                                                                  "report"}


def test_cli_run_failure_exits_1_with_the_cell(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "bad.ipynb", ("x = 1", "step:a"),
                              ("y = x + undefined_later", "step:b"), ("undefined_later = 1",))
    result = cli("run", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 1 and "NB201" in result.stderr  # refused before running, as
    # check and convert refuse it (exit 1: the notebook has errors)
    write_notebook(tmp_path / "bad.ipynb", ("x = 1", "step:a"), ("y = 1 / (x - 1)", "step:b"))
    result = cli("run", str(notebook), "--json", cache=tmp_path / "c")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    failed = next(s for s in document["steps"] if s["name"] == "b")
    assert failed["state"] == "failed" and (failed["cell"], failed["line"]) == (2, 1)
    assert "ZeroDivisionError" in failed["error"]


@pytest.mark.parametrize("notebook", [*sorted(EXAMPLES.glob("*/*.ipynb")),
                                      NOTEBOOKS / "alias_frames_loop.ipynb",
                                      NOTEBOOKS / "mutation_fit.ipynb",
                                      NOTEBOOKS / "random_state_flow.ipynb",
                                      NOTEBOOKS / "value_class_attribute.ipynb",
                                      NOTEBOOKS / "value_decorator_registers.ipynb",
                                      NOTEBOOKS / "value_default_argument.ipynb"],
                         ids=lambda p: p.stem)
def test_verify_passes_on_examples(notebook: Path, tmp_path: Path) -> None:
    shutil.copytree(notebook.parent, tmp_path / "nb",
                    ignore=shutil.ignore_patterns("*_pipeline", "*.graph.json"))
    result = cli("verify", str(tmp_path / "nb" / notebook.name), cache=tmp_path / "c")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "the pipeline computes what the notebook computes" in result.stdout


def test_verify_catches_a_wrong_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           store: Path, prefect_harness: None) -> None:
    from nb2pipe.execute.verify import verify
    from nb2pipe.graph.resolve import Resolver
    from nb2pipe.pipeline import analyze_notebook

    notebook = tmp_path / "mutation_inplace.ipynb"
    shutil.copy(NOTEBOOKS / "mutation_inplace.ipynb", notebook)
    monkeypatch.setattr(Resolver, "_mutate", lambda *args, **kwargs: None)  # tracking off
    graph = analyze_notebook(notebook)
    assert ("load", "count", ("df",)) in {(e.source, e.target, e.variables) for e in graph.edges}
    verdict = verify(notebook, "tags", {}, graph, prepare(notebook, cache=store).project)
    assert verdict.divergence is not None
    assert (verdict.divergence.step, verdict.divergence.kind,
            verdict.divergence.name) == ("count", "inputs", "df")
    assert "step 'count'" in verdict.divergence.describe(notebook.name)


def test_verify_compares_what_the_notebook_leaves_behind(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         store: Path,
                                                         prefect_harness: None) -> None:
    """`x`, drawn in the last step, crosses no step boundary: verify compares it with the
    notebook's `x` as the notebook's run ends (here the random state is not carried, so the
    pipeline draws another number: `after:draw` makes the seed come after the draw, where
    two independent steps on threads would otherwise share the module's state by chance)."""
    from nb2pipe.execute.verify import verify
    from nb2pipe.graph import resolve
    from nb2pipe.pipeline import analyze_notebook

    notebook = write_notebook(tmp_path / "last.ipynb",
                              ("import random\nrandom.seed(1)\nkept = 2", "step:seed",
                               "after:draw"),
                              ("x = random.random()", "step:draw"))
    monkeypatch.setattr(resolve, "_seeds", lambda analysis: False)  # state carrying off
    graph = analyze_notebook(notebook)
    verdict = verify(notebook, "tags", {}, graph, prepare(notebook, cache=store).project)
    assert verdict.divergence is not None, verdict
    assert (verdict.divergence.step, verdict.divergence.kind,
            verdict.divergence.name) == ("draw", "final", "x")
    assert "the value of 'x' it leaves behind differs from the notebook's as its run ends" in (
        verdict.divergence.describe(notebook.name))
    assert verdict.compared == 0 and verdict.compared_final == 2  # x and kept: no step reads


def test_verify_never_calls_nothing_compared_a_proof(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nothing.ipynb",
                              ("import os\nprint(os.sep)", "step:show"),
                              ("def f():\n    return 1", "step:define"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nothing could be compared, so verify cannot tell" in result.stderr
    assert "the pipeline computes what the notebook computes" not in result.stdout
    assert "Still processing items" not in result.stdout + result.stderr


def test_verify_passes_with_a_seed_after_a_draw(tmp_path: Path) -> None:
    """In the notebook, `b` is the first draw after the seed, although `a` was drawn before."""
    notebook = write_notebook(tmp_path / "seed_after.ipynb",
                              ("import numpy as np\na = np.random.rand(3)", "step:first"),
                              ("np.random.seed(42)\nb = np.random.rand(3) + 0 * a", "step:seeded"),
                              ("c = np.random.randint(0, 100, 3)\nd = b.sum() + c.sum()",
                               "step:later", "metrics"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout
    assert "left out: 'b'" not in result.stdout and "left out: 'd'" not in result.stdout


def test_verify_passes_when_a_handed_over_distribution_draws_from_the_global_stream(
        tmp_path: Path) -> None:
    """`rv = bernoulli(0.6)` keeps numpy's global RandomState; a later step's `rv.rvs()`
    continues the notebook's global stream where the step reads it."""
    notebook = write_notebook(
        tmp_path / "frozen.ipynb",
        ("import numpy as np\nfrom scipy.stats import bernoulli\nnp.random.seed(0)",
         "step:setup"),
        ("rv = bernoulli(0.6)", "step:make"),
        ("a = np.random.rand(3)", "step:draw"),
        ("r = rv.rvs(size=20)\nshare = float(r.mean())", "step:use", "metrics"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout
    assert "left out: 'r'" not in result.stdout


def test_verify_names_what_a_display_kept_on_a_fitted_result_and_passes(tmp_path: Path) -> None:
    """`result.summary()` in a step that only reads `result` keeps its diagnostics on the
    notebook's object (`diagn`); the step after reads the pipeline's, which never had them.
    A memo its class derives from the rest of the object: named, not a divergence."""
    notebook = write_notebook(
        tmp_path / "ols.ipynb",
        ("import pandas as pd\nimport statsmodels.formula.api as smf\n"
         "df = pd.DataFrame({'x': [1, 2, 3, 4, 5, 6], 'y': [1, 3, 2, 5, 4, 6]})", "step:data"),
        ("result = smf.ols('y ~ x', data=df).fit()", "step:fit"),
        ("result.summary()", "step:show"),
        ("r2 = result.rsquared", "step:use"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout
    assert ("memos: 'result' (use inputs) differs only in what its class's methods compute "
            "from the rest of it and keep on it: result._results.diagn (only in the notebook)"
            ) in result.stdout
    assert "2 the same but for memos" in result.stdout


@pytest.mark.parametrize("kernel", ["python2", "conda-root-py"])
def test_verify_runs_a_notebook_naming_a_kernel_this_machine_lacks_with_its_python(
        kernel: str, tmp_path: Path) -> None:
    """Notebooks keep the kernel of their author's machine; the notebook runs in the Python
    the steps run in, whatever kernel it names."""
    notebook = write_notebook(tmp_path / "elsewhere.ipynb",
                              ("import sys\nx = 2", "step:first"),
                              ("y = x * 3\nwhere = sys.executable", "step:second", "metrics"))
    raw = json.loads(notebook.read_text())
    raw["metadata"]["kernelspec"] = {"name": kernel, "language": "python",
                                     "display_name": kernel}
    notebook.write_text(json.dumps(raw))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout
    assert "No such kernel" not in result.stdout + result.stderr


PLOT_LOOP = ("for i in range(20):\n    plt.figure()\n"
             "    plt.scatter(np.arange(50), np.arange(50), c=np.arange(50))\n"
             "    plt.colorbar()\n    plt.tight_layout()\n    plt.close()\n")


def test_plotting_steps_do_not_share_figures(tmp_path: Path) -> None:
    """Two independent plotting steps (threads would race on pyplot's current figure), and a
    figure drawn in one cell that Jupyter closes before the next cell draws on a new one."""
    notebook = write_notebook(
        tmp_path / "plots.ipynb",
        ("%matplotlib inline\nimport numpy as np\nimport matplotlib.pyplot as plt",),
        (PLOT_LOOP + "left = 1", "step:left"),
        (PLOT_LOOP + "right = 2", "step:right"),
        ("plt.plot([1, 2, 3], [10, 40, 90])\nwide = 1", "step:line"),
        ("plt.scatter([0, 1], [0, 1])\nlim = [float(v) for v in plt.axis()] + [wide]\n"
         "print(lim)",
         "step:lim", "metrics"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout
    assert "'lim'" not in result.stdout  # compared, not left out


def test_a_failing_shell_command_runs_on_as_in_ipython(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "shell.ipynb",
                              ("!ls no-such-file-here\nx = 1", "step:a"),
                              ("y = x + 1", "step:b", "metrics"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout


def test_process_runner_passes_notebook_functions_and_names_what_it_cannot_pass(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    """A value holding a notebook function reaches two concurrent steps in other processes
    (the steps module has one name everywhere); a failed step ends the run instead of
    hanging it; a value no pickler can save fails with its name, type and step."""
    pair = write_notebook(tmp_path / "pair.ipynb",
                          ("def double(x):\n    return 2 * x\npair = (double, 3)", "step:make"),
                          ("left = pair[0](pair[1])", "step:left", "metrics"),
                          ("right = pair[0](pair[1]) + 1", "step:right", "metrics"))
    result = run(pair, store, runner="process", cache=False)
    assert result.ok, result.error
    assert (value(result, "left", "left"), value(result, "right", "right")) == (6, 7)
    chain = write_notebook(tmp_path / "chain.ipynb", ("a = 1", "step:a"), ("b = a / 0", "step:b"),
                           ("c = b + 1", "step:c"))
    result = run(chain, store, runner="process", cache=False)
    assert not result.ok and "ZeroDivisionError" in (result.error or "")
    assert states(result) == {"a": "completed", "b": "failed", "c": "skipped"}
    locked = write_notebook(tmp_path / "locked.ipynb",
                            ("import threading\nlock = threading.Lock()\nn = 1", "step:make"),
                            ("with lock:\n    m = n + 1", "step:use", "metrics"))
    result = run(locked, store, runner="process", cache=False)
    assert not result.ok
    assert "step 'make': 'lock' cannot be passed" in (result.error or "")
    assert "_thread.lock" in (result.error or "")


def test_steps_changing_blas_threads_do_not_change_each_others_numbers(tmp_path: Path) -> None:
    """KMeans limits BLAS to one thread for the process while it fits; a PCA beside it on
    another thread would round differently, and a mixture fitted on that by whole units."""
    notebook = write_notebook(
        tmp_path / "blas.ipynb",
        ("from sklearn.datasets import load_digits\nfrom sklearn.cluster import KMeans\n"
         "from sklearn.decomposition import PCA\nfrom sklearn.mixture import GaussianMixture\n"
         "X = load_digits().data", "step:load"),
        ("labels = KMeans(10, n_init=10, random_state=0).fit_predict(X)", "step:kmeans"),
        ("reduced = PCA(20, random_state=0).fit_transform(X)\n"
         "gmm = GaussianMixture(10, random_state=0).fit(reduced)\n"
         "score = float(gmm.score(reduced))", "step:pca", "metrics"),
        ("agree = int((labels == gmm.predict(reduced)).sum())", "step:compare", "metrics"))
    graph_text = subprocess.run([sys.executable, "-m", "nb2pipe", "convert", str(notebook), "-o",
                                 str(tmp_path / "project")], capture_output=True, text=True)
    assert graph_text.returncode == 0, graph_text.stderr
    steps = json.loads((tmp_path / "project" / "pipeline.json").read_text())["steps"]
    assert {s["name"]: s["blas"] for s in steps} == {"load": True, "kmeans": True, "pca": True,
                                                     "compare": False}
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout


def test_verify_compares_a_name_later_bound_to_a_function_where_it_was_a_value(
        tmp_path: Path) -> None:
    """`number = len` is handed over as a value; `def number` later makes the notebook's
    `number` a function as its run ends, which is code: no step's value is compared with it."""
    notebook = write_notebook(tmp_path / "rebound.ipynb", ("number = len", "step:alias"),
                              ("x = number([1, 2])", "step:use"),
                              ("def number(v):\n    return 0", "step:define"),
                              ("y = number(1) + x", "step:again"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout


def test_verify_leaves_out_what_is_read_from_uninitialised_memory(tmp_path: Path) -> None:
    """`np.empty` then partly filled: the rest is whatever the memory held, in the notebook as
    in the pipeline. Not a divergence, and not compared: left out and named, as unseeded
    randomness is; what the cells fill is compared. (64 MiB: memory fresh from the OS, zeros
    in both notebook runs, which would agree on it by chance.)"""
    notebook = write_notebook(
        tmp_path / "scratch.ipynb",
        ("import numpy as np\nscratch = np.empty(2**23 + 1)\nscratch[:8] = 1.0\n"
         "full = np.empty(16)\nfull[:] = 2.0", "step:allocate"),
        ("head = scratch[:8].sum() + full.sum()\nrest = scratch.sum()", "step:use"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "left out: 'scratch' (allocate outputs) differs between two notebook runs" in (
        result.stdout)
    assert "'full'" not in result.stdout and "'head'" not in result.stdout


def test_verify_compares_values_that_follow_string_hashing_with_the_run_of_the_same_seed(
        tmp_path: Path) -> None:
    """The order of a set of strings follows PYTHONHASHSEED, random in every process. `p`, as
    the notebook was found, then 24 values each made from a two-string set's order, each in a
    step of its own (a step making one value that differs between the notebook's runs has the
    others it makes left out when they differ): with random seeds, the two notebook runs agree
    on each half the time and the pipeline then differs half the time, so a verify passing all
    25 had a chance of (3/4)**25, under 0.1 %. The pipeline
    runs under the first notebook run's seed and the second run under another: each value is
    that run's in the pipeline, or differs between the runs and is left out. `q`, the order of
    a set of 12 strings rebuilt in another step, differs between two seeds (all but surely), and
    is left out: were both runs under one seed, it would be compared with a set the handover
    rebuilt, whose order may differ."""
    words = [f"w{i}" for i in range(12)]
    notebook = write_notebook(
        tmp_path / "hash_order.ipynb",
        ("A = {'Head', 'Tail'}", "step:make"),
        ("p = list(A)", "step:use"),
        *((f"p{i} = list({{'h{i}', 't{i}'}})", f"step:s{i}") for i in range(24)),
        (f"B = set({words!r})", "step:big"),
        ("q = list(B)", "step:order"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    result = subprocess.run([sys.executable, "-m", "nb2pipe", "verify", str(notebook)],
                            capture_output=True, text=True, timeout=600,
                            env={**env, "NB2PIPE_CACHE_DIR": str(tmp_path / "c")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout
    assert "left out: 'q' (order final) differs between two notebook runs" in result.stdout


def test_verify_leaves_out_unseeded_randomness(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "random.ipynb",
                              ("import random\nnoise = random.random()\nfixed = 2", "step:draw"),
                              ("total = fixed * 2 + 0 * noise", "step:use"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    assert "left out: 'noise' (draw outputs) differs between two notebook runs" in result.stdout
    assert "left out: 'noise' (use inputs) differs between two notebook runs" in result.stdout


def test_runs_without_cache_never_hand_on_an_old_runs_values(tmp_path: Path, store: Path,
                                                             prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "fresh.ipynb",
                              ("import uuid\ntoken = uuid.uuid4().hex", "step:make"),
                              ("seen = token", "step:use", "metrics"))
    first = run(notebook, store, cache=False, runner="process")
    second = run(notebook, store, cache=False, runner="process")
    assert first.ok and second.ok, (first.error, second.error)
    assert value(first, "use", "seen") != value(second, "use", "seen")
    cached = run(notebook, store)  # a cached run stores under the cache key, as before
    assert value(run(notebook, store), "use", "seen") == value(cached, "use", "seen")


def test_a_cache_off_step_runs_every_time_and_its_readers_only_when_it_changed(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "off.ipynb",
                              ("rows = [1, 2, 3]", "step:load"),
                              ("import time\nstamp = time.time()\nsize = len(rows)", "step:clock",
                               "cache:off"),
                              ("double = size * 2", "step:use", "metrics"))
    assert run(notebook, store).ok
    again = run(notebook, store)
    # the step runs again; what it returns (size) did not change, so its reader is cached
    assert states(again) == {"load": "cached", "clock": "completed", "use": "cached"}
    assert value(again, "use", "double") == 6


STORED = [("import numpy as np\nweights = np.arange(4.0)\nnames = ['a', 'b']", "step:make"),
          ("total = float(weights.sum()) + len(names)", "step:use", "metrics")]


@pytest.mark.parametrize("damage", ["change", "truncate", "delete", "garbage-entry"])
def test_a_damaged_cache_entry_is_recomputed_with_a_warning(
        damage: str, tmp_path: Path, store: Path, prefect_harness: None) -> None:
    """A changed element of a stored array, a truncated or deleted file, or an unreadable
    entry: never used, never a bare AssertionError; the step runs again and replaces it."""
    notebook = write_notebook(tmp_path / "stored.ipynb", *STORED)
    first = run(notebook, store)
    assert first.ok and value(first, "use", "total") == 8.0
    values = store / "results" / "values"
    three = __import__("struct").pack("<d", 3.0)
    array = next(p for p in values.rglob("*.value") if three in p.read_bytes())
    if damage == "change":  # the last element, 3.0 -> 1000003.0: the file still decodes
        data = array.read_bytes()
        array.write_bytes(data.replace(three, __import__("struct").pack("<d", 1000003.0)))
    elif damage == "truncate":
        array.write_bytes(array.read_bytes()[:60])
    elif damage == "delete":
        array.unlink()
    else:
        entries = [p for p in (store / "results").iterdir() if p.is_file()]
        assert entries
        for entry in entries:
            entry.write_text("{not json")
    again = run(notebook, store)
    assert again.ok, again.error
    assert value(again, "use", "total") == 8.0
    assert states(again)["make"] == "completed"
    assert any("cached result not used, it runs again" in w for w in again.warnings), (
        again.warnings)
    third = run(notebook, store)
    assert states(third) == {"make": "cached", "use": "cached"}  # replaced: trusted again
    assert value(third, "use", "total") == 8.0


BIG = [("import numpy as np\nimport pandas as pd\n"
        "df = pd.DataFrame(np.arange(2_000_000.0).reshape(-1, 4), columns=list('abcd'))\n"
        "df['c'] = pd.Categorical(np.arange(500_000) % 3)",
        "step:make"),
       ("df['e'] = df['a'] * 2", "step:add"),
       ("m = float(df[['a', 'b', 'd', 'e']].to_numpy().mean())\nkinds = str(df.dtypes.to_dict())",
        "step:mean", "metrics")]


def test_a_big_frame_changed_in_place_is_cached_and_read_back_exactly(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "big.ipynb", *BIG)
    first = run(notebook, store)
    assert first.ok, first.error
    chunks = list((store / "results" / "chunks").rglob("*"))
    assert chunks, "the frame's columns are kept as chunks"
    again = run(notebook, store)
    assert states(again) == {"make": "cached", "add": "cached", "mean": "cached"}
    import numpy as np

    a = np.arange(2_000_000.0).reshape(-1, 4)
    expected = float(np.column_stack([a[:, 0], a[:, 1], a[:, 3], a[:, 0] * 2]).mean())
    assert value(again, "mean", "m") == value(first, "mean", "m") == expected
    assert "CategoricalDtype" in value(again, "mean", "kinds")
    assert not [w for w in first.warnings + again.warnings if "could not be stored" in w]


def test_a_value_that_could_not_be_stored_is_a_warning_and_recomputed_next_time(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    """The frame of `make` is written while `mean` runs; its write fails (no folder for its
    chunks can be made): the run's result stands, the step is not cached."""
    notebook = write_notebook(
        tmp_path / "unstored.ipynb",
        ("import numpy as np\nx = np.arange(1_000_000.0)", "step:make"),
        ("m = float(x.mean())", "step:mean", "metrics"))
    (store / "results").mkdir(parents=True)
    (store / "results" / "chunks").write_text("a file where a folder must be")
    first = run(notebook, store)
    assert first.ok, first.error
    assert value(first, "mean", "m") == 499999.5
    assert any("step 'make': 'x' could not be stored in the result storage" in w
               and "the step runs again next time" in w for w in first.warnings), first.warnings
    (store / "results" / "chunks").unlink()
    again = run(notebook, store)
    assert states(again)["make"] == "completed" and value(again, "mean", "m") == 499999.5
    assert states(run(notebook, store)) == {"make": "cached", "mean": "cached"}


def test_results_go_to_a_prefect_filesystem_block(tmp_path: Path, store: Path,
                                                  prefect_harness: None) -> None:
    import fsspec
    from prefect.filesystems import RemoteFileSystem

    # An fsspec file system that is not a folder: this process's memory (steps run on threads)
    bucket = f"nb2pipe-test-{tmp_path.name}"
    RemoteFileSystem(basepath=f"memory://{bucket}").save(  # type: ignore[call-arg]
        "nb2pipe-test-results", overwrite=True, _sync=True)
    notebook = write_notebook(tmp_path / "chain.ipynb", *CHAIN)
    prepared = prepare(notebook, cache=store)
    options = RunOptions(storage="remote-file-system/nb2pipe-test-results")
    first = run_project(prepared.project, options)
    assert first.ok, first.error
    stored = fsspec.filesystem("memory").find(f"/{bucket}")
    assert [p for p in stored if "/values/" in p], stored  # the values are in the block
    assert not (store / "results").exists()
    again = run_project(prepared.project, options)
    assert set(states(again).values()) == {"cached"}
    assert value(again, "report", "total") == 6.0


def test_a_run_started_where_an_event_loop_runs_returns_its_values(
        tmp_path: Path, store: Path, prefect_harness: None) -> None:
    """As from a Jupyter kernel, whose event loop runs in the thread that runs the cell: Prefect
    hands back coroutines there unless asked for its sync variants, and the run's values and
    a results block must still come back."""
    import asyncio

    from prefect.filesystems import RemoteFileSystem

    RemoteFileSystem(basepath=f"memory://nb2pipe-loop-{tmp_path.name}").save(
        "nb2pipe-loop-results", overwrite=True, _sync=True)  # type: ignore[call-arg]
    notebook = write_notebook(tmp_path / "chain.ipynb", *CHAIN)
    prepared = prepare(notebook, cache=store)

    async def in_a_cell() -> RunResult:
        return run_project(prepared.project, RunOptions(
            storage="remote-file-system/nb2pipe-loop-results"))

    result = asyncio.run(in_a_cell())
    assert result.ok, result.error
    assert value(result, "report", "total") == 6.0 and value(result, "tag", "tagged") == "x:3"


def processes_of(mark: str) -> list[int]:
    """Processes (other than this one) whose environment carries `mark`."""
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("NB2PIPE_TEST_MARK") == mark and process.pid != os.getpid():
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


DYING = {
    "os-exit": ("import os\ny = x + 1\nos._exit(1)", "cell 2, line 3 (step 'b'): os._exit(1)"),
    "segfault": ("import ctypes\ny = x + 1\nctypes.string_at(0)",
                 "cell 2, line 3 (step 'b'): the process crashed (Segmentation fault)"),
    "sys-exit": ("import sys\ny = x + 1\nsys.exit(3)", "cell 2, line 3 (step 'b'): sys.exit(3)"),
    # A process-pool worker that dies while it sends Prefect's logs to the flow's process
    # leaves the lock of their queue taken: the flow's process must still end.
    "os-exit-mid-log": ("import os\nfrom prefect import get_run_logger\n"
                        "for _ in range(200):\n    get_run_logger().info('x' * 20000)\n"
                        "y = x + 1\nos._exit(1)", "cell 2, line 6 (step 'b'): os._exit(1)"),
}


@pytest.mark.parametrize("how", sorted(DYING))
@pytest.mark.parametrize("runner", ["thread", "process"])
def test_a_step_that_ends_its_process_is_a_failed_step_with_its_cell(
        how: str, runner: str, tmp_path: Path) -> None:
    code, expected = DYING[how]
    notebook = write_notebook(tmp_path / "dies.ipynb", ("x = 1", "step:a"), (code, "step:b"),
                              ("z = y", "step:c"))
    mark = f"dies-{how}-{runner}-{os.getpid()}"
    env = {**os.environ, "NB2PIPE_CACHE_DIR": str(tmp_path / "c"), "NB2PIPE_TEST_MARK": mark}
    done = subprocess.run([sys.executable, "-m", "nb2pipe", "run", str(notebook), "--runner",
                           runner], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout
    assert "1 done, 1 failed, 1 skipped" in done.stdout
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert processes_of(mark) == []  # no worker, server or kernel left running


def test_a_run_whose_process_does_not_end_is_over_once_it_said_how_it_ended(
        tmp_path: Path, prefect_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from nb2pipe.execute import supervise

    # A step leaves a thread that Python waits for when the flow's process exits.
    notebook = write_notebook(tmp_path / "lingers.ipynb", ("x = 1", "step:a"), (
        "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,)).start()\n"
        "y = x + 1", "step:b"))
    monkeypatch.setattr(supervise, "EXIT_GRACE", 1.0)
    project = prepare(notebook, cache=tmp_path / "c").project
    results: list[RunResult] = []
    running = threading.Thread(target=lambda: results.append(supervise.supervise(
        project, RunOptions(storage=str(tmp_path / "results"), cache=False))), daemon=True)
    running.start()
    running.join(timeout=240)
    assert not running.is_alive(), "the run did not end"
    assert results[0].ok, results[0].error
    assert [r.state for r in results[0].steps.values()] == ["completed", "completed"]


def test_ctrl_c_stops_the_run_promptly_and_leaves_nothing_running(tmp_path: Path) -> None:
    import signal
    import time

    notebook = write_notebook(tmp_path / "slow.ipynb", ("x = 1", "step:a"),
                              ("import time\nfor _ in range(600):\n    time.sleep(0.1)\ny = x",
                               "step:slow"))
    mark = f"interrupt-{os.getpid()}"
    env = {**os.environ, "NB2PIPE_CACHE_DIR": str(tmp_path / "c"), "NB2PIPE_TEST_MARK": mark}
    process = subprocess.Popen(as_from_a_terminal([sys.executable, "-m", "nb2pipe", "run",
                                                   str(notebook)]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    assert process.stdout is not None
    for line in process.stdout:  # until the slow step runs
        if "slow" in line and "started" in line:
            break
    pressed = time.monotonic()
    process.send_signal(signal.SIGINT)  # Ctrl-C: the terminal signals the foreground process
    out, err = process.communicate(timeout=60)
    assert time.monotonic() - pressed < 15
    assert process.returncode == 130
    assert "interrupted" in err and "Traceback" not in err, err[-3000:]
    assert "slow    failed    interrupted (Ctrl-C)" in out.replace("   ", "  ") or (
        "interrupted (Ctrl-C)" in out), out
    assert processes_of(mark) == []


def test_steps_run_on_dask_workers_that_have_the_resources_they_need(
        tmp_path: Path, store: Path, prefect_harness: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client, Nanny, Scheduler, SpecCluster

    notebook = write_notebook(
        tmp_path / "placed.ipynb", ("import os\nstart = os.getpid()", "step:start"),
        ("on_gpu = os.getpid()", "step:gpu_step", "gpu:1"),
        ("on_big = os.getpid()", "step:big_step", "cpu:4", "memory:8GB"),
        ("pids = [start, on_gpu, on_big]", "step:join", "metrics"))
    project = prepare(notebook, cache=store).project
    manifest = json.loads((project / "pipeline.json").read_text())
    options = {s["name"]: s["options"]["resources"] for s in manifest["steps"]}
    assert options["gpu_step"] == {"GPU": 1.0}
    assert options["big_step"] == {"CPU": 4.0, "MEMORY": 8e9}
    assert 'with resources(CPU=4, MEMORY=8000000000):' in (project / "flow.py").read_text()
    # The workers import the project's modules: a worker process started by a nanny takes
    # the nanny's sys.path (as `PYTHONPATH=PROJECT dask worker ...` gives it).
    monkeypatch.syspath_prepend(str(project))
    workers = {
        "plain": {"cls": Nanny, "options": {"nthreads": 1}},
        "gpu": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
        "big": {"cls": Nanny, "options": {"nthreads": 1,
                                          "resources": {"CPU": 8, "MEMORY": 16e9}}},
    }
    with SpecCluster(scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}},
                     workers=workers) as cluster, Client(cluster) as client:
        client.wait_for_workers(3)
        pids = client.run(os.getpid)
        where = {pids[worker.worker_address]: name for name, worker in cluster.workers.items()}
        result = run_project(project, RunOptions(
            storage=str(store / "results"), runner="dask", cache=False,
            dask_address=cluster.scheduler_address))
    assert result.ok, result.error
    assert where[value(result, "gpu_step", "on_gpu")] == "gpu"
    assert where[value(result, "big_step", "on_big")] == "big"


def test_a_flow_that_cannot_run_says_why_in_one_line(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", ("x = 1", "step:a"))
    project = tmp_path / "project"
    assert cli("convert", str(notebook), "-o", str(project), cache=tmp_path / "c").returncode == 0
    flow = project / "flow.py"
    flow.write_text(flow.read_text().replace("import steps\n", "import steps\nimport missing\n"))
    done = cli("run", str(project), cache=tmp_path / "c")
    assert done.returncode == 1
    assert ("nb2pipe: the flow could not run: ModuleNotFoundError: No module named 'missing'"
            in done.stderr), done.stderr
    assert "Traceback" not in done.stderr


def test_verify_passes_when_a_notebook_function_gives_its_argument_to_its_own_module(
        tmp_path: Path) -> None:
    """`def prep(d): own_inplace.grow(d)` with own_inplace.py beside the notebook, then
    `prep(data)`: the step calling prep changes data, the step after it takes data from there,
    and the step between reads the data made first, in papermill and in the real flow."""
    (tmp_path / "own_inplace.py").write_text("def grow(xs):\n    xs.append(len(xs))\n")
    notebook = write_notebook(
        tmp_path / "beside.ipynb",
        ("import own_inplace\ndata = [3, 1, 2]", "step:load"),
        ("def prep(d):\n    own_inplace.grow(d)", "step:define"),
        ("before = len(data)", "step:early"),
        ("prep(data)", "step:prep"),
        ("after = data[-1] + len(data) + before", "step:report", "metrics"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the pipeline computes what the notebook computes" in result.stdout
    done = cli("run", str(notebook), cache=tmp_path / "c")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report.after = 10" in done.stdout, done.stdout
