"""The server extension: run state, documents and worker processes in process; the handlers
through a real `jupyter server` subprocess (marked integration); the frontend's JSON fixtures
kept current."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.lab import (
    Jupyter,
    code,
    copy_churn,
    markdown,
    run_group,
    running,
    running_jupyter,
    small_pipeline_notebook,
    undefined_name_notebook,
    wait_until,
    write_notebook,
)

from nb2pipe.server import documents
from nb2pipe.server.processes import LineReader
from nb2pipe.server.runs import Run, RunStore
from nb2pipe.server.work import Superseded, WorkerLost, Workers

FIXTURES = Path(__file__).resolve().parent.parent / "labextension" / "test" / "fixtures"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


# --- run state -----------------------------------------------------------------------------

def test_run_follows_progress_events_and_keeps_other_output_as_log(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")  # the runs' server
    run = Run(id="r", path="nb.ipynb")
    run.apply('{"event": "phase", "phase": "prefect", "message": "Starting Prefect"}')
    assert (run.state, run.phase, run.message) == ("starting", "prefect", "Starting Prefect")
    run.apply('{"event": "phase", "phase": "flow_run", "message": "flow run: x", '
              '"url": "http://127.0.0.1:4200/runs/flow-run/x"}')
    run.apply('{"event": "step", "step": "load", "state": "running", "duration": null, '
              '"error": null}')
    run.apply("some print output")
    run.apply('{"event": "a-later-kind", "x": 1}')  # unknown events are left out
    run.apply('{"event": "step", "step": "load", "state": "failed", "duration": 0.5, '
              '"error": "nb.ipynb: cell 3, line 2 (step \'load\'): KeyError: 1", '
              '"cell": 3, "line": 2}')
    run.report_target = "/tmp/report.html"  # where the server told the run to write it
    run.apply('{"event": "report", "path": "/etc/other.html"}')  # printed by a step: ignored
    assert run.report is None
    run.apply('{"event": "report", "path": "/tmp/report.html"}')
    assert run.state == "running"
    assert run.steps == {"load": {"state": "failed", "duration": 0.5, "cell": 3, "line": 2,
                                  "error": "nb.ipynb: cell 3, line 2 (step 'load'): KeyError: 1"}}
    run.apply('{"event": "finished", "state": "failed", "error": "step load failed"}')
    run.exited(1)
    assert (run.state, run.error, run.log) == ("failed", "step load failed", ["some print output"])
    assert run.report == "/tmp/report.html" and run.summary()["report"] is True
    assert run.summary()["flow_run"] == "http://127.0.0.1:4200/runs/flow-run/x"
    assert run.duration is not None and run.phase is None


def test_a_wait_says_since_when_and_why_until_the_next_phase() -> None:
    run = Run(id="r", path="nb.ipynb")
    run.apply('{"event": "phase", "phase": "server", "message": "starting local Prefect '
              'server…", "since": 1700000000.5, "detail": "first start: creating its database"}')
    summary = run.summary()
    assert (summary["phase_since"], summary["phase_detail"]) == (
        1700000000.5, "first start: creating its database")
    assert Run.from_json(run.to_json()).summary() == summary  # kept in the history file
    run.apply('{"event": "phase", "phase": "server", "message": "x", "since": "soon", '
              '"detail": null}')
    assert (run.phase_since, run.phase_detail) == (None, None)  # not a number: left out
    run.apply('{"event": "phase", "phase": "running", "message": "running…"}')
    assert (run.summary()["phase_since"], run.summary()["phase_detail"]) == (None, None)


def test_a_completed_run_leaves_no_step_running() -> None:
    run = Run(id="r", path="nb.ipynb")
    run.steps = {"a": {"state": "pending"}}
    run.apply('{"event": "step", "step": "b", "state": "running"}')
    run.apply('{"event": "step", "step": "c", "state": "cached"}')
    run.apply('{"event": "finished", "state": "completed", "error": null}')
    run.exited(0)
    assert {n: s["state"] for n, s in run.steps.items()} == {
        "a": "completed", "b": "completed", "c": "cached"}


def test_run_without_finished_event_failed_with_the_last_output_line() -> None:
    run = Run(id="r", path="nb.ipynb")
    run.steps = {"load": {"state": "running"}, "save": {"state": "pending"}}
    run.apply("nb2pipe: error: argument COMMAND: invalid choice: 'run'")
    run.exited(2)
    assert run.state == "failed"
    assert run.error == "nb2pipe: error: argument COMMAND: invalid choice: 'run'"
    assert {n: s["state"] for n, s in run.steps.items()} == {"load": "failed", "save": "skipped"}


def test_a_run_that_reports_failing_as_it_is_stopped_was_cancelled() -> None:
    run = Run(id="r", path="nb.ipynb")
    run.steps = {"a": {"state": "cached"}, "b": {"state": "running"}}
    # The stop signal interrupts step b; nb2pipe run reports it and the run as failed.
    run.apply('{"event": "step", "step": "b", "state": "failed", "duration": 1.0, '
              '"error": "interrupted"}')
    run.apply('{"event": "step", "step": "c", "state": "skipped", "duration": null, '
              '"error": null}')
    run.apply('{"event": "finished", "state": "failed", "error": "step b failed"}')
    run.cancelled("stopped by the user")
    run.exited(1)
    assert (run.state, run.error) == ("cancelled", "stopped by the user")
    assert {n: s["state"] for n, s in run.steps.items()} == {
        "a": "cached", "b": "cancelled", "c": "cancelled"}


def test_a_run_being_stopped_never_shows_failed_while_its_process_ends() -> None:
    """Between the stop and the process's exit the run reports its step interrupted and itself
    failed: the panel, polling meanwhile, must not see a failed run that ends cancelled."""
    run = Run(id="r", path="nb.ipynb")
    run.state, run.steps = "running", {"a": {"state": "completed"}, "b": {"state": "running"}}
    run.stopping = True
    run.apply('{"event": "step", "step": "b", "state": "failed", "duration": 1.0, '
              '"error": "interrupted"}')
    run.apply('{"event": "finished", "state": "failed", "error": "step b failed"}')
    assert run.state == "running" and not run.finished
    assert run.steps["b"]["state"] == "cancelled"
    run.cancelled("stopped by the user")
    run.exited(1)
    assert (run.state, run.error) == ("cancelled", "stopped by the user")


def test_a_cancelled_run_cancels_every_step_not_finished() -> None:
    run = Run(id="r", path="nb.ipynb")
    run.steps = {"a": {"state": "completed"}, "b": {"state": "running"},
                 "c": {"state": "pending"}}
    run.cancelled("stopped by the user")
    run.apply('{"event": "finished", "state": "failed", "error": "killed"}')  # too late
    run.exited(-15)
    assert (run.state, run.error) == ("cancelled", "stopped by the user")
    assert {n: s["state"] for n, s in run.steps.items()} == {
        "a": "completed", "b": "cancelled", "c": "cancelled"}


def test_line_reader_cuts_a_line_without_end_and_keeps_reading() -> None:
    lines: list[str] = []
    reader = LineReader(lines.append, limit=10)
    for chunk in (b"ab", b"c\nde", b"f\n" + b"x" * 25, b"y" * 7, b"\nnext", b"\r\nlast"):
        reader.feed(chunk)
    reader.close()
    assert lines == ["abc", "def", "x" * 10, "next", "last"]


def test_a_long_log_line_is_shortened_and_the_log_keeps_its_tail() -> None:
    run = Run(id="r", path="nb.ipynb")
    run.add_log("x" * 10_000)
    assert run.log[0].startswith("x" * 4000) and run.log[0].endswith("[... 6000 more characters]")
    for number in range(1000):
        run.add_log(str(number))
    assert run.log[-1] == "999" and len(run.log) == 400


def test_the_history_survives_a_restart_and_an_interrupted_run_is_failed(
        tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    done = Run(id="a" * 32, path="nb.ipynb", parameters={"n": "3"}, started=100.0)
    done.apply('{"event": "finished", "state": "completed", "error": null}')
    done.exited(0)
    interrupted = Run(id="b" * 32, path="nb.ipynb", started=200.0, state="running")
    other = Run(id="c" * 32, path="other.ipynb", started=300.0)
    other.exited(1)
    for run in (done, interrupted, other):
        store.runs[run.id] = run
        store._save(run, force=True)
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / ("d" * 32 + ".json")).write_text(json.dumps({"id": "e" * 32, "path": "x"}))

    again = RunStore(tmp_path)
    assert [r.id for r in again.history("nb.ipynb")] == ["b" * 32, "a" * 32]
    first = again.get("a" * 32)
    assert first is not None and (first.state, first.parameters) == ("completed", {"n": "3"})
    second = again.get("b" * 32)
    assert second is not None and second.state == "failed"
    assert second.error == "the Jupyter server stopped before this run finished"
    assert again.active("nb.ipynb") is None


def test_only_the_newest_runs_of_a_notebook_are_kept(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nb2pipe.server.runs.HISTORY", 3)
    store = RunStore(tmp_path)
    for number in range(5):
        run = Run(id=f"{number:032x}", path="nb.ipynb", started=float(number))
        run.exited(0)
        store.runs[run.id] = run
        store._save(run, force=True)
    store._forget_old("nb.ipynb")
    assert [r.started for r in store.history("nb.ipynb")] == [4.0, 3.0, 2.0]
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == [f"{n:032x}" for n in (2, 3, 4)]


# --- documents -------------------------------------------------------------------------------

def test_a_refused_path_says_which_kind_in_plain_english(tmp_path: Path) -> None:
    from nb2pipe.server.paths import PathError, notebook_file, output_dir

    for check, what in ((output_dir, "the output folder"), (notebook_file, "the notebook path")):
        with pytest.raises(PathError) as refused:
            check(tmp_path, "a/../../b")
        assert str(refused.value) == f"a/../../b: '..' is not allowed in {what}"


def test_cycle_edges_are_the_edges_on_a_cycle(tmp_path: Path) -> None:
    cycle = documents.analyze(NOTEBOOKS, NOTEBOOKS / "error_cycle.ipynb")
    assert cycle["cycle_edges"] == [["one", "two"], ["two", "one"]]
    churn = documents.analyze(EXAMPLES, EXAMPLES / "churn" / "churn.ipynb")
    assert churn["cycle_edges"] == [] and churn["onramp"] is None


def _untagged(path: Path) -> Path:
    return write_notebook(path, [
        markdown("# Load"),
        code("import json\nrows = [1, 2, 3]"),
        code("count = len(rows)"),
        markdown("## Clean"),
        code("kept = [r for r in rows if r > 1]"),
        markdown("## Report"),
        code("print(count, kept)", "metrics"),
    ])


def test_an_untagged_notebook_gets_the_on_ramp_and_the_split_tags_reproduce_it(
        tmp_path: Path) -> None:
    notebook = _untagged(tmp_path / "eda.ipynb")
    analysis = documents.analyze(tmp_path, notebook)
    assert [s["name"] for s in analysis["check"]["steps"]] == ["eda"]
    assert analysis["onramp"] == {"headings": ["load", "clean", "report"],
                                  "cells": ["cell_2", "cell_3", "cell_5", "cell_7"]}
    for split in ("headings", "cells"):
        tags = documents.split_tags(tmp_path, notebook, split)
        content = json.loads(notebook.read_text())
        for change in tags["cells"]:
            cell = content["cells"][change["cell"] - 1]
            assert cell["id"] == change["id"] and cell["cell_type"] == "code"
            cell["metadata"]["tags"] = change["tags"]
        tagged = documents.analyze(tmp_path, notebook, "tags", content)
        expected = documents.analyze(tmp_path, notebook, split)
        assert [s["name"] for s in tagged["check"]["steps"]] == analysis["onramp"][split]
        assert tagged["check"]["steps"] == expected["check"]["steps"], split
        assert tagged["onramp"] is None
    report = documents.split_tags(tmp_path, notebook, "headings")["cells"][-1]
    assert report["tags"] == ["step:report", "metrics"]  # other tags kept


def test_the_run_plan_types_parameters_like_the_command_line(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "p.ipynb", [
        code("n = 3\nrate = 0.5\nname = 'x'\nflags = [1, 2]\nverbose = False", "parameters"),
        code("out = [n * rate, name, flags, verbose]", "step:use"),
    ])
    plan = documents.run_plan(tmp_path, notebook, {
        "n": "4", "rate": "1", "name": "5", "flags": "[3, 4]", "verbose": "True"})
    assert plan == {"steps": ["use"], "error": None, "flags": [
        "-p", "n", "4", "-p", "rate", "1", "-r", "name", "5", "-y", "flags: [3, 4]",
        "-p", "verbose", "True"]}
    bad = documents.run_plan(tmp_path, notebook, {"n": "four"})
    assert bad["error"] == {"message": "parameter 'n' is int, but got 'four' (str)",
                            "parameter": "n"}
    unknown = documents.run_plan(tmp_path, notebook, {"nane": "1"})
    assert unknown["error"] == {"message": "unknown parameter 'nane'; did you mean 'name'?",
                                "parameter": "nane"}
    broken = documents.run_plan(tmp_path, undefined_name_notebook(tmp_path / "b.ipynb"), {})
    assert broken["error"]["message"] == "b.ipynb has 1 error; fix them before running"


def test_export_names_the_files_edited_by_hand_and_shows_the_diff(tmp_path: Path) -> None:
    notebook = small_pipeline_notebook(tmp_path / "small.ipynb")
    output = tmp_path / "small_pipeline"
    status, first = documents.export(tmp_path, notebook, output)
    assert status == 200 and first["ok"] and first["edited"] == []
    flow = output / "flow.py"
    flow.write_text(flow.read_text() + "\n# my change\n")
    status, refused = documents.export(tmp_path, notebook, output)
    assert status == 409 and refused["edited"] == ["small_pipeline/flow.py"]
    assert "flow.py" in refused["message"] and str(tmp_path) not in refused["message"]
    diff = documents.export_diff(tmp_path, notebook, output)
    [changed] = diff["files"]
    assert changed["path"] == "small_pipeline/flow.py"
    assert "-# my change" in changed["diff"].splitlines()
    status, forced = documents.export(tmp_path, notebook, output, force=True)
    assert status == 200 and forced["written"] == ["small_pipeline/flow.py"]
    assert "# my change" not in flow.read_text()


# --- worker processes -------------------------------------------------------------------------

def _slow(seconds: float, answer: str) -> str:
    time.sleep(seconds)
    return answer


def _fail(message: str) -> None:
    raise ValueError(message)


def test_a_newer_call_with_the_same_key_supersedes_the_running_one() -> None:
    async def scenario() -> tuple[list[Any], float]:
        workers = Workers(size=2)
        try:
            assert await workers.call(_slow, 0, "warm") == "warm"
            first = asyncio.ensure_future(workers.call(_slow, 60, "old", key="nb"))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            second = await workers.call(_slow, 0, "new", key="nb")
            results = await asyncio.gather(first, return_exceptions=True)
            return [second, *results], time.monotonic() - started
        finally:
            workers.close()

    (second, first), _ = asyncio.run(scenario())
    assert second == "new"
    assert isinstance(first, Superseded)


def test_errors_come_back_and_a_dead_worker_is_replaced() -> None:
    async def scenario() -> list[Any]:
        workers = Workers(size=1)
        try:
            failed = await asyncio.gather(workers.call(_fail, "bad value"),
                                          return_exceptions=True)
            died = await asyncio.gather(workers.call(os._exit, 3), return_exceptions=True)
            return [*failed, *died, await workers.call(_slow, 0, "still here")]
        finally:
            workers.close()

    failed, died, answer = asyncio.run(scenario())
    assert isinstance(failed, ValueError) and str(failed) == "bad value"
    assert isinstance(died, WorkerLost)
    assert answer == "still here"


# --- the frontend's fixtures ---------------------------------------------------------------

def _fixture_documents(root: Path) -> dict[str, Any]:
    """Every kind of document the server sends, from real notebooks."""
    from nb2pipe.notebook.tags import grammar_json, parse_tag

    churn = copy_churn(root)
    broken = undefined_name_notebook(root / "broken.ipynb")
    untagged = _untagged(root / "eda.ipynb")
    small = small_pipeline_notebook(root / "small.ipynb")
    run = Run(id="0" * 32, path="small.ipynb", parameters={"factor": "4"}, started=1000.0,
              report_target="/nowhere/report.html")
    for line in (
        '{"event": "phase", "phase": "server", "message": "starting the local Prefect server"}',
        '{"event": "phase", "phase": "flow_run", "message": "flow run: http://127.0.0.1:4200/'
        'runs/flow-run/1", "url": "http://127.0.0.1:4200/runs/flow-run/1"}',
        '{"event": "step", "step": "load", "state": "cached", "duration": null, "error": null, '
        '"cell": null, "line": null}',
        '{"event": "step", "step": "scale", "state": "completed", "duration": 0.25, '
        '"error": null, "cell": null, "line": null}',
        '{"event": "step", "step": "report", "state": "failed", "duration": 0.5, '
        '"error": "small.ipynb: cell 5, line 1 (step \'report\'): ZeroDivisionError: division '
        'by zero\\n    total = sum(scaled) / 0", "cell": 5, "line": 1}',
        "30",
        '{"event": "report", "path": "/nowhere/report.html"}',
        '{"event": "finished", "state": "failed", "error": "step report failed"}',
    ):
        run.apply(line)
    run.exited(1)
    run.ended = 1012.5
    running_run = Run(id="1" * 32, path="small.ipynb", started=1100.0)
    running_run.apply('{"event": "phase", "phase": "server", "message": "starting local Prefect '
                      'server…", "since": 1100.5, "detail": "first start: creating its database"}')
    history = {"path": "small.ipynb", "active": running_run.id,
               "runs": [running_run.summary(), run.summary()]}
    status, export_churn = documents.export(root, churn, root / "churn" / "churn_pipeline")
    assert status == 200
    flow = root / "churn" / "churn_pipeline" / "flow.py"
    flow.write_text(flow.read_text().replace("\n", "\n# edited\n", 1))
    status, edited = documents.export(root, churn, root / "churn" / "churn_pipeline")
    assert status == 409
    problems = {tag: parse_tag(tag).problem for tag in ("retries:2", "retries:many")}
    return {
        "grammar.json": grammar_json(),
        "analysis-churn.json": documents.analyze(root, churn),
        "analysis-broken.json": documents.analyze(root, broken),
        "analysis-untagged.json": documents.analyze(root, untagged),
        "split.json": documents.split_tags(root, untagged, "headings"),
        "tags.json": {"problems": {t: p for t, p in problems.items() if p}},
        "export-churn.json": export_churn,
        "export-broken.json": documents.export(root, broken, root / "broken_pipeline")[1],
        "export-edited.json": edited,
        "diff.json": documents.export_diff(root, churn, root / "churn" / "churn_pipeline"),
        "run.json": run.to_json(),
        "history.json": history,
        "run-started.json": Run(id="2" * 32, path=small.name, started=1200.0).to_json(),
    }


def test_frontend_fixtures_are_current(tmp_path: Path, update_golden: bool,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """labextension/test/types.test.ts checks the TypeScript types against these files."""
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")  # the runs' server
    for name, document in _fixture_documents(tmp_path).items():
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        path = FIXTURES / name
        if update_golden:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.exists(), f"{path} is missing: run pytest --update-golden"
        assert path.read_text() == text, f"{name} is stale: run pytest --update-golden"


# --- handlers, through a real jupyter server -----------------------------------------------

@pytest.fixture(scope="module")
def prefect(prefect_server: str) -> str:
    """The session's Prefect server, for the runs these servers start."""
    return prefect_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, prefect: str) -> Iterator[Jupyter]:
    root = tmp_path_factory.mktemp("root")
    with running_jupyter(root, tmp_path_factory.mktemp("state"), app="server",
                         prefect=prefect) as jupyter:
        yield jupyter


@pytest.fixture
def root(server: Jupyter, tmp_path: Path) -> Iterator[Path]:
    """A fresh folder inside the server root; the tests send paths relative to the root."""
    folder = server.root / tmp_path.name
    folder.mkdir()
    yield folder


def _rel(server: Jupyter, path: Path) -> str:
    return path.relative_to(server.root).as_posix()


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


ENDPOINTS = [
    ("GET", "nb2pipe/grammar"),
    ("POST", "nb2pipe/tags"),
    ("GET", "nb2pipe/analyze?path=x.ipynb"),
    ("POST", "nb2pipe/analyze"),
    ("POST", "nb2pipe/split"),
    ("POST", "nb2pipe/export"),
    ("POST", "nb2pipe/export/diff"),
    ("POST", "nb2pipe/runs"),
    ("GET", "nb2pipe/runs?path=x.ipynb"),
    ("GET", "nb2pipe/runs/" + "0" * 32),
    ("POST", "nb2pipe/runs/" + "0" * 32 + "/cancel"),
    ("GET", "nb2pipe/runs/" + "0" * 32 + "/report"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_handler_refuses_requests_without_the_token(server: Jupyter, method: str,
                                                          path: str) -> None:
    body = {"path": "x.ipynb", "content": {}} if method == "POST" else None
    status, _ = server.request(method, path, body, token=None)
    assert status == 403
    status, _ = server.request(method, path, body, token="wrong")
    assert status == 403


@pytest.mark.integration
def test_grammar_is_the_python_table(server: Jupyter) -> None:
    from nb2pipe.notebook.tags import grammar_json

    assert server.get("nb2pipe/grammar") == (200, grammar_json())


@pytest.mark.integration
def test_analyze_is_nb2pipe_check_json(server: Jupyter, root: Path) -> None:
    notebook = copy_churn(root)
    api_path = _rel(server, notebook)
    status, analysis = server.get("nb2pipe/analyze", path=api_path)
    assert status == 200, analysis
    cli = subprocess.run([sys.executable, "-m", "nb2pipe", "check", api_path, "--format", "json"],
                         cwd=server.root, capture_output=True, text=True, check=False)
    assert cli.returncode == 0, cli.stderr
    assert analysis["check"] == json.loads(cli.stdout)
    assert analysis["path"] == api_path and analysis["ok"] is True
    assert analysis["default_output"] == _rel(server, root / "churn" / "churn_pipeline")
    assert [s["name"] for s in analysis["steps"]] == [
        s["name"] for s in analysis["check"]["steps"]]
    assert analysis["steps"][1] == {"name": "clean", "first_cell": 11,
                                    "options": {"cache": True, "cpu": None, "gpu": None,
                                                "memory": None, "retries": 0, "timeout": None}}


@pytest.mark.integration
def test_analyze_posted_content_sees_unsaved_tags(server: Jupyter, root: Path) -> None:
    notebook = small_pipeline_notebook(root / "small.ipynb")
    content = json.loads(notebook.read_text())
    content["cells"][3]["metadata"]["tags"] = ["step:double"]
    before = notebook.read_bytes()
    status, analysis = server.post(f"nb2pipe/analyze?path={_rel(server, notebook)}", content)
    assert status == 200, analysis
    assert [s["name"] for s in analysis["check"]["steps"]] == ["load", "double", "report"]
    assert analysis["check"]["notebook"] == _rel(server, notebook)
    assert notebook.read_bytes() == before
    status, reply = server.post(f"nb2pipe/analyze?path={_rel(server, notebook)}", ["cells"])
    assert (status, reply["message"]) == (
        422, f"{_rel(server, notebook)}: the request body must be the notebook's JSON object")


@pytest.mark.integration
def test_analyze_reports_the_undefined_name_with_its_cell(server: Jupyter, root: Path) -> None:
    notebook = undefined_name_notebook(root / "broken.ipynb")
    status, analysis = server.get("nb2pipe/analyze", path=_rel(server, notebook))
    assert status == 200
    assert analysis["ok"] is False
    [problem] = analysis["check"]["diagnostics"]
    assert (problem["code"], problem["cell"], problem["line"]) == ("NB201", 4, 1)
    assert "discount" in problem["message"]


def _bad_paths(server: Jupyter, root: Path, outside: Path) -> list[tuple[str, int, str]]:
    (root / "notes.txt").write_text("not a notebook")
    (root / "folder.ipynb").mkdir()
    (root / "broken.ipynb").write_text("{ not json")
    (root / "escape.ipynb").symlink_to(outside / "secret.ipynb")
    rel = _rel(server, root)
    return [
        (f"{rel}/../../{outside.name}/secret.ipynb", 403, "'..' is not allowed"),
        (str(outside / "secret.ipynb"), 403, "outside the server root"),
        (f"{rel}/escape.ipynb", 403, "outside the server root"),
        (f"{rel}/missing.ipynb", 404, "no such file"),
        (f"{rel}/notes.txt", 400, "is not a notebook"),
        (f"{rel}/folder.ipynb", 400, "is a directory"),
        ("", 400, "no notebook path given"),
    ]


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("outside")
    small_pipeline_notebook(folder / "secret.ipynb")
    return folder


@pytest.mark.integration
def test_bad_paths_get_a_4xx_with_a_message_and_touch_nothing(server: Jupyter, root: Path,
                                                              outside: Path) -> None:
    cases = _bad_paths(server, root, outside)
    before_root, before_outside = _tree(server.root), _tree(outside)
    for path, expected, words in cases:
        for method, endpoint, body in (
            ("GET", f"nb2pipe/analyze?path={path}", None),
            ("POST", f"nb2pipe/analyze?path={urllib.parse.quote(path)}", {"cells": []}),
            ("POST", "nb2pipe/export", {"path": path}),
            ("POST", "nb2pipe/runs", {"path": path}),
        ):
            status, reply = server.request(method, endpoint, body)
            assert status == expected, (method, endpoint, path, reply)
            assert words in reply["message"], (method, endpoint, path, reply)
    assert _tree(server.root) == before_root
    assert _tree(outside) == before_outside
    assert not list(outside.glob("*_pipeline")) and not list(root.glob("*_pipeline"))


@pytest.mark.integration
def test_unreadable_notebook_is_422_naming_the_file(server: Jupyter, root: Path) -> None:
    (root / "broken.ipynb").write_text("{ not json")
    api_path = _rel(server, root / "broken.ipynb")
    status, reply = server.get("nb2pipe/analyze", path=api_path)
    assert status == 422
    assert reply["message"].startswith(f"{api_path}: not valid notebook JSON")
    assert str(server.root) not in reply["message"]


@pytest.mark.integration
def test_export_writes_the_project_that_convert_check_accepts(server: Jupyter,
                                                              root: Path) -> None:
    notebook = copy_churn(root)
    output = root / "exported"
    status, result = server.post("nb2pipe/export", {"path": _rel(server, notebook),
                                                    "output": _rel(server, output)})
    assert status == 200, result
    assert result["ok"] is True and result["output"] == _rel(server, output)
    assert result["flow"] == _rel(server, output / "flow.py")
    assert {"flow.py", "steps.py", "pipeline.json"} <= {Path(p).name for p in result["written"]}
    for written in result["written"]:
        assert (server.root / written).is_file(), written
    check = subprocess.run(
        [sys.executable, "-m", "nb2pipe", "convert", str(notebook), "-o", str(output), "--check"],
        capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.integration
def test_export_defaults_to_a_folder_next_to_the_notebook(server: Jupyter, root: Path) -> None:
    notebook = small_pipeline_notebook(root / "small.ipynb")
    status, result = server.post("nb2pipe/export", {"path": _rel(server, notebook)})
    assert status == 200, result
    assert result["output"] == _rel(server, root / "small_pipeline")
    assert (root / "small_pipeline" / "flow.py").is_file()


@pytest.mark.integration
def test_export_with_errors_is_409_and_writes_nothing(server: Jupyter, root: Path) -> None:
    notebook = undefined_name_notebook(root / "broken.ipynb")
    status, result = server.post("nb2pipe/export", {"path": _rel(server, notebook)})
    assert status == 409
    assert result["ok"] is False
    assert result["message"] == f"{_rel(server, notebook)} has 1 error; nothing was written"
    assert [d["code"] for d in result["diagnostics"]] == ["NB201"]
    assert sorted(p.name for p in root.iterdir()) == ["broken.ipynb"]


@pytest.mark.integration
def test_export_refuses_an_output_folder_outside_the_root(server: Jupyter, root: Path,
                                                          outside: Path) -> None:
    notebook = small_pipeline_notebook(root / "small.ipynb")
    for output in (str(outside / "out"), f"{_rel(server, root)}/../../{outside.name}/out"):
        status, reply = server.post("nb2pipe/export",
                                    {"path": _rel(server, notebook), "output": output})
        assert status == 403, reply
    assert not (outside / "out").exists()
    (root / "file").write_text("x")
    status, reply = server.post("nb2pipe/export", {"path": _rel(server, notebook),
                                                   "output": _rel(server, root / "file")})
    assert (status, reply["message"]) == (400, f"{_rel(server, root / 'file')}: exists and is "
                                                "not a folder")


@pytest.mark.integration
def test_unknown_run_is_404(server: Jupyter) -> None:
    status, reply = server.get("nb2pipe/runs/" + "f" * 32)
    assert status == 404 and "no run" in reply["message"]


@pytest.mark.integration
def test_run_reaches_completed_with_every_step(server: Jupyter, root: Path) -> None:
    notebook = small_pipeline_notebook(root / "small.ipynb")
    status, started = server.post("nb2pipe/runs", {"path": _rel(server, notebook)})
    assert status == 202, started
    run = server.wait_for_run(started["id"])
    assert run["state"] == "completed", run
    assert set(run["steps"]) == {"load", "scale", "report"}
    assert {s["state"] for s in run["steps"].values()} <= {"completed", "cached"}


@pytest.mark.integration
def test_a_body_that_is_not_a_json_object_is_400(server: Jupyter) -> None:
    assert server.request("POST", "nb2pipe/runs", None) == (
        400, {"message": "no notebook path given", "reason": None})
    status, reply = server.request("POST", "nb2pipe/export", ["x.ipynb"])
    assert (status, reply["message"]) == (400, "the request body must be a JSON object")


@pytest.mark.integration
def test_a_run_accepts_no_post_405(server: Jupyter) -> None:
    status, reply = server.post("nb2pipe/runs/" + "f" * 32, {})
    assert status == 405, reply


@pytest.mark.integration
def test_a_bad_parameter_is_400_naming_it_and_nothing_runs(server: Jupyter, root: Path) -> None:
    notebook = small_pipeline_notebook(root / "small.ipynb")
    status, reply = server.post("nb2pipe/runs", {"path": _rel(server, notebook),
                                                 "parameters": {"factor": "three"}})
    assert (status, reply) == (400, {"message": "parameter 'factor' is int, but got 'three' "
                                                "(str)", "parameter": "factor"})
    assert server.get("nb2pipe/runs", path=_rel(server, notebook))[1]["runs"] == []


@pytest.mark.integration
def test_a_fifo_named_like_a_notebook_is_refused_at_once(server: Jupyter, root: Path) -> None:
    fifo = root / "pipe.ipynb"
    os.mkfifo(fifo)
    for method, endpoint, body in (
        ("GET", f"nb2pipe/analyze?path={_rel(server, fifo)}", None),
        ("POST", "nb2pipe/export", {"path": _rel(server, fifo)}),
        ("POST", "nb2pipe/runs", {"path": _rel(server, fifo)}),
    ):
        status, reply = server.request(method, endpoint, body)
        assert (status, reply["message"]) == (400, f"{_rel(server, fifo)}: is not a regular "
                                                   "file"), endpoint
    assert server.get("api/status")[0] == 200


def _huge_notebook(path: Path, cells: int = 20_000) -> Path:
    """A notebook of many small cells, ten to a step, each using the previous cell's value."""
    content = []
    for i in range(cells):
        source = "x0 = 0" if i == 0 else f"x{i} = x{i - 1} + 1"
        content.append(code(source, f"step:s{i}") if i % 10 == 0 else code(source))
    return write_notebook(path, content)


def _meanwhile(server: Jupyter, method: str, endpoint: str, body: Any) -> tuple[int, int]:
    """Send a slow request; count the /api/status answers that came while it was pending.
    Returns (its status, the answers that arrived before it finished)."""
    outcome: dict[str, Any] = {}

    def slow() -> None:
        outcome["status"] = server.request(method, endpoint, body, timeout=900)[0]
        outcome["done"] = time.monotonic()

    thread = threading.Thread(target=slow)
    thread.start()
    answered: list[float] = []
    while thread.is_alive() and len(answered) < 5:
        if server.get("api/status")[0] == 200:
            answered.append(time.monotonic())
    thread.join()
    return outcome["status"], sum(t < outcome["done"] for t in answered)


@pytest.mark.integration
def test_the_server_answers_while_a_20k_cell_notebook_is_analyzed_and_exported(
        server: Jupyter, root: Path) -> None:
    notebook = _huge_notebook(root / "huge.ipynb")
    api_path = _rel(server, notebook)
    status, answered = _meanwhile(server, "GET", f"nb2pipe/analyze?path={api_path}", None)
    assert status == 200 and answered >= 3
    content = json.loads(notebook.read_text())
    status, answered = _meanwhile(server, "POST", f"nb2pipe/analyze?path={api_path}", content)
    assert status == 200 and answered >= 3
    status, answered = _meanwhile(server, "POST", "nb2pipe/export", {"path": api_path})
    assert status == 200 and answered >= 3


@pytest.mark.integration
def test_a_newer_analysis_of_the_same_notebook_supersedes_the_older(server: Jupyter,
                                                                    root: Path) -> None:
    # Large enough that its analysis takes seconds, so the next request comes while it runs.
    notebook = _huge_notebook(root / "huge.ipynb", cells=20_000)
    content = json.loads(notebook.read_text())
    endpoint = f"nb2pipe/analyze?path={_rel(server, notebook)}&client=page-1"
    replies: list[tuple[int, Any]] = []
    first = threading.Thread(target=lambda: replies.append(server.post(endpoint, content)))
    first.start()
    time.sleep(1.0)  # it takes seconds: the next one comes while it runs
    content["cells"][0]["metadata"]["tags"] = ["step:start"]
    status, newer = server.post(endpoint, content)
    first.join()
    assert status == 200 and newer["check"]["steps"][0]["name"] == "start"
    assert replies == [(409, {"message": "superseded by a newer request", "superseded": True})]
    other_page = server.post(endpoint.replace("page-1", "page-2"), content)
    assert other_page[0] == 200


@pytest.mark.integration
def test_a_notebook_too_large_is_413(server: Jupyter, root: Path) -> None:
    notebook = small_pipeline_notebook(root / "small.ipynb")
    content = {"cells": [], "padding": "x" * (33 * 1024 * 1024)}
    status, reply = server.post(f"nb2pipe/analyze?path={_rel(server, notebook)}", content)
    assert status == 413 and "the limit is 32.0 MB" in reply["message"]


# --- runs that end badly ---------------------------------------------------------------------

def _step_notebook(path: Path, source: str) -> Path:
    return write_notebook(path, [
        code("import os\nimport subprocess\nimport sys\nimport time"),
        code(source, "step:work"),
        code("print('after')", "step:after", "after:work"),  # runs once work is done
    ])


def _sleeper(marker: str) -> str:
    """Code for a step that starts a child holding the run's output, marked for `ps`."""
    return (f"child = subprocess.Popen([sys.executable, '-c', "
            f"'import time; time.sleep(600)', {marker!r}])")


def _marked(marker: str) -> list[Any]:
    return running(lambda pid, group, command: marker in command)


@pytest.mark.integration
def test_a_step_printing_megabytes_without_a_newline_does_not_wedge_the_run(
        server: Jupyter, root: Path) -> None:
    notebook = _step_notebook(root / "chatty.ipynb",
                              "sys.stdout.write('x' * (3 * 1024 * 1024))\nsys.stdout.flush()\n"
                              "print()\nprint('done')")
    status, started = server.post("nb2pipe/runs", {"path": _rel(server, notebook)})
    assert status == 202, started
    run = server.wait_for_run(started["id"])
    assert run["state"] == "completed", run
    assert any(line.endswith("more characters]") for line in run["log"])
    assert "done" in run["log"]
    again = server.post("nb2pipe/runs", {"path": _rel(server, notebook)})
    assert again[0] == 202  # no run left "starting": the next one starts
    assert server.wait_for_run(again[1]["id"])["state"] == "completed"


@pytest.mark.integration
def test_a_step_that_exits_the_process_fails_the_run_though_an_orphan_holds_the_pipe(
        server: Jupyter, root: Path) -> None:
    marker = f"orphan-{root.name}"
    notebook = _step_notebook(root / "exits.ipynb", _sleeper(marker) + "\nos._exit(1)")
    status, started = server.post("nb2pipe/runs", {"path": _rel(server, notebook)})
    assert status == 202, started
    run = server.wait_for_run(started["id"], seconds=240)
    assert run["state"] == "failed", run
    assert run["steps"]["after"]["state"] in ("skipped", "failed")
    wait_until(lambda: not _marked(marker), 15, "the orphan is stopped")
    assert server.get("nb2pipe/runs", path=_rel(server, notebook))[1]["active"] is None


@pytest.mark.integration
def test_stop_ends_the_run_and_everything_it_started(server: Jupyter, root: Path) -> None:
    marker = f"stopped-{root.name}"
    notebook = _step_notebook(root / "slow.ipynb", _sleeper(marker) + "\ntime.sleep(600)")
    api_path = _rel(server, notebook)
    status, started = server.post("nb2pipe/runs", {"path": api_path})
    assert status == 202, started
    assert server.post("nb2pipe/runs", {"path": api_path})[0] == 409  # one run at a time
    wait_until(lambda: bool(_marked(marker)), 240, "the step starts its child")
    group = run_group(notebook)
    status, stopped = server.post(f"nb2pipe/runs/{started['id']}/cancel", {})
    assert status == 200, stopped
    assert stopped["state"] == "cancelled" and stopped["error"] == "stopped by the user"
    assert {s["state"] for s in stopped["steps"].values()} == {"cancelled"}, stopped["steps"]
    assert not running(lambda pid, g, command: g == group)  # the whole group is gone
    assert not _marked(marker)
    assert server.get(f"nb2pipe/runs/{started['id']}")[1]["state"] == "cancelled"
    history = server.get("nb2pipe/runs", path=api_path)[1]
    assert history["active"] is None and history["runs"][0]["state"] == "cancelled"


@pytest.mark.integration
def test_server_shutdown_stops_its_runs_and_the_history_remains(
        tmp_path_factory: pytest.TempPathFactory, prefect: str) -> None:
    root = tmp_path_factory.mktemp("shutdown-root")
    state = tmp_path_factory.mktemp("shutdown-state")
    marker = f"shutdown-{root.name}"
    notebook = _step_notebook(root / "slow.ipynb", _sleeper(marker) + "\ntime.sleep(600)")
    with running_jupyter(root, state, prefect=prefect) as jupyter:
        status, started = jupyter.post("nb2pipe/runs", {"path": "slow.ipynb"})
        assert status == 202, started
        wait_until(lambda: bool(_marked(marker)), 240, "the step starts its child")
        group = run_group(notebook)
        jupyter.process.terminate()
        jupyter.process.wait(timeout=60)
    assert not running(lambda pid, g, command: g == group)
    assert not _marked(marker)
    with running_jupyter(root, state, prefect=prefect) as again:
        history = again.get("nb2pipe/runs", path="slow.ipynb")[1]
        [run] = history["runs"]
        assert (run["id"], run["state"]) == (started["id"], "cancelled")
        assert run["error"] == "the Jupyter server shut down"
        assert history["active"] is None


@pytest.mark.integration
def test_a_run_report_is_served_sandboxed(server: Jupyter, root: Path) -> None:
    import urllib.request

    report = root / "report.html"
    event = json.dumps({"event": "report", "path": str(report)})
    notebook = _step_notebook(root / "reported.ipynb",  # a step's output may carry events
                              f"open({str(report)!r}, 'w').write('<h1>figures</h1>')\n"
                              f"print({event!r})")
    status, started = server.post("nb2pipe/runs", {"path": _rel(server, notebook)})
    assert status == 202, started
    run = server.wait_for_run(started["id"])
    assert run["state"] == "completed" and run["report"] is True, run
    request = urllib.request.Request(f"{server.url}nb2pipe/runs/{run['id']}/report",
                                     headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        page = answer.read()
        # nb2pipe run's own report (the file the server chose): the step's printed event,
        # naming another file, is only a line of its output
        assert page.startswith(b"<!DOCTYPE html>") and b"Run of reported.ipynb" in page
        assert answer.headers["Content-Security-Policy"] == "sandbox allow-scripts allow-popups"
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"  # a page, not JSON
    history = server.get("nb2pipe/runs", path=_rel(server, notebook))[1]
    assert history["runs"][0]["report"] is True
    assert server.get("nb2pipe/runs/" + "e" * 32 + "/report")[0] == 404


def test_step_resources_are_one_option_per_tag_as_the_form_edits_them() -> None:
    from nb2pipe.model import StepOptions

    shown = documents._options(StepOptions(resources=(("CPU", 2.0), ("MEMORY", 4e9))))
    assert shown == {"cache": True, "cpu": 2, "gpu": None, "memory": "4GB", "retries": 0,
                     "timeout": None}
    assert documents._options(StepOptions(resources=(("MEMORY", 536_870_912.0),)))[
        "memory"] == "512MiB"
