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
from support import EXAMPLES, NOTEBOOKS, write_notebook

from nb2pipe.execute import RunOptions, prepare, run_project
from nb2pipe.execute.engine import RunResult
from nb2pipe.execute.store import Store

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def keep_cwd() -> Iterator[None]:
    before = os.getcwd()
    yield
    os.chdir(before)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache")


def run(notebook: Path, store: Store, **options: Any) -> RunResult:
    prepared = prepare(notebook, store=store)
    return run_project(prepared.project, RunOptions(store=str(store.root), **options))


def states(result: RunResult) -> dict[str, str]:
    return {name: report.state for name, report in result.steps.items()}


def value(result: RunResult, step: str, name: str) -> Any:
    return result.outputs[step].value(name)


CHAIN = [
    ('size = 3  # rows\nscale = 2.0\nlabel = "x"', "parameters"),
    ("import json\nrows = list(range(size))", "step:load"),
    ("scaled = [r * scale for r in rows]", "step:scale"),
    ("tagged = f'{label}:{len(rows)}'", "step:tag"),
    ("total = sum(scaled)\nsummary = json.dumps({'total': total, 'tag': tagged})", "step:report",
     "metrics"),
]


def test_second_run_runs_nothing_and_parameters_rerun_only_their_steps(
        tmp_path: Path, store: Store, prefect_harness: None) -> None:
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


def test_editing_a_cell_reruns_that_step_and_what_follows(tmp_path: Path, store: Store,
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


def test_failing_cell_names_notebook_cell_line_and_error(tmp_path: Path, store: Store,
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


def test_transient_errors_are_retried(tmp_path: Path, store: Store,
                                      prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "flaky.ipynb",
                              (FLAKY.format(error="ConnectionError"), "step:fetch", "retries:3"))
    result = run(notebook, store)
    assert result.ok and value(result, "fetch", "done") if "done" in (
        result.outputs["fetch"].values or {}) else result.ok
    assert (tmp_path / "attempts.txt").read_text() == "3"


def test_deterministic_errors_are_not_retried(tmp_path: Path, store: Store,
                                             prefect_harness: None) -> None:
    notebook = write_notebook(tmp_path / "bug.ipynb",
                              (FLAKY.format(error="ValueError"), "step:fetch", "retries:3"))
    result = run(notebook, store)
    assert not result.ok and "ValueError: not yet" in (result.steps["fetch"].error or "")
    assert (tmp_path / "attempts.txt").read_text() == "1"


def test_timeout_fails_the_step_when_it_expires(tmp_path: Path, store: Store,
                                                prefect_harness: None) -> None:
    import time

    # Python code is interrupted at the timeout; a single long call into C is not (a thread
    # cannot be stopped from outside), so the step loops in Python.
    notebook = write_notebook(tmp_path / "slow.ipynb", (
        "import time\nfor _ in range(200):\n    time.sleep(0.05)\nx = 1", "step:slow", "timeout:1"))
    reported: dict[str, float] = {}
    start = time.perf_counter()
    prepared = prepare(notebook, store=store)
    result = run_project(prepared.project, RunOptions(store=str(store.root)),
                         lambda r: reported.setdefault(r.state, time.perf_counter() - start))
    assert states(result) == {"slow": "failed"}
    assert "timeout" in (result.steps["slow"].error or "")
    assert reported["failed"] < 6  # the loop alone would take 10 s


@pytest.mark.parametrize("runner", ["process", "dask"])
def test_runners_give_the_same_results(runner: str, tmp_path: Path, store: Store,
                                       prefect_harness: None) -> None:
    shutil.copytree(EXAMPLES / "kale_wine", tmp_path / "kale_wine",
                    ignore=shutil.ignore_patterns("*_pipeline", "*.graph.json"))
    notebook = tmp_path / "kale_wine" / "kale_wine.ipynb"
    threads = run(notebook, store, cache=False)
    other = run(notebook, store, cache=False, runner=runner)
    assert threads.ok and other.ok, other.error
    for step in threads.outputs:
        for name in threads.outputs[step].values or {}:
            mine, theirs = value(threads, step, name), value(other, step, name)
            from nb2pipe.runtime.values import assert_same

            assert_same(theirs, mine, f"{step}.{name}")


def test_independent_steps_run_on_different_dask_workers(tmp_path: Path, store: Store,
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


def test_notebook_mode_keeps_each_executed_step_notebook(tmp_path: Path, store: Store,
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


def test_notebook_mode_failure_names_the_cell(tmp_path: Path, store: Store,
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
    assert result.returncode == 2 and "NB201" in result.stderr  # refused before running
    write_notebook(tmp_path / "bad.ipynb", ("x = 1", "step:a"), ("y = 1 / (x - 1)", "step:b"))
    result = cli("run", str(notebook), "--json", cache=tmp_path / "c")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    failed = next(s for s in document["steps"] if s["name"] == "b")
    assert failed["state"] == "failed" and (failed["cell"], failed["line"]) == (2, 1)
    assert "ZeroDivisionError" in failed["error"]


@pytest.mark.parametrize("notebook", [*sorted(EXAMPLES.glob("*/*.ipynb")),
                                      NOTEBOOKS / "alias_frames_loop.ipynb",
                                      NOTEBOOKS / "mutation_fit.ipynb"], ids=lambda p: p.stem)
def test_verify_passes_on_examples(notebook: Path, tmp_path: Path) -> None:
    shutil.copytree(notebook.parent, tmp_path / "nb",
                    ignore=shutil.ignore_patterns("*_pipeline", "*.graph.json"))
    result = cli("verify", str(tmp_path / "nb" / notebook.name), cache=tmp_path / "c")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "the pipeline computes what the notebook computes" in result.stdout


def test_verify_catches_a_wrong_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           store: Store, prefect_harness: None) -> None:
    from nb2pipe.execute.verify import verify
    from nb2pipe.graph.resolve import Resolver
    from nb2pipe.pipeline import analyze_notebook

    notebook = tmp_path / "mutation_inplace.ipynb"
    shutil.copy(NOTEBOOKS / "mutation_inplace.ipynb", notebook)
    monkeypatch.setattr(Resolver, "_mutate", lambda *args: None)  # mutation tracking off
    graph = analyze_notebook(notebook)
    assert ("load", "count", ("df",)) in {(e.source, e.target, e.variables) for e in graph.edges}
    verdict = verify(notebook, "tags", {}, graph, prepare(notebook, store=store).project)
    assert verdict.divergence is not None
    assert (verdict.divergence.step, verdict.divergence.kind,
            verdict.divergence.name) == ("count", "inputs", "df")
    assert "step 'count'" in verdict.divergence.describe(notebook.name)


def test_verify_leaves_out_unseeded_randomness(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "random.ipynb",
                              ("import random\nnoise = random.random()\nfixed = 2", "step:draw"),
                              ("total = fixed * 2 + 0 * noise", "step:use"))
    result = cli("verify", str(notebook), cache=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    assert "left out: 'noise' (draw outputs) differs between two notebook runs" in result.stdout
    assert "left out: 'noise' (use inputs) differs between two notebook runs" in result.stdout


def test_runs_without_cache_never_hand_on_an_old_runs_values(tmp_path: Path, store: Store,
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
