"""The server extension: layout and run state in process; the handlers through a real
`jupyter server` subprocess (marked integration); the frontend's JSON fixtures kept current."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.lab import (
    Jupyter,
    copy_churn,
    running_jupyter,
    small_pipeline_notebook,
    undefined_name_notebook,
)

from nb2pipe.pipeline import analyze_notebook
from nb2pipe.server import documents
from nb2pipe.server.layout import layout
from nb2pipe.server.runs import Run

FIXTURES = Path(__file__).resolve().parent.parent / "labextension" / "test" / "fixtures"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# --- layout --------------------------------------------------------------------------------

def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def _curve_samples(points: list[list[float]]) -> list[tuple[float, float]]:
    samples = []
    for i in range(0, len(points) - 1, 3):
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points[i:i + 4]
        for step in range(21):
            t, u = step / 20, 1 - step / 20
            samples.append((u**3 * x0 + 3 * u**2 * t * x1 + 3 * u * t**2 * x2 + t**3 * x3,
                            u**3 * y0 + 3 * u**2 * t * y1 + 3 * u * t**2 * y2 + t**3 * y3))
    return samples


@pytest.mark.parametrize("notebook", ["churn/churn.ipynb", "kale_wine/kale_wine.ipynb"])
def test_layout_edges_point_down_and_nothing_overlaps(notebook: str) -> None:
    graph = analyze_notebook(EXAMPLES / notebook)
    drawing = layout(graph)
    nodes = {n["name"]: n for n in drawing["nodes"]}
    assert [n["name"] for n in drawing["nodes"]] == [s.name for s in graph.steps]
    for edge in drawing["edges"]:
        assert nodes[edge["source"]]["layer"] < nodes[edge["target"]]["layer"]
        start, *_, end = edge["points"]
        assert start[1] == nodes[edge["source"]]["y"] + nodes[edge["source"]]["height"]
        assert end[1] == nodes[edge["target"]]["y"]
        for x, y in _curve_samples(edge["points"]):  # no edge runs through another step
            for name, node in nodes.items():
                if name not in (edge["source"], edge["target"]):
                    assert not _overlap({"x": x, "y": y, "width": 0, "height": 0}, node), (
                        edge["source"], edge["target"], name)
    boxes = list(nodes.values()) + [e["label_box"] for e in drawing["edges"] if e["label_box"]]
    for i, a in enumerate(boxes):
        assert a["x"] >= 0 and a["x"] + a["width"] <= drawing["width"]
        assert a["y"] >= 0 and a["y"] + a["height"] <= drawing["height"]
        for b in boxes[i + 1:]:
            assert not _overlap(a, b), (a, b)


def test_layout_layers_are_longest_paths_in_notebook_order() -> None:
    drawing = layout(analyze_notebook(EXAMPLES / "churn" / "churn.ipynb"))
    layers: dict[int, list[str]] = {}
    for node in drawing["nodes"]:
        layers.setdefault(node["layer"], []).append(node["name"])
    assert layers == {
        0: ["load"], 1: ["clean"], 2: ["features"],
        3: ["train_logreg", "train_forest", "train_boosting"], 4: ["evaluate"],
    }
    row = [n for n in drawing["nodes"] if n["layer"] == 3]
    assert [n["x"] for n in row] == sorted(n["x"] for n in row)
    labels = {(e["source"], e["target"]): e["label"] for e in drawing["edges"]}
    assert labels[("load", "clean")] == "df"


# --- run state -----------------------------------------------------------------------------

def test_run_follows_progress_events_and_keeps_other_output_as_log() -> None:
    run = Run(id="r", path="nb.ipynb")
    run.apply('{"event": "step", "step": "load", "state": "running", "duration": null, '
              '"error": null}')
    run.apply("some print output")
    run.apply('{"event": "step", "step": "load", "state": "completed", "duration": 0.5, '
              '"error": null}')
    assert run.state == "running"
    assert run.steps == {"load": {"state": "completed", "duration": 0.5, "error": None}}
    run.apply('{"event": "finished", "state": "completed", "error": null}')
    run.exited(0)
    assert (run.state, run.error, run.log) == ("completed", None, ["some print output"])


def test_run_without_finished_event_failed_with_the_last_output_line() -> None:
    run = Run(id="r", path="nb.ipynb")
    run.apply("nb2pipe: error: argument COMMAND: invalid choice: 'run'")
    run.exited(2)
    assert run.state == "failed"
    assert run.error == "nb2pipe: error: argument COMMAND: invalid choice: 'run'"


# --- the frontend's fixtures ---------------------------------------------------------------

def _fixture_documents(root: Path) -> dict[str, Any]:
    """Every kind of document the server sends, from real notebooks."""
    from nb2pipe.convert import convert
    from nb2pipe.notebook.tags import grammar_json

    churn = copy_churn(root)
    broken = undefined_name_notebook(root / "broken.ipynb")
    run = Run(id="0" * 32, path="small.ipynb")
    for line in (
        '{"event": "step", "step": "load", "state": "cached", "duration": null, "error": null}',
        '{"event": "step", "step": "scale", "state": "completed", "duration": 0.25, '
        '"error": null}',
        '{"event": "step", "step": "report", "state": "failed", "duration": 0.5, '
        '"error": "ZeroDivisionError: division by zero (cell 5, line 1)"}',
        "30",
        '{"event": "finished", "state": "failed", "error": "step report failed"}',
    ):
        run.apply(line)
    return {
        "grammar.json": grammar_json(),
        "analysis-churn.json": documents.analyze(root, churn),
        "analysis-broken.json": documents.analyze(root, broken),
        "export-churn.json": documents.export_document(root, convert(churn)),
        "export-broken.json": documents.export_document(root, convert(broken)),
        "run.json": run.to_json(),
    }


def test_frontend_fixtures_are_current(tmp_path: Path, update_golden: bool) -> None:
    """labextension/test/types.test.ts checks the TypeScript types against these files."""
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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jupyter]:
    root = tmp_path_factory.mktemp("root")
    with running_jupyter(root, tmp_path_factory.mktemp("state"), app="server") as jupyter:
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
    ("GET", "nb2pipe/analyze?path=x.ipynb"),
    ("POST", "nb2pipe/analyze"),
    ("POST", "nb2pipe/export"),
    ("POST", "nb2pipe/runs"),
    ("GET", "nb2pipe/runs/" + "0" * 32),
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
    assert [n["name"] for n in analysis["layout"]["nodes"]] == [
        s["name"] for s in analysis["check"]["steps"]]


@pytest.mark.integration
def test_analyze_posted_content_sees_unsaved_tags(server: Jupyter, root: Path) -> None:
    notebook = small_pipeline_notebook(root / "small.ipynb")
    content = json.loads(notebook.read_text())
    content["cells"][3]["metadata"]["tags"] = ["step:double"]
    before = notebook.read_bytes()
    status, analysis = server.post("nb2pipe/analyze",
                                   {"path": _rel(server, notebook), "content": content})
    assert status == 200, analysis
    assert [s["name"] for s in analysis["check"]["steps"]] == ["load", "double", "report"]
    assert analysis["check"]["notebook"] == _rel(server, notebook)
    assert notebook.read_bytes() == before


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
            ("POST", "nb2pipe/analyze", {"path": path, "content": {"cells": []}}),
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
